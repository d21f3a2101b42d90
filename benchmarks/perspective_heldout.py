"""Held-out perspective scenes: every detector on synthetic videos that no generator we train on could have made
(input_pipeline/synthetic/perspective.py: balls bouncing in a ray-cast 3-D scene seen through a moving
perspective camera; docs/RESULTS.md §5).

Renders ``--num-videos`` scenes into ``--out`` (kept between runs), writes a contact sheet of the first six
(``sheet.png``, contact points ringed), then `ta2net eval-videos` scores the model (the shipped bundle unless
``--workdir``), the training-free inflection detector and the reference against the exact contact frames,
each at its default picking; prints one line per detector and writes ``--out``/summary.json. Nothing is
tuned on the test scenes: they are a check of how far the detectors carry. ``--split validation`` renders
scenes of their own (other seeds) into runs/perspective_val: what `ta2net calibrate` chooses the shipped
model's phase threshold on beside v2's validation split (docs/RESULTS.md §5).

    python benchmarks/perspective_heldout.py                    # 40 videos: ≈ 9 min to render, ≈ 6 min to score
    python benchmarks/perspective_heldout.py --methods model,inflection --flow tvl1-jax   # ≈ 30 min more
    python benchmarks/perspective_heldout.py --num-videos 4 --out /tmp/heldout   # a quick look
    python benchmarks/perspective_heldout.py --split validation --methods ""   # render the validation scenes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from input_pipeline.synthetic import perspective  # noqa: E402

SPLITS = {  # split -> (first seed, default output folder)
    "test": (perspective.FIRST_SEED, "runs/perspective_heldout"),
    "validation": (perspective.VALIDATION_FIRST_SEED, "runs/perspective_val"),
}


def contact_sheet(videos_dir: str, entries: dict, names: list[str], path: str, rows: int = 6) -> None:
    """A PNG: for the first `rows` videos, two event frames (contact points ringed in red) and two others."""
    from PIL import Image, ImageDraw

    from input_pipeline.video import read_video

    tile_h, tile_w = 120, 160
    rows = min(rows, len(names))
    sheet = Image.new("RGB", (4 * tile_w, rows * tile_h), "white")
    for row, name in enumerate(names[:rows]):
        frames = read_video(os.path.join(videos_dir, name)).frames
        events = entries[name]["events"]
        picked = [e["frame"] for e in events[:2]]
        picked += [int(f) for f in np.linspace(0, len(frames) - 1, 4 - len(picked) + 2)[1:-1]]
        for col, index in enumerate(picked[:4]):
            tile = Image.fromarray(frames[index])
            sx, sy = tile_w / tile.width, tile_h / tile.height
            tile = tile.resize((tile_w, tile_h))
            draw = ImageDraw.Draw(tile)
            for e in events:
                if e["frame"] == index:
                    x, y = e["x"] * sx, e["y"] * sy
                    draw.ellipse((x - 6, y - 6, x + 6, y + 6), outline=(255, 0, 0), width=2)
            draw.text((3, 2), f"{name[-8:-4]} f{index}", fill=(255, 255, 255))
            sheet.paste(tile, (col * tile_w, row * tile_h))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-videos", type=int, default=40)
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="test: the held-out scenes (seeds 7,000,000 on); validation: scenes of their own (7,100,000 on) for "
        "`ta2net calibrate`",
    )
    parser.add_argument("--out", default=None, help="default: runs/perspective_heldout (test), runs/perspective_val")
    parser.add_argument("--workdir", default=None, help="model bundle or run (default: the shipped model)")
    parser.add_argument("--methods", default="model,inflection,reference", help="comma-separated detectors")
    parser.add_argument("--flow", default=None, help="optical flow (eval-videos --flow); the reference keeps DIS")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet PNG here (default: OUT/sheet.png)")
    args = parser.parse_args()
    from ta2net_jax.evaluation import videos

    first_seed, default_out = SPLITS[args.split]
    args.out = args.out or default_out
    videos_dir = os.path.join(args.out, "videos")
    labels = perspective.write_set(videos_dir, args.num_videos, first_seed=first_seed)
    with open(labels) as f:
        entries = json.load(f)
    names = sorted(entries)[: args.num_videos]
    num_events = sum(len(entries[n]["frames"]) for n in names)
    negatives = sum(not entries[n]["frames"] for n in names)
    print(f"{len(names)} videos ({negatives} without events), {num_events} labelled event frames")
    sheet = args.sheet or os.path.join(args.out, "sheet.png")
    contact_sheet(videos_dir, entries, names, sheet)
    print(f"contact sheet: {sheet}")
    summary = {"num_videos": len(names), "num_event_frames": num_events, "flow": args.flow, "detectors": {}}
    for method in filter(None, args.methods.split(",")):  # --methods "": render only
        result = videos.evaluate_files(
            [os.path.join(videos_dir, n) for n in names],
            labels,
            os.path.join(args.out, f"eval_{method}" + (f"_{args.flow}" if args.flow else "")),
            workdir=args.workdir,
            methods=(method,),
            name="held-out perspective scenes",
            flow_method=args.flow,
        )
        t = result["detectors"][method]["temporal"]
        summary["detectors"][method] = t
        print(
            f"{method:10s}: F1 ±1/±2/±3 {t['event_f1_tol1']:.3f}/{t['event_f1_tol2']:.3f}/{t['event_f1_tol3']:.3f}, "
            f"AP@±3 {t.get('ap_tol3') or 0:.3f}, P/R ±3 {t['event_precision_tol3']:.3f}/{t['event_recall_tol3']:.3f}",
            flush=True,
        )
    with open(os.path.join(args.out, f"summary{'_' + args.flow if args.flow else ''}.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
