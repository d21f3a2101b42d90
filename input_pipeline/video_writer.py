"""Encode RGB frames to a video file (`write_video`).

H.264 (libx264) at CRF 0 with 4:4:4 chroma by default: lossless in YUV, so a round trip changes RGB values by
at most ~2 levels (colour-conversion rounding). 4:2:0 halves the chroma resolution and changes sharp coloured
edges of synthetic frames by up to ~140 levels (measured on 64×64 frames), so it is opt-in
(``pix_fmt="yuv420p"``, playable everywhere) and needs even sizes; odd sizes fall back to 4:4:4. MP4/MOV
files are written with ``+faststart`` (index first), so a truncated file still opens and the truncation is
reported with the number of frames decoded.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_FASTSTART_SUFFIXES = {".mp4", ".mov", ".m4v", ".3gp"}
_TIMESTAMP_CLOCK = Fraction(1, 90_000)  # MPEG's 90 kHz: timestamps of variable-rate video to 11 µs


def _presentation_ticks(times_s) -> np.ndarray:
    """``times_s`` [N] seconds → int64 ticks of _TIMESTAMP_CLOCK from the first frame; raises ValueError unless
    they are finite and strictly increasing on that clock."""
    times = np.asarray(times_s, np.float64).reshape(-1)
    if times.size == 0 or not np.all(np.isfinite(times)):
        raise ValueError("times_s must be a non-empty array of finite seconds")
    ticks = np.rint((times - times[0]) / float(_TIMESTAMP_CLOCK)).astype(np.int64)
    if np.any(np.diff(ticks) <= 0):
        raise ValueError("times_s must be strictly increasing (by more than 1/90000 s per frame)")
    return ticks


@functools.cache
def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:  # noqa: BLE001
        return False


def _encoder(pix_fmt: str, height: int, width: int, crf: int) -> tuple[str, str, dict]:
    """``(codec, pix_fmt, options)``: libx264 (in PyAV's wheels), else FFmpeg's own mpeg4 at top quality."""
    odd = height % 2 or width % 2
    if _has_encoder("libx264"):
        # x264 cannot do 4:2:0 at odd sizes; 4:4:4 keeps the exact size (and is sharper anyway).
        fmt = "yuv444p" if odd else pix_fmt
        return "libx264", fmt, {"crf": str(crf), "preset": "medium"}
    if odd:
        raise ValueError(
            f"no libx264 encoder in this PyAV build, and the 4:2:0 fallback encoders need even "
            f"sizes (got {height}x{width})"
        )
    return "mpeg4", "yuv420p", {"qscale": "1"}


def write_video(
    path,
    frames: np.ndarray,
    fps: float,
    *,
    crf: int = 0,
    pix_fmt: str = "yuv444p",
    reproducible: bool = False,
    times_s: np.ndarray | None = None,
) -> None:
    """Encodes RGB frames to a video file (H.264 in MP4 unless the suffix says otherwise).

    Args:
      path: output file; the container follows the suffix (.mp4 recommended; MP4/MOV get ``+faststart``).
        The file is written to a temporary name and renamed, so it never exists half-written.
      frames: ``[N, H, W, 3]`` uint8 RGB, N >= 1; or an iterable of ``[H, W, 3]`` uint8 frames, encoded as
        they come (never all in memory; the file appears only once the last one is encoded).
      fps: frame rate in frames per second (stored as a fraction with denominator <= 1001, so 29.97 and
        30000/1001 are exact).
      crf: x264 constant rate factor; 0 is lossless in YUV (default: synthetic training videos).
      pix_fmt: "yuv444p" (default, near-lossless RGB) or "yuv420p" (widely playable; odd sizes fall back
        to yuv444p).
      reproducible: lossy x264 output (crf > 0) differs from run to run with its default lookahead and
        macroblock-tree rate control; True encodes with one thread, no lookahead and no mbtree, so the same
        frames always give the same file.
      times_s: ``[N]`` seconds at which each frame is shown, strictly increasing (a variable-frame-rate video,
        input_pipeline/frame_times.py), stored on a 90 kHz clock; ``fps`` is then the average rate the
        container advertises. None: frame k at ``k / fps``.
    """
    if isinstance(frames, np.ndarray | list | tuple):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"frames must be a non-empty [N, H, W, 3] uint8 array, got {frames.dtype} {frames.shape}")
        first, rest = frames[0], iter(frames[1:])
    else:  # an iterable of frames, encoded as they come
        rest = iter(frames)
        first = next(rest, None)
        if first is None:
            raise ValueError("frames must not be empty")
        first = np.asarray(first)
        if first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
            raise ValueError(f"each frame must be [H, W, 3] uint8, got {first.dtype} {first.shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if pix_fmt not in ("yuv444p", "yuv420p"):
        raise ValueError(f"pix_fmt must be 'yuv444p' or 'yuv420p', got {pix_fmt!r}")
    pts = None if times_s is None else _presentation_ticks(times_s)
    path = Path(path)
    height, width, _ = first.shape
    codec, fmt, options = _encoder(pix_fmt, height, width, crf)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    container_options = {"movflags": "+faststart"} if path.suffix.lower() in _FASTSTART_SUFFIXES else {}
    try:
        with av.open(str(tmp), "w", options=container_options) as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, fmt
            if reproducible and codec == "libx264":
                options = {**options, "threads": "1", "x264-params": "mbtree=0:rc-lookahead=0"}
            stream.options = options
            if pts is not None:  # the encoder's clock too, or it rounds the stamps to 1 / fps (duplicates)
                stream.time_base = stream.codec_context.time_base = _TIMESTAMP_CLOCK
            for k, rgb in enumerate(itertools.chain([first], rest)):
                if rgb.shape != first.shape or rgb.dtype != np.uint8:
                    raise ValueError(f"frame of {rgb.dtype} {rgb.shape} among frames of uint8 {first.shape}")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                if pts is not None:
                    if k >= len(pts):
                        raise ValueError(f"more frames than the {len(pts)} timestamps in times_s")
                    frame.pts, frame.time_base = int(pts[k]), _TIMESTAMP_CLOCK
                for packet in stream.encode(frame):
                    container.mux(packet)
            if pts is not None and k + 1 != len(pts):
                raise ValueError(f"{k + 1} frames for the {len(pts)} timestamps in times_s")
            for packet in stream.encode():  # flush the encoder's delayed frames
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
