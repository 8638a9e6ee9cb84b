"""``POST /api/edit``: repaint of an uploaded song over the union span of its segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.diffrhythm_api.conftest import LRC, Server

RATE = 44100


def _edit(server: Server, song: Path, segments: str, **data: str) -> str:
    with song.open("rb") as f:
        res = server.client.post(
            "/api/edit",
            files={"lyrics": ("song.lrc", LRC.encode()), "ref_song": ("song.wav", f)},
            data={"ref_prompt": "folk, harmonica", "edit_segments": segments, **data},
        )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["status"] == "queued"
    assert body["message"] == "Music editing task queued successfully"
    return str(body["task_id"])


@pytest.fixture(scope="module")
def song(synth_server: Server) -> Path:
    """A 95 s song made by the server itself, downloaded like a client would."""
    done = synth_server.wait_done(synth_server.generate("folk, acoustic guitar"))
    assert done["status"] == "completed", done
    return Path(done["output_path"])


def test_edit_keeps_audio_outside_the_span(synth_server: Server, song: Path) -> None:
    task_id = _edit(synth_server, song, "[[10,20],[30.5,40]]")
    done = synth_server.wait_done(task_id)
    assert done["status"] == "completed", done
    assert done["message"] == "repainted 10 s to 40 s (the union of the edit segments)"
    source, _ = sf.read(song, dtype="float32")
    edited, rate = sf.read(done["output_path"], dtype="float32")
    assert rate == RATE and edited.shape == source.shape
    # Before the span and after it the song is untouched; inside it, new music.
    assert np.allclose(edited[: 9 * RATE], source[: 9 * RATE], atol=1e-3)
    assert np.allclose(edited[41 * RATE :], source[41 * RATE :], atol=1e-3)
    assert not np.allclose(edited[12 * RATE : 38 * RATE], source[12 * RATE : 38 * RATE], atol=1e-2)
    download = synth_server.client.get(f"/api/download/{task_id}")
    assert download.status_code == 200
    assert download.content == Path(done["output_path"]).read_bytes()


def test_edit_open_ended_segments(server: Server, files: dict[str, Path]) -> None:
    """The seed's example ``[[-1,25],[50.0,-1]]``: from the start to the end."""
    task_id = _edit(server, files["wav"], "[[-1,25],[50.0,-1]]")
    done = server.wait_done(task_id)
    assert done["status"] == "completed", done
    assert done["message"] == "repainted 0 s to the end (the union of the edit segments)"
    assert Path(done["output_path"]).is_file()


def test_edit_with_reference_audio(server: Server, files: dict[str, Path]) -> None:
    with files["wav"].open("rb") as song, files["mp3"].open("rb") as ref:
        res = server.client.post(
            "/api/edit",
            files={
                "lyrics": ("song.lrc", LRC.encode()),
                "ref_song": ("song.wav", song),
                "ref_audio": ("ref.mp3", ref),
            },
            data={"edit_segments": "[[1, 2]]", "audio_length": "95"},
        )
    assert res.status_code == 200, res.text
    done = server.wait_done(res.json()["task_id"])
    assert done["status"] == "completed", done
    assert done["message"] == "repainted 1 s to 2 s (the union of the edit segments)"
