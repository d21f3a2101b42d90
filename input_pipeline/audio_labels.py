"""Audio labels for a dataset: lag between sound and picture, and which soundtracks to trust.

1. :func:`clip_signals`: per clip, the onsets (input_pipeline.audio), the onset envelope per video frame and
   the inflection-energy curve per frame (input_pipeline.inflection_energy, from the decoded frames).
2. :func:`estimate_lag`: one audio–video lag per dataset, the integer ``L`` in ``[-max_lag, max_lag]``
   maximising the pooled correlation of ``envelope[t + L]`` with ``inflection[t]``. ``L > 0``: the sound comes
   after the picture.
3. :func:`clip_agreement` and :func:`audio_labels_for_videos`: clips without an audio stream, without onsets,
   or whose onset envelope does not follow the inflection energy (music, speech, noise) are left out, each
   with a one-line reason; the others get their onset frames minus the lag.

Units: names ending in ``_s`` are seconds; ``frames``/``lag_frames`` are video frames at the native rate.
docs/audio.md explains every choice and the measured figures.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from input_pipeline import flow as flow_lib, inflection_energy
from input_pipeline.audio import (
    DEFAULT_DELTA,
    DEFAULT_SAMPLE_RATE,
    ONSET_LATENCY_HOPS,
    Onsets,
    detect_onsets,
    onset_envelope_per_frame,
    onsets_to_frames,
    read_audio,
)
from input_pipeline.video import read_video, video_info

__all__ = [
    "DEFAULT_MAX_LAG",
    "DEFAULT_MIN_AGREEMENT",
    "AudioLabelSet",
    "AudioLabels",
    "ClipSignals",
    "LagEstimate",
    "audio_labels_for_video",
    "audio_labels_for_videos",
    "clip_agreement",
    "clip_signals",
    "estimate_lag",
    "inflection_curve",
]

DEFAULT_MAX_LAG = 3  # frames; the Audible623 caveat measures 0.5-2 frames of audio lag
DEFAULT_MIN_AGREEMENT = 0.15  # Pearson r of envelope vs inflection at the dataset lag (measured: docs/audio.md)


@dataclasses.dataclass
class LagEstimate:
    """``lag_frames``: chosen audio lag (frames, > 0: sound after picture); ``correlation_by_lag``: pooled
    Pearson r per candidate lag; ``num_clips``: clips that entered the estimate."""

    lag_frames: int
    correlation_by_lag: dict[int, float]
    num_clips: int


@dataclasses.dataclass
class ClipSignals:
    """What the lag and the agreement need from one clip: ``envelope`` [N] onset envelope per video frame,
    ``inflection`` [N] inflection score per frame (NaN at frames 0, 1, N-2, N-1), ``onsets`` in seconds of the
    video timeline, ``fps`` and ``num_frames``; ``frame_times_s`` [N] the frames' presentation times in seconds
    for a variable-rate video (None: frame ``k`` at ``k / fps``; input_pipeline/frame_times.py)."""

    path: str
    fps: float
    num_frames: int
    onsets: Onsets
    envelope: np.ndarray
    inflection: np.ndarray
    frame_times_s: np.ndarray | None = None


@dataclasses.dataclass
class AudioLabels:
    """Audio labels of one video: ``frames`` [E] int64 (0-based, native fps, after removing ``lag_frames``),
    ``strengths`` [E] float32 (largest onset strength within the frame), ``times_s`` [K] the raw onset times,
    ``agreement`` (Pearson r with the inflection energy at the lag; None if not computed)."""

    path: str
    frames: np.ndarray
    strengths: np.ndarray
    fps: float
    num_frames: int
    lag_frames: int
    times_s: np.ndarray
    agreement: float | None


@dataclasses.dataclass
class AudioLabelSet:
    """A dataset's audio labels: ``labels`` of the kept clips, ``rejected`` ``{path: reason}``, the ``lag``."""

    labels: dict[str, AudioLabels]
    rejected: dict[str, str]
    lag: LagEstimate

    def labels_json(self) -> dict:
        """The kept clips keyed by file name, each ``{"frames": [...], ...}``: a labels file that
        ``input_pipeline.labels.parse_labels`` (``--labels``) reads; strengths, onset times, fps, lag, agreement
        ride along."""
        return {
            os.path.basename(path): {
                "frames": lab.frames.tolist(),
                "strengths": [round(float(v), 4) for v in lab.strengths],
                "onset_times_s": [round(float(t), 4) for t in lab.times_s],
                "fps": lab.fps,
                "num_frames": lab.num_frames,
                "lag_frames": lab.lag_frames,
                "agreement": None if lab.agreement is None else round(float(lab.agreement), 4),
            }
            for path, lab in self.labels.items()
        }

    def report_json(self) -> dict:
        """The lag (with the correlation per candidate lag) and every rejected clip with its reason."""
        return {
            "lag_frames": self.lag.lag_frames,
            "lag_num_clips": self.lag.num_clips,
            "correlation_by_lag": {str(k): round(float(v), 4) for k, v in self.lag.correlation_by_lag.items()},
            "num_kept": len(self.labels),
            "rejected": dict(self.rejected),
        }


