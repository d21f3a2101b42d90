"""Scores the optical-flow estimators of input_pipeline.flow against the exact flow of synthetic videos.

For each method and frame size it prints mean end-point error (pixels) of forward and backward flow over
all pixels and over moving pixels (|exact flow| > 0.5 px), and the time per flow field on one core.
It appends one JSON line per (method, size) to benchmarks/results.jsonl and rewrites the section
"## Optical flow estimators (CPU)" of benchmarks/RESULTS.md.

Besides FLOW_METHODS it measures the plain DIS presets ("dis-ultrafast", "dis-fast", "dis-medium") and FAST
at half resolution ("dis-fast-fs1"), against which the default DIS settings (input_pipeline.flow.DIS_OPTIONS,
row "dis") were chosen.

    python benchmarks/flow_estimators.py --num-videos 4 --size 64 112
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # bench_common, also when loaded by path
from bench_common import cpu_name  # noqa: E402

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from input_pipeline.flow import DIS_OPTIONS, FLOW_METHODS, endpoint_error, estimate_flow  # noqa: E402
from input_pipeline.synthetic import SceneConfig, generate_video  # noqa: E402

SECTION = "## Optical flow estimators (CPU)"


def preset_options(preset: int, **overrides) -> dict:
    """Every DIS setting at the preset's own value (plus ``overrides``), so the defaults do not leak in."""
    dis = cv2.DISOpticalFlow_create(preset)
    return {"preset": preset, "finest_scale": dis.getFinestScale(), "patch_size": dis.getPatchSize(),
            "patch_stride": dis.getPatchStride(),
            "gradient_descent_iterations": dis.getGradientDescentIterations(),
            "variational_refinement_iterations": dis.getVariationalRefinementIterations(), **overrides}


