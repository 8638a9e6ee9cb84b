"""Era C, the main surface (spec §4, §5): ``/release_task`` in every encoding and alias form,
``/query_result`` shapes, seeds, task types, LLM flags and the ``/v1/audio`` round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

ENCODINGS = ("json", "form", "multipart")
TINY = {"audio_duration": 2, "batch_size": 1}
SUCCESS_ITEM_KEYS = {
    "file",
    "wave",
    "status",
    "create_time",
    "env",
    "prompt",
    "lyrics",
    "metas",
    "generation_info",
    "seed_value",
    "lm_model",
    "dit_model",
    "progress",
    "stage",
}
METAS_KEYS = {"bpm", "duration", "genres", "keyscale", "timesignature", "prompt", "lyrics"}


def _succeeded(server: Any, task_id: str) -> list[dict[str, Any]]:
    entry, items = server.wait_task(task_id)
    assert entry["status"] == 1, entry
    assert entry["task_id"] == task_id and isinstance(entry["progress_text"], str)
    return items


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_release_and_query_every_encoding(server: Any, encoding: str) -> None:
    res = server.post(
        "/release_task",
        {
            "prompt": "bright synth pop",
            "lyrics": "[verse]\nhello world",
            "audio_duration": 3,
            "batch_size": 2,
            "audio_format": "wav",
            "use_random_seed": False,
            "seed": "11,12",
            "bpm": 100,
            "key_scale": "D minor",
            "time_signature": "3",
            "vocal_language": "en",
        },
        encoding,
    )
    body = res.json()
    assert res.status_code == 200 and set(body) == {"data", "code", "error", "timestamp", "extra"}
    assert body["code"] == 200 and body["error"] is None and body["extra"] is None
    data = body["data"]
    assert set(data) == {"task_id", "status", "queue_position"}
    assert data["status"] == "queued" and data["queue_position"] >= 1
    items = _succeeded(server, data["task_id"])
    assert len(items) == 2  # one item per audio file
    for item, seed in zip(items, (11, 12), strict=True):
        assert set(item) >= SUCCESS_ITEM_KEYS
        assert item["status"] == 1 and item["wave"] == "" and item["env"] == "development"
        assert item["stage"] == "succeeded" and item["progress"] == 1.0
        assert item["seed_value"] == "11,12"
        assert item["file"].startswith("/v1/audio?path=%2F") and item["file"].endswith(".wav")
        assert f"-{seed}.wav" in item["file"]
        assert item["prompt"] == "bright synth pop"
        assert set(item["metas"]) == METAS_KEYS
        assert item["metas"]["bpm"] == 100 and item["metas"]["keyscale"] == "D minor"
        assert item["metas"]["timesignature"] == "3" and item["metas"]["duration"] == 3.0
        assert item["metas"]["lyrics"] == "[verse]\nhello world"
        assert item["dit_model"] == "songqueue-synth-v1"
        res = server.download(item["file"])
        assert res.status_code == 200 and res.headers["content-type"] == "audio/wav"
        assert res.content[:4] == b"RIFF"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_aliases_and_nesting(server: Any, encoding: str) -> None:
    """Camel-case and alternative names, ``param_obj`` and ``metas`` (dicts or JSON strings)."""
    task_id = server.release(
        {
            "caption": "camel case caption",
            "audioDuration": 2,
            "batch_size": 1,
            "useRandomSeed": "false",
            "seed": 7,
            "keyScale": "E major",
            "audioFormat": "flac",
            "param_obj": {"bpm": 90, "time_signature": "4"},
            "metas": json.dumps({"bpm": 150, "language": "fr", "timesignature": "3"}),
        },
        encoding,
    )
    (item,) = _succeeded(server, task_id)
    assert item["prompt"] == "camel case caption" and item["seed_value"] == "7"
    assert item["file"].endswith(".flac")
    metas = item["metas"]
    assert metas["bpm"] == 90 and metas["timesignature"] == "4"  # param_obj before metas
    assert metas["keyscale"] == "E major" and metas["duration"] == 2.0


def test_first_non_none_alias_wins(server: Any) -> None:
    """``{"prompt": "", "caption": "x"}`` gives prompt ``""`` (spec §3); ``target_duration``."""
    task_id = server.release(
        {"prompt": "", "caption": "ignored", "target_duration": 2, "batch_size": 1}
    )
    (item,) = _succeeded(server, task_id)
    assert item["prompt"] == "" and item["metas"]["duration"] == 2.0


def test_coercion_rules(server: Any) -> None:
    """Float-looking ints fall back to defaults; bools only for 1/true/yes/y/on (spec §3)."""
    base = {"prompt": "coercion", "audio_duration": "2.0", "batch_size": "1", "seed": "5"}
    plain = server.release(base | {"use_random_seed": False})
    coerced = server.release(
        base
        | {
            "bpm": 120.0,  # a JSON float is not an int: dropped, the engine chooses
            "inference_steps": "8.0",  # unparsable as int: the default
            "use_random_seed": " Off ",  # trimmed, lower-cased: false
        }
    )
    numeric_two = server.release(base | {"use_random_seed": 2})  # only 1 is true
    (a,), (b,), (c,) = (_succeeded(server, t) for t in (plain, coerced, numeric_two))
    assert a["seed_value"] == b["seed_value"] == c["seed_value"] == "5"
    assert b["metas"]["bpm"] == a["metas"]["bpm"]  # same seed, no bpm given: same choice
    assert a["metas"]["duration"] == 2.0


def test_seed_is_honoured_and_random_otherwise(server: Any) -> None:
    fixed = [
        server.release({"prompt": "same", "use_random_seed": False, "seed": 4242, **TINY})
        for _ in range(2)
    ]
    seeds = {_succeeded(server, t)[0]["seed_value"] for t in fixed}
    assert seeds == {"4242"}
    rand = [
        server.release({"prompt": "same", "use_random_seed": True, "seed": 4242, **TINY})
        for _ in range(2)
    ]
    values = [_succeeded(server, t)[0]["seed_value"] for t in rand]
    assert "4242" not in values and values[0] != values[1]


def test_same_seed_same_audio(server: Any) -> None:
    fields = {"prompt": "determinism", "use_random_seed": False, "seed": 99, "audio_format": "wav"}
    a, b = (server.release(fields | TINY) for _ in range(2))
    (item_a,), (item_b,) = _succeeded(server, a), _succeeded(server, b)
    assert server.download(item_a["file"]).content == server.download(item_b["file"]).content


def test_task_id_list_forms(server: Any) -> None:
    done = server.release({"prompt": "list forms", **TINY})
    server.wait_task(done)
    post = server.client.post
    as_string = post("/query_result", json={"task_id_list": json.dumps([done, "nope"])})
    as_form = post("/query_result", data={"task_id_list": json.dumps([done])})
    as_list = post("/query_result", json={"task_id_list": [done, "nope"]})
    for res in (as_string, as_form, as_list):
        assert res.status_code == 200
        data = res.json()["data"]
        assert data[0]["task_id"] == done and data[0]["status"] == 1
    assert [d["task_id"] for d in as_list.json()["data"]] == [done, "nope"]
    assert as_list.json()["data"][1] == {"task_id": "nope", "status": 0, "result": "[]"}
    empty = post("/query_result", json={})
    assert empty.status_code == 200 and empty.json()["data"] == []
    no_body = post("/query_result")
    assert no_body.status_code == 200 and no_body.json()["data"] == []


@pytest.mark.parametrize("task_type", ("lego", "extract", "complete"))
def test_unsupported_task_types_fail_clearly(server: Any, source_wav: Any, task_type: str) -> None:
    files = {"src_audio": ("src_audio.wav", source_wav.read_bytes(), "audio/wav")}
    uploads = server.uploads
    task_id = server.release(
        {"task_type": task_type, "track_name": "drums", "prompt": "x"}, "multipart", files=files
    )
    entry, items = server.wait_task(task_id)
    assert entry["status"] == 2
    (item,) = items
    assert item["status"] == 2 and item["stage"] == "failed" and item["file"] == ""
    assert task_type in item["error"] and "base model" in item["error"]
    assert "text2music, cover, repaint" in item["error"]
    assert task_type in entry["progress_text"]
    assert server.uploads == uploads  # nobody will read the upload: it is not kept


def test_cover_and_repaint_from_uploads(server: Any, source_wav: Any) -> None:
    upload = {"src_audio": ("song.wav", source_wav.read_bytes(), "audio/wav")}
    cover = server.release(
        {"task_type": "cover", "prompt": "jazz cover", "audio_cover_strength": 0.4, **TINY},
        "multipart",
        files=upload,
    )
    repaint = server.release(
        {"task_type": "repaint", "repainting_start": 1, "repainting_end": 2, "batch_size": 1},
        "multipart",
        files={"ctx_audio": ("song.wav", source_wav.read_bytes(), "audio/wav")},
    )
    for task_id in (cover, repaint):
        (item,) = _succeeded(server, task_id)
        assert server.download(item["file"]).status_code == 200
    (item,) = _succeeded(server, repaint)
    assert item["metas"]["duration"] == pytest.approx(3.0, abs=0.05)  # the source's length


def test_output_fed_back_as_source(server: Any) -> None:
    """A result's ``path`` is a real server path that works as ``src_audio_path``."""
    (first,) = _succeeded(server, server.release({"prompt": "seed song", **TINY}))
    path = server.path_of(first["file"])
    for task in ("cover", "repaint"):
        fields = {"task_type": task, "src_audio_path": path, "batch_size": 1}
        (item,) = _succeeded(server, server.release(fields))
        assert item["file"] != first["file"]


