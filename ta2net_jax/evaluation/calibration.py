"""`ta2net calibrate`: re-choose a trained model's picking thresholds on labelled video folders, each folder
counting as much as the others, so that one renderer's (or one camera's) score statistics do not set them alone.

`ta2net eval` tunes the thresholds on its config's validation split, one renderer. P(audible) of a model
is calibrated to the videos it was tuned on: on videos of another look the same contacts score lower
(docs/RESULTS.md §5), so a threshold fitted to one renderer can be far from right on the next. Calibration
scores every video of every `--tune-on` folder exactly as `ta2net detect` does (VideoDetector.analyse:
repeated frames, borders, phase scoring), then chooses the named thresholds to maximise the MEAN over the
folders of each folder's pooled one-to-one event F1 ±3 (docs/evaluation.md), not the F1 of all videos
pooled, so a folder with many events does not outvote the others.

* Thresholds: ``native``, the model picking's (videos scored at their own rate), and ``phase``, that of
  videos scored as interleaved phases (`analysis_rate` in detector.json; detection/analysis_rate.py). Only
  the named ones change; every other picking parameter (separation, mode, analysis bound) stays. With both,
  native is chosen first (phase fixed), then phase.
* Grid: ``NUM_CANDIDATES`` quantiles of the finite scores of the videos of that kind (all folders pooled),
  plus the current value; ties go to the smallest threshold.
* Labels: ``FOLDER/labels.json`` (any format `--labels` reads, input_pipeline/labels.py) when it exists,
  else each video's own ``<stem>.json`` beside it with an ``events`` list of ``{"frame": ...}`` (what the
  synthetic renders store: data/tfds/raw/synthetic_collisions/<renders>/<split>/). A video with neither
  stops the run, naming it.
* `--check-on` folders are scored and reported before and after, never tuned on (a test split).
* detector.json is rewritten in place, the previous one kept once as ``detector.before_calibration.json``,
  and a ``calibration`` record names the folders, the criterion and each folder's F1 before and after.
* ``--flow NAME`` scores the videos on another flow estimator than the run was trained on (e.g. ``tvl1-jax``
  for a DIS-trained model): P(audible) on another flow sits elsewhere (docs/RESULTS.md §3), so those
  thresholds are chosen apart and stored apart, in ``thresholds_by_flow[NAME]`` (with their own record);
  ``detect``/``eval-videos``/``real-benchmark --flow NAME`` use them, and the run's own stay untouched.
  ``--flow tvl1-jax --tvl1 KEY=VALUE`` scores with those TV-L1 settings (flow_jax.SETTINGS overrides)
  and stores them in that entry too (``tvl1_options``), so detect estimates the flow as the thresholds saw it.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from input_pipeline import paths
from ta2net_jax.detection import events as events_lib
from ta2net_jax.evaluation.metrics.timing import cluster_runs, match_events, prf_from_counts

__all__ = [
    "LabelledFolder",
    "Scored",
    "parse_folder_spec",
    "folder_labels",
    "score_folder",
    "tune",
    "calibrate",
    "KINDS",
]

NUM_CANDIDATES = 200
TOL = 3
KINDS = ("native", "phase")
BACKUP = "detector.before_calibration.json"


@dataclasses.dataclass(frozen=True)
class LabelledFolder:
    name: str
    folder: str


@dataclasses.dataclass
class Scored:
    """One video as detect scores it: ``scores`` [N] per native frame, ``labels`` raw GT frames [E] (native
    frames), ``fps`` the native rate, ``stride`` > 1 when scored as that many interleaved phases."""

    video: str
    scores: np.ndarray
    labels: np.ndarray
    fps: float
    stride: int

    @property
    def kind(self) -> str:
        return "phase" if self.stride > 1 else "native"


def parse_folder_spec(spec: str) -> LabelledFolder:
    """``NAME=FOLDER`` (or a bare FOLDER, named by its last component)."""
    name, sep, folder = spec.partition("=")
    if not sep:
        name, folder = os.path.basename(os.path.normpath(spec)), spec
    if not name or not folder:
        raise ValueError(f"{spec!r}: expected NAME=FOLDER (a folder of videos with labels)")
    if not paths.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder (from {spec!r})")
    return LabelledFolder(name, folder)


def _sidecar_frames(video: str) -> np.ndarray:
    sidecar = os.path.splitext(video)[0] + ".json"
    if not paths.exists(sidecar):
        raise ValueError(
            f"{video}: no labels (neither labels.json in its folder nor {os.path.basename(sidecar)} beside it)"
        )
    try:
        record = json.loads(paths.read_text(sidecar))
        return np.array([int(e["frame"]) for e in record["events"]], np.int64)
    except (ValueError, KeyError, TypeError) as err:
        problem = f"{type(err).__name__}: {err}"
        raise ValueError(f"{sidecar}: expected {{'events': [{{'frame': ...}}, ...]}} ({problem})") from None


def folder_labels(folder: LabelledFolder) -> list:
    """Every video of ``folder`` with its labels, [(video path, input_pipeline.labels.VideoLabels)]: from
    FOLDER/labels.json when it exists, else each video's ``<stem>.json`` (module doc)."""
    from input_pipeline import labels as labels_lib
    from ta2net_jax.detection.detect import list_videos

    labels_file = paths.join(folder.folder, "labels.json")
    keyed = labels_file if paths.exists(labels_file) else None
    out = []
    for video in list_videos(folder.folder):
        labels = labels_lib.parse_labels(keyed, video) if keyed else labels_lib.VideoLabels(_sidecar_frames(video))
        if labels.frames is None:
            raise ValueError(f"{keyed}: the entry of {video} has no event frames")
        out.append((video, labels))
    return out


