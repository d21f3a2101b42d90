"""One benchmark on every labelled real clip of ``../shared/realdata`` (issue 12, point 4): per clip and per set
mean F1 (±1/±2/±3), AP@±3 and counts for every detector, as one Markdown table for docs/RESULTS.md.

    ta2net real-benchmark [--realdata DIR] [--workdir RUN] [--out DIR] [--results-md F] [--flow NAME]
    (scripts/real_benchmark.sh runs it)

Protocol (the same for every method):

* Clips: the sets of ``SETS`` (the two Greatest Hits clips, GT = librosa audio onsets with ``delta=0.3``; the
  two UCF101 clips with Audible623 human labels). The two RepCount clips have no audible events: they only
  get a counting table (#events vs the annotated count).
* Every clip is decoded and scored as ``ta2net detect`` does (detect.VideoDetector.analyse): ``inflection``
  and ``reference`` without a run (112 px, DIS), ``model`` with ``--workdir`` (the run's input, its
  detector.json picking). ``--flow`` (e.g. ``tvl1-jax``) changes the flow of ``inflection`` and ``model`` as
  ``detect --flow`` does; the reference is defined on DIS and keeps it.
* Two pickings per method. ``default``: the detector's own picking (the reference's median + 1·std rule;
  the model's synthetic-validation picking from detector.json; the inflection default). ``LOO``: the
  threshold re-tuned leave-one-clip-out: for each clip, ``events.tune_picking`` (pooled F1 ±3) on the OTHER
  labelled clips of every set, then applied to the held-out clip; separation, prominence window and mode
  are never tuned on real clips. A detector whose default threshold was itself chosen on these clips
  (``Detector.default_fitted_on_real_clips``: the training-free ``inflection``) has its default rows marked
  ``default*`` (in-sample): its held-out figure is the LOO row. ``all_clips_picking`` in results.json is the
  threshold tuned on all labelled clips together, the value such a default is set to.
* Audio-onset lag: one fixed shift, the same for every method, fitted on nothing: audio-onset GT frames
  (Greatest Hits) are moved ``LABEL_LAG_FRAMES`` = 1 frame earlier, the middle of the 0.5–2 frames by which
  onsets lag the visible contact (../shared/realdata/README.md), rounded; Audible623 labels are human frame
  indices of the contact and are not moved. The rest of the lag is left to the matching tolerance.
* Metrics: one-to-one F1 on run-clustered labels and detections (metrics.timing), AP@±3 over the local peaks
  of the thresholded curve (the prominence where the picking has a window), NMS at the clip's separation.
* Threshold sensitivity: the per-set mean F1 ±3 again with every clip's default threshold × 0.8–1.2
  (``threshold_sweep`` in results.json, threshold_sweep.png, a min–max table), because with two clips a set
  one event moves a set's mean by 0.03–0.07: a difference between two models at their own thresholds inside
  that band says little. Nothing is chosen from it.

Outputs (``--out``): results.json, tables.md, event_locations.png (detected events marked at their (x, y)),
threshold_sweep.png.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from ta2net_jax.evaluation.videos import input_changes, json_default

__all__ = [
    "SETS",
    "COUNT_SETS",
    "labelled_clips",
    "run_benchmark",
    "tables",
    "write_into",
    "benchmark",
    "save_locations_sheet",
    "threshold_sweep",
    "sweep_band",
]

SETS = {  # set -> (folder, label file), relative to the realdata folder
    "greatest_hits": ("greatest_hits_condfoleygen", "greatest_hits_condfoleygen/audio_onsets.json"),
    "audible623_ucf101": ("ucf101_audible623", "ucf101_audible623/labels.json"),
}
# Frames the labels lag the visible contact (module doc): audio onsets 1 (the middle of the documented
# 0.5–2 frames, rounded), Audible623 human frame indices 0. GT frames are moved this much earlier.
LABEL_LAG_FRAMES = {"greatest_hits": 1, "audible623_ucf101": 0}
COUNT_SETS = {"repcount": ("repcount_ucfrep", "repcount_ucfrep/repcount_samples_labels.json")}
BEGIN, END = "<!-- real_benchmark:begin -->", "<!-- real_benchmark:end -->"
# Every clip's default threshold (a phase-scored clip's too) times each factor: how far a set's F1 ±3 moves
# with where the threshold sits. On two clips per set one event is 0.03–0.07 of a set's mean, and a threshold
# chosen on synthetic validation lands on such a curve wherever its noise puts it.
SWEEP_FACTORS = tuple(round(0.8 + 0.025 * k, 3) for k in range(17))  # 0.8, 0.825, …, 1.2
STABLE_BAND = (0.9, 1.1)  # the band tables.md summarises (min–max of the mean over sets)


def labelled_clips(realdata: str, sets: dict) -> list[dict]:
    """Every clip of ``sets`` under ``realdata``: {set, id, path, labels, gt}; ``gt`` the label frames moved
    LABEL_LAG_FRAMES earlier (None for a clip with counts only)."""
    from input_pipeline.labels import parse_labels
    from ta2net_jax.detection.detect import list_videos

    clips = []
    for name, (folder, label_file) in sets.items():
        for video in list_videos(os.path.join(realdata, folder)):
            labels = parse_labels(os.path.join(realdata, label_file), video)
            lag = LABEL_LAG_FRAMES.get(name, 0)
            gt = None if labels.frames is None else np.maximum(labels.frames - lag, 0)
            clips.append({"set": name, "id": os.path.basename(video), "path": video, "labels": labels, "gt": gt})
    return clips


def _pooled_f1(clips) -> float:
    """Pooled one-to-one F1 ±3 of (scores, GT frames, fps, picking) per clip, each with its own picking."""
    from ta2net_jax.evaluation.metrics.timing import evaluate_videos

    return evaluate_videos([(picking.pick(s, fps)[0], gt) for s, gt, fps, picking in clips])["event_f1_tol3"]


def _clip_metrics(scores, fps: float, picking, gt) -> dict:
    from ta2net_jax.detection import events as events_lib
    from ta2net_jax.evaluation.metrics.ap import average_precision
    from ta2net_jax.evaluation.metrics.timing import evaluate_videos

    frames, _ = picking.pick(scores, fps)
    m = evaluate_videos([(frames, gt)])
    cand = events_lib.peak_candidates(picking.curve(scores, fps), min_separation=picking.separation(fps))
    return {
        "events": frames.tolist(),
        "num_gt": m["num_labels_clustered"],
        "num_pred": m["num_predictions"],
        **{f"f1_tol{k}": m[f"event_f1_tol{k}"] for k in (1, 2, 3)},
        "ap_tol3": average_precision([(cand[0], cand[1], gt)], 3),
    }


def threshold_sweep(labelled: list[dict]) -> dict:
    """Per-set mean F1 ±3 (over clips) and its mean over sets with every clip's own picking threshold times
    each of SWEEP_FACTORS; ``labelled``: scored clips {set, scores, fps, picking, gt}."""
    from ta2net_jax.evaluation.metrics.timing import evaluate_videos

    per_set: dict[str, list[float]] = {}
    for factor in SWEEP_FACTORS:
        f1: dict[str, list[float]] = {}
        for c in labelled:
            picking = c["picking"].replace(threshold=c["picking"].threshold * factor)
            frames, _ = picking.pick(c["scores"], c["fps"])
            f1.setdefault(c["set"], []).append(evaluate_videos([(frames, c["gt"])])["event_f1_tol3"])
        for name, values in f1.items():
            per_set.setdefault(name, []).append(float(np.mean(values)))
    mean = np.mean(list(per_set.values()), axis=0) if per_set else np.zeros(len(SWEEP_FACTORS))
    return {"factors": list(SWEEP_FACTORS), "per_set": per_set, "mean": [float(x) for x in mean]}


def sweep_band(sweep: dict, band=STABLE_BAND) -> tuple[float, float]:
    """(min, max) of the sweep's mean over sets for the factors inside ``band``."""
    inside = [m for f, m in zip(sweep["factors"], sweep["mean"]) if band[0] - 1e-9 <= f <= band[1] + 1e-9]
    return min(inside), max(inside)


