"""An ensemble of detector bundles: does averaging several models' margins find real contacts better than any
one of them?

Each member (a run or bundle) scores every video as ``ta2net detect`` scores it (VideoDetector.analyse:
repeated frames, borders, phase scoring); a frame's margin is the member's picking curve minus its own
threshold for that video's kind (native or phase, its detector.json). The ensemble's margin is the members'
mean; every candidate (each member alone, and the ensemble) is picked at ``margin − δ`` with the first member's
separation and mode, δ chosen from OFFSETS on the ``--tune-on`` folders, so a member alone gets its threshold
re-chosen the same way as the ensemble does (δ = 0: its detector.json).

The decision rule, fixed before any real clip was scored: the criterion is the mean over the ``--tune-on``
folders of each folder's pooled one-to-one F1 ±3 (ta2net calibrate's), at each candidate's best δ (ties to the
smallest |δ|); the ensemble would ship only if its criterion is at least MIN_GAIN above every member's.
The real clips are scored at each candidate's chosen δ for information (real-benchmark protocol: Greatest
Hits' audio onsets moved 1 frame earlier), never used to choose.

    python benchmarks/ensemble.py --member rotA=runs/rotA_bundle --member ctlB=runs/ctlB_bundle \\
      --tune-on v2_64_validation=data/tfds/raw/synthetic_collisions/v2/validation \\
      --tune-on perspective_validation=runs/perspective_val/videos --out runs/ensemble
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
sys.path.insert(1, str(Path(__file__).resolve().parent))

from late_fusion import pooled_f1, score_folders  # noqa: E402

OFFSETS = tuple(np.round(np.arange(-0.1, 0.1001, 0.01), 3))
MIN_GAIN = 0.005


def _evaluate(tuned: dict, real: dict, members: list[str], picking) -> dict:
    """Per δ of OFFSETS: each folder's pooled F1 ±3 and their mean (the criterion) for the mean of ``members``'
    margins; at the best δ also the real clips' F1 ±3 (per clip, per set)."""

    def fused(delta):
        return lambda v: np.mean([v[m] for m in members], axis=0) - delta

    rows = []
    for delta in OFFSETS:
        tune = {n: pooled_f1(v, fused(delta), picking) for n, v in tuned.items()}
        criterion = float(np.mean([m["f1_tol3"] for m in tune.values()]))
        rows.append({"delta": float(delta), "tune": tune, "criterion": criterion})
    best = max(rows, key=lambda r: (round(r["criterion"], 9), -abs(r["delta"])))
    at_best = fused(best["delta"])
    real_f1 = {n: [pooled_f1([c], at_best, picking)["f1_tol3"] for c in clips] for n, clips in real.items()}
    at_zero = next(r for r in rows if r["delta"] == 0.0)
    return {
        "members": members,
        "delta": best["delta"],
        "criterion": best["criterion"],
        "tune": best["tune"],
        "criterion_at_0": at_zero["criterion"],
        "real": real_f1,
        "real_mean": float(np.mean([np.mean(f) for f in real_f1.values()])),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--member", action="append", default=[], help="NAME=RUN_OR_BUNDLE (the shipped model is 'shipped')"
    )
    parser.add_argument("--tune-on", action="append", required=True, help="NAME=FOLDER of labelled videos")
    parser.add_argument("--realdata", default="../shared/realdata")
    parser.add_argument("--out", default="runs/ensemble")
    args = parser.parse_args()

    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.export import bundle

    os.makedirs(args.out, exist_ok=True)
    workdirs = {"shipped": bundle.packaged_model_dir()}
    for spec in args.member:
        name, _, workdir = spec.partition("=")
        if not name or not workdir:
            raise SystemExit(f"--member {spec!r}: give NAME=RUN_OR_BUNDLE")
        workdirs[name] = workdir
    detectors = {name: VideoDetector(workdir=w, method="model") for name, w in workdirs.items()}
    picking = detectors["shipped"].picking.replace(threshold=0.0, prominence_window_s=0.0)

    tuned, real = score_folders(detectors, args.tune_on, args.realdata, args.out)

    candidates = {name: [name] for name in detectors}
    candidates["ensemble"] = list(detectors)
    results = {name: _evaluate(tuned, real, members, picking) for name, members in candidates.items()}
    best_single = max(results[n]["criterion"] for n in detectors)
    ships = results["ensemble"]["criterion"] >= best_single + MIN_GAIN
    with open(os.path.join(args.out, "ensemble.json"), "w") as f:
        json.dump({"results": results, "ships": ships, "min_gain": MIN_GAIN, "workdirs": workdirs}, f, indent=2)

    names, sets = list(tuned), list(real)
    print("| candidate | δ | " + " | ".join(f"{n} F1 ±3" for n in names) + " | criterion (at δ = 0) | "
          + " | ".join(f"{s} F1 ±3" for s in sets) + " | real mean |")  # fmt: skip
    print("|" + "---|" * (len(names) + len(sets) + 4))
    for name, r in results.items():
        cells = [f"{r['delta'] + 0.0:+.2f}"] + [f"{r['tune'][n]['f1_tol3']:.3f}" for n in names]
        cells += [f"{r['criterion']:.3f} ({r['criterion_at_0']:.3f})"]
        cells += [f"{np.mean(r['real'][s]):.3f}" for s in sets] + [f"{r['real_mean']:.3f}"]
        print(f"| {name} ({' + '.join(r['members'])}) | " + " | ".join(cells) + " |")
    print(f"best member alone {best_single:.3f}; ensemble {results['ensemble']['criterion']:.3f}; ships: {ships} "
          f"(needs +{MIN_GAIN})")  # fmt: skip


if __name__ == "__main__":
    main()
