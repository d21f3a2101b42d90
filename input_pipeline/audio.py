"""A video's soundtrack → onsets → frame indices at the video's native frame rate.

1. :func:`read_audio`: PyAV decodes the first audio stream at its own rate, channels are averaged to mono and
   the result is resampled with soxr ("soxr_hq", librosa's default), which is what ``librosa.load(path,
   sr=22050)`` would do if it could open video containers (it cannot without an ffmpeg binary).
2. :func:`detect_onsets`: ``librosa.onset.onset_strength`` (mel spectral flux, hop 512) and
   ``librosa.onset.onset_detect(delta=0.3)``, the CondFoleyGen setting of ``audio_onsets.json``.
3. :func:`onsets_to_frames`: frame ``k`` is shown at ``t = k / fps`` seconds; an onset at ``t`` seconds belongs
   to frame ``floor(t * fps - lag_frames + 0.5)`` (nearest frame, halves up), onsets outside the video dropped.
4. :func:`onset_envelope_per_frame`: the onset strength per video frame, for the lag estimate and the
   agreement score of input_pipeline.audio_labels.
5. :func:`audio_onsets_entry`: one video's entry in the ``audio_onsets.json`` format of ../shared/realdata.

Units: names ending in ``_s`` are seconds; ``frames``/``lag_frames`` are video frames at the native rate.
docs/audio.md explains every choice.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import av
import av.logging
import numpy as np

from input_pipeline import frame_times, paths
from input_pipeline.video import VideoReadError, from_local_copy, video_info

av.logging.set_level(None)  # FFmpeg messages would otherwise be printed above our one-line errors

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_HOP_LENGTH",
    "DEFAULT_SAMPLE_RATE",
    "ONSET_LATENCY_HOPS",
    "ONSET_SETTINGS",
    "AudioReadError",
    "NoAudioStreamError",
    "Onsets",
    "audio_onsets_entry",
    "detect_onsets",
    "onset_envelope_per_frame",
    "onsets_to_frames",
    "read_audio",
]

DEFAULT_SAMPLE_RATE = 22050  # Hz, as the audio_onsets.json ground truth
DEFAULT_HOP_LENGTH = 512  # samples: 23.2 ms at 22,050 Hz, librosa's default
DEFAULT_DELTA = 0.3  # CondFoleyGen's predict_onset.py; librosa's default 0.07 fires on noise
# librosa reports a click 3.0-25.7 ms after it starts (hop 512 at 22,050 Hz, 41 sub-hop offsets, 123 clicks):
# the flux peaks on the first hop whose window holds the click. Frames are taken at the centre of that range.
ONSET_LATENCY_HOPS = 0.62
SILENCE_RMS = 1e-4  # -80 dBFS: below it a track counts as silent whatever the onset detector says


class AudioReadError(VideoReadError):
    """An audio track could not be read; ``str(err) == f"{path}: {problem}"`` (one line). A VideoReadError:
    the file's sound is part of the video, and batch modes skip such files the same way."""


class NoAudioStreamError(AudioReadError):
    """The file opens but holds no audio stream (a silent video)."""


@dataclasses.dataclass
class Onsets:
    """Onsets of one track. ``times_s`` [K] float64 seconds (sample 0 at t = 0), ``strengths`` [K] float32 (the
    onset envelope at each onset), ``envelope`` [T] float32 onset strength per hop (hop ``j`` at
    ``j * hop_length / sample_rate`` s). ``latency_s``: how late librosa reports an onset on average; frame
    conversions subtract it (``times_s`` stay librosa's, as in audio_onsets.json)."""

    times_s: np.ndarray
    strengths: np.ndarray
    envelope: np.ndarray
    sample_rate: int
    hop_length: int
    latency_s: float = 0.0