def inflection_curve(frames: np.ndarray, *, flow_method: str = "dis") -> np.ndarray:
    """Per-frame inflection score [N] of RGB frames [N, H, W, 3] uint8, centred on the contact frame.

    The training-free detector's robust z-score of inflection-flow energy (input_pipeline.inflection_energy)
    responds to a contact at frame k on frames k - 1 and k + 1 (its forward and backward terms; mean profile over 44
    isolated synthetic contacts, offsets -3..3: 0.36 0.56 2.25 0.73 1.83 0.00 -0.08), so its maximum sits
    one frame early. The 3-frame mean used here peaks on k itself, which keeps the lag estimate unbiased.
    NaN where fewer than 2 of the 3 frames are scored (frames 0, 1, N-2, N-1 are unscored).
    """
    flow_fwd, flow_bwd = flow_lib.estimate_flow(frames, flow_method)
    return _centred(inflection_energy.inflection_scores(flow_fwd, flow_bwd))


def _centred(scores: np.ndarray) -> np.ndarray:
    padded = np.pad(np.asarray(scores, np.float64), 1, constant_values=np.nan)
    window = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    count = np.isfinite(window).sum(axis=0)
    total = np.where(np.isfinite(window), window, 0.0).sum(axis=0)
    return np.where(count >= 2, total / np.maximum(count, 1), np.nan)