def test_cover_without_source_is_text2music(server: Any) -> None:
    (item,) = _succeeded(server, server.release({"task_type": "cover", "prompt": "x", **TINY}))
    assert "text2music" in item["generation_info"]


def test_lm_flags_are_accepted_and_noted(server: Any) -> None:
    task_id = server.release(
        {
            "prompt": "lm flags",
            "thinking": True,
            "use_format": "true",
            "use_cot_caption": True,
            "use_cot_language": False,
            "lm_backend": "pt",
            **TINY,
        }
    )
    (item,) = _succeeded(server, task_id)
    info = item["generation_info"]
    assert "thinking requested" in info and "use_format requested" in info
    assert "use_cot_caption requested" in info and "use_cot_language" not in info
    assert item["lm_model"] is None


@pytest.mark.parametrize(
    "fields",
    [
        {"sample_mode": True, "sample_query": "a sad violin waltz"},
        {"sample_query": "a sad violin waltz"},
        {"description": "a sad violin waltz"},
        {"desc": "a sad violin waltz"},
    ],
)
def test_sample_query_becomes_the_caption(server: Any, fields: dict[str, Any]) -> None:
    (item,) = _succeeded(server, server.release(fields | TINY))
    assert item["prompt"] == "a sad violin waltz"
    assert "sample_query used as the caption" in item["generation_info"]


