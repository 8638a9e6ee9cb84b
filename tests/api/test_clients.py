"""The real ACE-Step clients of spec §10, replayed: what each sends, and what each reads.

Each test follows one client's code path (named in its docstring) against the running
server; shared shape checks live in ``test_era_c.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest


def _data(res: Any) -> Any:
    """``body.data ?? body`` after checking ``code == 200``, as most clients do."""
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["code"] == 200, body
    return body["data"]


def _poll(server: Any, task_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    entry, items = server.wait_task(task_id)
    return entry, items


def test_acestep_vst3(server: Any) -> None:
    """ace-step/acestep.vst3 ``PluginBackendClient.cpp``: JSON, reads ``url`` then ``file``."""
    assert _data(server.client.get("/health"))["status"] == "ok"
    fields = {
        "prompt": "warm analog synthwave",
        "lyrics": "",
        "task_type": "text2music",
        "audio_duration": 2,
        "batch_size": 1,
        "audio_format": "wav",
        "thinking": False,
        "use_random_seed": False,
        "seed": 31337,
        "inference_steps": 8,
        "guidance_scale": 7.0,
        "model": "acestep-v15-turbo",  # not ours: silently the loaded model
    }
    task_id = _data(server.client.post("/release_task", json=fields))["task_id"]
    entry, items = _poll(server, task_id)
    assert entry["status"] == 1 and isinstance(entry["progress_text"], str)
    item = items[0]
    url = item.get("url") or item["file"]
    assert item["prompt"] == "warm analog synthwave" and item["seed_value"] == "31337"
    assert item["metas"]["duration"] == 2.0 and item["metas"]["keyscale"]
    audio = server.download(url)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    # then a cover of that result, naming it by path, with an audio_code_string it ignores
    path = server.path_of(url)
    cover = {
        "prompt": "same tune, jazz trio",
        "task_type": "cover",
        "src_audio_path": path,
        "reference_audio_path": path,
        "audio_cover_strength": 0.5,
        "audio_code_string": "",
        "batch_size": 1,
        "audio_format": "wav",
    }
    entry, items = _poll(server, _data(server.client.post("/release_task", json=cover))["task_id"])
    assert entry["status"] == 1 and server.download(items[0]["file"]).status_code == 200


def test_acestep_daw(server: Any, source_wav: Path) -> None:
    """ace-step/ACE-Step-DAW ``aceStepApi.ts``: inventory, init, stats, multipart jobs."""
    assert server.client.get("/health").is_success
    inventory = _data(server.client.get("/v1/model_inventory"))
    model = inventory["models"][0]["name"]
    init = _data(server.client.post("/v1/init", json={"model": model, "init_llm": False}))
    assert init["loaded_model"] == model
    assert "jobs" in _data(server.client.get("/v1/stats"))
    common = {
        "track_name": "drums",
        "prompt": "tight funk drums",
        "lyrics": "",
        "instruction": "Generate the drums track based on the audio context:",
        "repainting_start": "0",
        "repainting_end": "2",
        "audio_duration": "3",
        "key_scale": "C major",
        "time_signature": "4",
        "inference_steps": "8",
        "guidance_scale": "7",
        "shift": "3",
        "batch_size": "1",
        "audio_format": "wav",
        "thinking": "false",
        "model": model,
        "use_format": "false",
        "use_cot_caption": "false",
    }
    upload = {"src_audio": ("src_audio.wav", source_wav.read_bytes(), "audio/wav")}
    # lego needs ACE-Step's base model: a clear failure, read from the item's ``error``
    lego = server.post("/release_task", common | {"task_type": "lego"}, "multipart", files=upload)
    entry, (item,) = _poll(server, _data(lego)["task_id"])
    assert entry["status"] == 2 and item["status"] == 2 and "lego" in item["error"]
    # repaint runs, and every field the DAW reads is there
    repaint = server.post(
        "/release_task", common | {"task_type": "repaint"}, "multipart", files=upload
    )
    created = _data(repaint)
    assert set(created) == {"task_id", "status", "queue_position"}
    entry, (item,) = _poll(server, created["task_id"])
    assert entry["status"] == 1
    for key in ("file", "wave", "status", "create_time", "env", "prompt", "lyrics"):
        assert key in item
    for key in ("seed_value", "generation_info", "lm_model", "dit_model", "progress", "stage"):
        assert key in item
    assert {"bpm", "duration", "genres", "keyscale", "timesignature"} <= set(item["metas"])
    file = item["file"]
    url = server.base + file if file.startswith("/v1/") else f"/v1/audio?path={quote(file)}"
    assert server.client.get(url).status_code == 200


def test_ace_step_wrangler(server: Any, source_wav: Path, tmp_path: Path) -> None:
    """tsondo/Ace-Step-Wrangler ``acestep_wrapper.py``: sources copied into /tmp; the result's
    ``path`` parsed back out of the URL and reused as ``src_audio_path``."""
    fields = {
        "prompt": "indie folk, fingerpicked guitar",
        "lyrics": "[verse]\nriver runs",
        "audio_duration": 2,
        "guidance_scale": 7.0,
        "shift": 3.0,
        "inference_steps": 8,
        "batch_size": 1,
        "use_random_seed": True,
        "seed": -1,
        "infer_method": "dpm",  # not ours: ignored
        "audio_format": "mp3",
        "audio_guidance_scale": 5,  # unknown key: ignored
        "sample_query": "",
        "vocal_language": "en",
        "model": "acestep-v15-sft",
    }
    entry, (item,) = _poll(
        server, _data(server.client.post("/release_task", json=fields))["task_id"]
    )
    assert entry["status"] == 1
    for key in ("bpm", "keyscale", "timesignature", "duration"):
        assert key in item["metas"]
    assert item["lyrics"] == "[verse]\nriver runs"
    copied = tmp_path / "wrangler_src.wav"  # pytest's tmp_path is under the system temp dir
    shutil.copy(source_wav, copied)
    cover = {"task_type": "cover", "src_audio_path": str(copied), "audio_cover_strength": 0.7}
    entry, _ = _poll(
        server,
        _data(server.client.post("/release_task", json=cover | {"batch_size": 1}))["task_id"],
    )
    assert entry["status"] == 1
    repaint = {
        "task_type": "repaint",
        "src_audio_path": server.path_of(item["file"]),
        "repainting_start": 0.5,
        "repainting_end": 1.5,
        "batch_size": 1,
    }
    entry, (painted,) = _poll(
        server, _data(server.client.post("/release_task", json=repaint))["task_id"]
    )
    assert entry["status"] == 1 and painted["metas"]["duration"] == pytest.approx(2.0, abs=0.05)


def test_ace_step_skills_script(server: Any) -> None:
    """shaneholloman/ace-step-skills ``acestep.sh``: ``application/json; charset=utf-8``, jq
    paths ``.data.task_id // .task_id``, ``.data[0].result`` then ``.[].file``."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    body = {
        "prompt": "epic orchestral trailer",
        "lyrics": "",
        "sample_query": "",
        "thinking": False,
        "use_format": False,
        "use_cot_caption": True,
        "use_cot_language": True,
        "vocal_language": "en",
        "audio_format": "mp3",
        "use_random_seed": False,
        "seed": 77,
        "inference_steps": 8,
        "guidance_scale": 7.0,
        "audio_duration": 2,
        "bpm": 128,
        "batch_size": 1,
    }
    res = server.client.post("/release_task", content=json.dumps(body), headers=headers)
    task_id = res.json()["data"]["task_id"]
    _, items = _poll(server, task_id)
    res = server.client.post(
        "/query_result", content=json.dumps({"task_id_list": [task_id]}), headers=headers
    )
    result = json.loads(res.json()["data"][0]["result"])
    assert [i["file"] for i in result] == [i["file"] for i in items]
    assert result[0]["metas"]["bpm"] == 128 and result[0]["seed_value"] == "77"
    assert server.download(result[0]["file"]).status_code == 200
    print(server.client.get("/v1/models").text)  # the script prints it raw
    random_mode = {"sample_mode": True, "thinking": True, "audio_duration": 2, "batch_size": 1}
    res = server.client.post("/release_task", content=json.dumps(random_mode), headers=headers)
    assert _poll(server, res.json()["data"]["task_id"])[0]["status"] == 1


