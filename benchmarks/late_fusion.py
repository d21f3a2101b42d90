"""Late fusion of the shipped model and the training-free detector: does adding the inflection margin to the
model's margin find real contacts the model alone misses?

The two detectors fail differently on the real clips of ../shared/realdata (docs/RESULTS.md §2: the model
is ahead on Greatest Hits, the training-free detector on UCF101), so a sum of the two might carry further
than either. Each video is scored as ``ta2net detect`` scores it (VideoDetector.analyse: repeated frames,
borders, phase scoring) by both detectors, and every frame gets

    fused[t] = (P_model[t] − t_model) + w · (c_infl[t] − t_infl)

where t_model is the model's threshold for that video's kind (native or phase, detector.json), c_infl the
training-free detector's picking curve (its running-median prominence) and t_infl its threshold. ``fused``
is picked at 0 with the model's separation and mode, so w = 0 is exactly the shipped model. Nothing else is
re-chosen.

The decision rule, fixed before any real clip was scored: w is chosen on the ``--tune-on`` folders (the two
synthetic renderers' validation videos the shipped thresholds were calibrated on) by the mean over the
folders of each folder's pooled one-to-one F1 ±3 (ta2net calibrate's criterion), ties to the smallest w;
fusion would ship only if that w > 0 raises the criterion by at least 0.005. The real clips are then scored
at every w for information (real-benchmark protocol: Greatest Hits' audio onsets moved 1 frame earlier),
never used to choose.

    python benchmarks/late_fusion.py \\
      --tune-on v2_64_validation=data/tfds/raw/synthetic_collisions/v2/validation \\
      --tune-on perspective_validation=runs/perspective_val/videos --out runs/late_fusion
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

# The repo root first: benchmarks/input_pipeline.py would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
MIN_GAIN = 0.005


def score_margins(detectors: dict, videos: list[tuple[str, np.ndarray]], cache: str, name: str) -> list[dict]:
    """Each detector's per-frame margin over its own threshold (its picking curve minus the threshold of the
    video's kind) for each (video, GT frames), with the fps: [{"video", "gt", "fps", <detector name>: [T]}];
    cached in ``cache``/``name``.npz (a detector missing from the cache is scored and added)."""
    from input_pipeline.progress import tqdm

    path = os.path.join(cache, f"{name}.npz")
    stored = dict(np.load(path, allow_pickle=True)) if os.path.exists(path) else {}
    out = []
    for video, gt in tqdm(videos, desc=f"score {name}", unit="video"):
        key = os.path.basename(video)
        for method, detector in detectors.items():
            if f"{key}|{method}" in stored:
                continue
            a = detector.analyse(video)
            picking = a["picking"]
            curve = picking.curve(np.asarray(a["scores"], np.float64), a["decoded"].fps)
            stored[f"{key}|{method}"] = curve - picking.threshold
            stored[f"{key}|fps"] = np.float64(a["decoded"].fps)
            np.savez(path, **stored)
        margins = {m: stored[f"{key}|{m}"] for m in detectors}
        if len({m.size for m in margins.values()}) != 1:
            sizes = ", ".join(f"{m} {v.size}" for m, v in margins.items())
            raise ValueError(f"{video}: the detectors scored different frame counts ({sizes})")
        out.append({"video": video, "gt": np.asarray(gt, np.int64), "fps": float(stored[f"{key}|fps"]), **margins})
    return out


def score_folders(detectors: dict, tune_on: list[str], realdata: str, cache: str) -> tuple[dict, dict]:
    """`score_margins` of every ``--tune-on`` NAME=FOLDER (by name) and of the labelled real clips of
    ``realdata`` (by set, GT as the real-clip benchmark gives it), cached in ``cache``."""
    from ta2net_jax.evaluation import calibration
    from ta2net_jax.evaluation.real_benchmark import SETS, labelled_clips

    tuned = {}
    for spec in tune_on:
        folder = calibration.parse_folder_spec(spec)
        videos = [(video, labels.frames) for video, labels in calibration.folder_labels(folder)]
        tuned[folder.name] = score_margins(detectors, videos, cache, folder.name)
    real = {}
    for clip in labelled_clips(realdata, SETS):
        real.setdefault(clip["set"], []).append((clip["path"], clip["gt"]))
    return tuned, {name: score_margins(detectors, videos, cache, f"real_{name}") for name, videos in real.items()}


def pooled_f1(videos: list[dict], fused, picking) -> dict:
    """Pooled F1 ±3 of ``videos`` picked on ``fused(video)`` (a [T] margin) at 0, counted as `ta2net
    calibrate` counts."""
    from ta2net_jax.evaluation.calibration import Scored, folder_metrics

    scored = [Scored(v["video"], fused(v), v["gt"], v["fps"], 1) for v in videos]
    m = folder_metrics(scored, picking, {"native": 0.0, "phase": 0.0})
    return {"f1_tol3": m["f1_tol3"], "precision": m["precision"], "recall": m["recall"], "detected": m["tp"] + m["fp"]}


def _f1(videos: list[dict], w: float, picking) -> dict:
    return pooled_f1(videos, lambda v: v["model"] + w * np.nan_to_num(v["inflection"], nan=0.0), picking)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tune-on", action="append", required=True, help="NAME=FOLDER of labelled videos")
    parser.add_argument("--realdata", default="../shared/realdata")
    parser.add_argument("--workdir", default=None, help="run or bundle (default: the shipped model)")
    parser.add_argument("--out", default="runs/late_fusion")
    args = parser.parse_args()

    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.export import bundle

    os.makedirs(args.out, exist_ok=True)
    detectors = {
        "model": VideoDetector(workdir=args.workdir or bundle.packaged_model_dir(), method="model"),
        "inflection": VideoDetector(method="inflection"),
    }
    picking = detectors["model"].picking.replace(threshold=0.0, prominence_window_s=0.0)

    tuned, real = score_folders(detectors, args.tune_on, args.realdata, args.out)

    rows = []
    for w in WEIGHTS:
        row = {"w": w, "tune": {n: _f1(v, w, picking) for n, v in tuned.items()}}
        row["criterion"] = float(np.mean([m["f1_tol3"] for m in row["tune"].values()]))
        row["real"] = {n: [_f1([c], w, picking)["f1_tol3"] for c in clips] for n, clips in real.items()}
        row["real_mean"] = float(np.mean([np.mean(f) for f in row["real"].values()]))
        rows.append(row)
    best = max(rows, key=lambda r: (r["criterion"], -r["w"]))
    ships = best["w"] > 0 and best["criterion"] >= rows[0]["criterion"] + MIN_GAIN
    result = {"rows": rows, "chosen_w": best["w"], "ships": ships, "min_gain": MIN_GAIN}
    with open(os.path.join(args.out, "late_fusion.json"), "w") as f:
        json.dump(result, f, indent=2)

    names, sets = list(tuned), list(real)
    print("| w | " + " | ".join(f"{n} F1 ±3" for n in names) + " | criterion | "
          + " | ".join(f"{s} F1 ±3 (mean of clips)" for s in sets) + " | real mean |")  # fmt: skip
    print("|" + "---|" * (len(names) + len(sets) + 3))
    for r in rows:
        cells = [f"{r['tune'][n]['f1_tol3']:.3f}" for n in names] + [f"{r['criterion']:.3f}"]
        cells += [f"{np.mean(r['real'][s]):.3f}" for s in sets] + [f"{r['real_mean']:.3f}"]
        print(f"| {r['w']:g} | " + " | ".join(cells) + " |")
    print(f"chosen on the tuning folders: w = {best['w']:g}; ships: {ships} (needs w > 0 and a gain >= {MIN_GAIN})")


if __name__ == "__main__":
    main()
