"""Dub a video: an impact sound at every detected event, muxed next to the untouched video stream.

``dub_video(video, event_frames, out)`` renders a mono track with one impact per event, starting when the
event's frame is shown (``frame / fps`` seconds; a variable-rate video's own frame timestamps,
input_pipeline/frame_times.py), at a level proportional to the event's score
(``score / max(score)``, so the strongest event plays at ``gain``), and either adds it to the video's own
soundtrack (``mix="original"``) or uses it alone (``mix="replace"``). The impact is a synthesised thump
(input_pipeline.synthetic_audio.impact_sound) or any audio file (``sound=``, e.g. a WAV; decoded with PyAV).

The video packets are copied, not re-encoded, so every decoded frame is bit-identical and the frame rate
and frame count are unchanged (input_pipeline.audio_mux). Only when the output container cannot hold the
source's video codec is the video re-encoded; ``DubResult.video_remuxed`` is then False and ``note`` says
why. The output is written to a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from input_pipeline import frame_times
from input_pipeline.audio import NoAudioStreamError, read_audio
from input_pipeline.audio_mux import mux_audio
from input_pipeline.synthetic_audio import IMPACT_KINDS, impact_sound, render_soundtrack
from input_pipeline.video import video_info

__all__ = ["MIX_MODES", "DubResult", "dub_video", "event_gains"]

MIX_MODES = ("original", "replace")
PEAK_LIMIT = 0.99  # the mix is scaled down as a whole, never clipped, when impacts push it past this


@dataclasses.dataclass
class DubResult:
    """What :func:`dub_video` wrote. ``original_audio``: the source's soundtrack is in the mix (False for
    ``mix="replace"`` or a source without audio); ``mix_scale``: factor applied to the whole mix to stay below
    full scale (1.0: none); ``video_remuxed`` / ``note``: see input_pipeline.audio_mux.MuxResult."""

    path: str
    mix: str
    num_events: int
    fps: float
    num_frames: int
    sample_rate: int
    audio_codec: str
    video_remuxed: bool
    original_audio: bool
    mix_scale: float
    note: str = ""


def event_gains(scores: Sequence[float] | None, num_events: int, gain: float) -> np.ndarray:
    """Peak level of each event's sound [E]: ``gain * clip(score / max(scores), 0, 1)``; all ``gain`` without
    scores or when no score is positive (a z-score or a probability both work)."""
    if scores is None:
        return np.full(num_events, float(gain))
    s = np.asarray(scores, np.float64).reshape(-1)
    if s.size != num_events:
        raise ValueError(f"{num_events} event frames but {s.size} scores")
    top = np.max(s) if s.size else 0.0
    if not np.isfinite(top) or top <= 0:
        return np.full(num_events, float(gain))
    return float(gain) * np.clip(np.nan_to_num(s / top, nan=0.0), 0.0, 1.0)


def _sound(sound, sample_rate: int, kind: str) -> np.ndarray:
    if sound is None:
        return impact_sound(sample_rate, kind)
    samples, _ = read_audio(sound, sample_rate)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 0:
        raise ValueError(f"{os.fspath(sound)}: the impact sound is silent")
    return samples / peak


def dub_video(
    video_path,
    event_frames: Sequence[int],
    out_path,
    *,
    scores: Sequence[float] | None = None,
    sound=None,
    mix: str = "original",
    sample_rate: int = 48000,
    gain: float = 0.9,
    sound_kind: str = "thump",
    audio_codec: str | None = None,
    force_reencode: bool = False,
) -> DubResult:
    """Writes ``out_path``: ``video_path``'s frames with an impact sound at each event.

    Args:
      video_path: source video (any container PyAV reads).
      event_frames: [E] 0-based frame indices at the video's native rate.
      out_path: output file; container by suffix (.mp4/.mov: AAC, .mkv/.avi: PCM, .webm: Opus).
      scores: [E] event scores; each sound's level is ``gain * score / max(scores)`` (:func:`event_gains`).
      sound: an audio file to use as the impact (peak-normalised), or None for the synthesised ``sound_kind``
        ("thump" or "click").
      mix: "original" adds the impacts to the source's soundtrack (mixed down to mono, resampled; silence if
        it has none), "replace" drops the source's soundtrack.
      sample_rate: Hz of the written track (48,000 suits AAC and Opus).
      gain: peak level of the strongest event's sound (full scale = 1).
      audio_codec, force_reencode: see input_pipeline.audio_mux.mux_audio.

    Raises:
      ValueError: bad ``mix`` / ``sound_kind`` / scores; input_pipeline.video.VideoReadError (unreadable video);
      input_pipeline.audio.AudioReadError (unreadable ``sound`` or soundtrack); audio_mux.MuxError.
    """
    if mix not in MIX_MODES:
        raise ValueError(f"mix must be one of {MIX_MODES}, got {mix!r}")
    if sound is None and sound_kind not in IMPACT_KINDS:
        raise ValueError(f"sound_kind must be one of {IMPACT_KINDS}, got {sound_kind!r}")
    info = video_info(video_path)
    fps, num_frames = float(info["fps"]), int(info["num_frames"])
    frames = np.asarray(event_frames, np.int64).reshape(-1)
    if frames.size and (frames.min() < 0 or frames.max() >= num_frames):
        raise ValueError(
            f"event frames must lie in [0, {num_frames}) for {os.fspath(video_path)}, got "
            f"{frames.min()}..{frames.max()}"
        )
    # render_soundtrack places frame k at k / fps: a variable-rate video's events go in as the fractional
    # frames of a uniform clock that shows them when the file does.
    shown_s = frame_times.frames_to_seconds(frames, fps, info["times_s"])
    track = render_soundtrack(
        shown_s * fps,
        fps,
        num_frames,
        sample_rate=sample_rate,
        amplitudes=event_gains(scores, frames.size, gain),
        sound=_sound(sound, sample_rate, sound_kind),
    ).astype(np.float64)
    original, note = False, ""
    if mix == "original":
        try:
            source, _ = read_audio(video_path, sample_rate, align_to_video=True)
            n = min(source.size, track.size)
            track[:n] += source[:n]
            original = True
        except NoAudioStreamError:
            note = "the source has no audio stream: the impacts play over silence"
    peak = float(np.max(np.abs(track))) if track.size else 0.0
    scale = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
    result = mux_audio(
        video_path,
        (track * scale).astype(np.float32),
        sample_rate,
        out_path,
        audio_codec=audio_codec,
        force_reencode=force_reencode,
    )
    return DubResult(
        result.path,
        mix,
        int(frames.size),
        fps,
        num_frames,
        sample_rate,
        result.audio_codec,
        result.video_remuxed,
        original,
        scale,
        "; ".join(n for n in (note, result.note) if n),
    )
