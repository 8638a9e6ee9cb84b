"""DiffRhythm as a songqueue ``Engine``: ACE-Step-style specs in, tracks out.

The only module that chooses device and dtype. Spec §1 (text2music), §2.1 (repaint) and §2.4
(cover, our SDEdit-style design). Mapping of the ACE fields:

* ``duration`` picks the DiT: <= 95.11 s -> base (always 2048 frames, trimmed), <= 285.33 s ->
  full (``int(ceil(sec) * 21.533)`` frames, at least 96 s); longer is an input error.
* ``inference_steps`` -> Euler steps (default 31); ``guidance_scale`` -> upstream's CFG strength
  (default 4.0; ``pred + s * (pred - null)`` equals classic guidance ``1 + s``).
* style: ``reference`` audio, else the ``caption`` (with bpm and key appended), else for a cover
  the source itself. ``seeds`` -> one noise generator per track.
* repaint: the source latents are the in-context condition, ``repaint_start..end`` is generated,
  every other frame is copied bit-exactly from the encoded source. The output has the source's
  length (or runs to ``repaint_end`` when that is later: the padding is generated).
* cover: start at flow time ``t0 = t[int(steps * strength * 0.7)]`` from the source latents.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.diffrhythm import weights
from models.diffrhythm.checkpoint import load_model
from models.diffrhythm.dit import BASE_MAX_FRAMES, FULL_MAX_FRAMES, DiffRhythmModel
from models.diffrhythm.lyrics import (
    G2P,
    EspeakG2P,
    LyricsError,
    place_lyrics,
    seconds_to_frame,
    timed_lines,
)
from models.diffrhythm.sampler import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    Conditioning,
    cover_start_index,
    initial_noise,
    sample,
)
from models.diffrhythm.style import (
    StyleEncoder,
    StyleError,
    load_negative_style,
    load_style_encoder,
)
from models.diffrhythm.vae import (
    HOP,
    SAMPLE_RATE,
    LatentCodec,
    TorchScriptVAE,
    peak_normalise,
    posterior_sample,
    to_model_audio,
)
from models.engine import (
    Audio,
    EngineInputError,
    GenerationSpec,
    StepCallback,
    Track,
    no_progress,
)

log = logging.getLogger(__name__)

MODEL_NAME = "diffrhythm-v1.2"
FRAME_RATE = SAMPLE_RATE / HOP  # 21.533 latent frames per second
BASE_MAX_SECONDS = BASE_MAX_FRAMES / FRAME_RATE  # 95.11
FULL_MAX_SECONDS = FULL_MAX_FRAMES / FRAME_RATE  # 285.33
FULL_MIN_SECONDS = 96  # the full model was run for 96..285 s upstream
COVER_MAX_START = 0.7  # t0 at strength 1; below 1 so the output is not the source (spec §2.4)
MAX_STEPS = 200
ENGLISH_OR_UNSET = ("en", "", "unknown", "auto")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass(frozen=True)
class Plan:
    """How one spec maps onto a DiT: which one, how many frames, which part is kept."""

    variant: str  # "base" | "full"
    max_frames: int
    end_frame: int  # frames generated
    out_frames: int  # frames decoded
    seconds: float  # output length
    max_secs: float  # lyric lines at or after this time are dropped
    song_duration: float  # end_frame / max_frames, the full model's duration input


class DiffRhythmEngine:
    """Keeps the DiTs, the VAE and the style encoder resident; runs one job at a time."""

    name = "diffrhythm"
    model_name = MODEL_NAME
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        dits: dict[str, DiffRhythmModel],
        vae: LatentCodec,
        style: StyleEncoder,
        negative_style: torch.Tensor,
        g2p: G2P,
        *,
        device: torch.device,
        dtype: torch.dtype,
        sway_coef: float | None = None,
        batched_cfg: bool = True,
    ) -> None:
        if not dits:
            raise ValueError("at least one DiT (base or full) is needed")
        self.dits = dits
        self.vae = vae
        self.style = style
        self.negative_style = negative_style
        self.g2p = g2p
        self.device = device
        self.dtype = dtype
        self.sway_coef = sway_coef
        self.batched_cfg = batched_cfg
        self._lock = threading.Lock()  # one job per GPU

    @classmethod
    def from_directory(
        cls,
        models_dir: Path,
        device: str | None = None,
        *,
        dtype: str | None = None,
        sway_coef: float | None = None,
    ) -> DiffRhythmEngine:
        """Load everything from a models directory laid out as ``weights.check`` expects.

        ``device`` defaults to CUDA when available; ``dtype`` (fp16, bf16, fp32) defaults to fp16
        on CUDA (as upstream) and fp32 on CPU. ``sway_coef`` (e.g. -1.0) turns on sway sampling,
        which upstream leaves off.
        """
        models_dir = Path(models_dir)
        missing = weights.check(models_dir)
        if missing:
            raise FileNotFoundError("DiffRhythm weights incomplete: " + "; ".join(missing))
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            torch_dtype = torch.float16 if dev.type == "cuda" else torch.float32
        elif dtype in DTYPES:
            torch_dtype = DTYPES[dtype]
        else:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
        dits = {}
        for variant, sub in weights.DIT_DIRS.items():
            if (models_dir / sub).is_dir():
                dits[variant] = load_model(
                    models_dir / sub,
                    max_frames=weights.DIT_MAX_FRAMES[variant],
                    device=dev,
                    dtype=torch_dtype,
                )
        vae = TorchScriptVAE(models_dir / weights.VAE_FILE, dev)
        style = load_style_encoder(models_dir, dev)
        negative = load_negative_style(models_dir / weights.NEGATIVE_STYLE_FILE)
        g2p = EspeakG2P.from_file(models_dir / weights.VOCAB_FILE)
        return cls(
            dits, vae, style, negative, g2p, device=dev, dtype=torch_dtype, sway_coef=sway_coef
        )

    # ------------------------------------------------------------------ planning

    def plan(self, seconds: float) -> Plan:
        """Choose the DiT and frame counts for an output of ``seconds``."""
        if not math.isfinite(seconds) or seconds <= 0:
            raise EngineInputError(f"duration must be positive, got {seconds}")
        if seconds <= BASE_MAX_SECONDS and "base" in self.dits:
            out = min(math.ceil(seconds * FRAME_RATE), BASE_MAX_FRAMES)
            return Plan(
                "base", BASE_MAX_FRAMES, BASE_MAX_FRAMES, out, seconds, BASE_MAX_SECONDS, 1.0
            )
        if seconds <= FULL_MAX_SECONDS and "full" in self.dits:
            length = max(math.ceil(seconds), FULL_MIN_SECONDS)
            end = min(seconds_to_frame(length), FULL_MAX_FRAMES)
            out = min(math.ceil(seconds * FRAME_RATE), end)
            return Plan(
                "full", FULL_MAX_FRAMES, end, out, seconds, float(length), end / FULL_MAX_FRAMES
            )
        limit = FULL_MAX_SECONDS if "full" in self.dits else BASE_MAX_SECONDS
        raise EngineInputError(
            f"duration {seconds:.1f} s is longer than this DiffRhythm installation allows "
            f"({limit:.1f} s)"
        )

    @staticmethod
    def _steps(spec: GenerationSpec) -> int:
        steps = spec.inference_steps or DEFAULT_STEPS
        if not 1 <= steps <= MAX_STEPS:
            raise EngineInputError(f"inference_steps must be in 1..{MAX_STEPS}, got {steps}")
        return steps

    def _start_index(self, spec: GenerationSpec, steps: int) -> int:
        if spec.task != "cover":
            return 0
        try:
            return cover_start_index(steps, spec.cover_strength, COVER_MAX_START)
        except ValueError as exc:
            raise EngineInputError(str(exc)) from exc

    def total_steps(self, spec: GenerationSpec) -> int:
        """Sampler steps (fewer for a cover) plus one for decoding."""
        steps = self._steps(spec)
        return steps - self._start_index(spec, steps) + 1

    # ------------------------------------------------------------------ tasks

    def text2music(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        return self._run(spec, on_step)

    def cover(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        if spec.source is None:
            raise EngineInputError("cover needs a source song (src_audio)")
        return self._run(spec, on_step)

    def repaint(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        if spec.source is None:
            raise EngineInputError("repaint needs a source song (src_audio)")
        return self._run(spec, on_step)

    # ------------------------------------------------------------------ internals

    def _output_seconds(self, spec: GenerationSpec) -> float:
        if spec.task == "repaint" and spec.source is not None:
            end = spec.repaint_end if spec.repaint_end is not None else 0.0
            return max(spec.source.duration, end)
        return spec.duration

    def _style_vector(self, spec: GenerationSpec) -> torch.Tensor:
        try:
            if spec.reference is not None:
                return self.style.embed_audio(spec.reference)
            caption = spec.caption.strip()
            extras = [f"{spec.bpm} bpm" if spec.bpm else "", spec.key_scale.strip()]
            prompt = ", ".join(p for p in [caption, *extras] if p)
            if not prompt and spec.task == "cover" and spec.source is not None:
                return self.style.embed_audio(spec.source)
            return self.style.embed_text(prompt)
        except StyleError as exc:
            raise EngineInputError(str(exc)) from exc

    def _lyric_tokens(self, spec: GenerationSpec, plan: Plan) -> torch.Tensor:
        if spec.lyrics.strip() and spec.vocal_language not in ENGLISH_OR_UNSET:
            log.warning(
                "vocal_language %r: DiffRhythm's g2p here is English only", spec.vocal_language
            )
        try:
            lines = timed_lines(spec.lyrics, plan.seconds, spec.bpm)
            placed = place_lyrics(
                lines,
                self.g2p,
                end_frame=plan.end_frame,
                max_secs=plan.max_secs,
                drop_last=plan.variant == "base",
            )
        except LyricsError as exc:
            raise EngineInputError(f"lyrics: {exc}") from exc
        return placed.tokens

    def _source_latents(
        self, source: Audio, plan: Plan, *, sample_seed: int | None
    ) -> torch.Tensor:
        """Encoded source [1, end_frame, 64], padded or cropped; a posterior sample if seeded."""
        audio = to_model_audio(source)
        if audio.shape[-1] < HOP:
            raise EngineInputError(f"source audio is too short ({source.duration:.3f} s)")
        mean, scale = self.vae.encode(audio)
        if sample_seed is None:
            z = mean
        else:
            z = posterior_sample(mean, scale, torch.Generator().manual_seed(sample_seed))
        z = z.transpose(1, 2)[:, : plan.end_frame]  # [1, T, 64]
        pad = plan.end_frame - z.shape[1]
        if pad > 0:
            z = torch.nn.functional.pad(z, (0, 0, 0, pad))
        return z.to(self.device, self.dtype)

    def _repaint_mask(self, spec: GenerationSpec, plan: Plan, source_frames: int) -> torch.Tensor:
        start = spec.repaint_start
        end = spec.repaint_end
        if start < 0:
            start = 0.0
        if end is not None and end >= 0 and end <= start:
            raise EngineInputError(f"repaint_end ({end}) must be after repaint_start ({start})")
        first = seconds_to_frame(start)
        last = (
            plan.end_frame if end is None or end < 0 else min(seconds_to_frame(end), plan.end_frame)
        )
        mask = torch.zeros(plan.end_frame, dtype=torch.bool)
        mask[first:last] = True
        mask[source_frames:] = True  # padding past the source is generated, never copied
        return mask

    def _run(self, spec: GenerationSpec, on_step: StepCallback) -> list[Track]:
        with self._lock:  # one job at a time on this device
            latents, plan, total = self.generate_latents(spec, on_step)
            tracks = self._decode(latents, plan, spec)
            on_step(total, total)
        return tracks

    def generate_latents(
        self, spec: GenerationSpec, on_step: StepCallback = no_progress
    ) -> tuple[torch.Tensor, Plan, int]:
        """Sample the latents [B, end_frame, 64] of a spec, before decoding (tests, tools).

        Returns the latents, the plan and the job's total step count (sampling + decode).
        """
        if not spec.seeds:
            raise EngineInputError("at least one seed (batch item) is needed")
        steps = self._steps(spec)
        start_index = self._start_index(spec, steps)
        cfg_strength = DEFAULT_CFG if spec.guidance_scale is None else float(spec.guidance_scale)
        plan = self.plan(self._output_seconds(spec))
        model = self.dits[plan.variant]
        total = steps - start_index + 1
        tokens = self._lyric_tokens(spec, plan)
        style = self._style_vector(spec)
        mask = torch.ones(plan.end_frame, dtype=torch.bool)
        cond = torch.zeros(
            1, plan.end_frame, model.cfg.mel_dim, device=self.device, dtype=self.dtype
        )
        source = None
        if spec.task == "repaint" and spec.source is not None:
            cond = self._source_latents(spec.source, plan, sample_seed=spec.seeds[0])
            source_frames = min(math.ceil(spec.source.duration * FRAME_RATE), plan.end_frame)
            mask = self._repaint_mask(spec, plan, source_frames)
            # in-context condition: the source outside the span, zeros where generating
            cond = torch.where(mask[None, :, None].to(self.device), 0.0, cond).to(self.dtype)
        elif spec.task == "cover" and spec.source is not None:
            source = self._source_latents(spec.source, plan, sample_seed=None)
            source = source.expand(spec.batch_size, -1, -1)
        latents = self._sample(
            model, plan, tokens, style, cond, mask, source, spec, steps, start_index,
            cfg_strength, on_step, total,
        )  # fmt: skip
        return latents, plan, total

    @torch.inference_mode()
    def _sample(
        self,
        model: DiffRhythmModel,
        plan: Plan,
        tokens: torch.Tensor,
        style: torch.Tensor,
        cond: torch.Tensor,
        mask: torch.Tensor,
        source: torch.Tensor | None,
        spec: GenerationSpec,
        steps: int,
        start_index: int,
        cfg_strength: float,
        on_step: StepCallback,
        total: int,
    ) -> torch.Tensor:
        batch = spec.batch_size
        dev, dt = self.device, self.dtype
        text = tokens.to(dev)[None]  # [1, T]
        text_emb = model.embed_text(text).expand(batch, -1, -1)
        null_text_emb = model.embed_text(text, drop_text=True).expand(batch, -1, -1)
        duration = None
        if model.cfg.duration_embed:
            duration = torch.full((batch,), plan.song_duration, device=dev, dtype=dt)
        c = Conditioning(
            cond=cond.expand(batch, -1, -1),
            text_emb=text_emb,
            null_text_emb=null_text_emb,
            style=style.to(dev, dt).expand(batch, -1),
            negative_style=self.negative_style.to(dev, dt).expand(batch, -1),
            start_time=torch.zeros(batch, device=dev, dtype=dt),
            duration=duration,
        )
        noise = initial_noise(spec.seeds, plan.end_frame, model.cfg.mel_dim, dev, dt)
        return sample(
            model,
            noise,
            c,
            mask.to(dev)[None].expand(batch, -1),
            steps=steps,
            cfg_strength=cfg_strength,
            sway_coef=self.sway_coef,
            start_index=start_index,
            source=source,
            batched_cfg=self.batched_cfg,
            on_step=on_step,
            total=total,
        )

    def _decode(self, latents: torch.Tensor, plan: Plan, spec: GenerationSpec) -> list[Track]:
        samples = round(plan.seconds * SAMPLE_RATE)
        tracks = []
        for i, seed in enumerate(spec.seeds):
            z = latents[i : i + 1, : plan.out_frames].transpose(1, 2)  # [1, 64, t]
            audio = self.vae.decode(z)[0, :, :samples]  # [2, n]
            audio = peak_normalise(audio.float()).cpu().numpy().astype(np.float32)
            tracks.append(Track(Audio(audio, SAMPLE_RATE), seed, self._metas(spec, plan)))
        return tracks

    @staticmethod
    def _metas(spec: GenerationSpec, plan: Plan) -> dict[str, object]:
        return {
            "bpm": spec.bpm if spec.bpm else "N/A",
            "keyscale": spec.key_scale or "N/A",
            "timesignature": spec.time_signature or "N/A",
            "duration": round(plan.seconds, 3),
            "genres": spec.caption,
            "model": f"{MODEL_NAME}-{plan.variant}",
        }
