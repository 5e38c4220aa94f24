"""The synthetic engine's soundtrack: a prompt-seeded arpeggio over a pad, one per shot."""

from __future__ import annotations

import numpy as np

from happyhorse.engines.base import AUDIO_SAMPLE_RATE, Shot

_CHORDS = ((0, 4, 7, 11), (0, 3, 7, 10), (0, 5, 7, 12), (0, 4, 7, 9), (0, 3, 7, 14), (0, 2, 7, 9))


def soundtrack(shot: Shot, digest: bytes, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """An arpeggio over a pad, float32 (2, samples), exactly ``shot.duration`` long.

    The chord, root, tempo and pattern derive from ``digest``, so a new prompt or seed sounds
    different. Every note starts at zero phase under a 5 ms attack, and the shot fades in and out
    over 8 ms, so nothing clicks at note starts or shot cuts.
    """
    n = round(shot.num_frames * sample_rate / shot.fps)
    root = 45 + digest[0] % 12  # MIDI A2..G#3
    chord = _CHORDS[digest[1] % len(_CHORDS)]
    note_len = int(sample_rate * (0.12, 0.16, 0.2, 0.25)[digest[2] % 4])
    pattern = [chord[k % 4] + 12 * (1 + (k // 4) % 2) for k in range(8)]
    if digest[3] % 2:
        pattern = pattern[::-1]

    idx = np.arange(n)
    note = idx // note_len
    local = (idx % note_len) / sample_rate  # seconds since this note started
    freq = _hz(root + np.asarray(pattern)[note % len(pattern)])
    envelope = np.minimum(local / 0.005, 1.0) * np.exp(-local * 6.0)
    arp = (np.sin(2 * np.pi * freq * local) + 0.25 * np.sin(4 * np.pi * freq * local)) * envelope

    t = idx / sample_rate
    pad = sum(np.sin(2 * np.pi * _hz(root + i) * t) for i in (chord[0], chord[2])) * 0.5
    pad = pad * (0.8 + 0.2 * np.sin(2 * np.pi * 0.5 * t))

    pan = np.where(note % 2 == 0, 0.7, 0.3)  # alternate notes lean left and right
    left = 0.32 * arp * pan + 0.12 * pad
    right = 0.32 * arp * (1 - pan) + 0.12 * pad
    fade = np.minimum(1.0, np.minimum(idx, n - 1 - idx) / (0.008 * sample_rate))
    return (np.stack([left, right]) * fade).astype(np.float32)


def _hz(midi: np.ndarray | int) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69) / 12)
