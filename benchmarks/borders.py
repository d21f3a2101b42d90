"""Black borders: the shipped model on synthetic videos put into letterbox / pillarbox bars, with and without
cropping them (input_pipeline/borders.py; docs/RESULTS.md §2 "Black borders").

The first ``--num-videos`` generator v2 test-split videos (the dataset's own seeds, default preset, rendered
here unless ``--renders`` holds them) are written three ways, each H.264 CRF 18 4:2:0 with one x264 thread
(the same renders always give the same files): as they are (``plain``), and inside black bars (grey 16,
video black) that add ``--bar`` of the picture's height above and below it (letterbox) or of its width left
and right (pillarbox), alternating (``boxed``). Then `ta2net eval-videos` (model method, shipped bundle
unless --workdir) scores ``plain``, ``boxed`` with the bars cropped (the default) and ``boxed`` with
``--keep-borders``, against each video's exact events; one line per variant is printed, and how many boxed
videos had their bars found exactly.

    python benchmarks/borders.py --num-videos 40          # ≈ 10 min on 2 cores
    python benchmarks/borders.py --num-videos 4 --out /tmp/borders   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from input_pipeline.borders import Borders, find_borders  # noqa: E402
from input_pipeline.datasets import synthetic_work  # noqa: E402
from input_pipeline.synthetic import v2 as v2_lib  # noqa: E402
from input_pipeline.video import read_video, write_video  # noqa: E402

BLACK = 16  # video black


def box(frames: np.ndarray, index: int, bar: float) -> tuple[np.ndarray, Borders]:
    """``frames`` [N, H, W, 3] inside bars: letterbox for even ``index``, pillarbox for odd (even bar sizes,
    as 4:2:0 chroma needs)."""
    n, h, w, _ = frames.shape
    if index % 2 == 0:
        pad = 2 * int(round(bar * h / 2))
        borders = Borders(top=pad, bottom=pad)
    else:
        pad = 2 * int(round(bar * w / 2))
        borders = Borders(left=pad, right=pad)
    out = np.full((n, h + borders.top + borders.bottom, w + borders.left + borders.right, 3), BLACK, np.uint8)
    out[:, borders.top : borders.top + h, borders.left : borders.left + w] = frames
    return out, borders


def write_copies(renders: str, out: str, num_videos: int, bar: float) -> dict[str, Borders]:
    """`out`/plain/*.mp4, `out`/boxed/*.mp4 and `out`/labels.json; returns the bars of each boxed video."""
    for sub in ("plain", "boxed"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    labels, bars = {}, {}
    for i in range(num_videos):
        stem = os.path.join(renders, f"test_{i:05d}")
        if not os.path.exists(stem + ".json"):  # the dataset's test-split seed and scene, as `ta2net build`
            seed = synthetic_work.SPLIT_SEED_OFFSET["test"] + i
            synthetic_work.render_one((seed, v2_lib.PRESETS["default"], stem))
        with open(stem + ".json") as f:
            events = [e["frame"] for e in json.load(f)["events"]]
        decoded = read_video(stem + ".mp4")
        frames = decoded.frames
        name = f"test_{i:05d}.mp4"
        boxed, bars[name] = box(frames, i, bar)
        for sub, video in (("plain", frames), ("boxed", boxed)):
            path = os.path.join(out, sub, name)
            if not os.path.exists(path):
                write_video(path, video, decoded.fps, crf=18, pix_fmt="yuv420p", reproducible=True)
        labels[name] = events
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump(labels, f)
    return bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-videos", type=int, default=40)
    parser.add_argument("--bar", type=float, default=0.15, help="bar size as a fraction of the picture's side")
    parser.add_argument("--renders", default=None, help="generator v2 test renders (default: rendered into OUT)")
    parser.add_argument("--out", default="runs/borders")
    parser.add_argument("--workdir", default=None, help="model bundle or run (default: the shipped model)")
    args = parser.parse_args()
    from ta2net_jax.evaluation import videos

    renders = args.renders or os.path.join(args.out, "renders")
    os.makedirs(renders, exist_ok=True)
    bars = write_copies(renders, args.out, args.num_videos, args.bar)
    found = {n: find_borders(read_video(os.path.join(args.out, "boxed", n)).frames) for n in bars}
    exact = [n for n in bars if found[n] == bars[n]]
    print(f"bars found exactly in {len(exact)} of {len(bars)} boxed videos (letterbox and pillarbox alternate)")
    for n in sorted(set(bars) - set(exact)):  # codec ringing at the edge of a bar; a dark, still strip beside it
        print(f"  {n}: found {found[n].to_dict()}, bars {bars[n].to_dict()}")
    labels = os.path.join(args.out, "labels.json")
    for sub, keep in (("plain", False), ("boxed", False), ("boxed", True)):
        tag = f"{sub}{'_kept' if keep else ''}"
        result = videos.evaluate_files(
            [os.path.join(args.out, sub)],
            labels,
            os.path.join(args.out, "eval_" + tag),
            workdir=args.workdir,
            methods=("model",),
            keep_borders=keep,
        )
        t = result["detectors"]["model"]["temporal"]
        crop = "kept (--keep-borders)" if keep else "cropped" if sub == "boxed" else "none"
        print(
            f"{sub:6s} bars {crop:22s}: F1 ±1/±2/±3 {t['event_f1_tol1']:.3f}/{t['event_f1_tol2']:.3f}/"
            f"{t['event_f1_tol3']:.3f}, AP@±3 {t.get('ap_tol3', float('nan')):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