def _pairs(envelope: np.ndarray, inflection: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """``(envelope[t + lag], inflection[t])`` over the t where both exist and are finite."""
    n = min(envelope.size, inflection.size)
    t = np.arange(max(0, -lag), min(n, n - lag))
    env, inf = np.asarray(envelope, np.float64)[t + lag], np.asarray(inflection, np.float64)[t]
    ok = np.isfinite(env) & np.isfinite(inf)
    return env[ok], inf[ok]


def _standardise(x: np.ndarray) -> np.ndarray | None:
    std = x.std()
    return None if x.size < 3 or std < 1e-12 else (x - x.mean()) / std


def clip_agreement(envelope: np.ndarray, inflection: np.ndarray, lag_frames: int = 0) -> float:
    """Pearson r of ``envelope[t + lag_frames]`` with ``inflection[t]`` (both [N] per frame); NaN when either is
    constant or fewer than 3 frames overlap."""
    env, inf = _pairs(envelope, inflection, int(lag_frames))
    za, zb = _standardise(env), _standardise(inf)
    return float("nan") if za is None or zb is None else float(np.mean(za * zb))


def estimate_lag(
    envelopes: Sequence[np.ndarray], inflection_curves: Sequence[np.ndarray], max_lag: int = DEFAULT_MAX_LAG
) -> LagEstimate:
    """One audio lag for a set of clips: the integer ``L`` in ``[-max_lag, max_lag]`` maximising the pooled
    correlation of ``envelope[t + L]`` with ``inflection[t]``.

    Each clip's two series are standardised over their overlap at each lag and the products are pooled over
    all clips (a frame-weighted mean of per-clip correlations), so long clips weigh more and a clip's loudness
    or motion scale does not. Ties go to the smaller ``|L|``, then to the negative one.

    Args:
      envelopes: per clip [N_i] onset envelope per frame; inflection_curves: per clip [N_i] (NaN = unscored).
      max_lag: bound in frames (>= 0).

    Raises:
      ValueError: different list lengths, negative ``max_lag``, or no clip with a usable pair of series.
    """
    if len(envelopes) != len(inflection_curves):
        raise ValueError(f"{len(envelopes)} envelopes but {len(inflection_curves)} inflection curves")
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    by_lag: dict[int, float] = {}
    used: set[int] = set()
    for lag in range(-max_lag, max_lag + 1):
        total, count = 0.0, 0
        for i, (env, inf) in enumerate(zip(envelopes, inflection_curves)):
            a, b = _pairs(env, inf, lag)
            za, zb = _standardise(a), _standardise(b)
            if za is None or zb is None:
                continue
            total += float(np.sum(za * zb))
            count += za.size
            used.add(i)
        by_lag[lag] = total / count if count else float("nan")
    finite = {lag: r for lag, r in by_lag.items() if np.isfinite(r)}
    if not finite:
        raise ValueError("no clip has a non-constant onset envelope and inflection curve: cannot estimate a lag")
    best = max(finite, key=lambda lag: (finite[lag], -abs(lag), -lag))
    return LagEstimate(int(best), by_lag, len(used))


def clip_signals(
    path,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    delta: float = DEFAULT_DELTA,
    latency_hops: float = ONSET_LATENCY_HOPS,
    flow_method: str = "dis",
    flow_size: int | None = 112,
    with_inflection: bool = True,
) -> ClipSignals:
    """Decodes one video's audio and (optionally) frames: onsets, per-frame envelope and inflection score.

    Args:
      flow_size: the flow is estimated on frames resized so that the longer side is at most this many pixels
        (None: native size); the inflection energy is a top-2 % pixel statistic, so this changes little.
      with_inflection: False skips the frames and flow (``inflection`` is then all NaN).
      sample_rate, delta, latency_hops: as in :func:`read_audio` and :func:`detect_onsets`.

    Raises:
      NoAudioStreamError, AudioReadError, input_pipeline.video.VideoReadError.
    """
    path = os.fspath(path)
    info = video_info(path)
    fps, times_s = float(info["fps"]), info["times_s"]
    samples, rate = read_audio(path, sample_rate, align_to_video=True)
    onsets = detect_onsets(samples, rate, delta=delta, latency_hops=latency_hops)
    if with_inflection:
        height, width = info["size"]
        size = None
        if flow_size is not None and max(height, width) > flow_size:
            # resized while decoding: a long HD clip is never held at full size
            scale = flow_size / max(height, width)
            size = (max(8, round(height * scale)), max(8, round(width * scale)))
        decoded = read_video(path, size=size)
        num_frames, times_s = len(decoded.frames), decoded.times_s
        inflection = inflection_curve(decoded.frames, flow_method=flow_method)
    else:
        num_frames = int(info["num_frames"])
        inflection = np.full(num_frames, np.nan)
    envelope = onset_envelope_per_frame(onsets, fps, num_frames, times_s)
    return ClipSignals(path, fps, num_frames, onsets, envelope, inflection, times_s)


def _labels(signals: ClipSignals, lag_frames: int, agreement: float | None) -> AudioLabels:
    frames, strengths = onsets_to_frames(
        signals.onsets.times_s - signals.onsets.latency_s,
        signals.fps,
        signals.num_frames,
        lag_frames=lag_frames,
        strengths=signals.onsets.strengths,
        frame_times_s=signals.frame_times_s,
    )
    return AudioLabels(
        signals.path,
        frames,
        strengths,
        signals.fps,
        signals.num_frames,
        int(lag_frames),
        signals.onsets.times_s,
        agreement,
    )


def audio_labels_for_video(
    path,
    *,
    lag_frames: int = 0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    delta: float = DEFAULT_DELTA,
    latency_hops: float = ONSET_LATENCY_HOPS,
    with_agreement: bool = False,
    flow_method: str = "dis",
    flow_size: int | None = 112,
) -> AudioLabels:
    """Audio labels of one video with a known lag (e.g. a dataset's :func:`estimate_lag`).

    ``with_agreement`` also decodes the frames and computes the flow to fill ``agreement``; no clip is rejected
    here (:func:`audio_labels_for_videos` applies the rule).

    Raises:
      NoAudioStreamError, AudioReadError, input_pipeline.video.VideoReadError.
    """
    signals = clip_signals(
        path,
        sample_rate=sample_rate,
        delta=delta,
        latency_hops=latency_hops,
        flow_method=flow_method,
        flow_size=flow_size,
        with_inflection=with_agreement,
    )
    agreement = clip_agreement(signals.envelope, signals.inflection, lag_frames) if with_agreement else None
    return _labels(signals, lag_frames, agreement)


def audio_labels_for_videos(
    paths: Sequence,
    *,
    max_lag: int = DEFAULT_MAX_LAG,
    lag_frames: int | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    delta: float = DEFAULT_DELTA,
    latency_hops: float = ONSET_LATENCY_HOPS,
    flow_method: str = "dis",
    flow_size: int | None = 112,
    signals: Sequence[ClipSignals] | None = None,
) -> AudioLabelSet:
    """Audio labels for a dataset: estimate its lag, reject clips whose sound does not follow the motion.

    Rule, in order: no audio stream / unreadable → rejected with the error; no onset → "no audio onsets";
    Pearson r of envelope vs inflection at the dataset lag below ``min_agreement`` (or undefined) → rejected
    with r. The lag is estimated on every clip with onsets, then once more on the kept clips only (so a
    soundtrack of music cannot pull it), and the agreement recomputed at the final lag.

    Args:
      paths: video files; lag_frames: use this lag instead of estimating one.
      signals: precomputed :func:`clip_signals` (then ``paths`` is ignored), e.g. to try several thresholds.

    Returns:
      AudioLabelSet; ``lag.num_clips`` is 0 when ``lag_frames`` was given.
    """
    rejected: dict[str, str] = {}
    if signals is None:
        signals = []
        for path in paths:
            try:
                signals.append(
                    clip_signals(
                        path,
                        sample_rate=sample_rate,
                        delta=delta,
                        latency_hops=latency_hops,
                        flow_method=flow_method,
                        flow_size=flow_size,
                    )
                )
            except ValueError as err:  # AudioReadError, VideoReadError: both name the file
                rejected[os.fspath(path)] = getattr(err, "problem", str(err))
    candidates = []
    for s in signals:
        if s.onsets.times_s.size == 0:
            rejected[s.path] = "no audio onsets (silent or no transient sound)"
        else:
            candidates.append(s)

    def lag_of(clips) -> LagEstimate:
        if lag_frames is not None:
            return LagEstimate(int(lag_frames), {}, 0)
        return estimate_lag([c.envelope for c in clips], [c.inflection for c in clips], max_lag)

    def split(clips, lag: int):
        kept, low = [], {}
        for c in clips:
            r = clip_agreement(c.envelope, c.inflection, lag)
            if np.isfinite(r) and r >= min_agreement:
                kept.append((c, r))
            else:
                low[c.path] = (
                    f"onset/inflection agreement r={r:.2f} < {min_agreement:g} at lag {lag} frames "
                    "(music, speech or sound unrelated to the motion?)"
                )
        return kept, low

    if not candidates:
        return AudioLabelSet({}, rejected, LagEstimate(int(lag_frames or 0), {}, 0))
    lag = lag_of(candidates)
    kept, low = split(candidates, lag.lag_frames)
    if lag_frames is None and kept and low:
        lag = lag_of([c for c, _ in kept])
        kept, low = split(candidates, lag.lag_frames)
    rejected.update(low)
    labels = {c.path: _labels(c, lag.lag_frames, r) for c, r in kept}
    return AudioLabelSet(labels, rejected, lag)
