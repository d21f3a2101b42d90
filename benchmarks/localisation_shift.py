"""Does the reported (x, y) follow the contact, or where contacts sat in the training renders?

The shipped model's (x, y) is the centroid of the inflection magnitude weighted by the locator's source map
raised to ``map_power`` (metrics.spatial `attended_centroid_xy`; the settings chosen by `ta2net eval` on v2's
validation split). Generator v2's contacts are mostly floor contacts low in the picture, so a map can point
well there by having learned *where* contacts are rather than *what* one looks like; on real clips the marks
sit below the action (docs/RESULTS.md §2). This measures it with exact contact points: every labelled video of
each folder is scored as `ta2net detect` scores it (decoded at the model's input size, DIS flow, the bundle's
locator; fast videos as phases), as rendered and **upside down** (every frame flipped top to bottom, the
contact's y mirrored: the same contacts where the training renders never had them), and at every contact
frame each setting of ``GRID`` (``map_power`` 0 is the inflection magnitude alone) gives an (x, y). A hit is
within `localisation.POINTING_RADIUS_PX` of the contact, in pixels of the model input, as `ta2net eval`
counts it. The criterion, fixed before any figure: the mean pointing accuracy over the (folder, view) cells of
the ``--tune`` folders; the ``--check`` folders are only reported, at every setting.

Folders: renders of generator v2 (``<stem>.mp4`` beside ``<stem>.json`` with the events' native-pixel x, y and
``frame_size``) or of the perspective generator (a ``labels.json`` with each video's events and ``size``).
``--render`` first renders the four folders below (the first 40 v2_64 validation and test renders, the
first 24 perspective validation and test scenes; ≈ 15 min on 2 cores, kept between runs), ≈ 18 min to score.

    python benchmarks/localisation_shift.py --render --tune v2=runs/locshift/v2_validation \\
        --tune perspective=runs/locshift/perspective_validation \\
        --check v2_test=runs/locshift/v2_test --check perspective_test=runs/locshift/perspective_test
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from input_pipeline import inflection_energy  # noqa: E402
from input_pipeline.progress import tqdm  # noqa: E402
from input_pipeline.video import read_video  # noqa: E402
from ta2net_jax.evaluation.localisation import POINTING_RADIUS_PX  # noqa: E402
from ta2net_jax.evaluation.metrics.spatial import attended_centroid_xy  # noqa: E402

GRID = {"map_power": (0, 0.5, 1, 2, 3), "floor": (0.3, 0.5, 0.7, 0.85), "power": (1, 2)}
VIEWS = ("as rendered", "upside down")


def labelled_videos(folder: str) -> list[tuple[str, list[tuple[int, float, float]], tuple[int, int]]]:
    """(video path, [(frame, x, y)] in native pixels, native (H, W)) of every labelled video in `folder`."""
    labels_path = os.path.join(folder, "labels.json")
    if os.path.exists(labels_path):  # the perspective generator's folders
        with open(labels_path) as f:
            labels = json.load(f)
        return [
            (os.path.join(folder, name), [(e["frame"], e["x"], e["y"]) for e in entry["events"]], tuple(entry["size"]))
            for name, entry in sorted(labels.items())
        ]
    videos = []
    for events_path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(events_path) as f:
            record = json.load(f)
        events = [(e["frame"], e["x"], e["y"]) for e in record["events"]]
        videos.append((events_path[: -len(".json")] + ".mp4", events, tuple(record["frame_size"])))
    return videos


def render(root: str = "runs/locshift", num_v2: int = 40, num_perspective: int = 24) -> None:
    """The module doc's four folders under `root`: v2_64's first validation and test renders (the seeds its
    build uses) and the perspective generator's first validation and test scenes; existing videos are kept."""
    from input_pipeline.datasets import synthetic_work
    from input_pipeline.datasets.synthetic_configs import config_for
    from input_pipeline.synthetic import perspective

    config = config_for("v2_64")
    scene = synthetic_work.scene_for(config.generator, config.preset, config.image_size, config.num_frames, config.fps)
    for split in ("validation", "test"):
        folder = os.path.join(root, f"v2_{split}")
        os.makedirs(folder, exist_ok=True)
        for i in tqdm(range(num_v2), desc=f"v2 {split} renders", unit="video"):
            stem = os.path.join(folder, f"{split}_{i:05d}")
            if not os.path.exists(stem + ".json"):
                seed = config.seed + synthetic_work.SPLIT_SEED_OFFSET[split] + i
                synthetic_work.render_one((seed, scene, stem))
    for split, first_seed in (("validation", perspective.VALIDATION_FIRST_SEED), ("test", perspective.FIRST_SEED)):
        perspective.write_set(os.path.join(root, f"perspective_{split}"), num_perspective, first_seed=first_seed)


