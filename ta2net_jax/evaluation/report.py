"""Markdown reports, the one writer: tables of pooled and per-video metrics with their plots, for `ta2net eval`
(`write_run_report`: report.md in the workdir; timelines of the first videos in eval_plots/, PR curves,
predicted vs GT counts, cIoU success curves and map examples in eval_report/) and `ta2net eval-videos`
(`write_files_report`: report.md in the output folder). Images are linked by paths relative to the report,
so the folder can be moved or viewed on GitHub as it is."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from input_pipeline.video import read_video
from ta2net_jax.evaluation import contacts, protocols, rate_tuning
from ta2net_jax.evaluation.metrics import spatial
from ta2net_jax.evaluation.plots import (
    plot_counts,
    plot_map_examples,
    plot_pr_curves,
    plot_success_curves,
    plot_timeline,
)


def fmt(value, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, None as "n/a", bools as yes/no."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value).replace("|", "\\|")


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 3) -> str:
    """Markdown table; ``columns``: (key, header) pairs; a missing key is "n/a"."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(k), digits) for k, _ in columns) + " |")
    return "\n".join(lines)


class Report:
    """Accumulates Markdown sections; ``write()`` saves ``path``."""

    def __init__(self, path: str, title: str):
        self.path = path
        self.parts = [f"# {title}", ""]

    def heading(self, text: str, level: int = 2) -> None:
        self.parts += ["#" * level + " " + text, ""]

    def text(self, text: str) -> None:
        self.parts += [text, ""]

    def table(self, rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 3) -> None:
        self.parts += [table(rows, columns, digits), ""]

    def image(self, path: str, caption: str) -> None:
        rel = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(self.path)))
        self.parts += [f"![{caption}]({rel})", ""]

    def write(self) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "w") as f:
            f.write("\n".join(self.parts).rstrip() + "\n")
        return self.path


# ---- `ta2net eval` ---------------------------------------------------------------------------------------

NUM_TIMELINES = 4
TEMPORAL_KEYS = [
    "event_f1_tol1",
    "event_f1_tol2",
    "event_f1_tol3",
    "event_precision_tol3",
    "event_recall_tol3",
    "event_f1_tol3_video_mean",
    "orig_recall_tol3",
    "orig_precision_tol3",
    "orig_f1_tol3",
    "ap_tol0",
    "ap_tol1",
    "ap_tol2",
    "ap_tol3",
    "ap_tol4",
    "ap_mean_tol0124",
]


def _unit(x: np.ndarray) -> np.ndarray:
    peak = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 1.0
    return x / max(peak, 1e-12)


def _map_examples(path: str, examples: list[dict]) -> bool:
    items = []
    for ex in examples:
        video = ex["raw"][: -len(".json")] + ".mp4"
        if not os.path.exists(video):
            continue
        frames = read_video(video).frames
        with open(ex["raw"]) as f:
            points = [[e["x"], e["y"]] for e in json.load(f)["events"] if int(e["frame"]) == ex["frame_index"]]
        items.append(
            {
                "frame": frames[ex["frame_index"]],
                "map": ex["map"],
                "boxes": ex["boxes"],
                "points": points,
                "caption": f"{ex['id']} f{ex['frame_index']} cIoU {ex['ciou']:.2f}",
            }
        )
    if items:
        plot_map_examples(path, items, title="sound-source map (chosen polarity), GT boxes (green), contacts (x)")
    return bool(items)


