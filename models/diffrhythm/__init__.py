"""DiffRhythm v1.2 as a songqueue engine (see README.md here and spec/diffrhythm-model.md).

Modules: ``dit`` (the network), ``checkpoint`` (strict loading, converter), ``sampler`` (Euler +
CFG), ``lyrics`` (LRC, auto-timing, g2p), ``style`` (MuQ-MuLan), ``vae`` (TorchScript VAE),
``pipeline`` (the Engine), ``weights`` (models directory: check, download, CLI), ``tiny``
(random-weight test directory). Importing this package imports nothing heavy.
"""
