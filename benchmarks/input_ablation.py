"""Which inputs does the shipped model's timing use? Each labelled video is scored as ``ta2net detect`` scores it
(VideoDetector.analyse: repeated frames, borders, phase scoring, the locator's blended timing), with one of the
model's inputs replaced in every window just before the jitted forward pass:

    none            the inputs as they are (the shipped model, its detector.json picking)
    grey_frames     every RGB frame a constant grey (128): the video trunk sees no appearance
    static_frames   every frame of a window its first one: appearance kept, its change over time removed
    no_motion       both flows zero (so the inflection flow too): only the RGB frames are left
    flow_xG         both flows multiplied by G (``--flow-gains``): the model's sensitivity to motion scale

Per labelled folder it prints the pooled one-to-one F1 ±3 at the shipped thresholds (each video's kind: native
or phase-scored) and the pooled AP@±3 (candidates = the peaks of the picking curve; needs no threshold), and
for the real clips of ../shared/realdata the same per set as the real-clip benchmark counts them (mean over
the clips of each set; Greatest Hits' audio onsets moved 1 frame earlier). Nothing is chosen from these
numbers: they say where the model's timing comes from (docs/RESULTS.md §4 "Which inputs the timing uses").

    python benchmarks/input_ablation.py \\
      --folder v2_64_validation=data/tfds/raw/synthetic_collisions/v2/validation \\
      --folder perspective_validation=runs/perspective_val/videos --out runs/input_ablation
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import numpy as np

# The repo root first: benchmarks/input_pipeline.py would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GREY = 128
BASE_ABLATIONS = ("none", "grey_frames", "static_frames", "no_motion")


def ablate(windows: dict, name: str) -> dict:
    """``windows`` (frames [W, T, H, W, 3] uint8, flow_fwd / flow_bwd [W, T+1, H, W, 2]) with the input
    ``name`` replaces (module docstring); the rest (num_valid) as it is."""
    out = dict(windows)
    if name == "none":
        return out
    if name == "grey_frames":
        out["frames"] = np.full_like(windows["frames"], GREY)
    elif name == "static_frames":
        out["frames"] = np.ascontiguousarray(np.broadcast_to(windows["frames"][:, :1], windows["frames"].shape))
    elif name == "no_motion":
        out["flow_fwd"] = np.zeros_like(windows["flow_fwd"])
        out["flow_bwd"] = np.zeros_like(windows["flow_bwd"])
    elif name.startswith("flow_x"):
        gain = float(name[len("flow_x") :])
        out["flow_fwd"] = windows["flow_fwd"] * np.float32(gain)
        out["flow_bwd"] = windows["flow_bwd"] * np.float32(gain)
    else:
        raise ValueError(f"unknown ablation {name!r}: {', '.join(BASE_ABLATIONS)} or flow_xG")
    return out


@contextlib.contextmanager
def ablated(name: str):
    """Every inference.Predictor (the timing model's and the locator's) sees its windows ablated by ``name``."""
    from ta2net_jax import inference

    plain = inference.Predictor.__call__

    def call(self, windows):
        return plain(self, ablate(windows, name))

    inference.Predictor.__call__ = call
    try:
        yield
    finally:
        inference.Predictor.__call__ = plain


def score_folder(detector, videos: list[tuple[str, np.ndarray]], name: str, ablation: str, cache: str) -> list:
    """Per (video, GT frames): (scores [N], GT, fps, the picking detect used), cached in ``cache``."""
    from input_pipeline.progress import tqdm

    path = os.path.join(cache, f"{name}.{ablation}.npz")
    stored = dict(np.load(path, allow_pickle=True)) if os.path.exists(path) else {}
    out = []
    with ablated(ablation):
        for video, gt in tqdm(videos, desc=f"{name} {ablation}", unit="video"):
            key = os.path.basename(video)
            if f"{key}|scores" not in stored:
                a = detector.analyse(video)
                stored[f"{key}|scores"] = np.asarray(a["scores"], np.float64)
                stored[f"{key}|fps"] = np.float64(a["decoded"].fps)
                stored[f"{key}|threshold"] = np.float64(a["picking"].threshold)
                np.savez(path, **stored)
            picking = detector.picking.replace(threshold=float(stored[f"{key}|threshold"]))
            out.append((stored[f"{key}|scores"], np.asarray(gt, np.int64), float(stored[f"{key}|fps"]), picking))
    return out


def pooled(clips: list) -> dict:
    """Pooled one-to-one F1 ±3 (each clip at its own picking) and AP@±3 of [(scores, GT, fps, picking)]."""
    from ta2net_jax.detection import events as events_lib
    from ta2net_jax.evaluation.metrics.ap import average_precision
    from ta2net_jax.evaluation.metrics.timing import evaluate_videos

    picked, candidates = [], []
    for scores, gt, fps, picking in clips:
        picked.append((picking.pick(scores, fps)[0], gt))
        curve = picking.curve(scores, fps)
        frames, values = events_lib.peak_candidates(curve, min_separation=picking.separation(fps))
        candidates.append((frames, values - picking.threshold, gt))  # margins: one ranking across kinds
    m = evaluate_videos(picked)
    return {
        "f1_tol3": m["event_f1_tol3"],
        "detected": m["num_predictions"],
        "ap_tol3": average_precision(candidates, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", action="append", default=[], help="NAME=FOLDER of labelled videos")
    parser.add_argument("--realdata", default="../shared/realdata", help="'' to leave the real clips out")
    parser.add_argument("--workdir", default=None, help="run or bundle (default: the shipped model)")
    parser.add_argument("--flow-gains", default="", help="comma-separated G for flow_xG rows, e.g. 0.7,1.5")
    parser.add_argument("--out", default="runs/input_ablation")
    args = parser.parse_args()

    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.evaluation import calibration
    from ta2net_jax.evaluation.real_benchmark import SETS, labelled_clips
    from ta2net_jax.export import bundle

    ablations = list(BASE_ABLATIONS) + [f"flow_x{g}" for g in filter(None, args.flow_gains.split(","))]
    os.makedirs(args.out, exist_ok=True)
    detector = VideoDetector(workdir=args.workdir or bundle.packaged_model_dir(), method="model")
    if detector.fused:
        raise SystemExit("input_ablation.py scores with DIS flow (the model's inputs are ablated on the host)")

    # name -> units: each unit's videos are pooled and the units averaged. A synthetic folder is one unit; a
    # real set one unit per clip, as the real-clip benchmark counts it (docs/RESULTS.md §2).
    folders = {}
    for spec in args.folder:
        folder = calibration.parse_folder_spec(spec)
        folders[folder.name] = [[(v, labels.frames) for v, labels in calibration.folder_labels(folder)]]
    if args.realdata:
        for clip in labelled_clips(args.realdata, SETS):
            if clip["gt"] is not None:
                folders.setdefault(f"real_{clip['set']}", []).append([(clip["path"], clip["gt"])])

    rows = []
    for ablation in ablations:
        for name, units in folders.items():
            metrics = [pooled(score_folder(detector, unit, name, ablation, args.out)) for unit in units]
            row = {"ablation": ablation, "folder": name, "units": len(units)}
            for key in ("f1_tol3", "ap_tol3", "detected"):
                values = [m[key] for m in metrics if m[key] is not None]
                row[key] = float(np.sum(values) if key == "detected" else np.mean(values)) if values else None
            rows.append(row)
    with open(os.path.join(args.out, "input_ablation.json"), "w") as f:
        json.dump(rows, f, indent=2)

    names = list(folders)
    print("| inputs | " + " | ".join(f"{n} F1 ±3 / AP@±3" for n in names) + " |")
    print("|" + "---|" * (len(names) + 1))
    for ablation in ablations:
        cells = []
        for n in names:
            r = next(r for r in rows if r["ablation"] == ablation and r["folder"] == n)
            ap = "–" if r["ap_tol3"] is None else f"{r['ap_tol3']:.3f}"
            cells.append(f"{r['f1_tol3']:.3f} / {ap}")
        print(f"| {ablation} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
