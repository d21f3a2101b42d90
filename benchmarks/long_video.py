"""`ta2net detect` on one long video: wall time, peak memory and accuracy (benchmarks/RESULTS.md "Long videos").

Writes a synthetic video of ``--minutes`` at ``--fps`` and ``--size`` (a red disc bouncing on a checkerboard
floor while it crosses the frame, settling in ever smaller bounces until it is kicked up again: ≈ 1.7 contacts
per second at 30 fps, 5 to 41 frames apart; H.264 CRF 23 4:2:0), then runs the command a user runs on it,
``ta2net detect VIDEO --out-dir OUT/detect_METHOD[_FLOW][_RUN] --method METHOD [--flow F]`` (the shipped model
unless ``--workdir RUN``; events, CSV, timeline and the overlay in ``--overlay-format``), as a child process, and
prints its wall time, its peak resident memory (the child's VmHWM, read from /proc every 0.5 s: Linux), what it
wrote, and its events scored against the disc's exact bounces (`score_events`: F1 at ±1/2/3 frames, the bounces
found by impact speed, false alarms where the disc wraps around). One JSON line is appended to ``--results``
(benchmarks/results.jsonl unless ``--no-write``).

    python benchmarks/long_video.py                      # 10 min at 30 fps, 640×360: 5–13 min on 2 cores
    python benchmarks/long_video.py --method inflection  # the training-free detector on the same video
    python benchmarks/long_video.py --minutes 1 --flow tvl1-jax   # the shipped model on TV-L1 in JAX
    python benchmarks/long_video.py --minutes 1          # ≈ 1–3 min
    python benchmarks/long_video.py --workdir runs/u112  # a run of your own: OUT/detect_model_runs-u112
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# bench_common, also when loaded by path; appended: benchmarks/input_pipeline.py must not shadow the package
sys.path.append(str(Path(__file__).resolve().parent))

from bench_common import cpu_name  # noqa: E402

from input_pipeline.video import write_video  # noqa: E402
from ta2net_jax.evaluation.metrics.timing import match_events, prf_from_counts  # noqa: E402

FLOOR_MARGIN = 30  # px between the floor line and the bottom of the picture
IMPACT_SPEED_BINS = (0.0, 5.0, 10.0, 15.0, 20.0, np.inf)  # px/frame at the video's own size and rate
TOLERANCES = (1, 2, 3)  # frames, as every event F1 in the project


def disc_trajectory(num_frames: int, height: int, width: int, radius: int = 30) -> dict:
    """The disc's path and its exact contacts: gravity 1.2 px/frame², a floor bounce (restitution 0.8, kicked up
    again at 25 px/frame once it has nearly stopped) and a steady drift of 3 px/frame to the right that wraps
    around (a jump across the picture with no contact: a hard negative every ≈ 6 s at 640 px).

    Returns: x, y [num_frames] the centre (px); bounces [B] the frames at which the disc is reflected off the
    floor (its contacts, what a detector should find); impact_speed [B] its downward speed just before each
    (px/frame); wraps [K] the frames at which x jumps back to the left. A contact falls between two frames; its
    label is the frame nearer the instant the disc's path meets the floor."""
    lowest = height - radius - FLOOR_MARGIN
    y, v = float(radius + 20), 0.0
    xs, ys, bounces, speeds = [], [], [], []
    for i in range(num_frames):
        v += 1.2
        y += v
        if y > lowest:
            # The disc reaches the floor inside the step from frame i - 1 to i, at a fraction (lowest − y_{i−1}) / v
            # of it: the label is the frame nearer that instant.
            bounces.append(i if (lowest - (y - v)) / v >= 0.5 else i - 1)
            speeds.append(v)
            y, v = lowest - (y - lowest), -0.8 * v
            if abs(v) < 3:
                v = -25.0
        xs.append(radius + (i * 3) % max(width - 2 * radius, 1))
        ys.append(y)
    x = np.asarray(xs, np.float64)
    return dict(
        x=x,
        y=np.asarray(ys),
        bounces=np.asarray(bounces, np.int64),
        impact_speed=np.asarray(speeds),
        wraps=np.flatnonzero(np.diff(x) < 0) + 1,
    )