DIS_VARIANTS = {
    "dis-ultrafast": preset_options(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
    "dis-fast": preset_options(cv2.DISOPTICAL_FLOW_PRESET_FAST),
    "dis-fast-fs1": preset_options(cv2.DISOPTICAL_FLOW_PRESET_FAST, finest_scale=1),
    "dis-medium": preset_options(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
}
ALL_METHODS = (*FLOW_METHODS[:1], *DIS_VARIANTS, *FLOW_METHODS[1:])


def measure(method: str, videos, max_pairs: int | None) -> dict:
    """EPE (px) and ms per flow field (one direction, one core) of ``method`` on ``videos``."""
    base, opts = ("dis", DIS_VARIANTS[method]) if method in DIS_VARIANTS else (method, None)
    errs = {"fwd": [], "bwd": [], "mov": []}  # (sum of per-pixel errors, pixel count)
    seconds, pairs = 0.0, 0
    # A pair budget (TV-L1) is spread over the videos, taking consecutive pairs from the middle of each.
    per_video = None if max_pairs is None else max(1, -(-max_pairs // len(videos)))
    for video in videos:
        total = len(video.frames) - 1
        n = total if per_video is None else min(total, per_video, max_pairs - pairs)
        if n <= 0:
            break
        lo = (total - n) // 2
        frames, exact_fwd, exact_bwd = video.frames[lo:lo + n + 1], video.flow_fwd[lo:lo + n], \
            video.flow_bwd[lo:lo + n]
        t0 = time.perf_counter()
        fwd, bwd = estimate_flow(frames, base, dis_options=opts)
        seconds += time.perf_counter() - t0
        pairs += n
        for key, est, exact in (("fwd", fwd, exact_fwd), ("bwd", bwd, exact_bwd)):
            err = np.linalg.norm(est.astype(np.float32) - exact, axis=-1)
            errs[key].append((err.sum(), err.size))
            moving = np.linalg.norm(exact, axis=-1) > 0.5
            errs["mov"].append((err[moving].sum(), moving.sum()))
        # The pooled numbers must agree with the library's own metric.
        assert abs(endpoint_error(fwd, exact_fwd) - errs["fwd"][-1][0] / errs["fwd"][-1][1]) < 1e-3

    def pooled(key):
        total, count = np.sum([e[0] for e in errs[key]]), np.sum([e[1] for e in errs[key]])
        return float(total / count) if count else float("nan")

    return {"epe_fwd": pooled("fwd"), "epe_bwd": pooled("bwd"), "epe_moving": pooled("mov"),
            "ms_per_pair": 1000 * seconds / (2 * pairs), "num_pairs": pairs}


def write_section(rows: list[dict], args, device: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    opts = ", ".join(f"{k}={v}" for k, v in DIS_OPTIONS.items())
    lines = [
        SECTION, "",
        f"`python benchmarks/flow_estimators.py --num-videos {args.num_videos} --size "
        f"{' '.join(map(str, args.size))} --num-frames {args.num_frames} --tvl1-pairs {args.tvl1_pairs}` "
        f"on {device}, one OpenCV thread, "
        f"{rows[0]['date'][:10]}. Synthetic videos (input_pipeline.synthetic, seeds 0..{args.num_videos - 1}) "
        "scored against their exact flow. EPE: mean end-point error in pixels over all pixels (fwd, bwd) and "
        "over moving pixels (|exact flow| > 0.5 px, fwd and bwd pooled). ms/pair: one flow field (one "
        "direction); fwd + bwd costs twice that (on a shared machine timings vary by up to ~30 % between "
        "runs; the EPEs are deterministic for a given version of the generator). TV-L1 is measured on "
        f"{args.tvl1_pairs} pairs per size only.", "",
        "| method | size | EPE fwd | EPE bwd | EPE moving | ms/pair | pairs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['size']} | {r['epe_fwd']:.3f} | {r['epe_bwd']:.3f} | "
                     f"{r['epe_moving']:.3f} | {r['ms_per_pair']:.2f} | {r['num_pairs']} |")
    lines += ["", f"`dis` = the default of `estimate_flow` (DIS_OPTIONS: {opts}); `dis-<preset>` = the "
              "plain OpenCV preset; `dis-fast-fs1` = FAST with finest_scale 1 (flow at half resolution).", ""]
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + ("\n" + text[end + 1:] if end >= 0 else "")
    path.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-videos", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=32, help="frames per synthetic video")
    parser.add_argument("--size", type=int, nargs="+", default=[64, 112], help="square frame sizes (px)")
    parser.add_argument("--methods", default=",".join(ALL_METHODS),
                        help=f"comma-separated subset of {','.join(ALL_METHODS)}")
    parser.add_argument("--tvl1-pairs", type=int, default=6, help="TV-L1 takes ~1 s per 112x112 pair")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(ALL_METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {ALL_METHODS}")
    cv2.setNumThreads(1)  # single-core timings
    device = f"cpu: {cpu_name()}"
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows = []
    print(f"{'method':14s} {'size':>5s} {'EPE fwd':>8s} {'EPE bwd':>8s} {'moving':>8s} {'ms/pair':>8s} "
          f"{'pairs':>6s}")
    for size in args.size:
        config = SceneConfig(height=size, width=size, num_frames=args.num_frames)
        videos = [generate_video(seed, config) for seed in range(args.num_videos)]
        for method in methods:
            result = measure(method, videos, args.tvl1_pairs if method == "tvl1" else None)
            row = {"bench": "flow_estimators", "method": method, "size": size, **result, "device": device,
                   "date": date}
            rows.append(row)
            print(f"{method:14s} {size:5d} {row['epe_fwd']:8.3f} {row['epe_bwd']:8.3f} "
                  f"{row['epe_moving']:8.3f} {row['ms_per_pair']:8.2f} {row['num_pairs']:6d}", flush=True)
    if args.no_write:
        return
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    write_section(rows, args, device)


if __name__ == "__main__":
    main()
