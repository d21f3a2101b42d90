"""Scores the optical-flow estimators of input_pipeline.flow against the exact flow of synthetic videos.

For each method and frame size it prints mean end-point error (pixels) of forward and backward flow over
all pixels and over moving pixels (|exact flow| > 0.5 px), and the time per flow field on one core.
It appends one JSON line per (method, size) to benchmarks/results.jsonl and rewrites the section
"## Optical flow estimators (CPU)" of benchmarks/RESULTS.md.

Besides FLOW_METHODS it measures the plain DIS presets ("dis-ultrafast", "dis-fast", "dis-medium") and FAST
at half resolution ("dis-fast-fs1"), against which the default DIS settings (input_pipeline.flow.DIS_OPTIONS,
row "dis") were chosen, and "tvl1-jax": input_pipeline.flow_jax (TV-L1 in JAX with OpenCV's defaults) on
the default JAX device, scored on the same pairs as "tvl1"; its time excludes compilation (one warm-up call
per shape), and it is also timed on the first pairs of one video in a single call (``--jax-batch``).
``--jax-compaction`` and ``--jax-steps-per-check`` override `estimate_flow_batch`'s defaults for the device
in every tvl1-jax row; ``--jax-tvl1 KEY=VALUE`` a TV-L1 setting (e.g. ``edge_weight=50``, the image-driven TV;
measure with ``--no-write`` then, so the OpenCV-defaults section stays what it says).

    python benchmarks/flow_estimators.py --num-videos 4 --size 64 112
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_common, also when loaded by path
import cv2
import numpy as np
from bench_common import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from input_pipeline.flow import DIS_OPTIONS, FLOW_METHODS, endpoint_error, estimate_flow  # noqa: E402
from input_pipeline.flow_jax import parse_overrides  # noqa: E402
from input_pipeline.synthetic import SceneConfig, generate_video  # noqa: E402

SECTION = "## Optical flow estimators (CPU)"


def preset_options(preset: int, **overrides) -> dict:
    """Every DIS setting at the preset's own value (plus ``overrides``), so the defaults do not leak in."""
    dis = cv2.DISOpticalFlow_create(preset)
    return {
        "preset": preset,
        "finest_scale": dis.getFinestScale(),
        "patch_size": dis.getPatchSize(),
        "patch_stride": dis.getPatchStride(),
        "gradient_descent_iterations": dis.getGradientDescentIterations(),
        "variational_refinement_iterations": dis.getVariationalRefinementIterations(),
        **overrides,
    }