def write_run_report(
    config,
    workdir: str,
    result: dict,
    test: list[dict],
    scored: dict,
    temporal: dict,
    counting: dict,
    cious: dict,
    pickings: dict,
) -> str:
    """`pickings`: the tuned events.Picking of "scores" (the model) and "inflection"."""
    thresholds = {key: p.threshold for key, p in pickings.items()}
    separation = pickings["scores"]
    separation = (
        f"{separation.min_separation_s} s at each video's fps"
        if separation.min_separation_s is not None
        else f"{separation.min_separation_frames} frames"
    )

    cfg = config.eval
    plots = os.path.join(workdir, "eval_report")  # PR, counts, cIoU, map examples
    timelines = os.path.join(workdir, "eval_plots")  # one timeline PNG per video (NUM_TIMELINES)
    os.makedirs(plots, exist_ok=True)
    os.makedirs(timelines, exist_ok=True)
    rep = Report(
        os.path.join(workdir, "report.md"),
        f"Evaluation: {os.path.basename(os.path.abspath(workdir))}, step {result['checkpoint_step']}",
    )
    rep.text(
        f"Dataset `{config.data.name}/{config.data.get('builder_config', '')}`, reported split "
        f"`{cfg.split}` ({result['num_videos']} videos); thresholds and map polarity tuned on `{cfg.tune_split}`. "
        f"Frames at the native rate; window {config.data.num_frames}, stride {cfg.stride}, events: runs above "
        f"the threshold → one event at the peak, NMS {separation}. Definitions: "
        "docs/evaluation_choices.md."
    )

    rep.heading("Temporal (pooled over the split)")
    rows = [
        {"detector": "TA²Net (model)", "threshold": thresholds["scores"], **{k: result.get(k) for k in TEMPORAL_KEYS}},
        {
            "detector": "inflection energy (training-free)",
            "threshold": thresholds["inflection"],
            **{k: result["inflection"].get(k) for k in TEMPORAL_KEYS},
        },
    ]
    cols = [("detector", "detector"), ("threshold", "threshold")] + [
        (k, k.replace("event_", "").replace("_tol", " ±").replace("_video_mean", " (video mean)"))
        for k in TEMPORAL_KEYS
    ]
    rep.table(rows, cols)
    for tol in (1, 3):
        curves = {
            name: protocols.pr_curve(scored[key], tol, cfg.min_separation)
            for key, name in (("model", "model"), ("inflection", "inflection energy"))
        }
        plot_pr_curves(
            os.path.join(plots, f"pr_tol{tol}.png"), curves, title=f"PR over score thresholds, ±{tol} frames"
        )
        rep.image(os.path.join(plots, f"pr_tol{tol}.png"), f"precision-recall, ±{tol} frames")

    rep.heading("Counting (pooled)")
    rep.text(
        'GT count = number of run-clustered events per video; predicted = #events ("events") or '
        '#events − 1 ("intervals"). MAE = mean |ĉ − c| / (c + 0.1), OBO = fraction with |ĉ − c| ≤ 1, '
        "OBZ = exact, RMSE in counts."
    )
    crow = [
        {"detector": name, **counting[key][0][mode]}
        for key, name in (("model", "model"), ("inflection", "inflection"))
        for mode in counting[key][0]
    ]
    rep.table(
        crow,
        [("detector", "detector"), *protocols.COUNTING_SUMMARY_COLUMNS],
    )
    plot_counts(
        os.path.join(plots, "counts.png"),
        {
            name: ([r["gt_count"] for r in counting[key][1]], [r["pred_events"] for r in counting[key][1]])
            for key, name in (("model", "model"), ("inflection", "inflection energy"))
        },
        title=f"{cfg.split}: #events vs GT count",
    )
    rep.image(os.path.join(plots, "counts.png"), "predicted vs ground-truth counts")

    if result.get("found_by_contact"):
        rep.heading("Which contacts are found")
        rep.text(
            "Exact events of the split (before run clustering) with a detected event within ±3 frames, by contact "
            "kind and by impact speed in pixels per frame of the model input (evaluation/contacts.py)."
        )
        found = result["found_by_contact"]
        rep.table(contacts.table_rows(found), [("group", "contacts"), *((name, name) for name in found)])

    rep.heading("Spatial (sound source)")
    s = result["spatial"]
    rep.text(
        f"Map polarity chosen on `{cfg.tune_split}`: **{s['map_polarity']}** (pointing accuracy there: peak "
        f"{_f(s['validation_pointing_accuracy']['peak'])}, "
        f"inverted {_f(s['validation_pointing_accuracy']['inverted'])}). "
        f"Pointing: GT contact within {s['pointing_radius_px']:.1f} px (one map cell) of the chosen cell's centre. "
        f"cIoU / AUC: {s['ciou_boxes']}."
    )
    srows = []
    for p in ("peak", "inverted"):
        srows.append(
            {
                "detector": f"model, {p} cell" + (" (chosen)" if p == s["map_polarity"] else ""),
                "pointing": s["pointing_accuracy"][p],
                **s["ciou"][p],
            }
        )
    srows.append(
        {
            "detector": "inflection energy, peak pixel",
            "pointing": s["inflection_pointing_accuracy"],
            **s["inflection_ciou"],
        }
    )
    if s.get("constant_cell_prior"):
        prior = s["constant_cell_prior"]
        srows.append(
            {
                "detector": f"prior: always cell (row, col) = {tuple(prior['cell_row_col'])}, chosen on "
                f"{cfg.tune_split}",
                "pointing": prior["pointing_accuracy"],
            }
        )
    rep.table(
        srows,
        [
            ("detector", "detector"),
            ("pointing", "pointing acc."),
            ("num_samples", "cIoU samples"),
            ("ciou_at_0.5", "cIoU@0.5"),
            ("auc", "AUC"),
            ("mean_ciou", "mean cIoU"),
        ],
    )
    rep.text(
        "Where the chosen cell falls at the GT events (fraction per cell, rows top to bottom): "
        + "; ".join(" ".join(f"{x:.2f}" for x in row) for row in s["chosen_cell_histogram"])
        + "."
    )
    curves = {
        "model (peak)": cious["peak"]["model"],
        "model (inverted)": cious["inverted"]["model"],
        "inflection energy": cious["peak"]["inflection"],
    }
    if any(len(c) for c in curves.values()):
        plot_success_curves(
            os.path.join(plots, "ciou_success.png"),
            curves,
            spatial.AUC_THRESHOLDS,
            title="cIoU success curves (area = AUC)",
        )
        rep.image(os.path.join(plots, "ciou_success.png"), "cIoU success curves")
    if _map_examples(os.path.join(plots, "map_examples.png"), cious[s["map_polarity"]]["examples"]):
        rep.image(os.path.join(plots, "map_examples.png"), "map examples")

    rep.heading("Timelines")
    for v in test[:NUM_TIMELINES]:
        picking = rate_tuning.picking_for(v, pickings["scores"])  # a phase-scored video has its own threshold
        detected = picking.pick(v["scores"], v["fps"])[0]
        path = os.path.join(timelines, f"{v['id']}.png")
        plot_timeline(
            path,
            v["scores"],
            fps=v["fps"],
            events=detected,
            labels=v["event_frames"],
            threshold=picking.threshold,
            title=f"{v['id']}: P(audible), step {result['checkpoint_step']}",
            extra_curves={"inflection energy (z / max)": _unit(v["inflection"])},
        )
        rep.image(path, v["id"])

    for key, name in (("model", "model"), ("inflection", "inflection energy")):
        rep.heading(f"Per video: {name}")
        merged = {r["id"]: dict(r) for r in temporal[key][1]}
        for r in counting[key][1]:
            merged.setdefault(r["id"], {}).update(r)
        rep.table(list(merged.values()), protocols.TEMPORAL_COLUMNS + protocols.COUNTING_COLUMNS[1:])
    return rep.write()


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# ---- `ta2net eval-videos` -------------------------------------------------------------------------------


