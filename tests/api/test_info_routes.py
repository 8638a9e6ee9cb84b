"""The service routes (spec §1, §9): ``/health``, ``/v1/stats``, ``/v1/models``,
``/v1/model_inventory``, ``/v1/init``, ``/format_input``, ``/create_random_sample``."""

from __future__ import annotations

import json
from typing import Any

import pytest

ENVELOPE = {"data", "code", "error", "timestamp", "extra"}
SIMPLE_KEYS = {"description", "instrumental", "vocal_language"}
CUSTOM_KEYS = {"think", "caption", "lyrics", "bpm", "duration", "keyscale", "language"}
CUSTOM_KEYS |= {"timesignature"}


def _wrapped(res: Any) -> Any:
    assert res.status_code == 200, res.text
    body = res.json()
    assert set(body) == ENVELOPE and body["code"] == 200 and body["error"] is None
    assert body["extra"] is None and isinstance(body["timestamp"], int)
    return body["data"]


def test_health(server: Any) -> None:
    data = _wrapped(server.client.get("/health"))
    assert data["status"] == "ok" and data["service"] == "ACE-Step API"
    assert data["version"] == "1.0"
    assert data["models_initialized"] is True and data["llm_initialized"] is False
    assert data["loaded_model"] == "songqueue-synth-v1" and data["loaded_lm_model"] is None


def test_health_without_workers_names_the_configured_engine(make_server: Any) -> None:
    with make_server(worker=False) as idle:
        data = _wrapped(idle.client.get("/health"))
        assert data["status"] == "ok" and data["models_initialized"] is False
        assert data["loaded_model"] == "songqueue-synth-v1"
        models = idle.client.get("/v1/models").json()
        assert models["default_model"] == "songqueue-synth-v1"
        assert models["models"][0]["is_loaded"] is False


def test_stats(server: Any) -> None:
    task_id = server.release({"prompt": "stats", "audio_duration": 2, "batch_size": 1})
    server.wait_task(task_id)
    data = _wrapped(server.client.get("/v1/stats"))
    jobs = data["jobs"]
    assert set(jobs) == {"total", "queued", "running", "succeeded", "failed"}
    assert jobs["succeeded"] >= 1 and jobs["total"] >= jobs["succeeded"] + jobs["failed"]
    assert data["queue_size"] == jobs["queued"] and data["queue_maxsize"] == 200
    assert isinstance(data["avg_job_seconds"], float) and data["avg_job_seconds"] > 0


def test_models_openrouter_shape_plus_native_keys(server: Any) -> None:
    body = server.client.get("/v1/models").json()
    assert body["object"] == "list"
    (model,) = body["data"]
    assert model["id"] == "acestep/songqueue-synth-v1"
    assert model["input_modalities"] == ["text", "audio"] and model["architecture"] is None
    assert model["pricing"] == {"prompt": "0", "completion": "0", "request": "0", "image": "0"}
    # vavo/ace-step-ui reads ``data.models || models`` -> [0].name
    assert body["models"][0]["name"] == "songqueue-synth-v1" and body["models"][0]["is_default"]
    assert body["default_model"] == "songqueue-synth-v1"


def test_model_inventory(server: Any) -> None:
    data = _wrapped(server.client.get("/v1/model_inventory"))
    (model,) = data["models"]
    assert model == {
        "name": "songqueue-synth-v1",
        "is_default": True,
        "is_loaded": True,
        "supported_task_types": ["cover", "repaint", "text2music"],
    }
    assert data["default_model"] == "songqueue-synth-v1"
    assert data["lm_models"] == [] and data["loaded_lm_model"] is None
    assert data["llm_initialized"] is False


@pytest.mark.parametrize("encoding", ("json", "form"))
def test_init(server: Any, encoding: str) -> None:
    fields = {"model": "songqueue-synth-v1", "init_llm": False, "slot": 2}
    data = _wrapped(server.post("/v1/init", fields, encoding))
    assert data["message"] == "Model initialization completed"
    assert data["loaded_model"] == "songqueue-synth-v1" and data["slot"] == 2
    assert data["models"][0]["name"] == "songqueue-synth-v1"
    assert data["llm_initialized"] is False and data["lm_models"] == []


def test_init_with_other_model_and_llm(server: Any) -> None:
    fields = {"model": "acestep-v15-turbo", "init_llm": True, "lm_model_path": "x"}
    data = _wrapped(server.post("/v1/init", fields))
    assert data["message"].startswith("Model initialization completed")
    assert "acestep-v15-turbo" in data["message"] and "language model" in data["message"]
    assert data["loaded_model"] == "songqueue-synth-v1" and data["llm_initialized"] is False
    assert _wrapped(server.client.post("/v1/init"))["slot"] == 1


@pytest.mark.parametrize("encoding", ("json", "form", "multipart"))
def test_format_input_returns_input_normalised(server: Any, encoding: str) -> None:
    fields = {
        "prompt": "  dreamy pop  ",
        "lyrics": "[verse]\nla la\n",
        "temperature": 0.85,
        "param_obj": json.dumps(
            {
                "duration": 45,
                "bpm": "120",
                "key": "A minor",
                "time_signature": "4",
                "language": "ja",
            }
        ),
    }
    data = _wrapped(server.post("/format_input", fields, encoding))
    assert data == {
        "caption": "dreamy pop",
        "lyrics": "[verse]\nla la",
        "bpm": 120,
        "key_scale": "A minor",
        "time_signature": "4",
        "duration": 45.0,
        "vocal_language": "ja",
    }


def test_format_input_defaults_and_out_of_range(server: Any) -> None:
    data = _wrapped(server.post("/format_input", {"prompt": "x", "bpm": 5000, "duration": -3}))
    assert data["bpm"] is None and data["duration"] is None
    assert data["vocal_language"] == "en" and data["lyrics"] == ""


def test_create_random_sample_shapes(server: Any) -> None:
    simple = _wrapped(server.client.post("/create_random_sample", json={}))
    assert set(simple) == SIMPLE_KEYS and isinstance(simple["instrumental"], bool)
    simple = _wrapped(server.post("/create_random_sample", {"sample_type": "simple_mode"}, "form"))
    assert set(simple) == SIMPLE_KEYS
    custom = _wrapped(server.client.post("/create_random_sample", json={"sample_type": "custom"}))
    assert set(custom) == CUSTOM_KEYS and isinstance(custom["bpm"], int)
    assert custom["caption"] and custom["lyrics"]


def test_random_sample_feeds_release_task(server: Any) -> None:
    """kpretty/ace-step-web fills its form from a random sample, then submits it."""
    sample = _wrapped(server.client.post("/create_random_sample", json={"sample_type": "x"}))
    fields = {
        "prompt": sample["caption"],
        "lyrics": sample["lyrics"],
        "bpm": sample["bpm"],
        "key_scale": sample["keyscale"],
        "time_signature": sample["timesignature"],
        "vocal_language": sample["language"],
        "audio_duration": 2,
        "batch_size": 1,
    }
    entry, (item,) = server.wait_task(server.release(fields))
    assert entry["status"] == 1 and item["metas"]["bpm"] == sample["bpm"]
