"""`ta2net detect` on one long video: wall time and peak memory (benchmarks/RESULTS.md "Long videos").

Writes a synthetic video of ``--minutes`` at ``--fps`` and ``--size`` (a red disc bouncing on a checkerboard
floor while it crosses the frame: one bounce every second or so; H.264 CRF 23 4:2:0), then runs the command a
user runs on it, ``ta2net detect VIDEO --out-dir OUT`` (the shipped model unless ``--workdir``; events, CSV,
timeline and the overlay in ``--overlay-format``), as a child process, and prints its wall time, its peak
resident memory (the child's VmHWM, read from /proc every 0.5 s: Linux) and what it wrote. One JSON line is appended to
``--results`` (benchmarks/results.jsonl unless ``--no-write``).

    python benchmarks/long_video.py                      # 10 min at 30 fps, 640×360: ≈ 25 min on 2 cores
    python benchmarks/long_video.py --minutes 1          # ≈ 3 min
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

from bench_common import cpu_name  # noqa: E402

from input_pipeline.video import write_video  # noqa: E402


def bouncing_disc(num_frames: int, height: int, width: int, radius: int = 30):
    """[H, W, 3] uint8 frames, one at a time: gravity, a floor bounce (restitution 0.8, kicked up again once it
    has nearly stopped) and a steady drift to the right that wraps around."""
    yy, xx = np.mgrid[0:height, 0:width]
    floor = (((xx // 40 + yy // 40) % 2) * 60 + 80).astype(np.uint8)
    background = np.repeat(floor[:, :, None], 3, axis=2)
    lowest = height - radius - 30
    y, v = float(radius + 20), 0.0
    for i in range(num_frames):
        v += 1.2
        y += v
        if y > lowest:
            y, v = lowest - (y - lowest), -0.8 * v
            if abs(v) < 3:
                v = -25.0
        x = radius + (i * 3) % max(width - 2 * radius, 1)
        img = background.copy()
        img[(xx - x) ** 2 + (yy - y) ** 2 < radius**2] = (220, 40, 40)
        yield img


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the video")
    parser.add_argument("--out", default="/tmp/ta2net_long_video", help="folder for the video and detect's outputs")
    parser.add_argument("--workdir", default=None, help="a run or bundle (default: the shipped model)")
    parser.add_argument("--overlay-format", default="gif", choices=("gif", "mp4", "none"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results.jsonl"))
    parser.add_argument("--no-write", action="store_true", help="leave --results alone")
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.lower().split("x"))
    num_frames = int(round(args.minutes * 60 * args.fps))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = out / f"long_{args.minutes:g}min_{width}x{height}_{args.fps:g}fps.mp4"
    if not video.exists():
        t0 = time.perf_counter()
        write_video(video, bouncing_disc(num_frames, height, width), args.fps, crf=23, pix_fmt="yuv420p")
        print(f"wrote {video} ({num_frames} frames) in {time.perf_counter() - t0:.0f} s")

    detect_dir = out / "detect"
    command = [sys.executable, "-m", "ta2net_jax.cli", "detect", str(video), "--out-dir", str(detect_dir)]
    command += ["--overlay-format", args.overlay_format]
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
    row = {
        "bench": "long_video",
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
    if not args.no_write:
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
