"""The models directory: offline check, the weights command, download from a local fake hub."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from models.diffrhythm import weights
from models.registry import resolve_engine_name


def _copy(tiny_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "models"
    shutil.copytree(tiny_dir, dest)
    return dest


def test_tiny_directory_is_complete(tiny_dir: Path) -> None:
    assert weights.check(tiny_dir) == []


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    assert weights.check(tmp_path / "nope") == [
        f"models directory {tmp_path / 'nope'} does not exist"
    ]
    problems = weights.check(tmp_path)
    text = "\n".join(problems)
    assert "no DiT" in text
    assert "vae_model.pt is missing" in text
    assert "vocab.json is missing" in text
    assert "negative_style.npy is missing" in text
    assert "MuQ-MuLan-large lacks config.json" in text  # no style.json: MuQ-MuLan is required


def test_check_names_each_missing_piece(tiny_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_dir, tmp_path)
    (d / weights.VAE_FILE).unlink()
    (d / "dit-full" / "cfm_model.pt").unlink()
    problems = weights.check(d)
    assert len(problems) == 2
    assert any("vae_model.pt is missing" in p for p in problems)
    assert any("dit-full has no DiT weights" in p for p in problems)


def test_check_rejects_truncated_and_wrong_files(tiny_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_dir, tmp_path)
    (d / "dit-base" / "cfm_model.pt").write_bytes(b"not a zip")
    (d / weights.VOCAB_FILE).write_text(json.dumps({"vocab": {"a": 0}}), encoding="utf-8")
    problems = weights.check(d)
    assert any("not a torch zip checkpoint" in p for p in problems)
    assert any("has 1 phones, expected 363" in p for p in problems)


def test_check_counts_safetensors_keys_from_the_header(tiny_dir: Path, tmp_path: Path) -> None:
    from models.diffrhythm.checkpoint import convert_to_safetensors

    d = _copy(tiny_dir, tmp_path)
    pt = d / "dit-base" / "cfm_model.pt"
    convert_to_safetensors(pt, d / "dit-base" / "model.safetensors")
    pt.unlink()
    assert weights.check(d) == []
    # a header claiming one tensor: wrong key count, found without loading any tensor
    header = json.dumps({"x": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}).encode()
    (d / "dit-base" / "model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + b"\0\0"
    )
    assert weights.check(d) == [
        f"{d / 'dit-base' / 'model.safetensors'} has 1 tensors, the base DiT needs 49"
    ]


def test_expected_key_counts_of_the_official_models() -> None:
    params = {"depth": 16, "conv_layers": 4}
    assert weights.expected_dit_keys(params, 2048) == 219
    assert weights.expected_dit_keys(params, 6144) == 223


def test_registry_picks_diffrhythm_when_weights_are_complete(
    tiny_dir: Path, tmp_path: Path
) -> None:
    assert resolve_engine_name("auto", tiny_dir) == "diffrhythm"
    assert resolve_engine_name("auto", tmp_path) == "synth"


def test_weights_check_command(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert weights.main(["--models", str(tiny_dir), "--check"]) == 0
    assert "complete" in capsys.readouterr().out
    assert weights.main(["--models", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "incomplete" in out and "vae_model.pt is missing" in out


def _publish(hub, tiny_dir: Path, *, mulan: bool) -> None:
    """Lay the tiny files out as the real hub repositories hold them."""
    for variant, repo in (
        ("base", "ASLP-lab/DiffRhythm-1_2"),
        ("full", "ASLP-lab/DiffRhythm-1_2-full"),
    ):
        d = tiny_dir / weights.DIT_DIRS[variant]
        hub.add(repo, "config.json", d / "config.json")
        hub.add(repo, "cfm_model.pt", d / "cfm_model.pt")
    hub.add("ASLP-lab/DiffRhythm-vae", "vae_model.pt", tiny_dir / weights.VAE_FILE)
    hub.add(weights.SPACE, "g2p/g2p/vocab.json", tiny_dir / weights.VOCAB_FILE, kind="spaces")
    hub.add(
        weights.SPACE,
        "infer/example/vocal.npy",
        tiny_dir / weights.NEGATIVE_STYLE_FILE,
        kind="spaces",
    )
    if mulan:
        hub.add("OpenMuQ/MuQ-MuLan-large", "config.json", b"{}")
        hub.add("OpenMuQ/MuQ-MuLan-large", "pytorch_model.bin", b"weights")  # .bin only
        hub.add("OpenMuQ/MuQ-large-msd-iter", "config.json", b"{}")
        hub.add("OpenMuQ/MuQ-large-msd-iter", "model.safetensors", b"weights")
        for name in (
            "config.json",
            "model.safetensors",
            "sentencepiece.bpe.model",
            "tokenizer.json",
        ):
            hub.add("FacebookAI/xlm-roberta-base", name, b"{}")


def test_download_from_a_fake_hub_lays_out_a_complete_directory(
    fake_hub,
    tiny_dir: Path,
    tmp_path: Path,
) -> None:
    pytest.importorskip("huggingface_hub")
    _publish(fake_hub, tiny_dir, mulan=False)
    dest = tmp_path / "downloaded"
    weights.download(dest, style=False, endpoint=fake_hub.endpoint)
    (dest / weights.STYLE_CONFIG_FILE).write_text('{"encoder": "hashed-bow-test"}')
    assert weights.check(dest) == []
    assert (dest / "dit-full" / "cfm_model.pt").read_bytes() == (
        tiny_dir / "dit-full" / "cfm_model.pt"
    ).read_bytes()
    assert not (dest / ".download").exists()
    assert any("/spaces/ASLP-lab/DiffRhythm/resolve/" in r for r in fake_hub.requests)
    # a second run finds every required file in place (only the optional LICENSE is asked again)
    fake_hub.requests.clear()
    weights.download(dest, style=False, endpoint=fake_hub.endpoint)
    assert fake_hub.requests and all(r.endswith("/LICENSE") for r in fake_hub.requests)


def test_download_with_style_and_base_only(fake_hub, tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    _publish(fake_hub, tiny_dir, mulan=True)
    dest = tmp_path / "downloaded"
    weights.download(dest, full=False, endpoint=fake_hub.endpoint)
    assert not (dest / "dit-full").exists()
    assert (dest / "mulan" / "MuQ-MuLan-large" / "pytorch_model.bin").read_bytes() == b"weights"
    assert (dest / "mulan" / "xlm-roberta-base" / "sentencepiece.bpe.model").is_file()
    problems = weights.check(dest)
    # every file is in place; only the optional muq package may be absent from this venv
    assert all("'muq' package" in p for p in problems), problems


def test_download_names_a_file_the_hub_lacks(fake_hub, tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    with pytest.raises(
        weights.DownloadError, match=r"ASLP-lab/DiffRhythm-1_2 has none of config.json"
    ):
        weights.download(tmp_path / "d", style=False, endpoint=fake_hub.endpoint)


def test_download_with_an_injected_fetch(tiny_dir: Path, tmp_path: Path) -> None:
    """Without huggingface_hub: any callable with hf_hub_download's keywords works."""
    files = {
        ("ASLP-lab/DiffRhythm-1_2", "config.json"): tiny_dir / "dit-base/config.json",
        ("ASLP-lab/DiffRhythm-1_2", "cfm_model.pt"): tiny_dir / "dit-base/cfm_model.pt",
        ("ASLP-lab/DiffRhythm-vae", "vae_model.pt"): tiny_dir / weights.VAE_FILE,
        (weights.SPACE, "g2p/g2p/vocab.json"): tiny_dir / weights.VOCAB_FILE,
        (weights.SPACE, "src/negative_prompt.npy"): tiny_dir / weights.NEGATIVE_STYLE_FILE,
    }

    def fetch(*, repo_id: str, filename: str, local_dir: str, **_: object) -> str:
        if (repo_id, filename) not in files:
            raise FileNotFoundError(filename)
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(files[repo_id, filename], out)
        return str(out)

    dest = tmp_path / "d"
    weights.download(dest, full=False, style=False, fetch=fetch)
    (dest / weights.STYLE_CONFIG_FILE).write_text('{"encoder": "hashed-bow-test"}')
    assert weights.check(dest) == []


def test_check_does_not_import_torch(tiny_dir: Path) -> None:
    """The registry calls check() in the API process, which must stay free of torch."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from models.diffrhythm.weights import check; "
        f"assert check(Path({str(tiny_dir)!r})) == []; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)
