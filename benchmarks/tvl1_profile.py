"""Where tvl1-jax's time goes on an accelerator (issue 16: ≥ 2,000 pairs/s at 112² was the target).

For ``--pairs`` flow fields per call (grey 112² frames of the v1 synthetic videos: their 248 pairs, evenly
spread when fewer are asked for, tiled when more)
it times `input_pipeline.flow_jax.tvl1_flow` (median of ``--repeats`` calls, compilation excluded):

* ``default``: OpenCV's defaults, each pair stopping by OpenCV's test, for each ``--compaction`` (0: a
  batch runs until its last pair stops, finished pairs masked, not removed; k: each outer iteration runs
  on the smallest of P, P/2, ..., P/2^k pairs holding the active ones) and each ``--steps-per-check``
  (primal-dual steps per read of the inner loop's predicate, which a GPU copies to the host);
* ``fixed``: ``epsilon = 0``, i.e. every pair runs the full schedule (5 levels x 5 warps x 10 outer x 30
  inner steps, a median filter per outer step) with static trip counts. ``default / fixed`` is the
  fraction of the full schedule the batch runs; with ``--alone N``, the same ratio for N pairs timed one per
  call (what a batch that dropped its finished pairs could approach).

and, at the finest level and the largest ``--pairs``, the cost of one call of each building block (in a
``fori_loop`` of ``--op-calls``, so launch overhead is amortised): one primal-dual step, the 5x5 median
filter, the bicubic warp of the frame and its gradient. The step's memory roofline (16 float32 reads and
writes per pixel, at the card's rated bandwidth) is printed beside it when the device is known.
``--trace DIR`` writes a jax.profiler trace of one ``default`` call of the largest batch.

    python benchmarks/tvl1_profile.py --pairs 128 1024 --compaction 0 3 5 --alone 32 --trace /tmp/tvl1_trace

Prints one JSON line per measurement (``--jsonl`` appends them to a file too); nothing else is written.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # step_profile, also when loaded by path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # first: benchmarks/input_pipeline.py must not shadow the package

from step_profile import median_ms  # noqa: E402

# GB/s of memory bandwidth by device kind, for the primal-dual step's roofline (the card's rated figure).
BANDWIDTH_GBPS = {"NVIDIA H200": 4800.0, "NVIDIA H100 80GB HBM3": 3350.0}


def _frames(size: int, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    from input_pipeline.flow import to_gray
    from input_pipeline.synthetic import SceneConfig, generate_video

    config = SceneConfig(height=size, width=size, num_frames=32)
    grey = [to_gray(generate_video(seed, config).frames).astype(np.float32) for seed in range(8)]
    i0 = np.concatenate([g[:-1] for g in grey])
    i1 = np.concatenate([g[1:] for g in grey])
    # Fewer pairs than the videos hold: spread over all of them (one video's pairs converge alike).
    picks = np.arange(pairs) * len(i0) // pairs if pairs <= len(i0) else np.arange(pairs) % len(i0)
    return i0[picks], i1[picks]


def _op_costs(i0, i1, calls: int, repeats: int) -> dict:
    """ms per call of each building block at the finest level, amortised over ``calls`` calls in one jit."""
    import jax
    import jax.numpy as jnp

    from input_pipeline.flow_jax import OPENCV_DEFAULTS, primal_dual_step
    from input_pipeline.flow_jax_ops import centered_gradient, median_filter, warp

    d = OPENCV_DEFAULTS
    step = functools.partial(
        primal_dual_step, l_t=d["lambda_"] * d["theta"], theta=d["theta"], taut=d["tau"] / d["theta"]
    )
    u0 = 0.5 * jnp.ones((i0.shape[0], 2, *i0.shape[1:]), jnp.float32)  # [P, 2, H, W]
    zero = jnp.zeros(i0.shape, jnp.float32)

    @jax.jit
    def steps(i0, i1):
        i1x, i1y = centered_gradient(i1)
        grad, rho_c = i1x * i1x + i1y * i1y, i1 - i0

        def body(_, carry):
            u, p, err = carry
            u, p, e = step(u, p, i1x, i1y, grad, rho_c)
            return u, p, err + e

        u = (u0[:, 0], u0[:, 1])
        return jax.lax.fori_loop(0, calls, body, (u, ((zero, zero), (zero, zero)), jnp.zeros(i0.shape[0])))

    @jax.jit
    def medians(u):
        return jax.lax.fori_loop(0, calls, lambda _, x: median_filter(x, d["median_filtering"]), u)

    @jax.jit
    def warps(i1, u):
        stack = jnp.stack([i1, *centered_gradient(i1)], axis=1)
        return jax.lax.fori_loop(0, calls, lambda _, s: warp(s, u, "cubic", "zero"), stack)

    i0, i1 = jnp.asarray(i0), jnp.asarray(i1)
    return {
        "primal_dual_step_ms": median_ms(steps, (i0, i1), 1, repeats) / calls,
        "median_filter_ms": median_ms(medians, (u0,), 1, repeats) / calls,
        "warp_ms": median_ms(warps, (i1, u0), 1, repeats) / calls,
    }


def _alone(i0, i1, count: int) -> dict:
    """The schedule ``count`` pairs (spread over the videos) run when each is alone in its call: seconds
    summed over the pairs with OpenCV's stopping and with the full schedule, one compiled shape for both."""
    import jax

    from input_pipeline.flow_jax import tvl1_flow

    picks = np.linspace(0, len(i0) - 1, count).astype(int)
    seconds = {}
    for schedule, fn in (("default", tvl1_flow), ("fixed", functools.partial(tvl1_flow, epsilon=0.0))):
        jax.block_until_ready(fn(i0[:1], i1[:1]))  # compile
        t = time.perf_counter()
        for k in picks:
            jax.block_until_ready(fn(i0[k : k + 1], i1[k : k + 1]))
        seconds[schedule] = time.perf_counter() - t
    return {"alone_pairs": count, "alone_default_s": seconds["default"], "alone_fixed_s": seconds["fixed"],
            "alone_schedule_share": seconds["default"] / seconds["fixed"]}  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=112, help="frame side (px)")
    parser.add_argument("--pairs", type=int, nargs="+", default=[128, 1024], help="flow fields per call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row (median)")
    parser.add_argument("--op-calls", type=int, default=50, help="building-block calls per timed jit")
    parser.add_argument(
        "--alone",
        type=int,
        default=0,
        metavar="N",
        help="also time N pairs one per call: the share of the full schedule a pair runs on its own",
    )
    parser.add_argument(
        "--compaction",
        type=int,
        nargs="+",
        default=[0, 3],
        help="tvl1_flow's compaction for the default-schedule rows (0: none; k: down to P / 2^k pairs)",
    )
    parser.add_argument(
        "--steps-per-check",
        type=int,
        nargs="+",
        default=[1],
        help="tvl1_flow's primal-dual steps per inner-loop test, crossed with --compaction (default rows: 1)",
    )
    parser.add_argument(
        "--fixed", action=argparse.BooleanOptionalAction, default=True, help="also time the full schedule (ε = 0)"
    )
    parser.add_argument("--trace", help="write a jax.profiler trace of one default call here")
    parser.add_argument("--jsonl", help="also append every row to this JSON-lines file")
    args = parser.parse_args(argv)

    import jax

    from input_pipeline.flow_jax import tvl1_flow

    device = jax.devices()[0]
    base = {
        "bench": "tvl1_profile",
        "size": args.size,
        "device": device.device_kind,
        "jax_version": jax.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    rows = []
    for pairs in args.pairs:
        i0, i1 = (jax.device_put(x) for x in _frames(args.size, pairs))
        runs = [
            ("default", {"compaction": c, "steps_per_check": k}) for c in args.compaction for k in args.steps_per_check
        ]
        runs += [("fixed", {"epsilon": 0.0})] if args.fixed else []
        for schedule, params in runs:
            ms = median_ms(functools.partial(tvl1_flow, **params), (i0, i1), 1, args.repeats)
            rows.append(
                {**base, "pairs": pairs, "schedule": schedule, **params, "ms_per_call": ms,
                 "pairs_per_s": pairs / ms * 1e3}
            )  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    if args.alone:
        rows.append({**base, **_alone(*_frames(args.size, 248), args.alone)})  # 248: every pair of the 8 videos
        print(json.dumps(rows[-1]), flush=True)
    i0, i1 = _frames(args.size, max(args.pairs))
    costs = _op_costs(i0, i1, args.op_calls, args.repeats)
    # A fused step reads u (2), p (4), the two warped gradients, |grad|^2 and rho_c and writes u and p: 16 floats.
    bytes_per_step = 16 * 4 * i0.size
    bandwidth = BANDWIDTH_GBPS.get(device.device_kind)
    rows.append(
        {
            **base,
            "pairs": len(i0),
            **costs,
            "step_roofline_ms": 1e3 * bytes_per_step / (bandwidth * 1e9) if bandwidth else None,
        }
    )
    print(json.dumps(rows[-1]), flush=True)
    if args.trace:
        i0, i1 = jax.device_put(i0), jax.device_put(i1)
        jax.block_until_ready(tvl1_flow(i0, i1))
        with jax.profiler.trace(args.trace):
            jax.block_until_ready(tvl1_flow(i0, i1))
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