def bouncing_disc(trajectory: dict, height: int, width: int, radius: int = 30):
    """[H, W, 3] uint8 frames of `trajectory` (disc_trajectory), one at a time: a red disc on a grey
    checkerboard."""
    yy, xx = np.mgrid[0:height, 0:width]
    floor = (((xx // 40 + yy // 40) % 2) * 60 + 80).astype(np.uint8)
    background = np.repeat(floor[:, :, None], 3, axis=2)
    for x, y in zip(trajectory["x"], trajectory["y"]):
        img = background.copy()
        img[(xx - x) ** 2 + (yy - y) ** 2 < radius**2] = (220, 40, 40)
        yield img


def score_events(events: np.ndarray, trajectory: dict) -> dict:
    """`detect`'s event frames [E] against the exact bounces: one-to-one F1 / precision / recall at each
    tolerance (frames), the share of bounces with an event within ±3 frames by impact speed, and the events
    within ±3 frames of a wrap-around (motion with no contact) that match no bounce."""
    bounces = trajectory["bounces"]
    scores = {}
    for tol in TOLERANCES:
        tp, fp, fn = match_events(bounces, events, tol)
        precision, recall, f1 = prf_from_counts(tp, fp, fn)
        scores[f"tol{tol}"] = dict(
            tp=tp, fp=fp, fn=fn, precision=round(precision, 4), recall=round(recall, 4), f1=round(f1, 4)
        )
    tol = max(TOLERANCES)

    def near(frames: np.ndarray, refs: np.ndarray) -> np.ndarray:
        return np.array([refs.size > 0 and np.abs(refs - f).min() <= tol for f in frames], bool)

    found = near(bounces, events)
    speed = trajectory["impact_speed"]
    by_speed = {}
    for lo, hi in zip(IMPACT_SPEED_BINS[:-1], IMPACT_SPEED_BINS[1:]):
        inside = (speed >= lo) & (speed < hi)
        if inside.any():
            by_speed[f"{lo:g}-{hi:g}"] = dict(bounces=int(inside.sum()), found=round(float(found[inside].mean()), 4))
    unmatched = events[~near(events, bounces)]
    scores["found_by_impact_speed"] = by_speed
    scores["false_alarms_at_wraps"] = int(near(unmatched, trajectory["wraps"]).sum())
    return scores


def _high_water_kib(pid: int) -> int:
    """The process's peak resident memory so far (Linux /proc VmHWM, KiB; 0 once it is gone). Not getrusage:
    a child's ru_maxrss also counts the parent's memory it was forked from."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_label(workdir: str) -> str:
    """A run folder as one name for its output folder: its path from the repo root (the absolute path for a
    folder elsewhere), the parts joined by "-", so runs/a/bundle and runs/b/bundle do not share one."""
    path = Path(workdir).resolve()
    parts = path.relative_to(ROOT).parts if path.is_relative_to(ROOT) else path.parts[1:]
    return "-".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the video")
    parser.add_argument("--out", default="/tmp/ta2net_long_video", help="folder for the video and detect's outputs")
    parser.add_argument("--workdir", default=None, help="a run or bundle (default: the shipped model)")
    parser.add_argument("--method", default="model", help="detect's --method (model, inflection, reference)")
    parser.add_argument("--flow", default=None, help="detect's --flow (default: the detector's own, DIS)")
    parser.add_argument("--overlay-format", default="gif", choices=("gif", "mp4", "none"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results.jsonl"))
    parser.add_argument("--no-write", action="store_true", help="leave --results alone")
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.lower().split("x"))
    num_frames = int(round(args.minutes * 60 * args.fps))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = out / f"long_{args.minutes:g}min_{width}x{height}_{args.fps:g}fps.mp4"
    trajectory = disc_trajectory(num_frames, height, width)
    if not video.exists():
        t0 = time.perf_counter()
        write_video(video, bouncing_disc(trajectory, height, width), args.fps, crf=23, pix_fmt="yuv420p")
        print(f"wrote {video} ({num_frames} frames) in {time.perf_counter() - t0:.0f} s")

    # One folder per detector (a run's outputs next to the shipped model's, not over them).
    model_name = run_label(args.workdir) if args.workdir else None
    detect_dir = out / "_".join(filter(None, ("detect", args.method, args.flow, model_name)))
    command = [sys.executable, "-m", "ta2net_jax.cli", "detect", str(video), "--out-dir", str(detect_dir)]
    command += ["--overlay-format", args.overlay_format, "--method", args.method]
    if args.flow:
        command += ["--flow", args.flow]
    if args.workdir:
        command += ["--workdir", args.workdir]
    t0 = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT)
    peak_kib = 0
    while child.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(child.pid))
        time.sleep(0.5)
    wall_s = time.perf_counter() - t0
    if child.returncode:
        raise SystemExit(f"ta2net detect failed with exit status {child.returncode}")
    peak_gib = peak_kib / 2**20

    result = json.loads((detect_dir / f"{video.stem}.events.json").read_text())
    outputs = {p.name: p.stat().st_size for p in sorted(detect_dir.iterdir())}
    accuracy = score_events(np.asarray([e["frame"] for e in result["events"]], np.int64), trajectory)
    row = {
        "bench": "long_video",
        "method": args.method,
        "workdir": args.workdir or "shipped",
        "flow": args.flow or "default",
        "minutes": args.minutes,
        "fps": args.fps,
        "size": [height, width],
        "num_frames": result["num_frames"],
        "events": len(result["events"]),
        "analysis_stride": result["analysis_stride"],
        "overlay_format": args.overlay_format,
        "wall_s": round(wall_s, 1),
        "video_s_per_wall_s": round(result["num_frames"] / args.fps / wall_s, 3),
        "peak_rss_gib": round(peak_gib, 2),
        "output_bytes": outputs,
        "bounces": int(trajectory["bounces"].size),
        "accuracy": accuracy,
        "host_cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(
        f"{result['num_frames']} frames ({args.minutes:g} min at {args.fps:g} fps, {width}×{height}): "
        f"{len(result['events'])} events in {wall_s:.0f} s ({row['video_s_per_wall_s']:.2f} s of video per s), "
        f"peak memory {peak_gib:.2f} GiB; outputs "
        + ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in outputs.items())
    )
    tol3 = accuracy["tol3"]
    print(
        f"against its {row['bounces']} exact bounces: F1 ±3 {tol3['f1']:.3f} (precision {tol3['precision']:.3f}, "
        f"recall {tol3['recall']:.3f}; F1 ±1 {accuracy['tol1']['f1']:.3f}); found within ±3 by impact speed "
        "(px/frame at the video's size): "
        + ", ".join(f"{k} {v['found']:.2f} of {v['bounces']}" for k, v in accuracy["found_by_impact_speed"].items())
        + f"; {accuracy['false_alarms_at_wraps']} false alarms at the {trajectory['wraps'].size} wrap-arounds"
    )
    if not args.no_write:
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