def contact_inputs(detector, size: int, path: str, events, native_hw, upside_down: bool):
    """[(source map [h, w], inflection magnitude [size, size], (x, y) of the contact)] at each contact of one
    video scored as detect scores it, in pixels of the model input; upside down when asked."""
    decoded = read_video(path, size=(size, size))
    frames, fps = decoded.frames, float(decoded.fps)
    if upside_down:
        frames = np.ascontiguousarray(frames[:, ::-1])
    scored = detector.score_frames(frames, fps)
    n, (height, width) = len(frames), native_hw
    found = []
    for frame, x, y in events:
        if not 2 <= frame <= n - 3:
            continue
        xy = (x * size / width, y * size / height)
        if upside_down:
            xy = (xy[0], size - xy[1])
        magnitude = inflection_energy.location_magnitude(scored.flow_fwd, scored.flow_bwd, frame)
        found.append((scored.maps[frame], magnitude, xy))
    return found


def pointing(contacts, settings: dict) -> tuple[float, float]:
    """(share of contacts pointed at within the radius, median distance px) of one setting."""
    d = np.array([np.hypot(*(np.subtract(attended_centroid_xy(m, mag, **settings), xy))) for m, mag, xy in contacts])
    return float(np.mean(d <= POINTING_RADIUS_PX)), float(np.median(d))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tune", action="append", default=[], metavar="NAME=FOLDER", help="folders the criterion uses")
    parser.add_argument("--check", action="append", default=[], metavar="NAME=FOLDER", help="folders only reported")
    parser.add_argument("--workdir", default=None, help="model bundle or run (default: the shipped model)")
    parser.add_argument("--out", default="runs/locshift/results.json")
    parser.add_argument("--render", action="store_true", help="first render the module doc's folders")
    args = parser.parse_args(argv)
    if args.render:
        render()
    from ta2net_jax.detection.detect import VideoDetector

    detector = VideoDetector(workdir=args.workdir)
    shipped = dict(detector.detector.centroid)  # the locator's own where the bundle has one
    folders = {
        role: dict(item.split("=", 1) for item in items) for role, items in (("tune", args.tune), ("check", args.check))
    }
    settings = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    if shipped not in settings:
        settings.append(shipped)
    table = {}  # (role, folder, view) -> [(accuracy, median px) per setting]
    for role, named in folders.items():
        for name, folder in named.items():
            videos = labelled_videos(folder)
            for view in VIEWS:
                contacts = []
                for path, events, native_hw in tqdm(videos, desc=f"{name}, {view}", unit="video"):
                    contacts += contact_inputs(detector, detector.image_size, path, events, native_hw, view != VIEWS[0])
                table[(role, name, view)] = [pointing(contacts, s) for s in settings]
                print(f"{name}, {view}: {len(contacts)} contacts", flush=True)
    tune_cells = [k for k in table if k[0] == "tune"]
    criterion = [float(np.mean([table[k][i][0] for k in tune_cells])) for i in range(len(settings))]
    order = sorted(range(len(settings)), key=lambda i: -criterion[i])
    best, ship = order[0], settings.index(shipped)
    header = " | ".join(f"{name} {'up' if view == VIEWS[0] else 'flipped'}" for _, name, view in table)
    print(f"| setting | criterion | {header} |")
    print("|---" * (len(table) + 2) + "|")
    for i in list(dict.fromkeys([ship, *order[:8]])):
        label = ", ".join(f"{k} {v:g}" for k, v in settings[i].items()) + (" (shipped)" if i == ship else "")
        cells = " | ".join(f"{table[k][i][0]:.3f} ({table[k][i][1]:.1f} px)" for k in table)
        print(f"| {label} | {criterion[i]:.3f} | {cells} |")
    print(f"best on the criterion: {settings[best]} ({criterion[best]:.3f}; shipped {criterion[ship]:.3f})")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(
            {
                "settings": settings,
                "criterion": criterion,
                "shipped": shipped,
                "best": settings[best],
                "cells": {" / ".join(k): v for k, v in table.items()},
                "pointing_radius_px": POINTING_RADIUS_PX,
            },
            f,
            indent=1,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