DIS_VARIANTS = {
    "dis-ultrafast": preset_options(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
    "dis-fast": preset_options(cv2.DISOPTICAL_FLOW_PRESET_FAST),
    "dis-fast-fs1": preset_options(cv2.DISOPTICAL_FLOW_PRESET_FAST, finest_scale=1),
    "dis-medium": preset_options(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
}
ALL_METHODS = (*FLOW_METHODS[:1], *DIS_VARIANTS, *dict.fromkeys((*FLOW_METHODS[1:], "tvl1-jax")))  # each once
BUDGETED = ("tvl1", "tvl1-jax")  # slow methods: scored on the same --tvl1-pairs pairs


def jax_version() -> str:
    import jax

    return jax.__version__


def jax_device() -> str:
    import jax

    devices = jax.devices()
    return f"{len(devices)} x {devices[0].device_kind}"


def _jax_flow(frames: np.ndarray, max_pairs: int | None = None, options=None) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flow of ``frames`` [N, H, W, 3] with input_pipeline.flow_jax, on the device
    (``max_pairs`` fields per call; None: estimate_flow_batch's default; ``options``: its other keywords)."""
    from input_pipeline.flow import to_gray
    from input_pipeline.flow_jax_batch import estimate_flow_batch

    return estimate_flow_batch(to_gray(frames), max_pairs=max_pairs, **(options or {}))


def jax_batched_ms(video, batch: int, options=None) -> float:
    """ms per flow field of tvl1-jax when ``batch`` fields (fwd + bwd of the first batch / 2 pairs of
    ``video``) go through one call; compilation excluded."""
    frames = video.frames[: batch // 2 + 1]
    _jax_flow(frames, batch, options)
    t0 = time.perf_counter()
    _jax_flow(frames, batch, options)
    return 1000 * (time.perf_counter() - t0) / (2 * (len(frames) - 1))


def jax_throughput(videos, pairs_per_call: int, options=None) -> list[dict]:
    """Flow fields per second of tvl1-jax with ``pairs_per_call`` fields per jitted call, the host transfers
    included, for two full calls (2 · ``pairs_per_call`` fields, fwd + bwd) of three kinds: the grey frames of
    ``videos`` concatenated and tiled into one frame sequence through ``estimate_flow_batch`` (every 32nd
    pair of 32-frame videos spans a cut, which never meets OpenCV's stopping test); the same videos repeated
    as separate videos through ``estimate_flow_videos`` (their pairs packed into shared calls, none across a
    cut: how a pipeline of many videos should batch them; the last copy cut short to fill the two calls); and
    one synthetic video of ``pairs_per_call`` + 1 frames (made with the first video's seed). Compilation
    excluded (one untimed run first; all kinds share the compiled shape). ``options``: the estimators' other
    keywords. One row per kind."""
    from input_pipeline.flow import to_gray
    from input_pipeline.flow_jax_batch import estimate_flow_batch, estimate_flow_videos
    from input_pipeline.synthetic import SceneConfig, generate_video

    greys = [to_gray(v.frames) for v in videos]
    tiled = np.resize(np.concatenate(greys), (pairs_per_call + 1, *greys[0].shape[1:]))
    packed, left = [], pairs_per_call  # consecutive pairs wanted (each gives a forward and a backward field)
    while left > 0:
        grey = greys[len(packed) % len(greys)]
        packed.append(grey[: min(len(grey), left + 1)])
        left -= len(packed[-1]) - 1
    height, width = greys[0].shape[1:]
    config = SceneConfig(height=height, width=width, num_frames=pairs_per_call + 1)
    long = to_gray(generate_video(videos[0].seed, config).frames)
    options, rows = options or {}, []
    runs = {
        "tiled videos": lambda: estimate_flow_batch(tiled, max_pairs=pairs_per_call, **options),
        "videos packed": lambda: estimate_flow_videos(packed, max_pairs=pairs_per_call, **options),
        "one video": lambda: estimate_flow_batch(long, max_pairs=pairs_per_call, **options),
    }
    for kind, run in runs.items():
        if not rows:
            run()
        t0 = time.perf_counter()
        run()
        seconds = time.perf_counter() - t0
        rows.append({"pairs_per_call": pairs_per_call, "fields": 2 * pairs_per_call, "frames": kind,
                     "pairs_per_s": 2 * pairs_per_call / seconds, **options})  # fmt: skip
    return rows


def budgeted_pairs(videos, max_pairs: int):
    """(video, lo, n) of the pairs a pair budget scores: consecutive pairs from the middle of each video."""
    per_video, taken = max(1, -(-max_pairs // len(videos))), 0
    for video in videos:
        total = len(video.frames) - 1
        n = min(total, per_video, max_pairs - taken)
        if n <= 0:
            break
        yield video, (total - n) // 2, n
        taken += n


_KEPT: dict = {}  # (method, size, seed, first pair) -> (fwd, bwd) of the budgeted methods
_WARM: set = set()  # frame shapes tvl1-jax has been compiled for


def tvl1_disagreement(videos, max_pairs: int) -> float:
    """Mean end-point distance (px) between the tvl1-jax and OpenCV TV-L1 flows of the budgeted pairs."""
    total, count = 0.0, 0
    for video, lo, _ in budgeted_pairs(videos, max_pairs):
        key = (video.frames.shape[1], video.seed, lo)
        for a, b in zip(_KEPT[("tvl1-jax", *key)], _KEPT[("tvl1", *key)]):
            err = np.linalg.norm(a - b.astype(np.float32), axis=-1)
            total, count = total + err.sum(), count + err.size
    return float(total / count)


def measure(method: str, videos, max_pairs: int | None, jax_options=None) -> dict:
    """EPE (px) and ms per flow field (one direction; OpenCV on one core, JAX on its default device) of
    ``method`` on ``videos`` (``jax_options``: estimate_flow_batch's keywords for tvl1-jax)."""
    base, opts = ("dis", DIS_VARIANTS[method]) if method in DIS_VARIANTS else (method, None)
    errs = {"fwd": [], "bwd": [], "mov": []}  # (sum of per-pixel errors, pixel count)
    seconds, pairs = 0.0, 0
    # A pair budget (TV-L1) is spread over the videos, taking consecutive pairs from the middle of each.
    chosen = [(v, 0, len(v.frames) - 1) for v in videos] if max_pairs is None else budgeted_pairs(videos, max_pairs)
    for video, lo, n in chosen:
        frames, exact_fwd, exact_bwd = (
            video.frames[lo : lo + n + 1],
            video.flow_fwd[lo : lo + n],
            video.flow_bwd[lo : lo + n],
        )
        if method == "tvl1-jax":
            if frames.shape not in _WARM:  # compile once per shape, outside the timing
                _jax_flow(frames, options=jax_options)
                _WARM.add(frames.shape)
            t0 = time.perf_counter()
            fwd, bwd = _jax_flow(frames, options=jax_options)
        else:
            t0 = time.perf_counter()
            fwd, bwd = estimate_flow(frames, base, dis_options=opts)
        seconds += time.perf_counter() - t0
        pairs += n
        if method in BUDGETED:
            _KEPT[(method, frames.shape[1], video.seed, lo)] = (fwd, bwd)
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

    ms = 1000 * seconds / (2 * pairs)
    return {
        "epe_fwd": pooled("fwd"),
        "epe_bwd": pooled("bwd"),
        "epe_moving": pooled("mov"),
        "ms_per_pair": ms,
        "pairs_per_s": 1000 / ms,
        "num_pairs": pairs,
    }


def write_section(rows: list[dict], args, device: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    opts = ", ".join(f"{k}={v}" for k, v in DIS_OPTIONS.items())
    lines = [
        SECTION,
        "",
        (
            f"`python benchmarks/flow_estimators.py --num-videos {args.num_videos} --size "
            f"{' '.join(map(str, args.size))} --num-frames {args.num_frames} --tvl1-pairs {args.tvl1_pairs} "
            f"--jax-batch {args.jax_batch}` on {device}, one OpenCV thread, JAX {jax_version()} on {jax_device()}, "
            f"{rows[0]['date'][:10]}. Synthetic videos (input_pipeline.synthetic, seeds 0..{args.num_videos - 1}) "
            "scored against their exact flow. EPE: mean end-point error in pixels over all pixels (fwd, bwd) and "
            "over moving pixels (|exact flow| > 0.5 px, fwd and bwd pooled). ms/pair: one flow field (one "
            "direction); fwd + bwd costs twice that (on a shared machine timings vary by up to ~30 % between "
            "runs; the EPEs are deterministic for a given version of the generator); pairs/s: flow fields per "
            f"second. tvl1 and tvl1-jax are measured on the same {args.tvl1_pairs} pairs per size only "
            "(tvl1-jax: fwd + bwd of a video's pairs in one call, compilation excluded)."
        ),
        "",
        "| method | size | EPE fwd | EPE bwd | EPE moving | ms/pair | pairs/s | pairs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['size']} | {r['epe_fwd']:.3f} | {r['epe_bwd']:.3f} | "
            f"{r['epe_moving']:.3f} | {r['ms_per_pair']:.2f} | {r['pairs_per_s']:.1f} | "
            f"{r['num_pairs']} |"
        )
    by_key = {(r["method"], r["size"]): r for r in rows}
    for size in args.size:
        ref, ours = by_key.get(("tvl1", size)), by_key.get(("tvl1-jax", size))
        if ref and ours:
            ratio = {k: ours[k] / ref[k] for k in ("epe_fwd", "epe_bwd", "epe_moving")}
            lines += [
                "",
                (
                    f"{size} px: tvl1-jax / tvl1 EPE = {ratio['epe_fwd']:.3f} (fwd), "
                    f"{ratio['epe_bwd']:.3f} (bwd), {ratio['epe_moving']:.3f} (moving); mean distance "
                    f"between the two flows {ours['diff_to_tvl1']:.3f} px; tvl1-jax with "
                    f"{ours['batch_pairs']} fields in one call: {ours['batched_ms_per_pair']:.2f} ms per "
                    f"field ({1000 / ours['batched_ms_per_pair']:.1f} pairs/s)."
                ),
            ]
    lines += [
        "",
        (
            f"`dis` = the default of `estimate_flow` (DIS_OPTIONS: {opts}); `dis-<preset>` = the "
            "plain OpenCV preset; `dis-fast-fs1` = FAST with finest_scale 1 (flow at half resolution)."
        ),
        "",
    ]
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + ("\n" + text[end + 1 :] if end >= 0 else "")
    path.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-videos", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=32, help="frames per synthetic video")
    parser.add_argument("--size", type=int, nargs="+", default=[64, 112], help="square frame sizes (px)")
    parser.add_argument(
        "--methods", default=",".join(ALL_METHODS), help=f"comma-separated subset of {','.join(ALL_METHODS)}"
    )
    parser.add_argument("--tvl1-pairs", type=int, default=6, help="TV-L1 takes ~1 s per 112x112 pair")
    parser.add_argument(
        "--jax-batch",
        type=int,
        default=62,
        help="tvl1-jax is also timed on this many flow fields (fwd + bwd) in one call",
    )
    parser.add_argument(
        "--jax-throughput",
        type=int,
        nargs="*",
        default=[],
        metavar="PAIRS",
        help="also time tvl1-jax's pairs/s with this many flow fields per call (e.g. 64 256 1024 on a GPU)",
    )
    parser.add_argument(
        "--jax-compaction", type=int, help="tvl1-jax's compaction (default: estimate_flow_batch's for the device)"
    )
    parser.add_argument(
        "--jax-steps-per-check", type=int, help="tvl1-jax's primal-dual steps per inner-loop test (default 1)"
    )
    parser.add_argument(
        "--jax-tvl1",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TV-L1 setting for tvl1-jax (flow_jax.SETTINGS, e.g. edge_weight=50; repeat the flag); kept in its rows",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="leave benchmarks/RESULTS.md and benchmarks/results.jsonl alone"
    )
    parser.add_argument("--jsonl", help="also append every row to this JSON-lines file")
    args = parser.parse_args(argv)
    jax_options = {
        key: value
        for key, value in (("compaction", args.jax_compaction), ("steps_per_check", args.jax_steps_per_check))
        if value is not None
    }
    try:
        jax_options.update(parse_overrides(args.jax_tvl1))
    except ValueError as err:
        parser.error(str(err))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(ALL_METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {ALL_METHODS}")
    cv2.setNumThreads(1)  # single-core timings
    device = f"cpu: {cpu_name()}"
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    rows, extra_rows = [], []  # extra: throughput rows, not in the EPE table
    print(
        f"{'method':14s} {'size':>5s} {'EPE fwd':>8s} {'EPE bwd':>8s} {'moving':>8s} {'ms/pair':>8s} "
        f"{'pairs/s':>8s} {'pairs':>6s}"
    )
    for size in args.size:
        config = SceneConfig(height=size, width=size, num_frames=args.num_frames)
        videos = [generate_video(seed, config) for seed in range(args.num_videos)]
        for method in methods:
            result = measure(method, videos, args.tvl1_pairs if method in BUDGETED else None, jax_options)
            row = {"bench": "flow_estimators", "method": method, "size": size, **result, "device": device, "date": date}
            if method == "tvl1-jax":
                batch = min(args.jax_batch, 2 * (args.num_frames - 1))
                row.update(
                    jax_device=jax_device(),
                    jax_version=jax_version(),
                    batch_pairs=batch,
                    batched_ms_per_pair=jax_batched_ms(videos[0], batch, jax_options),
                    **jax_options,
                    diff_to_tvl1=(tvl1_disagreement(videos, args.tvl1_pairs) if "tvl1" in methods else float("nan")),
                )
            rows.append(row)
            print(
                f"{method:14s} {size:5d} {row['epe_fwd']:8.3f} {row['epe_bwd']:8.3f} "
                f"{row['epe_moving']:8.3f} {row['ms_per_pair']:8.2f} {row['pairs_per_s']:8.1f} "
                f"{row['num_pairs']:6d}"
                + (
                    f"  batched {row['batched_ms_per_pair']:.2f} ms/pair, vs tvl1 {row['diff_to_tvl1']:.3f} px"
                    if method == "tvl1-jax"
                    else ""
                ),
                flush=True,
            )
        for pairs in args.jax_throughput:
            for measured in jax_throughput(videos, pairs, jax_options):
                row = {
                    "bench": "flow_throughput",
                    "method": "tvl1-jax",
                    "size": size,
                    **measured,
                    "jax_device": jax_device(),
                    "jax_version": jax_version(),
                    "date": date,
                }
                extra_rows.append(row)
                print(
                    f"tvl1-jax {size:5d} px, {pairs} fields per call, {row['frames']}: "
                    f"{row['pairs_per_s']:.1f} pairs/s",
                    flush=True,
                )
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            for row in rows + extra_rows:
                f.write(json.dumps(row) + "\n")
    if args.no_write:
        return
    with open(ROOT / "benchmarks" / "results.jsonl", "a") as f:
        for row in rows + extra_rows:
            f.write(json.dumps(row) + "\n")
    write_section(rows, args, device)


if __name__ == "__main__":
    main()
