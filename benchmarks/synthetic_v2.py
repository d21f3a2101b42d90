"""Synthetic generator v2: build time of a builder variant, and DIS end-point error vs the exact flow, v1 vs v2.

Uses ``measure`` of benchmarks/flow_estimators.py as is (EPE over all pixels and over pixels whose exact flow
exceeds 0.5 px; a pair budget taken from the middle of each video). Prints one line per measurement; the
figures of docs/synthetic.md come from these commands:

    python benchmarks/synthetic_v2.py epe --num-videos 6 --max-pairs 240
    python benchmarks/synthetic_v2.py build --variant v2_tiny
    python benchmarks/synthetic_v2.py build --variant v2 --train 10
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flow_estimators import measure  # noqa: E402

from input_pipeline.synthetic import SceneConfig, SyntheticVideo, generate_video  # noqa: E402
from input_pipeline.synthetic.randomize import resize_flow  # noqa: E402
from input_pipeline.synthetic.v2 import generate_v2  # noqa: E402

TEST_SEED = 2_000_000  # the builder's test-split seeds


def _square(v: SyntheticVideo, s: int) -> SyntheticVideo:
    """Resized as the builder does (INTER_AREA, aspect not kept), the exact flow with it."""
    frames = np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for f in v.frames])
    return SyntheticVideo(
        frames, resize_flow(v.flow_fwd, s, s), resize_flow(v.flow_bwd, s, s), v.events, v.fps, v.seed, {}
    )


def epe(num_videos: int, max_pairs: int, size: int) -> None:
    seeds = range(TEST_SEED, TEST_SEED + num_videos)
    full = [generate_v2(s) for s in seeds]
    sets = {
        f"v1 {size}x{size}": [generate_video(s, SceneConfig(height=size, width=size)) for s in seeds],
        "v2 clean (camera, no pixel effects), native size": [generate_v2(s, clean=True) for s in seeds],
        "v2 full, native size": full,
        f"v2 full, resized to {size}x{size}": [_square(v, size) for v in full],
    }
    for name, videos in sets.items():
        r = measure("dis", videos, max_pairs)
        print(
            f"EPE dis, {name}: fwd {r['epe_fwd']:.3f} bwd {r['epe_bwd']:.3f} moving {r['epe_moving']:.3f} px "
            f"({r['num_pairs']} pairs, {r['ms_per_pair']:.1f} ms/pair)"
        )


def build(variant: str, train: int | None) -> None:
    from input_pipeline.datasets import synthetic_collisions as sc

    cfg = sc.BUILDER_CONFIGS[variant]
    if train is not None:
        splits = (("train", train), ("validation", 1), ("test", 1))
        cfg = dataclasses.replace(cfg, name=f"{variant}_subset{train}", split_sizes=splits)
    data_dir = tempfile.mkdtemp(prefix="synthetic_v2_bench_")
    try:
        t0 = time.perf_counter()
        builder = sc.build(sc.SyntheticCollisions(config=cfg, data_dir=data_dir, file_format="array_record", workers=1))
        seconds = time.perf_counter() - t0
        n = sum(s.num_examples for s in builder.info.splits.values())
        print(f"build {cfg.name}: {n} videos in {seconds:.1f} s ({seconds / n:.2f} s/video, 1 worker)")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("epe")
    e.add_argument("--num-videos", type=int, default=6)
    e.add_argument("--max-pairs", type=int, default=240)
    e.add_argument("--size", type=int, default=112)
    b = sub.add_parser("build")
    b.add_argument("--variant", default="v2_tiny")
    b.add_argument("--train", type=int, default=None, help="train videos of a subset (1 validation, 1 test)")
    args = p.parse_args()
    if args.what == "epe":
        epe(args.num_videos, args.max_pairs, args.size)
    else:
        build(args.variant, args.train)


if __name__ == "__main__":
    main()
