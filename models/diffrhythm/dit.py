"""The DiffRhythm v1.2 DiT in plain PyTorch: modules only, no file I/O.

Mirrors the network of ASLP-lab/DiffRhythm ``model/dit.py`` and ``model/modules.py`` as
described in the project notes ``spec/diffrhythm-model.md`` §1.8 and §3.2, written fresh. The
module tree is laid out so that ``DiffRhythmModel.state_dict()`` has exactly the official key
names and shapes (219 keys base, 223 full). Differences from upstream, on purpose:

* The Llama blocks are our own (RMSNorm, RoPE, SDPA with ``is_causal=False``, SwiGLU), so no
  ``transformers`` version can silently change them; attention is bidirectional as upstream's
  all-ones mask makes it.
* ``heads`` is a real config field (upstream takes 32 from the LlamaConfig default).
* The RoPE and text position tables are computed on the fly rather than kept as non-persistent
  buffers: models built on the meta device need no buffer re-initialisation after loading.
* The lyric embedding is split out (``embed_text``) so the sampler can compute it once per job
  instead of at every step: it depends on neither ``x`` nor the flow time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

BASE_MAX_FRAMES = 2048  # 95.11 s at 21.533 frames/s
FULL_MAX_FRAMES = 6144  # 285.33 s


@dataclass
class DiTConfig:
    """Hyper-parameters; defaults are the official 1.1 B model (``config/diffrhythm-1b.json``)."""

    dim: int = 2048
    depth: int = 16
    heads: int = 32  # upstream: LlamaConfig default, not the DiT's own argument
    ff_mult: int = 4  # Llama intermediate size = dim * ff_mult = 8192
    text_dim: int = 512  # must equal cond_dim (text fusion adds into the conditioning width)
    cond_dim: int = 512  # width of the time embeddings and of AdaLN-final's input
    style_dim: int = 512  # MuQ-MuLan embedding width
    conv_layers: int = 4  # ConvNeXt-V2 blocks on the lyric path
    mel_dim: int = 64  # VAE latent channels
    text_num_embeds: int = 363  # phone vocabulary; id 0 is the filler, so the table has +1 rows
    max_frames: int = BASE_MAX_FRAMES
    duration_embed: bool | None = None  # None: derived, True exactly for the full model (6144)
    time_freq_dim: int = 256  # sinusoid width of each timestep embedding
    conv_pos_kernel: int = 31
    conv_pos_groups: int = 16
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    fp16_tables: bool = False  # round RoPE/text tables to fp16 as upstream's model.half() does
    head_dim: int = field(init=False)
    ff_dim: int = field(init=False)

    def __post_init__(self) -> None:
        assert self.dim % self.heads == 0, f"dim {self.dim} not divisible by heads {self.heads}"
        assert self.text_dim == self.cond_dim, (
            f"text_dim {self.text_dim} must equal cond_dim {self.cond_dim} (text fusion)"
        )
        assert self.dim % self.conv_pos_groups == 0, (
            f"dim {self.dim} not divisible by conv_pos_groups {self.conv_pos_groups}"
        )
        if self.duration_embed is None:
            self.duration_embed = self.max_frames == FULL_MAX_FRAMES
        self.head_dim = self.dim // self.heads
        self.ff_dim = self.dim * self.ff_mult

    @classmethod
    def from_name(cls, name: str, **overrides: object) -> DiTConfig:
        """A named preset (``base``, ``full``, ``tiny``, ``tiny-full``) with optional overrides."""
        if name not in PRESETS:
            raise KeyError(f"unknown DiT preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS: dict[str, dict[str, object]] = {
    "base": {"max_frames": BASE_MAX_FRAMES},
    "full": {"max_frames": FULL_MAX_FRAMES},
    # CPU tests: same module tree, small widths. Style stays 512 (the MuLan width).
    "tiny": {
        "dim": 32,
        "depth": 2,
        "heads": 2,
        "ff_mult": 2,
        "text_dim": 16,
        "cond_dim": 16,
        "conv_layers": 1,
        "conv_pos_groups": 2,
        "max_frames": BASE_MAX_FRAMES,
    },
    "tiny-full": {
        "dim": 32,
        "depth": 2,
        "heads": 2,
        "ff_mult": 2,
        "text_dim": 16,
        "cond_dim": 16,
        "conv_layers": 1,
        "conv_pos_groups": 2,
        "max_frames": FULL_MAX_FRAMES,
    },
}


# ---------------------------------------------------------------------------- conditioning


def sinusoid(x: torch.Tensor, width: int, scale: float = 1000.0) -> torch.Tensor:
    """Timestep sinusoid, sin half first. x: [B] -> [B, width] (fp32)."""
    half = width // 2
    freqs = torch.exp(
        torch.arange(half, device=x.device, dtype=torch.float32) * -(math.log(10000.0) / (half - 1))
    )
    args = scale * x.float()[:, None] * freqs[None, :]  # [B, half]
    return torch.cat((args.sin(), args.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    """Scalar in [0, 1] -> conditioning vector; ``time_mlp.{0,2}`` as upstream's Sequential."""

    def __init__(self, freq_dim: int, out_dim: int) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # t: [B] -> [B, out_dim]
        emb = sinusoid(t, self.freq_dim).to(self.time_mlp[0].weight.dtype)
        return self.time_mlp(emb)


