"""Soundtracks with exact timing: an impact sound at given video frames, and videos muxed with them.

Used for exact audio ground truth (tests/test_audio_labels.py) and as the default sound of dubbing
(ta2net_jax/detection/dub.py). An event at frame ``k`` of a ``fps`` video starts sounding at
``k / fps + lag_s`` seconds (frame ``k`` is shown at ``k / fps``; ``lag_s > 0``: sound after picture).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from input_pipeline.audio_mux import MuxResult, mux_audio
from input_pipeline.video import write_video

__all__ = ["IMPACT_KINDS", "impact_sound", "render_soundtrack", "write_video_with_audio"]

IMPACT_KINDS = ("click", "thump")


def impact_sound(sample_rate: int, kind: str = "click") -> np.ndarray:
    """A short impact sound [S] float32 with peak 1, starting at full level on sample 0.

    "click": 40 ms of white noise under a 6 ms exponential decay (broadband, so the mel spectral flux
    onset detector sees it in every band). "thump": the click at -12 dB over a 90 Hz sine decaying in 60 ms
    (a wooden knock; audible on small speakers through the click).
    """
    if kind not in IMPACT_KINDS:
        raise ValueError(f"unknown impact kind {kind!r}; choose one of {IMPACT_KINDS}")
    # A fixed generator: the click's waveform is part of the definition, not a random draw.
    rng = np.random.default_rng(20250616)
    t_s = np.arange(round((0.04 if kind == "click" else 0.25) * sample_rate)) / sample_rate
    click = rng.uniform(-1.0, 1.0, t_s.size) * np.exp(-t_s / 0.006)
    sound = click if kind == "click" else 0.25 * click + np.sin(2 * np.pi * 90.0 * t_s) * np.exp(-t_s / 0.06)
    return (sound / np.max(np.abs(sound))).astype(np.float32)


def render_soundtrack(
    event_frames: Sequence[int],
    fps: float,
    num_frames: int,
    *,
    sample_rate: int = 22050,
    lag_s: float = 0.0,
    amplitudes: Sequence[float] | None = None,
    noise_std: float = 0.0,
    sound: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A mono track as long as the video (``round(num_frames / fps * sample_rate)`` samples, float32).

    Args:
      event_frames: [E] frames (native rate) of the events; each adds ``sound`` starting at
        ``round((frame / fps + lag_s) * sample_rate)`` (sounds past the end are cut, before the start dropped).
      amplitudes: [E] peak level of each event's sound (default 0.8).
      noise_std: standard deviation of added white noise (0: none); seeded by ``seed``.
      sound: [S] the impact waveform (default :func:`impact_sound` "click").
    """
    if not fps > 0 or num_frames < 1:
        raise ValueError(f"need fps > 0 and num_frames >= 1, got {fps!r}, {num_frames!r}")
    frames = np.asarray(event_frames, np.float64).reshape(-1)
    amps = np.full(frames.size, 0.8) if amplitudes is None else np.asarray(amplitudes, np.float64).reshape(-1)
    if amps.size != frames.size:
        raise ValueError(f"{frames.size} event frames but {amps.size} amplitudes")
    sound = impact_sound(sample_rate) if sound is None else np.asarray(sound, np.float32).reshape(-1)
    track = np.zeros(round(num_frames / fps * sample_rate), np.float64)
    for frame, amp in zip(frames, amps):
        start = round((frame / fps + lag_s) * sample_rate)
        if start < 0 or start >= track.size:
            continue
        part = sound[: track.size - start]
        track[start : start + part.size] += amp * part
    if noise_std > 0:
        track += np.random.default_rng(seed).normal(0.0, noise_std, track.size)
    return track.astype(np.float32)


def write_video_with_audio(
    path,
    frames: np.ndarray,
    fps: float,
    samples: np.ndarray | None,
    sample_rate: int,
    *,
    audio_codec: str | None = None,
) -> MuxResult | None:
    """Encodes RGB frames [N, H, W, 3] uint8 (input_pipeline.video.write_video: H.264, lossless in YUV) and muxes
    ``samples`` [S] (mono, ``sample_rate`` Hz) next to them; ``samples=None`` writes a silent video (no audio
    stream; returns None). The codec follows the suffix (input_pipeline.audio_mux.AUDIO_CODECS)."""
    path = os.fspath(path)
    if samples is None:
        write_video(path, frames, fps)
        return None
    root, _ = os.path.splitext(path)
    video_only = f"{root}.video-only-{os.getpid()}.mp4"
    try:
        write_video(video_only, frames, fps)
        return mux_audio(video_only, samples, sample_rate, path, audio_codec=audio_codec)
    finally:
        if os.path.exists(video_only):
            os.unlink(video_only)