def run_benchmark(
    realdata: str, *, workdir: str | None = None, methods=("inflection", "reference"), flow: str | None = None
) -> dict:
    """Scores every clip once per method, then the default and leave-one-clip-out pickings (module doc).
    ``flow``: the optical-flow estimator of every method that does not fix its own (the reference keeps DIS);
    None = detect's default (the run's estimator for the model, DIS for the training-free detector)."""
    from ta2net_jax.detection import events as events_lib
    from ta2net_jax.detection.detect import VideoDetector

    methods = tuple(methods) + (("model",) if workdir and "model" not in methods else ())
    clips = labelled_clips(realdata, SETS)
    count_clips = labelled_clips(realdata, COUNT_SETS)
    result = {
        "realdata": os.path.abspath(realdata),
        "workdir": workdir,
        "label_lag_frames": LABEL_LAG_FRAMES,
        "flow": flow,
        "methods": {},
    }
    for method in methods:
        detector = VideoDetector(workdir=workdir if method == "model" else None, method=method, flow_method=flow)
        scored = []
        for clip in clips + count_clips:
            a = detector.analyse(clip["path"])
            # a["picking"]: the detector's, with the phase threshold for a clip scored in phases (analysis_rate.py)
            fps, picking = a["decoded"].fps, a["picking"]
            scored.append(
                {
                    **clip,
                    "scores": a["scores"],
                    "fps": fps,
                    "detected": a["events"],
                    "picking": picking,
                    "repeated_frames": a["repeated_frames"],
                    "borders": a["borders"],
                }
            )
        labelled = [c for c in scored if c["gt"] is not None and c["set"] in SETS]
        fitted_here = type(detector.detector).default_fitted_on_real_clips and (
            detector.picking == type(detector.detector).default_picking()
        )
        pooled = [(c["scores"], c["gt"], c["fps"]) for c in labelled]
        all_clips, all_clips_f1 = events_lib.tune_picking(pooled, detector.picking, tol=3)
        default_f1 = _pooled_f1([(c["scores"], c["gt"], c["fps"], c["picking"]) for c in labelled])
        rows = []
        for i, clip in enumerate(labelled):
            gt = clip["gt"]
            others = [(c["scores"], c["gt"], c["fps"]) for j, c in enumerate(labelled) if j != i]
            loo, _ = events_lib.tune_picking(others, detector.picking, tol=3)
            for variant, picking in (("default*" if fitted_here else "default", clip["picking"]), ("LOO", loo)):
                rows.append(
                    {
                        "set": clip["set"],
                        "id": clip["id"],
                        "variant": variant,
                        "threshold": picking.threshold,
                        **_clip_metrics(clip["scores"], clip["fps"], picking, gt),
                    }
                )
        counts = [
            {
                "set": c["set"],
                "id": c["id"],
                "gt_count": c["labels"].count,
                "num_events": int(c["picking"].pick(c["scores"], c["fps"])[0].size),
            }
            for c in scored
            if c["set"] in COUNT_SETS
        ]
        result["methods"][method] = {
            "picking": detector.picking.to_dict(),
            "default_fitted_here": bool(fitted_here),
            "all_clips_picking": all_clips.to_dict(),
            "all_clips_pooled_f1_tol3": all_clips_f1,
            "default_pooled_f1_tol3": default_f1,
            "input": {"image_size": detector.image_size, "flow": detector.flow_method},
            "rows": rows,
            "threshold_sweep": threshold_sweep(labelled),
            "counting": counts,
            # Default-picking events with their (x, y) in source pixels, for the event sheet.
            "detected": {c["path"]: c["detected"] for c in labelled},
            "gt": {c["path"]: c["gt"] for c in labelled},
            **input_changes(scored, "path"),
        }
    return result


