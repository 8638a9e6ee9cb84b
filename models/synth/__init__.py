"""The embedded synth engine: numpy-only music from captions, lyrics tags and a seed."""

from models.synth.engine import SynthEngine

__all__ = ["SynthEngine"]