def write_files_report(result: dict, scored: dict, out_dir: str, name: str) -> str:
    """report.md of `ta2net eval-videos` in `out_dir`: temporal and counting tables per detector, PR curves,
    counts, and each video's timeline (already drawn into `out_dir/plots/`)."""
    plots = os.path.join(out_dir, "plots")
    rep = Report(os.path.join(out_dir, "report.md"), f"Evaluation on video files: {name}")
    rep.text(
        f"Labels: `{result['labels']}`; {len(result['videos'])} videos. Frames and tolerances are at each "
        "video's native rate. Spatial metrics: none (no boxes on these clips)."
    )
    rep.heading("Temporal (pooled)")
    # The `eval` table's columns, pooled figures only (no per-video mean; the original's F without its parts).
    left_out = ("event_f1_tol3_video_mean", "orig_recall_tol3", "orig_precision_tol3")
    keys = [k for k in TEMPORAL_KEYS if k not in left_out]
    rows = [
        {
            "detector": m,
            "threshold": d["threshold"],
            "videos": d["temporal"].get("num_videos"),
            **{k: d["temporal"].get(k) for k in keys},
        }
        for m, d in result["detectors"].items()
    ]
    rep.table(
        rows,
        [("detector", "detector"), ("threshold", "threshold"), ("videos", "videos")]
        + [(k, k.replace("event_", "").replace("_tol", " ±")) for k in keys],
    )
    curves = {m: protocols.pr_curve(scored[m], 3, 1) for m, d in result["detectors"].items()}
    if any(len(p) for p, _ in curves.values()):
        plot_pr_curves(os.path.join(plots, "pr_tol3.png"), curves, title=f"{name}: PR over thresholds, ±3 frames")
        rep.image(os.path.join(plots, "pr_tol3.png"), "precision-recall at ±3 frames")
    rep.heading("Counting (pooled)")
    rep.text(
        "GT count: the annotated repetition count (cycles) where the label file has one, else the number "
        'of run-clustered GT events. Predicted count: #events ("events") or #events − 1 ("intervals"). '
        "MAE = mean |ĉ − c| / (c + 0.1); OBO = fraction with |ĉ − c| ≤ 1."
    )
    crow = [{"detector": m, **d["counting"][mode]} for m, d in result["detectors"].items() for mode in d["counting"]]
    rep.table(
        crow,
        [("detector", "detector"), *protocols.COUNTING_SUMMARY_COLUMNS],
    )
    series = {
        m: ([r["gt_count"] for r in d["counting_per_video"]], [r["pred_events"] for r in d["counting_per_video"]])
        for m, d in result["detectors"].items()
    }
    if any(len(g) for g, _ in series.values()):
        plot_counts(os.path.join(plots, "counts.png"), series, title=f"{name}: #events vs GT count")
        rep.image(os.path.join(plots, "counts.png"), "predicted vs ground-truth counts")
    for m, d in result["detectors"].items():
        rep.heading(f"Per video: {m}")
        if d["temporal_per_video"]:
            rep.table(d["temporal_per_video"], protocols.TEMPORAL_COLUMNS)
        if d["counting_per_video"]:
            rep.table(d["counting_per_video"], protocols.COUNTING_COLUMNS)
        for r in scored[m]:
            stem = os.path.splitext(r["id"])[0]
            rep.image(os.path.join(plots, f"{stem}.{m}.png"), f"{r['id']} ({m})")
    return rep.write()