def test_animede_standalone(server: Any) -> None:
    """animede/ace_step_standalone ``ace_step_client.py``."""
    formatted = _data(
        server.client.post(
            "/format_input", json={"prompt": "city pop", "lyrics": "neon", "temperature": 0.85}
        )
    )
    assert formatted["caption"] == "city pop" and formatted["lyrics"] == "neon"
    sample = _data(server.client.post("/create_random_sample", json={"sample_type": "simple_mode"}))
    assert "description" in sample
    assert "jobs" in _data(server.client.get("/v1/stats"))
    assert server.client.get("/v1/models").status_code == 200
    fields = {
        "prompt": formatted["caption"],
        "lyrics": formatted["lyrics"],
        "thinking": False,
        "vocal_language": "ja",
        "audio_duration": 2,
        "time_signature": "4",
        "batch_size": 1,
        "audio_format": "mp3",
        "inference_steps": 8,
        "guidance_scale": 7.0,
        "bpm": 110,
        "key_scale": "F# minor",
        "seed": 5,
    }
    res = server.client.post("/release_task", json=fields)
    entry, (item,) = _poll(server, _data(res)["task_id"])
    assert entry["status"] == 1
    for key in ("file", "status", "create_time", "prompt", "lyrics", "generation_info"):
        assert key in item
    assert item["metas"]["keyscale"] == "F# minor" and item["metas"]["timesignature"] == "4"
    assert isinstance(item["seed_value"], str)