# ---------------------------------------------------------------------------- lyric path


def position_table(length: int, dim: int, device: torch.device, fp16: bool) -> torch.Tensor:
    """Absolute sinusoid table (cos ‖ sin), [length, dim] in fp32 (optionally fp16-rounded)."""
    inv = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim))
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv)
    table = torch.cat((angles.cos(), angles.sin()), dim=-1)
    return table.half().float() if fp16 else table


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) over the time axis."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, T, C]
        gx = torch.norm(x, p=2, dim=1, keepdim=True)  # [B, 1, C]
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise conv k=7 -> LayerNorm -> Linear x2 -> GELU -> GRN -> Linear, residual."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden)
        self.pwconv2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, T, C]
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)  # [B, T, C]
        h = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(h)))))
        return x + h


class TextEmbedding(nn.Module):
    """Phone ids (0 = filler) -> [B, T, text_dim]: embedding + position table + ConvNeXt."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_embed = nn.Embedding(cfg.text_num_embeds + 1, cfg.text_dim)
        self.text_blocks = nn.Sequential(
            *[ConvNeXtV2Block(cfg.text_dim, cfg.text_dim * 2) for _ in range(cfg.conv_layers)]
        )

    def forward(self, text: torch.Tensor, drop_text: bool = False) -> torch.Tensor:
        # text: [B, T] long
        if drop_text:
            text = torch.zeros_like(text)
        length = text.shape[1]
        assert length <= self.cfg.max_frames, f"{length} frames > max_frames {self.cfg.max_frames}"
        h = self.text_embed(text)  # [B, T, text_dim]
        pos = position_table(length, self.cfg.text_dim, text.device, self.cfg.fp16_tables)
        h = h + pos.to(h.dtype)[None]
        return self.text_blocks(h)


# ---------------------------------------------------------------------------- input


class ConvPositionEmbedding(nn.Module):
    """Two grouped convolutions with Mish, added as a residual by the caller."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2),
            nn.Mish(),
            nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, T, D]
        return self.conv1d(x.transpose(1, 2)).transpose(1, 2)


class InputEmbedding(nn.Module):
    """[x ‖ cond ‖ text ‖ style ‖ c] per frame -> dim, plus the conv position embedding."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        width = 2 * cfg.mel_dim + cfg.text_dim + cfg.style_dim + cfg.cond_dim
        self.proj = nn.Linear(width, cfg.dim)
        self.conv_pos_embed = ConvPositionEmbedding(
            cfg.dim, cfg.conv_pos_kernel, cfg.conv_pos_groups
        )

    def forward(
        self,
        x: torch.Tensor,  # [B, T, mel]
        cond: torch.Tensor,  # [B, T, mel]
        text: torch.Tensor,  # [B, T, text_dim]
        style: torch.Tensor,  # [B, style_dim]
        c: torch.Tensor,  # [B, cond_dim]
    ) -> torch.Tensor:
        length = x.shape[1]
        style = style[:, None, :].expand(-1, length, -1)
        c = c[:, None, :].expand(-1, length, -1)
        h = self.proj(torch.cat((x, cond, text, style, c), dim=-1))  # [B, T, dim]
        return h + self.conv_pos_embed(h)


# ---------------------------------------------------------------------------- Llama block


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32, as Llama does."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_tables(
    length: int, head_dim: int, theta: float, device: torch.device, fp16: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin for rotate-half RoPE at positions 0..T-1, each [T, head_dim] in fp32."""
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    )
    if fp16:  # upstream's model.half() rounds the inv_freq buffer
        inv_freq = inv_freq.half().float()
    freqs = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, head_dim]
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    """Bidirectional multi-head self-attention with RoPE; no biases."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.o_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        bsz, seqlen, dim = x.shape
        q = self.q_proj(x).view(bsz, seqlen, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, seqlen, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, seqlen, self.heads, self.head_dim).transpose(1, 2)
        # q, k, v: [B, H, T, hd]; cos, sin: [T, hd]
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v, is_causal=False)  # [B, H, T, hd]
        return self.o_proj(out.transpose(1, 2).reshape(bsz, seqlen, dim))


class MLP(nn.Module):
    """SwiGLU feed-forward."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    """Pre-norm attention + SwiGLU, key names as ``transformers.LlamaDecoderLayer``."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg.dim, cfg.ff_dim)
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


