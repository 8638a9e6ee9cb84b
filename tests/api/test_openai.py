"""``POST /v1/chat/completions`` (spec §9.4): the chat request becomes a job in the shared queue;
the answer carries the first song as a data URL, in one body or as server-sent events."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import msgspec
import pytest
import soundfile as sf

from service.api import openai
from service.errors import BadRequest
from tests.api.conftest import Server

URL = "/v1/chat/completions"
SONG = "<prompt>bright synth pop</prompt><lyrics>[verse]\nhello queue\n[chorus]\nla la</lyrics>"


def chat(content: Any, **extra: Any) -> dict[str, Any]:
    body = {"model": "acestep/songqueue", "messages": [{"role": "user", "content": content}]}
    return body | {"audio_config": {"duration": 2, "format": "wav"}} | extra


def decode_data_url(url: str, media: str) -> sf.SoundFile:
    prefix = f"data:{media};base64,"
    assert url.startswith(prefix)
    return sf.SoundFile(io.BytesIO(base64.b64decode(url.removeprefix(prefix))))


def events(text: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded except ``[DONE]``."""
    out: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block.removeprefix("data: ")
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_non_streaming_answer_has_metadata_lyrics_and_the_song(server: Server) -> None:
    res = server.client.post(URL, json=chat(SONG, seed=5))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["id"].startswith("chatcmpl-") and len(body["id"]) == len("chatcmpl-") + 24
    assert body["object"] == "chat.completion" and body["model"] == "acestep/songqueue"
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith("## Metadata\n**Caption:** bright synth pop\n**BPM:** ")
    assert "**Duration:** 2.0s" in content and "## Lyrics\n[verse]\nhello queue" in content
    (audio,) = choice["message"]["audio"]  # only the first song, as ACE-Step
    assert audio["type"] == "audio_url"
    with decode_data_url(audio["audio_url"]["url"], "audio/wav") as song:
        assert abs(song.frames / song.samplerate - 2.0) < 0.01


def test_streaming_sends_role_metadata_audio_stop_and_done(server: Server) -> None:
    res = server.client.post(URL, json=chat("calm ambient pads", stream=True))
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/event-stream")
    chunks = events(res.text)
    assert chunks[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks[:-1])
    assert len({c["id"] for c in chunks[:-1]}) == 1
    assert deltas[0] == {"role": "assistant", "content": "Generating music"}
    assert finishes[-1] == "stop" and finishes[:-1] == [None] * (len(finishes) - 1)
    text = "".join(d.get("content", "") for d in deltas)
    assert "**Caption:** calm ambient pads" in text and "## Lyrics" not in text
    (audio,) = [d["audio"] for d in deltas if "audio" in d]
    with decode_data_url(audio[0]["audio_url"]["url"], "audio/wav") as song:
        assert song.frames == 2 * song.samplerate


def test_a_failed_job_is_a_500_or_an_error_event(server: Server) -> None:
    lego = chat("a bass line", task_type="lego")  # needs ACE-Step's base model: fails at once
    res = server.client.post(URL, json=lego)
    assert res.status_code == 500 and "base model" in res.json()["detail"]
    chunks = events(server.client.post(URL, json=lego | {"stream": True}).text)
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["choices"][0]["finish_reason"] == "error"
    assert chunks[-3]["choices"][0]["delta"]["content"].startswith("\n\nError: task_type 'lego'")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"messages": []}, "Invalid request format: Object missing required field `model`"),
        ({"model": "m", "messages": "hi"}, "Invalid request format: Expected `array`"),
        (
            {"model": "m", "messages": [{"role": "system", "content": "be a song"}]},
            "No valid prompt, lyrics, sample query, or input audio found in request",
        ),
        (chat("x", audio_config={"duration": 9999}), "audio_duration"),
        (
            chat([{"type": "input_audio", "input_audio": {"data": "@@@", "format": "wav"}}]),
            "input_audio part 0: data is not valid base64",
        ),
    ],
)
def test_bad_requests_get_a_400(server: Server, body: dict[str, Any], detail: str) -> None:
    before = server.total_jobs()
    res = server.client.post(URL, json=body)
    assert res.status_code == 400 and detail in res.json()["detail"]
    assert server.total_jobs() == before


def test_timeout_is_a_504_and_frees_the_queue(
    make_server: Callable[..., AbstractContextManager[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai, "GENERATION_TIMEOUT_SECONDS", 0.0)
    with make_server(worker=False) as idle:
        res = idle.client.post(URL, json=chat("nobody will play this"))
        assert res.status_code == 504 and res.json() == {"detail": "Generation timeout"}
        stats = idle.client.get("/v1/stats").json()["data"]
        assert stats["jobs"]["queued"] == 0  # cancelled: no worker will waste time on it


def test_the_api_key_is_required_when_set(
    make_server: Callable[..., AbstractContextManager[Server]],
) -> None:
    with make_server(api_key="chat-key") as keyed:
        assert keyed.client.post(URL, json=chat("x")).status_code == 401
        ok = keyed.client.post(
            URL, json=chat("x"), headers={"Authorization": "Bearer chat-key"}
        )
        assert ok.status_code == 200, ok.text


# --- message parsing (ACE-Step's rules) ---------------------------------------------------


def request(content: Any, **extra: Any) -> openai.ChatRequest:
    return msgspec.convert(chat(content, **extra), openai.ChatRequest)


def test_tags_heuristics_and_plain_text() -> None:
    body = openai.to_body(request("<prompt>jazz</prompt>\n<lyrics>[verse]\nla</lyrics>"))
    assert (body.fields["prompt"], body.fields["lyrics"]) == ("jazz", "[verse]\nla")
    body = openai.to_body(request("[chorus]\nsing it loud"))
    assert (body.fields["prompt"], body.fields["lyrics"]) == ("", "[chorus]\nsing it loud")
    body = openai.to_body(request("one\ntwo\nthree\nfour"))  # four short lines: lyrics
    assert body.fields["lyrics"] == "one\ntwo\nthree\nfour"
    body = openai.to_body(request("an epic theme", lyrics="[verse]\nhi"))
    assert (body.fields["prompt"], body.fields["lyrics"]) == ("an epic theme", "[verse]\nhi")
    body = openai.to_body(request("drums", audio_config={"instrumental": True}))
    assert body.fields["lyrics"] == "[inst]" and body.fields["batch_size"] == 1
    body = openai.to_body(request("x", seed=42))
    assert body.fields["seed"] == 42 and body.fields["use_random_seed"] is False
    assert "seed" not in openai.to_body(request("x")).fields


def test_only_the_last_user_message_counts() -> None:
    req = msgspec.convert(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "old idea"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "new idea"},
            ],
        },
        openai.ChatRequest,
    )
    assert openai.to_body(req).fields["prompt"] == "new idea"


def test_input_audio_goes_to_source_or_reference_by_task() -> None:
    wav = base64.b64encode(b"RIFF....WAVE").decode()
    parts = [
        {"type": "text", "text": "make it jazz"},
        {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
        {"type": "input_audio", "input_audio": {"data": f"data:audio/wav;base64,{wav}"}},
    ]
    cover = openai.to_body(request(parts, task_type="cover"))
    assert set(cover.uploads) == {"src_audio", "reference_audio"}
    assert cover.uploads["src_audio"].filename == "input_0.wav"
    assert cover.uploads["reference_audio"].filename == "input_1.mp3"
    text2music = openai.to_body(request(parts))
    assert set(text2music.uploads) == {"reference_audio"}
    with pytest.raises(BadRequest):
        openai.to_body(request([{"type": "text", "text": "  "}]))
