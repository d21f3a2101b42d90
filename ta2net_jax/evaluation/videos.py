"""`ta2net eval-videos`: the temporal and counting protocols on video files with a label file (zero-shot
evaluation on real clips; no dataset build needed).

For each detector (the trained model of --workdir with the threshold `ta2net eval` tuned on synthetic
validation, and/or the training-free inflection energy with its tuned or default threshold), every video is
decoded and scored exactly as `ta2net detect` does (detect.Detector). Ground truth comes from the label file
(labels.py): audible-event frames (Audible623 labels, audio onsets) feed the temporal protocol, and the
count (an annotated repetition count, else the number of run-clustered GT events) feeds counting.
Spatial metrics are not computed: no real clip has boxes (../shared/docs/evaluation.md §7).

Writes into --out-dir: results.json (pooled and per-video), report.md (tables and plots), plots/. Videos,
folders and the label file may be `gs://` URLs (decoded from this machine's cached copy, video.py); a `gs://`
--out-dir is made in a temporary folder and uploaded, results.json and report.md last.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from input_pipeline import paths
from input_pipeline.labels import parse_labels, within_video
from ta2net_jax.evaluation import protocols
from ta2net_jax.evaluation.report import table, write_files_report

__all__ = ["evaluate_files", "collect_videos"]


def collect_videos(inputs: list[str]) -> list[str]:
    from ta2net_jax.detection.detect import list_videos

    videos = []
    for path in inputs:
        if paths.isdir(path):
            videos.extend(list_videos(path))
        elif paths.exists(path):
            videos.append(path)
        else:
            from input_pipeline.video import missing_reason

            raise FileNotFoundError(f"{path}: {missing_reason(path)}")
    return videos


def _score(detector, path: str, labels) -> dict:
    a = detector.analyse(path)
    labels = within_video(labels, len(a["scores"]), path)
    count, kind = protocols.gt_count(labels.frames, labels.count)
    return {
        "id": os.path.basename(path),
        "scores": a["scores"],
        "events": [e["frame"] for e in a["events"]],
        "fps": a["decoded"].fps,
        "gt_frames": labels.frames,
        "gt_count": count,
        "gt_count_kind": kind,
        "detected": a["events"],
        "repeated_frames": a["repeated_frames"],
        "borders": a["borders"],
        "min_separation": a["min_separation_frames"],
        "candidate_scores": detector.picking.curve(a["scores"], a["decoded"].fps),
        "threshold": a["picking"].threshold,  # the phase threshold for a video scored in phases (analysis_rate.py)
    }


def input_changes(rows: list[dict], key: str) -> dict:
    """What detection changed in the videos' input, for results.json: ``repeated_frames`` (frames dropped as
    repeats of a frame-rate conversion, input_pipeline/frame_repeats.py) and ``borders`` (black bars cropped
    before the resize, input_pipeline/borders.py), each keyed by ``row[key]`` for the videos that had any."""
    return {
        "repeated_frames": {r[key]: r["repeated_frames"] for r in rows if r["repeated_frames"]},
        "borders": {r[key]: r["borders"] for r in rows if any(r["borders"].values())},
    }


def evaluate_files(
    inputs: list[str],
    labels_spec: str,
    out_dir: str,
    *,
    workdir: str | None = None,
    methods=("inflection",),
    name: str | None = None,
    progress: bool = True,
    **detector_options,
) -> dict:
    """Scores every detector of ``methods`` on ``inputs`` (videos or folders) against ``labels_spec`` and writes
    the report into ``out_dir``; returns the results. ``detector_options``: VideoDetector's other keyword
    arguments (flow_method, keep_repeats, keep_borders), the same for every method."""
    from input_pipeline.progress import tqdm
    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.evaluation.plots import plot_timeline

    paths.check_output_dir(out_dir, "--out-dir")
    if paths.is_remote(out_dir):  # matplotlib writes files: everything is made here, then uploaded
        with tempfile.TemporaryDirectory(prefix="ta2net-eval-videos-") as local:
            result = evaluate_files(
                inputs,
                labels_spec,
                local,
                workdir=workdir,
                methods=methods,
                name=name,
                progress=progress,
                **detector_options,
            )
            paths.upload_tree(local, out_dir, last=("results.json", "report.md"))
        return result
    videos = collect_videos(inputs)
    labels = {v: parse_labels(labels_spec, v) for v in videos}  # fails early, naming the file and video
    plots = os.path.join(out_dir, "plots")
    result = {"labels": labels_spec, "videos": [paths.resolve(v) for v in videos], "detectors": {}}
    scored = {}
    for method in methods:
        # Without a workdir the model method reads the packaged model (VideoDetector), the others need none.
        detector = VideoDetector(workdir=workdir, method=method, **detector_options)
        rows = [
            _score(detector, v, labels[v])
            for v in tqdm(videos, desc=f"eval-videos ({method})", unit="video", disable=not progress)
        ]
        scored[method] = rows
        temporal, temporal_rows = protocols.temporal(rows, 1)  # each row carries its own separation
        counting, counting_rows = protocols.counting(rows)
        result["detectors"][method] = {
            "threshold": detector.threshold,
            "threshold_source": "detector.json (synthetic validation)"
            if detector.workdir and paths.exists(paths.join(detector.workdir, "detector.json"))
            else "default",
            "min_separation": detector.min_separation,
            "picking": detector.picking.to_dict(),
            "num_videos": len(rows),
            "temporal": temporal,
            "temporal_per_video": temporal_rows,
            "counting": counting,
            "counting_per_video": counting_rows,
            "events": {r["id"]: r["detected"] for r in rows},
            **input_changes(rows, "id"),
        }
        for r in rows:
            plot_timeline(
                os.path.join(plots, f"{os.path.splitext(r['id'])[0]}.{method}.png"),
                r["scores"],
                fps=r["fps"],
                events=r["events"],
                labels=r["gt_frames"],
                threshold=r["threshold"],
                title=f"{r['id']}: {method}, {len(r['events'])} events",
            )
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=2, default=json_default)
    write_files_report(result, scored, out_dir, name or labels_spec)
    return result


def json_default(x):
    """`json.dump` default for NumPy scalars and arrays in result dicts."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


