"""The diffusers engine: real open models (LTX-2, Wan 2.x) behind the engine seam.

    profiles.py   models.toml → Profile per (mode, kind); what a model folder can do. Torch-free:
                  the API process imports it to refuse requests no model can serve.
    frames.py     frame counts, render sizes and pass plans (pure arithmetic).
    families.py   per-family adapters: which pipeline class serves a kind, and its call arguments.
    audio.py      the audio source for models without sound, resampled to 48 kHz stereo.
    engine.py     DiffusersEngine: load every pipeline once, render a shot pass by pass.
    check.py      ``happyhorse models check``.

Nothing here imports torch at package import time; only ``engine``, ``families`` and ``audio`` do.
"""