def score_folder(detector, folder: LabelledFolder, progress: bool = True) -> list[Scored]:
    """Every video of ``folder`` scored by ``detector`` (a detect.VideoDetector), with its labels."""
    from input_pipeline import labels as labels_lib
    from input_pipeline.progress import tqdm

    out = []
    for video, labels in tqdm(folder_labels(folder), desc=f"score {folder.name}", unit="video", disable=not progress):
        analysed = detector.analyse(video)
        scores = np.asarray(analysed["scores"], np.float64)
        frames = labels_lib.within_video(labels, scores.size, video).frames  # past the end: dropped, named
        out.append(Scored(video, scores, frames, float(analysed["decoded"].fps), int(analysed["analysis_stride"])))
    return out


def _counts(videos: list[Scored], picking: events_lib.Picking, threshold: float) -> np.ndarray:
    """Summed (tp, fp, fn) at ±TOL of ``videos`` picked at ``threshold``."""
    total = np.zeros(3, np.int64)
    for v in videos:
        frames = picking.replace(threshold=float(threshold)).pick(v.scores, v.fps)[0]
        total += match_events(cluster_runs(v.labels), cluster_runs(frames), TOL)
    return total


def folder_metrics(videos: list[Scored], picking: events_lib.Picking, thresholds: dict) -> dict:
    """Pooled precision, recall, F1 ±TOL and counts of one folder at ``thresholds`` {kind: value}."""
    counts = sum((_counts([v for v in videos if v.kind == k], picking, thresholds[k]) for k in KINDS), np.zeros(3))
    p, r, f = prf_from_counts(*(int(c) for c in counts))
    n_phase = sum(v.kind == "phase" for v in videos)
    return {"videos": len(videos), "phase_scored": n_phase, "tp": int(counts[0]), "fp": int(counts[1]),
            "fn": int(counts[2]), "precision": p, "recall": r, "f1_tol3": f}  # fmt: skip


def tune(
    folders: dict[str, list[Scored]], picking: events_lib.Picking, thresholds: dict, kinds=("phase",)
) -> tuple[dict, dict]:
    """The thresholds {kind: value} maximising the mean over ``folders`` of their pooled F1 ±TOL, changing only
    ``kinds`` (in KINDS order), and per kind the mean F1 of every candidate tried ({threshold: F1})."""
    chosen, curves = dict(thresholds), {}
    for kind in (k for k in KINDS if k in kinds):
        of_kind = {name: [v for v in vs if v.kind == kind] for name, vs in folders.items()}
        finite = [v.scores[np.isfinite(v.scores)] for vs in of_kind.values() for v in vs]
        if not finite:
            raise ValueError(f"no {kind}-scored video in the tuning folders: the {kind} threshold cannot be tuned")
        grid = np.unique(np.r_[np.quantile(np.concatenate(finite), np.linspace(0, 1, NUM_CANDIDATES)), chosen[kind]])
        # The other kind's videos do not depend on this threshold: their counts are computed once.
        fixed = {
            name: sum((_counts([v for v in vs if v.kind == k], picking, chosen[k]) for k in KINDS if k != kind), 0)
            for name, vs in folders.items()
        }

        def mean_f1(threshold: float, of_kind=of_kind, fixed=fixed) -> float:
            return float(
                np.mean([prf_from_counts(*(fixed[n] + _counts(of_kind[n], picking, threshold)))[2] for n in folders])
            )

        best, _, curve = events_lib.best_threshold(grid, mean_f1)
        chosen[kind], curves[kind] = best, curve
    return chosen, curves


def current_thresholds(detector) -> dict:
    """{native, phase} of a VideoDetector: its picking's threshold and detector.json's phase threshold (the
    native one when the run scores no video as phases)."""
    native = float(detector.picking.threshold)
    phase = detector.detector.phase_threshold
    return {"native": native, "phase": native if phase is None else float(phase)}