def test_random_mode_without_query(server: Any) -> None:
    """The skill script's ``{sample_mode: true, thinking}``: still makes a song."""
    (item,) = _succeeded(server, server.release({"sample_mode": True, "thinking": True, **TINY}))
    assert "sample_mode requested" in item["generation_info"]


def test_queued_shape_and_position(make_server: Any) -> None:
    """Without a worker jobs stay queued: status 0, 1-based positions, a queued item."""
    with make_server(worker=False) as idle:
        first = idle.release({"prompt": "first", **TINY})
        second = idle.client.post("/release_task", json={"prompt": "second", **TINY}).json()
        assert second["data"]["queue_position"] == 2
        entry = idle.query(first)
        assert entry["status"] == 0 and entry["progress_text"].startswith("queued: position 1")
        (item,) = json.loads(entry["result"])
        assert item["status"] == 0 and item["stage"] == "queued" and item["file"] == ""
        assert item["progress"] == 0.0 and item["error"] is None
        assert item["queue_position"] == 1 and item["prompt"] == "first"
        assert idle.query(second["data"]["task_id"])["progress_text"].startswith(
            "queued: position 2"
        )


def test_audio_download_headers(server: Any) -> None:
    fields = {"prompt": "mp3 please", "audio_format": "mp3", **TINY}
    (item,) = _succeeded(server, server.release(fields))
    res = server.download(item["file"])
    assert res.status_code == 200 and res.headers["content-type"] == "audio/mpeg"
    assert item["url"] == item["file"]  # Gradio-style clients read ``url`` first


@pytest.mark.parametrize("seed", ("8,9", [8, 9], " 8 , 9 "))
def test_seed_list_forms(server: Any, seed: Any) -> None:
    fields = {"prompt": "two seeds", "use_random_seed": False, "seed": seed}
    items = _succeeded(server, server.release(fields | {"audio_duration": 2, "batch_size": 2}))
    assert [i["seed_value"] for i in items] == ["8,9", "8,9"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/vnd.api+json", b'{"prompt": "plus json", "audio_duration": 2}'),
        ("application/json; charset=utf-8", b'{"prompt": "plus json", "audio_duration": 2}'),
        (None, b'  {"prompt": "plus json", "audio_duration": 2}'),
        ("text/plain", b'{"prompt": "plus json", "audio_duration": 2}'),
        (None, b"prompt=plus+json&audio_duration=2&batch_size=1"),
    ],
)
def test_content_type_dispatch(server: Any, content_type: str | None, body: bytes) -> None:
    """``+json`` and charset suffixes; a JSON or k=v body with no (or another) content type."""
    headers = {"Content-Type": content_type} if content_type else {}
    res = server.client.post("/release_task", content=body, headers=headers)
    assert res.status_code == 200, res.text
    entry, items = server.wait_task(res.json()["data"]["task_id"])
    assert entry["status"] == 1 and items[0]["prompt"] == "plus json"
    assert items[0]["metas"]["duration"] == 2.0


def test_upload_beats_the_path_field(server: Any, source_wav: Any) -> None:
    """An uploaded file overrides the ``*_path`` text field (spec §4.1)."""
    fields = {"task_type": "cover", "src_audio_path": "/etc/hostname", **TINY}
    files = {"src_audio": ("song.wav", source_wav.read_bytes(), "audio/wav")}
    entry, _ = server.wait_task(server.release(fields, "multipart", files=files))
    assert entry["status"] == 1
