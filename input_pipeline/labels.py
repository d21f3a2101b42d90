"""Ground-truth labels for real videos: `--labels` of `ta2net detect` and the file-based evaluation.

A label spec is one of:

* an inline list of frames, ``"12,31,53"`` (0-based frame indices at the video's native rate);
* a JSON file holding a list of frames;
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

Every problem (missing file, bad JSON, video not in the file, an entry without frames) raises ValueError or
FileNotFoundError naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from input_pipeline.datasets import audible623_csv

__all__ = ["VideoLabels", "ONSET_SETTING", "parse_labels", "label_keys", "NoLabelsForVideoError"]

ONSET_SETTING = "delta_0.3_condfoleygen"


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


def _frames(values, where: str) -> np.ndarray:
    try:
        a = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a list of frame numbers, got {values!r:.80}") from None
    if a.size and (not np.all(np.isfinite(a)) or a.min() < 0):
        raise ValueError(f"{where}: frame numbers must be finite and >= 0")
    return np.rint(a).astype(np.int64)


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
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: labels file not found")
    if path.lower().endswith(".csv"):
        return _read_csv(path)
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (JSON or CSV) labels file") from None


def _is_inline(spec: str) -> bool:
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    try:
        [float(p) for p in parts]
    except ValueError:
        return False
    return bool(parts) and not os.path.exists(spec)


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
        return VideoLabels(_frames([p for p in spec.split(",") if p.strip()], f"--labels {spec!r}"), source="inline")
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