def calibrate(
    workdir: str,
    tune_on: list[LabelledFolder],
    check_on: list[LabelledFolder] = (),
    kinds=("phase",),
    progress=True,
    flow: str | None = None,
    tvl1_options: dict | None = None,
) -> dict:
    """Scores, tunes and rewrites ``workdir``/detector.json (module doc); returns the calibration record.
    ``flow``: score with this flow estimator; when it is not the run's own, the chosen thresholds go to
    detector.json's ``thresholds_by_flow[flow]`` (what `detect --flow` that estimator uses), the run's own
    thresholds staying as they are. ``tvl1_options``: TV-L1 settings for ``flow`` "tvl1-jax" (default: those
    stored with its thresholds, else OpenCV's), stored with the thresholds chosen on them."""
    from ta2net_jax.detection.detect import THRESHOLDS_BY_FLOW, TVL1_OPTIONS, VideoDetector
    from ta2net_jax.export import bundle

    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise ValueError(f"--tune: expected one or more of {', '.join(KINDS)}, got {', '.join(kinds) or 'nothing'}")
    tuned_json = bundle.read_tuned(workdir)
    if not tuned_json:
        raise FileNotFoundError(f"{workdir}/detector.json: none; run `ta2net eval` (or export a bundle) first")
    if "phase" in kinds and not tuned_json.get("analysis_rate"):
        raise ValueError(f"{workdir}/detector.json: this model scores no video as phases (no analysis_rate)")
    detector = VideoDetector(workdir=workdir, method="model", flow_method=flow, tvl1_options=tvl1_options)
    other_flow = detector.flow_method != detector.run_flow_method
    if detector.tvl1_options and not other_flow:
        raise ValueError(
            f"{workdir}: the model was trained on {detector.flow_method} flow, so its own thresholds are for that "
            "flow as it was trained; --tvl1 settings are only stored with the thresholds of a flow it was not "
            "trained on (--flow tvl1-jax for a model trained on another flow)"
        )
    before = current_thresholds(detector)
    scored = {f.name: score_folder(detector, f, progress) for f in tune_on}
    checked = {f.name: score_folder(detector, f, progress) for f in check_on}
    after, curves = tune(scored, detector.picking, before, kinds)
    record = {
        "criterion": f"mean over the tuning folders of each folder's pooled one-to-one event F1 ±{TOL}",
        "flow": detector.flow_method,
        **({TVL1_OPTIONS: detector.tvl1_options} if detector.tvl1_options else {}),
        "tuned": {k: {"before": before[k], "after": after[k]} for k in kinds},
        "tune_on": {f.name: f.folder for f in tune_on},
        "check_on": {f.name: f.folder for f in check_on},
        "folders": {
            name: {
                "role": "tune" if name in scored else "check",
                "before": folder_metrics(vs, detector.picking, before),
                "after": folder_metrics(vs, detector.picking, after),
            }
            for name, vs in {**scored, **checked}.items()
        },
        "mean_f1_by_threshold": {k: {f"{t:.4f}": f for t, f in c.items()} for k, c in curves.items()},
    }
    backup = paths.join(workdir, BACKUP)
    if not paths.exists(backup):
        paths.write_text(backup, json.dumps(tuned_json, indent=2, sort_keys=True))
    if other_flow:
        # Every threshold is stored (the ones not tuned as they stood) so the entry is whole on its own.
        entry = {**after, "calibration": record}
        if detector.tvl1_options:  # detect estimates the flow with the settings these thresholds were chosen on
            entry[TVL1_OPTIONS] = detector.tvl1_options
        tuned_json.setdefault(THRESHOLDS_BY_FLOW, {})[detector.flow_method] = entry
    else:
        if "native" in kinds:
            tuned_json["model_picking"] = {**tuned_json.get("model_picking", {}), "threshold": after["native"]}
            tuned_json["model_threshold"] = after["native"]
        if "phase" in kinds:
            tuned_json["analysis_rate"]["threshold"] = after["phase"]
        tuned_json["calibration"] = record
    paths.write_text(paths.join(workdir, "detector.json"), json.dumps(tuned_json, indent=2, sort_keys=True))
    return record


def summary_lines(record: dict) -> list[str]:
    """The record as a short table for the console."""
    lines = [f"{k} threshold {v['before']:.3f} → {v['after']:.3f}" for k, v in record["tuned"].items()]
    lines.append(f"{'folder':24s} {'role':5s} {'videos':>6s} {'F1 ±3 before':>13s} {'after':>7s}  P / R after")
    for name, row in record["folders"].items():
        a = row["after"]
        lines.append(
            f"{name:24s} {row['role']:5s} {a['videos']:6d} {row['before']['f1_tol3']:13.3f} {a['f1_tol3']:7.3f}"
            f"  {a['precision']:.3f} / {a['recall']:.3f}"
        )
    return lines