def _stream_start_s(stream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def read_audio(
    path, sample_rate: int | None = DEFAULT_SAMPLE_RATE, *, align_to_video: bool = False
) -> tuple[np.ndarray, int]:
    """Decodes the first audio stream of a file (video or audio-only) to mono float32.

    Args:
      path: any file FFmpeg reads (mp4, avi, mkv, wav, ...), or a `gs://` URL of one.
      sample_rate: output rate in Hz (soxr_hq resampling); None keeps the stream's own rate.
      align_to_video: make sample 0 the first video frame's presentation time (zeros prepended, or samples
        dropped, by the two streams' start-time difference); no effect on files without video.

    Returns:
      ``(samples [S] float32, sample_rate)``: channels averaged (librosa's ``to_mono``), values as decoded
      (nominally in [-1, 1]).

    Raises:
      AudioReadError: missing/empty/unreadable file, undecodable audio; NoAudioStreamError: no audio stream.
    """
    path = os.fspath(path)
    if paths.is_remote(path):  # from this machine's cached copy; errors name the URL
        return from_local_copy(read_audio, path, sample_rate=sample_rate, align_to_video=align_to_video)
    if not os.path.isfile(path):
        raise AudioReadError(path, "no such file" if not os.path.exists(path) else "not a regular file")
    if os.path.getsize(path) == 0:
        raise AudioReadError(path, "empty file (0 bytes)")
    try:
        container = av.open(path)
    except Exception as err:  # noqa: BLE001 - PyAV raises several FFmpegError subclasses
        raise AudioReadError(path, f"cannot open ({' '.join(str(err).split())})") from None
    with container:
        if not container.streams.audio:
            raise NoAudioStreamError(
                path,
                f"no audio stream ({container.format.name} container with "
                f"{len(container.streams.video)} video stream(s))",
            )
        stream = container.streams.audio[0]
        offset_s = (
            _stream_start_s(stream) - _stream_start_s(container.streams.video[0])
            if align_to_video and container.streams.video
            else 0.0
        )
        chunks, native_rate = [], None
        try:
            for frame in container.decode(stream):
                native_rate = frame.sample_rate
                data = frame.to_ndarray()
                if not frame.format.is_planar:  # interleaved: [1, samples * channels]
                    data = data.reshape(-1, len(frame.layout.channels)).T
                chunks.append(
                    data.astype(np.float32).mean(axis=0) if data.dtype.kind == "f" else _int_to_float(data).mean(axis=0)
                )
        except Exception as err:  # noqa: BLE001 - any FFmpeg failure part way means lost audio
            raise AudioReadError(path, f"audio decoding failed ({' '.join(str(err).split())})") from None
    if not chunks:
        raise AudioReadError(path, "the audio stream has no decodable frames")
    samples = np.concatenate(chunks).astype(np.float32)
    rate = int(native_rate)
    if sample_rate is not None and int(sample_rate) != rate:
        import librosa  # heavy import (numba): only when resampling

        samples = librosa.resample(samples, orig_sr=rate, target_sr=int(sample_rate), res_type="soxr_hq")
        rate = int(sample_rate)
    shift = round(offset_s * rate)
    if shift > 0:
        samples = np.concatenate([np.zeros(shift, np.float32), samples])
    elif shift < 0:
        samples = samples[-shift:]
    return np.ascontiguousarray(samples, np.float32), rate


def _int_to_float(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float32) / float(np.iinfo(data.dtype).max)


def detect_onsets(
    samples: np.ndarray,
    sample_rate: int,
    *,
    delta: float = DEFAULT_DELTA,
    hop_length: int = DEFAULT_HOP_LENGTH,
    latency_hops: float = ONSET_LATENCY_HOPS,
) -> Onsets:
    """librosa onsets of a mono track: ``onset_strength`` then ``onset_detect(..., delta=delta)``.

    Args:
      samples: [S] float mono audio; sample_rate: Hz.
      delta: peak-picking threshold on the envelope normalised to [0, 1] (0.3: CondFoleyGen).
      hop_length: samples between envelope values.
      latency_hops: stored as ``latency_s = latency_hops * hop_length / sample_rate``; 0 makes the frame
        conversions use librosa's times unchanged.

    Returns:
      Onsets; a silent track (RMS < -80 dBFS or shorter than one hop) has none.
    """
    import librosa

    latency_s = float(latency_hops) * hop_length / sample_rate
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 1:
        raise ValueError(f"samples must be mono [S], got shape {samples.shape}")
    if samples.size < hop_length or float(np.sqrt(np.mean(samples**2))) < SILENCE_RMS:
        n = max(1, 1 + samples.size // hop_length)
        return Onsets(
            np.zeros(0), np.zeros(0, np.float32), np.zeros(n, np.float32), int(sample_rate), hop_length, latency_s
        )
    envelope = librosa.onset.onset_strength(y=samples, sr=sample_rate, hop_length=hop_length).astype(np.float32)
    hops = librosa.onset.onset_detect(
        onset_envelope=envelope, sr=sample_rate, hop_length=hop_length, delta=delta, units="frames"
    )
    times_s = librosa.frames_to_time(hops, sr=sample_rate, hop_length=hop_length).astype(np.float64)
    return Onsets(times_s, envelope[hops].astype(np.float32), envelope, int(sample_rate), hop_length, latency_s)


def _nearest_frame(times_s: np.ndarray, fps: float, lag_frames: float, frame_times_s=None) -> np.ndarray:
    # floor(x + 0.5), not np.round: half-frame ties always go to the later frame (no banker's rounding).
    position = frame_times.seconds_to_frames(times_s, fps, frame_times_s)
    return np.floor(position - lag_frames + 0.5).astype(np.int64)


def onsets_to_frames(
    times_s: Sequence[float],
    fps: float,
    num_frames: int,
    *,
    lag_frames: float = 0,
    strengths: Sequence[float] | None = None,
    frame_times_s: np.ndarray | None = None,
):
    """Onset times → frame indices at the native rate: ``floor(t * fps - lag_frames + 0.5)``.

    Frame ``k`` is shown at ``k / fps`` s, so this is the nearest frame to the onset once the audio lag is
    removed; for a variable-rate video ``frame_times_s`` ([N] presentation times, input_pipeline/frame_times.py)
    replaces ``t * fps`` by the frame position of ``t`` on its frames' timestamps. Frames outside
    ``[0, num_frames)`` are dropped; several onsets in one frame count once.

    Returns:
      ``frames`` [E] int64 sorted unique; with ``strengths`` given, ``(frames, strengths [E] float32)``
      keeping each frame's largest strength.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    frames = _nearest_frame(times_s, fps, lag_frames, frame_times_s)
    inside = (frames >= 0) & (frames < num_frames)
    unique = np.unique(frames[inside])
    if strengths is None:
        return unique
    best = np.full(unique.size, -np.inf, np.float32)
    np.maximum.at(best, np.searchsorted(unique, frames[inside]), np.asarray(strengths, np.float32)[inside])
    return unique, best


def onset_envelope_per_frame(
    onsets: Onsets, fps: float, num_frames: int, frame_times_s: np.ndarray | None = None
) -> np.ndarray:
    """The onset envelope resampled to video frames: ``[num_frames]`` float32.

    Each envelope hop goes to its nearest frame (the :func:`onsets_to_frames` convention, ``frame_times_s``
    as there) and a frame keeps the largest hop value (a 23 ms click must not be averaged away over a 40-67 ms
    frame); frames without a hop (fps above sample_rate / hop_length) are linearly interpolated.
    """
    env = onsets.envelope
    hop_times_s = np.arange(env.size) * onsets.hop_length / onsets.sample_rate - onsets.latency_s
    frame_of_hop = _nearest_frame(hop_times_s, fps, 0, frame_times_s)
    inside = (frame_of_hop >= 0) & (frame_of_hop < num_frames)
    out = np.full(num_frames, -np.inf, np.float32)
    np.maximum.at(out, frame_of_hop[inside], env[inside])
    empty = ~np.isfinite(out)
    if empty.any():
        shown_s = frame_times.frames_to_seconds(np.flatnonzero(empty), fps, frame_times_s)
        out[empty] = np.interp(shown_s, hop_times_s, env, right=0.0)
    return out


ONSET_SETTINGS = {"delta_0.3_condfoleygen": 0.3, "delta_0.07_librosa_default": 0.07}


def audio_onsets_entry(path, settings: dict[str, float] | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE) -> dict:
    """One video's entry in the ``audio_onsets.json`` format (../shared/realdata/greatest_hits_condfoleygen):
    decode facts (``md5``, ``fps``, ``n_frames_decoded``, ``width``, ``height``, ``has_audio``) and, per onset
    setting ``{name: delta}`` (default :data:`ONSET_SETTINGS`), librosa's ``times_s`` (4 decimals) and
    ``frames_at_native_fps`` (``t * fps``, 2 decimals, no latency removed: the raw pseudo ground truth).
    A video without audio gets ``has_audio: False`` and ``audio_onsets: None``.

    Raises:
      AudioReadError (other than no audio stream), input_pipeline.video.VideoReadError.
    """
    import hashlib

    import librosa

    path = os.fspath(path)
    info = video_info(path, decode=True)
    with open(path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    entry = {
        "md5": md5,
        "fps": float(info["fps"]),
        "n_frames_decoded": int(info["num_frames"]),
        "width": int(info["size"][1]),
        "height": int(info["size"][0]),
    }
    try:
        samples, rate = read_audio(path, sample_rate)
    except NoAudioStreamError:
        return {**entry, "has_audio": False, "audio_onsets": None}
    onsets: dict = {}
    for name, delta in (settings or ONSET_SETTINGS).items():
        found = detect_onsets(samples, rate, delta=delta, latency_hops=0)
        onsets[name] = {
            "call": f"librosa.onset.onset_detect(y=mono_audio_{rate}Hz, sr={rate}, units='time', delta={delta:g})",
            "times_s": [round(float(t), 4) for t in found.times_s],
            "frames_at_native_fps": [round(float(t) * entry["fps"], 2) for t in found.times_s],
        }
    onsets["librosa_version"] = librosa.__version__
    return {**entry, "has_audio": True, "audio_onsets": onsets}
