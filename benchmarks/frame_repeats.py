"""Repeated frames: the shipped model on synthetic videos converted to a higher frame rate, with and without
dropping the repeats (input_pipeline/frame_repeats.py; docs/RESULTS.md §2 "Repeated frames").

Each generator v2 render of a split (mp4 + json with its exact events) is re-encoded as a frame-rate
conversion would make it: one frame in 5 shown twice (25 → 30 fps), one in 4 (24 → 30) or every frame twice
(15 → 30), chosen per video with a fixed seed; fps grows by the same factor and the events are mapped to the
new frame numbers. The copies are written with H.264 CRF 20, 4:2:0 (a repeat then differs from its original
by codec noise, as in real files; one x264 thread, so the same renders always give the same files). Then
`ta2net eval-videos` (model method, shipped bundle unless --workdir) scores the converted copies and the
renders as they are, each with repeats dropped (the default) and kept (`--keep-repeats`), and one line per
kind of conversion is printed (`--parts converted` scores the converted copies only):

    python benchmarks/frame_repeats.py --split validation            # 80 videos, ≈ 22 min on 2 cores
    python benchmarks/frame_repeats.py --split validation --max-videos 6 --out /tmp/fr   # a quick check
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from input_pipeline import frame_repeats  # noqa: E402
from input_pipeline.video import read_video, write_video  # noqa: E402

KINDS = {"every5": 5, "every4": 4, "double": 1}  # a copy of frame j when j % step == phase


def convert(renders: str, out: str, max_videos: int | None, seed: int = 12) -> dict:
    """Writes `out`/converted/*.mp4, `out`/as_rendered/*.mp4 (links) and their labels; returns {name: kind}."""
    rng = np.random.default_rng(seed)
    for sub in ("converted", "as_rendered"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    labels = {"converted": {}, "as_rendered": {}}
    kinds = {}
    for mp4 in sorted(glob.glob(os.path.join(renders, "*.mp4")))[:max_videos]:
        name = os.path.basename(mp4)
        with open(mp4[:-4] + ".json") as f:
            events = [e["frame"] for e in json.load(f)["events"]]
        decoded = read_video(mp4)
        kind = list(KINDS)[rng.integers(0, len(KINDS))]
        step = KINDS[kind]
        phase = int(rng.integers(0, step))
        frames, new_index = [], []
        for j, frame in enumerate(decoded.frames):
            new_index.append(len(frames))
            frames.append(frame)
            if j % step == phase:
                frames.append(frame)
        fps = decoded.fps * len(frames) / len(decoded.frames)
        write_video(
            os.path.join(out, "converted", name), np.stack(frames), fps, crf=20, pix_fmt="yuv420p", reproducible=True
        )
        link = os.path.join(out, "as_rendered", name)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(mp4), link)
        labels["converted"][name] = [new_index[e] for e in events if e < len(new_index)]
        labels["as_rendered"][name] = events
        kinds[name] = kind
    for sub, spec in labels.items():
        with open(os.path.join(out, f"{sub}.labels.json"), "w") as f:
            json.dump(spec, f)
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="validation")
    parser.add_argument("--renders", default=None, help="default: data/tfds/raw/synthetic_collisions/v2/SPLIT")
    parser.add_argument("--out", default="runs/frame_repeats")
    parser.add_argument("--workdir", default=None, help="model bundle or run (default: the shipped model)")
    parser.add_argument("--max-videos", type=int, default=None)
    parser.add_argument(
        "--parts", default="as_rendered,converted", help="which copies to score (the renders as they are, converted)"
    )
    args = parser.parse_args()
    from ta2net_jax.evaluation import videos
    from ta2net_jax.evaluation.metrics.timing import evaluate_videos

    renders = args.renders or f"data/tfds/raw/synthetic_collisions/v2/{args.split}"
    if not glob.glob(os.path.join(renders, "*.mp4")):
        sys.exit(f"{renders}: no generator renders (*.mp4 + *.json); build generator v2 first (docs/synthetic.md)")
    kinds = convert(renders, args.out, args.max_videos)
    found = {k: [0, 0] for k in KINDS}
    for name, kind in kinds.items():
        frames = read_video(os.path.join(args.out, "converted", name), size=(64, 64)).frames
        found[kind][0] += int(frame_repeats.find_repeats(frames).any())
        found[kind][1] += 1
    print("videos whose cadence is found (64², as detect reads them):", {k: f"{a}/{b}" for k, (a, b) in found.items()})
    for sub in args.parts.split(","):
        with open(os.path.join(args.out, f"{sub}.labels.json")) as f:
            gt = json.load(f)
        for keep in (False, True):
            tag = f"{sub}_{'kept' if keep else 'dropped'}"
            result = videos.evaluate_files(
                [os.path.join(args.out, sub)],
                os.path.join(args.out, f"{sub}.labels.json"),
                os.path.join(args.out, "eval_" + tag),
                workdir=args.workdir,
                methods=("model",),
                keep_repeats=keep,
            )
            detected = result["detectors"]["model"]["events"]
            cells = []
            for kind in (*KINDS, "all"):
                names = [n for n in detected if kind == "all" or kinds[n] == kind]
                m = evaluate_videos([([e["frame"] for e in detected[n]], np.array(gt[n])) for n in names])
                cells.append(f"{kind} ({len(names)}) {m['event_f1_tol3']:.3f}")
            print(f"{sub:12s} repeats {'kept   ' if keep else 'dropped'}: F1 ±3 " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
