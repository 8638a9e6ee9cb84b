"""The DiT's module tree against the official key manifest, and its behaviour on tiny weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from models.diffrhythm.checkpoint import build_meta, manifest
from models.diffrhythm.dit import DiffRhythmModel, DiTConfig, count_parameters

FIXTURES = Path(__file__).parent / "fixtures"

# spec §3.2, transcribed: key template -> shape (templates expand {i} 0-15, {j} 0-3, {k} 0-7)
SPEC_TEMPLATES: dict[str, tuple[int, ...]] = {
    "time_embed.time_mlp.0.weight": (512, 256),
    "time_embed.time_mlp.0.bias": (512,),
    "time_embed.time_mlp.2.weight": (512, 512),
    "time_embed.time_mlp.2.bias": (512,),
    "text_embed.text_embed.weight": (364, 512),
    "text_embed.text_blocks.{j}.dwconv.weight": (512, 1, 7),
    "text_embed.text_blocks.{j}.dwconv.bias": (512,),
    "text_embed.text_blocks.{j}.norm.weight": (512,),
    "text_embed.text_blocks.{j}.norm.bias": (512,),
    "text_embed.text_blocks.{j}.pwconv1.weight": (1024, 512),
    "text_embed.text_blocks.{j}.pwconv1.bias": (1024,),
    "text_embed.text_blocks.{j}.grn.gamma": (1, 1, 1024),
    "text_embed.text_blocks.{j}.grn.beta": (1, 1, 1024),
    "text_embed.text_blocks.{j}.pwconv2.weight": (512, 1024),
    "text_embed.text_blocks.{j}.pwconv2.bias": (512,),
    "input_embed.proj.weight": (2048, 1664),
    "input_embed.proj.bias": (2048,),
    "input_embed.conv_pos_embed.conv1d.0.weight": (2048, 128, 31),
    "input_embed.conv_pos_embed.conv1d.0.bias": (2048,),
    "input_embed.conv_pos_embed.conv1d.2.weight": (2048, 128, 31),
    "input_embed.conv_pos_embed.conv1d.2.bias": (2048,),
    "transformer_blocks.{i}.self_attn.q_proj.weight": (2048, 2048),
    "transformer_blocks.{i}.self_attn.k_proj.weight": (2048, 2048),
    "transformer_blocks.{i}.self_attn.v_proj.weight": (2048, 2048),
    "transformer_blocks.{i}.self_attn.o_proj.weight": (2048, 2048),
    "transformer_blocks.{i}.mlp.gate_proj.weight": (8192, 2048),
    "transformer_blocks.{i}.mlp.up_proj.weight": (8192, 2048),
    "transformer_blocks.{i}.mlp.down_proj.weight": (2048, 8192),
    "transformer_blocks.{i}.input_layernorm.weight": (2048,),
    "transformer_blocks.{i}.post_attention_layernorm.weight": (2048,),
    "text_fusion_linears.{k}.0.weight": (2048, 512),
    "text_fusion_linears.{k}.0.bias": (2048,),
    "norm_out.linear.weight": (4096, 512),
    "norm_out.linear.bias": (4096,),
    "proj_out.weight": (64, 2048),
    "proj_out.bias": (64,),
}


def _expand_spec(full: bool) -> dict[str, list[int]]:
    templates = dict(SPEC_TEMPLATES)
    for name in ("start_time_embed", *(["duration_time_embed"] if full else [])):
        for key, shape in SPEC_TEMPLATES.items():
            if key.startswith("time_embed."):
                templates[key.replace("time_embed", name, 1)] = shape
    out: dict[str, list[int]] = {}
    for key, shape in templates.items():
        match = re.search(r"\{([ijk])\}", key)
        count = {"i": 16, "j": 4, "k": 8}[match.group(1)] if match else 1
        for n in range(count):
            name = re.sub(r"\{[ijk]\}", str(n), key)
            out[f"transformer.{name}"] = list(shape)
    return out


@pytest.mark.parametrize(
    ("variant", "keys", "params"), [("base", 219, 1_109_315_648), ("full", 223, 1_109_709_888)]
)
def test_manifest_fixture_matches_the_spec_and_the_model(
    variant: str, keys: int, params: int
) -> None:
    doc = json.loads((FIXTURES / f"{variant}_manifest.json").read_text(encoding="utf-8"))
    assert doc["num_keys"] == len(doc["keys"]) == keys
    assert doc["num_parameters"] == params
    # the fixture is the spec's table, transcribed independently of our code ...
    assert doc["keys"] == _expand_spec(full=variant == "full")
    # ... and the model built on the meta device has exactly those keys and shapes
    cfg = DiTConfig.from_name(variant)
    assert manifest(cfg) == doc["keys"]
    assert count_parameters(build_meta(cfg)) == params


def test_heads_come_from_the_config() -> None:
    cfg = DiTConfig.from_name("base", heads=16)
    assert cfg.head_dim == 128
    assert manifest(cfg) == manifest(DiTConfig.from_name("base"))  # same weights, other split
    torch.manual_seed(0)
    a = DiffRhythmModel(DiTConfig.from_name("tiny", heads=1)).eval()
    b = DiffRhythmModel(DiTConfig.from_name("tiny", heads=4)).eval()
    b.load_state_dict(a.state_dict())
    args = _inputs(a.cfg, batch=1, frames=16)
    with torch.no_grad():
        assert not torch.allclose(a(*args), b(*args))


def test_duration_embedding_only_in_the_full_model() -> None:
    assert not DiTConfig.from_name("base").duration_embed
    assert DiTConfig.from_name("full").duration_embed
    model = DiffRhythmModel(DiTConfig.from_name("tiny-full")).eval()
    x, cond, text, time, style, start, _ = _inputs(model.cfg, batch=1, frames=8)
    with torch.no_grad(), pytest.raises(AssertionError, match="song duration"):
        model(x, cond, text, time, style, start, None)
    with torch.no_grad():
        a = model(x, cond, text, time, style, start, torch.tensor([0.3]))
        b = model(x, cond, text, time, style, start, torch.tensor([0.9]))
    assert not torch.allclose(a, b)


def _inputs(cfg: DiTConfig, batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    text = torch.randn(batch, frames, cfg.text_dim, generator=gen)  # lyric features
    return (
        torch.randn(batch, frames, cfg.mel_dim, generator=gen),
        torch.randn(batch, frames, cfg.mel_dim, generator=gen),
        text,
        torch.rand(batch, generator=gen),
        torch.randn(batch, cfg.style_dim, generator=gen),
        torch.zeros(batch),
        torch.full((batch,), 0.5),
    )


def test_attention_is_bidirectional() -> None:
    torch.manual_seed(0)
    model = DiffRhythmModel(DiTConfig.from_name("tiny")).eval()
    x, cond, text, time, style, start, _ = _inputs(model.cfg, batch=1, frames=64)
    x2 = x.clone()
    x2[:, -1] += 1.0  # change only the last frame
    with torch.no_grad():
        a = model(x, cond, text, time, style, start)
        b = model(x2, cond, text, time, style, start)
    # frame 0 is far outside the conv receptive fields: only attention can carry the change back
    assert not torch.allclose(a[:, 0], b[:, 0])


def test_batch_items_are_independent() -> None:
    """The transformers-5 hazard (spec §4): item 1 of a batch must equal item 1 run alone."""
    torch.manual_seed(0)
    model = DiffRhythmModel(DiTConfig.from_name("tiny")).eval()
    args = _inputs(model.cfg, batch=3, frames=32)[:6]
    with torch.no_grad():
        batched = model(*args)
        alone = model(*(a[1:2] for a in args))
    torch.testing.assert_close(batched[1:2], alone, rtol=1e-5, atol=1e-5)


def test_text_embedding_drop_and_filler() -> None:
    torch.manual_seed(0)
    model = DiffRhythmModel(DiTConfig.from_name("tiny")).eval()
    tokens = torch.tensor([[5, 6, 7, 0, 0, 0]])
    with torch.no_grad():
        dropped = model.embed_text(tokens, drop_text=True)
        zeros = model.embed_text(torch.zeros_like(tokens))
        kept = model.embed_text(tokens)
    torch.testing.assert_close(dropped, zeros)
    assert kept.shape == (1, 6, model.cfg.text_dim)
    assert not torch.allclose(kept, zeros)


def test_too_many_frames_is_refused() -> None:
    model = DiffRhythmModel(DiTConfig.from_name("tiny", max_frames=8)).eval()
    with pytest.raises(AssertionError, match="9 frames > max_frames 8"):
        model.embed_text(torch.zeros(1, 9, dtype=torch.long))


def test_llama_block_matches_transformers_bidirectional_layer() -> None:
    """Fixture: a transformers 4.57 ``LlamaDecoderLayer`` called as upstream calls it (sdpa with an
    all-zero 4-D mask, hence bidirectional), its weights, input and output."""
    from safetensors.torch import load_file

    from models.diffrhythm.dit import LlamaBlock, rope_tables

    data = load_file(str(FIXTURES / "llama_block_parity.safetensors"))
    block = LlamaBlock(DiTConfig.from_name("tiny", dim=64, heads=4, ff_mult=2)).eval()
    block.load_state_dict({k.removeprefix("block."): v for k, v in data.items() if "." in k})
    x = data["input"]
    cos, sin = rope_tables(x.shape[1], 16, 10000.0, x.device, fp16=False)
    with torch.no_grad():
        out = block(x, cos, sin)
    torch.testing.assert_close(out, data["output"], rtol=1e-5, atol=1e-5)