def test_kpretty_ace_step_web(server: Any, source_wav: Path) -> None:
    """kpretty/ace-step-web ``api.ts``: multipart with a ``reference_audio`` file, sample
    mode, inventory task types, health model fields."""
    health = _data(server.client.get("/health"))
    for key in ("models_initialized", "llm_initialized", "loaded_model", "loaded_lm_model"):
        assert key in health
    inventory = _data(server.client.get("/v1/model_inventory"))
    assert "text2music" in inventory["models"][0]["supported_task_types"]
    fields = {  # nulls and empties stripped by the client
        "prompt": "lofi beat",
        "model": inventory["default_model"],
        "vocal_language": "en",
        "audio_format": "mp3",
        "audio_duration": 2,
        "batch_size": 1,
    }
    files = {"reference_audio": ("ref.wav", source_wav.read_bytes(), "audio/wav")}
    res = server.post("/release_task", fields, "multipart", files=files)
    created = _data(res)
    assert created["status"] == "queued" and created["queue_position"] >= 1
    entry, (item,) = _poll(server, created["task_id"])
    assert entry["status"] == 1 and item["progress"] == 1.0 and item["stage"] == "succeeded"
    sample = {"sample_mode": True, "sample_query": "rainy jazz cafe", "audio_duration": 2}
    entry, (item,) = _poll(
        server,
        _data(server.client.post("/release_task", json=sample | {"batch_size": 1}))["task_id"],
    )
    assert item["prompt"] == "rainy jazz cafe"
    assert server.client.get(server.base + item["file"]).status_code == 200