# ---------------------------------------------------------------------------- head and DiT


class AdaLayerNormFinal(nn.Module):
    """LayerNorm without affine, modulated by (scale, shift) from the conditioning vector."""

    def __init__(self, dim: int, cond_dim: int, eps: float) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(cond_dim, dim * 2)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # x: [B, T, dim], c: [B, cond_dim]
        scale, shift = self.linear(self.silu(c)).chunk(2, dim=-1)  # each [B, dim]
        return self.norm(x) * (1 + scale[:, None, :]) + shift[:, None, :]


class DiT(nn.Module):
    """Predicts the flow velocity for latent frames given lyrics, style and flow time."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.time_embed = TimestepEmbedding(cfg.time_freq_dim, cfg.cond_dim)
        self.start_time_embed = TimestepEmbedding(cfg.time_freq_dim, cfg.cond_dim)
        if cfg.duration_embed:
            self.duration_time_embed = TimestepEmbedding(cfg.time_freq_dim, cfg.cond_dim)
        self.text_embed = TextEmbedding(cfg)
        self.input_embed = InputEmbedding(cfg)
        self.transformer_blocks = nn.ModuleList(LlamaBlock(cfg) for _ in range(cfg.depth))
        self.text_fusion_linears = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.text_dim, cfg.dim), nn.SiLU())
            for _ in range(cfg.depth // 2)
        )
        self.norm_out = AdaLayerNormFinal(cfg.dim, cfg.cond_dim, cfg.norm_eps)
        self.proj_out = nn.Linear(cfg.dim, cfg.mel_dim)

    def embed_text(self, text: torch.Tensor, drop_text: bool = False) -> torch.Tensor:
        """Phone ids [B, T] -> lyric features [B, T, text_dim]; constant over sampling steps."""
        return self.text_embed(text, drop_text)

    def forward(
        self,
        x: torch.Tensor,  # [B, T, mel] noisy latents
        cond: torch.Tensor,  # [B, T, mel] in-context latents (zeros where generating)
        text_emb: torch.Tensor,  # [B, T, text_dim] from embed_text
        time: torch.Tensor,  # [B] flow time, 0 = noise, 1 = data
        style: torch.Tensor,  # [B, style_dim]
        start_time: torch.Tensor,  # [B]
        duration: torch.Tensor | None = None,  # [B] song_duration (full model only)
    ) -> torch.Tensor:
        _bsz, seqlen, _ = x.shape
        assert seqlen <= self.cfg.max_frames, f"{seqlen} frames > max_frames {self.cfg.max_frames}"
        c = self.time_embed(time) + self.start_time_embed(start_time)  # [B, cond_dim]
        if self.cfg.duration_embed:
            assert duration is not None, "the full model needs the song duration"
            c = c + self.duration_time_embed(duration)
        h = self.input_embed(x, cond, text_emb, style.to(x.dtype), c)  # [B, T, dim]
        cos, sin = rope_tables(
            seqlen, self.cfg.head_dim, self.cfg.rope_theta, x.device, self.cfg.fp16_tables
        )
        for i, block in enumerate(self.transformer_blocks):
            h = block(h, cos, sin)
            if i < len(self.text_fusion_linears):
                h = h + self.text_fusion_linears[i](text_emb)
        return self.proj_out(self.norm_out(h, c))  # [B, T, mel]


class DiffRhythmModel(nn.Module):
    """Holds the DiT as ``transformer`` so keys match upstream's ``CFM`` wrapper."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.transformer = DiT(cfg)

    def embed_text(self, text: torch.Tensor, drop_text: bool = False) -> torch.Tensor:
        return self.transformer.embed_text(text, drop_text)

    def forward(self, *args: torch.Tensor | None, **kwargs: torch.Tensor | None) -> torch.Tensor:
        return self.transformer(*args, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())
