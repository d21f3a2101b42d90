"""`ta2net prepare` throughput: the local process pool against Apache Beam's DirectRunner, on the same videos.

Every row prepares the same videos from scratch into a fresh folder (decode, resize to S×S, flow forward and
backward: DIS, or `--flow`; JPEG frames, flow.npz) through `input_pipeline.prepare.prepare_all`, the function behind
`ta2net prepare`:

* local ×1, local ×2: the process pool with 1 and 2 workers (`--runner local --workers N`; with `--flow
  tvl1-jax` the workers decode and this process estimates the flow, videos packed per device call);
* beam ×1, beam ×2: `--runner beam` with `--runner=DirectRunner --direct_num_workers=N
  --direct_running_mode=multi_processing`, in .venv-beam (a subprocess, as the CLI runs it).

videos/s and frames/s = videos (output frames) / wall time of the whole call, start-up included: for Beam
that is the subprocess, the pipeline construction and the worker processes (a few seconds that a long job
amortises); the local pool starts its workers in well under a second. The output folders of all rows are
checked to be identical (frames and flow byte for byte), so every row did the same work.

Videos: the six real clips of ../shared/realdata (90 to 300 frames, 320×240 to 604×340), or `--videos`.

    python benchmarks/prepare.py                    # 112 px, at most 300 frames; appends to results.jsonl
    python benchmarks/prepare.py --size 64 --rows local1 beam2
    python benchmarks/prepare.py --flow tvl1-jax --size 48 --max-frames 60   # flow on the JAX devices, packed
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The repo before this folder (Python puts the script's folder first): benchmarks/input_pipeline.py would
# otherwise shadow the input_pipeline package.
sys.path.insert(0, str(ROOT))

from bench_common import cpu_name  # noqa: E402

from input_pipeline import prepare as prepare_lib, video_files  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata"
CLIPS = (
    "greatest_hits_condfoleygen/hitting_bag.mp4",
    "greatest_hits_condfoleygen/hitting_metal.mp4",
    "repcount_ucfrep/test2021.mp4",
    "repcount_ucfrep/test2315.mp4",
    "ucf101_audible623/v_BoxingPunchingBag_g05_c01.avi",
    "ucf101_audible623/v_SoccerJuggling_g23_c01.avi",
)
# The pool row first: a process pool forked after this process had itself run the serial row hung once (its
# workers never got CPU time; not diagnosed; OpenCV's thread pool state copied into the fork the likely cause).
# The pool is spawned since 2026-12-05 (input_pipeline/worker_pool.py); the order stays so that rows compare
# with the earlier figures. The Beam rows start a fresh interpreter, so their order does not matter.
ROWS = {
    "local2": ("local ×2", prepare_lib.Runner(), 2),
    "local1": ("local ×1", prepare_lib.Runner(), 1),
    **{
        f"beam{n}": (
            f"beam DirectRunner ×{n}",
            prepare_lib.Runner(
                "beam",
                ("--runner=DirectRunner", f"--direct_num_workers={n}", "--direct_running_mode=multi_processing"),
            ),
            1,
        )
        for n in (1, 2)
    },
}


def _same_outputs(a: str, b: str) -> bool:
    """Frames and flow of every video byte for byte (meta.json holds the wall time, so it is left out)."""
    for folder, _, files in os.walk(a):
        for name in files:
            if name == "meta.json":
                continue
            other = os.path.join(b, os.path.relpath(folder, a), name)
            if not os.path.exists(other) or not filecmp.cmp(os.path.join(folder, name), other, shallow=False):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", nargs="*", default=[str(REALDATA / c) for c in CLIPS])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--max-frames", type=int, default=300)
    parser.add_argument("--flow", default="dis", help="flow method (tvl1-jax: the local rows only by default)")
    parser.add_argument("--rows", nargs="*", choices=list(ROWS))
    args = parser.parse_args()
    # tvl1-jax: the local rows decode in workers and pack videos per device call (input_pipeline/packed_flow.py);
    # Beam estimates each video alone, equal only up to float16 rounding, so it is not in the byte comparison.
    rows = args.rows or [r for r in ROWS if args.flow != "tvl1-jax" or r.startswith("local")]
    jobs = video_files.keyed_videos(args.videos)
    options = prepare_lib.PrepareOptions(size=args.size, max_frames=args.max_frames, flow_method=args.flow)
    results, outputs = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        for row in rows:
            label, runner, workers = ROWS[row]
            out = os.path.join(tmp, row)
            summary = prepare_lib.prepare_all(jobs, out, options, workers=workers, runner=runner, progress=False)
            if summary.failed:
                raise RuntimeError(f"{row}: {summary.failed}")
            outputs[row] = out
            results.append(
                {
                    "bench": "prepare",
                    "row": label,
                    "videos": len(summary.prepared),
                    "frames": summary.frames,
                    "seconds": summary.seconds,
                    "videos_per_s": len(summary.prepared) / summary.seconds,
                    "frames_per_s": summary.frames / summary.seconds,
                    "size": args.size,
                    "flow": args.flow,
                    "max_frames": args.max_frames,
                    "host_cpu": f"{cpu_name()}, {os.cpu_count()} cores",
                    "python": platform.python_version(),
                    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                }
            )
            print(f"{label}: {summary.text()}", flush=True)
        identical = all(_same_outputs(outputs[rows[0]], outputs[r]) for r in rows[1:])
    print(
        f"\n{len(jobs)} videos, {args.size} px, at most {args.max_frames} frames, {args.flow} flow; "
        f"outputs identical: {identical}"
    )
    print("| runner | videos | frames | seconds | videos/s | frames/s |\n|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['row']} | {r['videos']} | {r['frames']} | {r['seconds']:.1f} | {r['videos_per_s']:.3f} "
            f"| {r['frames_per_s']:.1f} |"
        )
    if not identical:
        raise SystemExit("the runners' outputs differ")
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