def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def rows_by_set_and_picking(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """One method's per-clip rows grouped by (set, picking), in the order they first appear."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["variant"]), []).append(r)
    return groups


def mean_over_clips(rows: list[dict], column: str) -> float:
    """The mean of one column over clips (a set's figure: every clip counts equally), clips without it left out."""
    return float(np.mean([r[column] for r in rows if r[column] is not None]))


def tables(result: dict) -> str:
    """Markdown: one temporal table (per clip, then the per-set mean of per-clip values) and a counting table."""
    cols = ("f1_tol1", "f1_tol2", "f1_tol3", "ap_tol3")
    lines = [
        "| set | clip | method | picking | threshold | GT | detected | F1 ±1 | F1 ±2 | F1 ±3 | AP@±3 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    means = []
    for method, d in result["methods"].items():
        for r in d["rows"]:
            lines.append(
                f"| {r['set']} | {r['id']} | {method} | {r['variant']} | {_fmt(r['threshold'])} | {r['num_gt']} | "
                f"{r['num_pred']} | " + " | ".join(_fmt(r[c]) for c in cols) + " |"
            )
        for (s, variant), rs in rows_by_set_and_picking(d["rows"]).items():
            gt, pred = sum(r["num_gt"] for r in rs), sum(r["num_pred"] for r in rs)
            means.append(
                f"| {s} | {method} | {variant} | {len(rs)} | {gt} | {pred} | "
                + " | ".join(_fmt(mean_over_clips(rs, c)) for c in cols)
                + " |"
            )
    head = [
        "| set | method | picking | clips | GT | detected | mean F1 ±1 | mean F1 ±2 | mean F1 ±3 | mean AP@±3 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    count = ["| clip | GT count | " + " | ".join(f"#events {m}" for m in result["methods"]) + " |"]
    count.append("|---|---|" + "---|" * len(result["methods"]))
    first = next(iter(result["methods"].values()), {"counting": []})
    for k, c in enumerate(first["counting"]):
        counts = " | ".join(str(d["counting"][k]["num_events"]) for d in result["methods"].values())
        count.append(f"| {c['id']} | {_fmt(c['gt_count'])} | {counts} |")
    fitted = [m for m, d in result["methods"].items() if d.get("default_fitted_here")]
    note = (
        f"\n\n`default*` ({', '.join(fitted)}): the default threshold was chosen on these clips (pooled F1 ±3 over "
        "all of them, `all_clips_picking` in results.json), so that row is in-sample; the LOO row is its "
        "held-out figure."
        if fitted
        else ""
    )
    lo, hi = STABLE_BAND
    sweep = ["| method | mean F1 ±3 (default) | min–max, threshold × " + f"{lo}–{hi} | min–max, × 0.8–1.2 |"]
    sweep.append("|---|---|---|---|")
    for method, d in result["methods"].items():
        s = d["threshold_sweep"]
        at_one = s["mean"][s["factors"].index(1.0)]
        band, full = sweep_band(s), sweep_band(s, (SWEEP_FACTORS[0], SWEEP_FACTORS[-1]))
        sweep.append(f"| {method} | {at_one:.3f} | {band[0]:.3f}–{band[1]:.3f} | {full[0]:.3f}–{full[1]:.3f} |")
    sweep_text = (
        "\n\n#### How much the threshold moves it (default threshold × 0.8–1.2, every clip's own)\n\n"
        + "\n".join(sweep)
        if len(sweep) > 2
        else ""
    )
    flow = result.get("flow")
    flow_note = f"Optical flow `{flow}` for every method but the reference (defined on DIS, which it keeps).\n\n"
    return (
        (flow_note if flow else "")
        + "#### Per set (mean over clips)\n\n"
        + "\n".join(head + means)
        + note
        + sweep_text
        + "\n\n#### Per clip\n\n"
        + "\n".join(lines)
        + "\n\n#### Counting (RepCount, default picking)\n\n"
        + "\n".join(count)
        + "\n"
    )


def write_into(path: str, text: str) -> None:
    """Replaces the text between the benchmark markers of ``path`` (which must hold both markers)."""
    with open(path) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"{path}: no {BEGIN} … {END} markers")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    doc = pattern.sub(lambda _: f"{BEGIN}\n{text}{END}", doc)
    with open(path, "w") as f:
        f.write(doc)


def save_locations_sheet(result: dict, path: str) -> dict | None:
    """The event sheet (event_sheet.py) of the model method, else inflection: up to 4 detected events per
    labelled clip, true hits first, each frame marked at the reported (x, y)."""
    from ta2net_jax.evaluation.event_sheet import event_panels, save_event_sheet

    method = "model" if "model" in result["methods"] else next(iter(result["methods"]), None)
    if method is None:
        return None
    d = result["methods"][method]
    panels = [p for video, events in d["detected"].items() for p in event_panels(video, events, d["gt"][video])]
    if not panels:
        return None
    save_event_sheet(path, panels, title=f"{method}: detected events, red mark = reported (x, y)")
    return {"method": method, "path": path}


def benchmark(
    realdata: str, out: str, *, workdir: str | None = None, results_md: str | None = None, flow: str | None = None
) -> str:
    """Runs the benchmark, writes ``out``/results.json and tables.md (and the tables into ``results_md``
    between the markers); returns the tables (`ta2net real-benchmark`)."""
    result = run_benchmark(realdata, workdir=workdir, flow=flow)
    text = tables(result)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(result, f, indent=2, default=json_default)
    with open(os.path.join(out, "tables.md"), "w") as f:
        f.write(text)
    if results_md:  # the tables only: the figures' paths below are in `out`, which a checkout does not hold
        write_into(results_md, text)
    sheet = save_locations_sheet(result, os.path.join(out, "event_locations.png"))
    if sheet:
        text += f"\nEvent locations ({sheet['method']}): {sheet['path']}\n"
    sweeps = {m: d["threshold_sweep"] for m, d in result["methods"].items()}
    if sweeps:
        from ta2net_jax.evaluation.plots import plot_threshold_sweeps

        plot_threshold_sweeps(os.path.join(out, "threshold_sweep.png"), sweeps)
        text += f"Threshold sweep: {os.path.join(out, 'threshold_sweep.png')}\n"
    return text