def test_denishumen_ace_step_deck(server: Any) -> None:
    """DenisHumen/ace-step-deck ``acestep-api.ts``: reads ``detail`` when not ok and
    ``error`` when ``code != 200``; ``param_obj`` as a JSON string."""
    assert server.client.get("/health").is_success
    assert _data(server.client.get("/v1/stats"))["queue_maxsize"] > 0
    init = server.client.post("/v1/init", json={"model": "songqueue-synth-v1"})
    assert _data(init)["loaded_model"] == "songqueue-synth-v1"
    param_obj = json.dumps({"duration": 30, "bpm": 90, "key_scale": "B minor", "language": "en"})
    formatted = _data(
        server.client.post(
            "/format_input", json={"prompt": "trip hop", "lyrics": "", "param_obj": param_obj}
        )
    )
    assert formatted["bpm"] == 90 and formatted["key_scale"] == "B minor"
    assert _data(server.client.post("/create_random_sample", json={"sample_type": "custom"}))
    fields = {"prompt": formatted["caption"], "audio_duration": 2, "batch_size": 1, "bpm": 90}
    entry, (item,) = _poll(
        server, _data(server.client.post("/release_task", json=fields))["task_id"]
    )
    assert entry["status"] == 1
    for key in ("file", "status", "progress", "stage", "error", "prompt", "lyrics", "metas"):
        assert key in item
    for key in ("seed_value", "lm_model", "dit_model", "generation_info"):
        assert key in item
    assert item["error"] is None
    bad = server.client.post("/release_task", json={"prompt": "x", "batch_size": 80})
    assert not bad.is_success and "batch_size" in bad.json()["detail"]


def test_visoar_runpod_handler(server: Any) -> None:
    """visoar/ace-step-1.5 ``handler.py``: the ``caption``/``duration`` aliases."""
    assert _data(server.client.get("/health"))["status"] == "ok"
    fields = {
        "caption": "synthwave night drive",
        "lyrics": "[inst]",
        "duration": 2,
        "batch_size": 1,
    }
    res = server.client.post("/release_task", json=fields)
    task_id = _data(res)["task_id"]
    entry, _ = _poll(server, task_id)
    assert entry["status"] == 1
    files = [i["file"] for i in json.loads(entry["result"])]
    audio = server.download(files[0])
    assert audio.headers["content-type"] == "audio/mpeg"  # the handler assumes mp3


def test_vavo_ace_step_ui(server: Any) -> None:
    """vavo/ace-step-ui ``acestep.ts``: ``data.data.models || data.models`` -> ``[0].name``."""
    data = server.client.get("/v1/models").json()
    nested = data["data"]
    models = (nested.get("models") if isinstance(nested, dict) else None) or data["models"]
    assert models[0]["name"] == "songqueue-synth-v1"
    assert _data(
        server.client.post("/v1/init", json={"model": models[0]["name"], "init_llm": False})
    )


def test_studio_html(server: Any) -> None:
    """ACE-Step's own ``ui/studio.html``, opened from ``file://`` (``Origin: null``)."""
    origin = {"Origin": "null"}
    preflight = server.client.options(
        "/release_task",
        headers=origin
        | {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    fields = {
        "prompt": "",
        "lyrics": "",
        "vocal_language": "en",
        "thinking": False,
        "batch_size": 1,
        "audio_duration": 2,
        "sample_mode": False,
        "sample_query": "a happy ukulele song",
    }
    res = server.client.post("/release_task", json=fields, headers=origin)
    assert res.headers["access-control-allow-origin"] == "null"
    body = res.json()
    assert body["code"] == 200
    entry, (item,) = _poll(server, body["data"]["task_id"])
    assert isinstance(entry["progress_text"], str) and item["prompt"] == "a happy ukulele song"
    for key in ("bpm", "keyscale", "timesignature", "duration"):
        assert key in item["metas"]


def test_acemusic_skill_era_a(server: Any) -> None:
    """``skills/acemusic/scripts/acemusic.sh`` (era A): generate, random, poll ``/v1/jobs``."""
    res = server.client.post(
        "/v1/music/generate",
        json={"caption": "acoustic ballad", "lyrics": "", "audio_duration": 2, "batch_size": 1},
    )
    job = server.wait_job(res.json()["job_id"])
    assert job["status"] == "succeeded" and job["error"] is None
    result = job["result"]
    assert result["audio_paths"] and isinstance(result["bpm"], int)
    assert result["keyscale"] and result["duration"] == 2.0
    res = server.client.post(
        "/v1/music/random", json={"thinking": True, "audio_duration": 2, "batch_size": 1}
    )
    assert server.wait_job(res.json()["job_id"])["status"] == "succeeded"