def summary_tables(runs: list[tuple[str, str, str]]) -> str:
    """Markdown tables over several `eval-videos` runs: ``runs`` = [(clip set, detector label, results.json)].
    One temporal table (sets with event GT) and one counting table (all sets)."""
    temporal, counting = [], []
    for clip_set, label, path in runs:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no results; run `ta2net eval-videos` first")
        with open(path) as f:
            result = json.load(f)
        for method, d in result["detectors"].items():
            name = f"{label} {method}".strip()
            t = d["temporal"]
            if t.get("num_videos"):
                temporal.append({"set": clip_set, "detector": name, "threshold": d["threshold"], **t})
            for c in d["counting"].values():
                if c["num_videos"]:
                    counting.append({"set": clip_set, "detector": name, **c})
    tcols = [
        ("set", "clips"),
        ("detector", "detector"),
        ("threshold", "threshold"),
        ("num_videos", "videos"),
        ("num_labels_clustered", "GT events"),
        ("num_predictions", "detected"),
        ("event_f1_tol1", "F1 ±1"),
        ("event_f1_tol2", "F1 ±2"),
        ("event_f1_tol3", "F1 ±3"),
        ("orig_f1_tol3", "orig. F ±3"),
        ("ap_tol1", "AP@±1"),
        ("ap_tol2", "AP@±2"),
        ("ap_tol3", "AP@±3"),
        ("ap_mean_tol0124", "mAP δ∈{0,1,2,4}"),
    ]
    ccols = [("set", "clips"), ("detector", "detector"), *protocols.COUNTING_SUMMARY_COLUMNS]
    return "### Temporal\n\n" + table(temporal, tcols) + "\n\n### Counting\n\n" + table(counting, ccols) + "\n"
