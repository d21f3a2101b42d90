"""Ground-truth labels for real videos: `--labels` of `ta2net detect` and the file-based evaluation.

A label spec is one of:

* an inline list of frames, ``"12,31,53"`` (0-based frame indices at the video's native rate);
* a JSON file holding a list of frames (every file may be a `gs://` URL);
* a JSON file keyed by video, looked up by the video's file name, then by its stem (name without the
  extension). An entry may be
  - an Audible623 clip entry (``../shared/realdata/ucf101_audible623/labels.json``):
    ``{"audible623": {"frames": [...]}, "ucfrep": {"count": c, "cycles": [...]} or null}``;
  - a RepCount/UCFRep entry (``repcount_ucfrep/repcount_samples_labels.json``): ``{"count": c, "cycles": [...]}``
    (a repetition count and cycles, no audible-event frames);
  - an audio-onset entry (``greatest_hits_condfoleygen/audio_onsets.json``):
    ``{"audio_onsets": {"delta_0.3_condfoleygen": {"frames_at_native_fps": [...]}}}``; the onset setting
    is ``ONSET_SETTING`` (CondFoleyGen's ``delta=0.3``), fractional frames are rounded to the nearest frame;
  - a plain list of frames, or ``{"frames": [...]}`` (optionally with ``"count"``);
* an Audible623 CSV (``data_train.csv`` / ``data_eval.csv``: ``video_id,"f1,f2,…",class``), read by the
  dataset builders' parser (input_pipeline/datasets/audible623_csv.py, every quirk handled the same way;
  ``-1`` marks a clip with no sound: no events); the first row of a duplicated id wins.

Every problem (missing file, bad JSON, video not in the file, an entry without frames, a value that is not
a frame number, a negative, non-finite or huge (> ``MAX_FRAME``) frame, a malformed inline list such as
``12,abc``) raises ValueError or FileNotFoundError naming the file or value and the problem. Frames at or
past the end of the video are not an error: where labels meet the decoded video (``within_video``) they
are named in one warning and dropped, so they never count as ground truth.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np

from input_pipeline import paths
from input_pipeline.datasets import audible623_csv

__all__ = ["VideoLabels", "ONSET_SETTING", "parse_labels", "label_keys", "within_video", "NoLabelsForVideoError"]

ONSET_SETTING = "delta_0.3_condfoleygen"
log = logging.getLogger(__name__)


class NoLabelsForVideoError(ValueError):
    """A labels file keyed by video name has no entry for this video (batch modes skip such videos)."""


@dataclasses.dataclass
class VideoLabels:
    """One video's ground truth. ``frames``: audible-event frames (int64, raw: runs not clustered) or None;
    ``count``: an annotated repetition count (cycles) or None; ``cycles``: [[start, end], ...] or None;
    ``source``: where it came from (for reports)."""

    frames: np.ndarray | None
    count: float | None = None
    cycles: list | None = None
    source: str = ""


MAX_FRAME = 10**9  # a frame number above this is a mistake (a 30 fps video of a year has 1e9 frames)


def _frames(values, where: str) -> np.ndarray:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {v!r:.40} is not a frame number") from None
        if not np.isfinite(f) or f < 0 or f > MAX_FRAME:
            raise ValueError(f"{where}: frame number {v!r:.40} is out of range (0 … {MAX_FRAME})")
        out.append(f)
    return np.rint(np.asarray(out, dtype=np.float64)).astype(np.int64)


def within_video(labels: VideoLabels | None, num_frames: int, video: str) -> VideoLabels | None:
    """`labels` without the frames at or past the end of a video of `num_frames` frames; those are named in
    one warning and dropped (never counted as ground truth). Used where labels meet a decoded video."""
    if labels is None or labels.frames is None:
        return labels
    past = labels.frames >= num_frames
    if not past.any():
        return labels
    shown = ", ".join(str(f) for f in labels.frames[past][:10]) + (", …" if past.sum() > 10 else "")
    log.warning("%s: label frames %s are past the end of the video (%d frames): dropped", video, shown, num_frames)
    return dataclasses.replace(labels, frames=labels.frames[~past])


def _entry(entry, where: str) -> VideoLabels:
    if isinstance(entry, list):
        return VideoLabels(_frames(entry, where), source=where)
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a list of frames or an object, got {type(entry).__name__}")
    count = cycles = None
    rep = entry.get("ucfrep") if "ucfrep" in entry else entry
    if isinstance(rep, dict) and rep.get("count") is not None:
        count, cycles = float(rep["count"]), rep.get("cycles")
    frames = None
    if isinstance(entry.get("audible623"), dict):
        frames = _frames(entry["audible623"]["frames"], f"{where}: audible623.frames")
    elif isinstance(entry.get("audio_onsets"), dict):
        onsets = entry["audio_onsets"].get(ONSET_SETTING)
        if not isinstance(onsets, dict) or "frames_at_native_fps" not in onsets:
            raise ValueError(f"{where}: audio_onsets has no {ONSET_SETTING!r} frames_at_native_fps")
        frames = _frames(onsets["frames_at_native_fps"], f"{where}: audio onsets")
    elif "frames" in entry:
        frames = _frames(entry["frames"], f"{where}: frames")
    if frames is None and count is None:
        raise ValueError(f"{where}: no frames (audible623.frames, audio_onsets, frames) and no count in this entry")
    return VideoLabels(frames, count, cycles, where)


def _read_csv(path: str) -> dict:
    """{video_id: frames} of an Audible623 CSV, by the dataset builders' parser (audible623_csv.py: the same
    cleaning rules, `-1` "no sound" rows have no events); a repeated id keeps its first row."""
    rows, _ = audible623_csv.read_label_csv(path)
    table: dict = {}
    for row in rows:
        table.setdefault(row.video_id, list(row.frames))
    return table


def _load(path: str):
    if not paths.isfile(path):
        raise FileNotFoundError(f"{path}: labels file not found")
    if path.lower().endswith(".csv"):
        return _read_csv(path)
    try:
        return json.loads(paths.read_text(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (JSON or CSV) labels file") from None


def _is_inline(spec: str) -> bool:
    """An inline list: not an existing path (nor a URL), and either holds a comma or is one number."""
    if paths.is_remote(spec) or os.path.exists(spec):
        return False
    if "," in spec:
        return True
    try:
        float(spec)
    except ValueError:
        return False
    return True


def _inline(spec: str) -> np.ndarray:
    parts = [p.strip() for p in spec.strip().rstrip(",").split(",")]
    if not all(parts):
        raise ValueError(f"--labels {spec!r}: malformed inline label list (an empty entry)")
    for p in parts:
        try:
            float(p)
        except ValueError:
            raise ValueError(f"--labels {spec!r}: malformed inline label list ({p!r} is not a frame number)") from None
    return _frames(parts, f"--labels {spec!r}")


def label_keys(video_path: str) -> list[str]:
    """The keys a video is looked up by in a keyed labels file: its file name, then its stem."""
    name = os.path.basename(video_path)
    return [name, os.path.splitext(name)[0]]


def parse_labels(spec: str | None, video_path: str | None = None) -> VideoLabels | None:
    """The ground truth of ``video_path`` from a label spec (module docstring); None when spec is empty."""
    if spec is None or not str(spec).strip():
        return None
    spec = str(spec).strip()
    if _is_inline(spec):
        return VideoLabels(_inline(spec), source="inline")
    data = _load(spec)
    if isinstance(data, list):
        return VideoLabels(_frames(data, spec), source=spec)
    if not isinstance(data, dict):
        raise ValueError(f"{spec}: expected a JSON list of frames or an object keyed by video name")
    if video_path is None:
        raise ValueError(f"{spec}: a labels file keyed by video name needs the video's path")
    for key in label_keys(video_path):
        if key in data:
            return _entry(data[key], f"{spec} [{key}]")
    known = ", ".join(sorted(data)[:8]) + (", …" if len(data) > 8 else "")
    raise NoLabelsForVideoError(
        f"{spec}: no labels for {os.path.basename(video_path)} (looked up "
        f"{' and '.join(repr(k) for k in label_keys(video_path))}; the file has {known})"
    )
