"""Times the full TA²Net training step: forward, the original loss terms, backward and Adam.

The step is `ta2net_jax.train.make_train_step`, the same jit step the trainer runs, on a 1-device mesh,
fed random inputs shaped like a pipeline batch (frames uint8 [B,T,H,W,3], flow_fwd/flow_bwd float16
[B,T+1,H,W,2], labels int32 [B,T] with ≥ 1 audible frame per clip, num_valid = T, contact_xy [B,T,2]).
Inflection flow is computed inside the step, as in training. Per (batch, dtype) it reports:

* step_ms: median over `--steps` timed steps (each ended by block_until_ready) after `--warmup` steps;
  clips_per_s = batch / step time.
* flops_per_step: the model FLOPs, 3 × the analytic forward count of ta2net_jax.model_info (2 × conv/matmul
  MACs; backward ≈ 2 × forward), the usual basis of MFU. XLA's own counts of the compiled and lowered
  step are recorded beside it but not used: on GPU the compiled analysis omits convolutions that run as
  cuDNN custom calls (measured on an H200: 1.3e11 per B=4 step against 7.2e12 model FLOPs).
* mfu = flops_per_step / step time / the device's peak FLOP/s for the dtype (PEAK_FLOPS; null on CPU
  and unknown devices). fp32 uses the TF32 tensor-core peak: on Ampere/Hopper XLA runs float32
  convolutions and matmuls in TF32 by default (jax_default_matmul_precision unset = "default").
* peak_memory_gib: the device allocator's peak_bytes_in_use (null where memory_stats() is unavailable,
  e.g. CPU). Each (batch, dtype, side pass) runs in a fresh process so that the peak is its own.
* `--bn-side-pass on off` times the step with and without the original's second decoder pass
  (`model.faithful_bn_side_pass`, model/ta2net.py); "config" (default) keeps the config's value.
  flops_per_step does not count the pass (it is the model's forward basis, the same for both).
* `--cpu-kernels onednn xla` times each row with oneDNN's convolutions (what every `ta2net` command uses on a
  CPU, ta2net_jax/cpu_kernels.py; the default) and with XLA's own (Eigen) kernels; recorded as `cpu_kernels`
  (on a GPU or TPU the devices' programs are the same either way).
* `--profile` adds where the step's time goes (benchmarks/step_profile.py): the input transform, the three
  trunks' forward + backward alone, the heads and losses, the optimizer, and the trunk-bound clips/s;
  `--trace DIR` writes a jax.profiler trace of one step per row (TensorBoard's profile plugin, Perfetto).

Appends one JSON line per (batch, dtype, side pass) to `--out` and prints a Markdown table.

    python benchmarks/train_step.py --config configs/audible623.py --batch 4 16 --dtype bfloat16 float32
    python benchmarks/train_step.py --config configs/synthetic_small.py --batch 2 --steps 2 --warmup 1
    python benchmarks/train_step.py --config configs/synthetic_small.py --batch 8 --bn-side-pass on off
    python benchmarks/train_step.py --config configs/audible623.py --batch 16 --dtype bfloat16 --profile
    python benchmarks/train_step.py --config configs/default_detector.py --batch 16 --dtype float32 \
        --cpu-kernels onednn xla --steps 5 --warmup 1

Needs jax, flax, optax, orbax and ml_collections only (no grain, TFDS, OpenCV or PyAV), for configs that
state `data.image_size` (the paper config does); runs on jax ≥ 0.11.2 / flax ≥ 0.12.10.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_common, also when loaded by path
from bench_common import cpu_name  # noqa: E402
from step_profile import stage_times  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ta2net_jax import cpu_kernels  # noqa: E402  (imports no jax)

# Dense peak FLOP/s by device kind (substring of jax.devices()[0].device_kind) and compute dtype.
# NVIDIA data sheets (SXM): bf16 dense 989.4 TFLOP/s, TF32 dense 494.7 TFLOP/s (plain fp32: 67 TFLOP/s);
# float32 is rated at TF32 because XLA uses TF32 for fp32 convolutions/matmuls on these cards by default.
PEAK_FLOPS = {
    "H200": {"bfloat16": 989.4e12, "float32": 494.7e12},
    "H100 PCIe": {"bfloat16": 756.0e12, "float32": 378.0e12},
    "H100": {"bfloat16": 989.4e12, "float32": 494.7e12},
}


def peak_flops(device_kind: str, dtype: str) -> float | None:
    for kind, peaks in PEAK_FLOPS.items():  # most specific first ("H100 PCIe" before "H100")
        if kind in device_kind:
            return peaks[dtype]
    return None


def random_batch(batch: int, num_frames: int, size: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = (rng.random((batch, num_frames)) < 0.05).astype(np.int32)
    labels[np.arange(batch), rng.integers(0, num_frames, batch)] = 1  # every clip has an audible frame
    flow = lambda: (2.0 * rng.standard_normal((batch, num_frames + 1, size, size, 2))).astype(np.float16)
    return {
        "frames": rng.integers(0, 256, (batch, num_frames, size, size, 3), dtype=np.uint8),
        "flow_fwd": flow(),
        "flow_bwd": flow(),
        "labels": labels,
        "num_valid": np.full((batch,), num_frames, np.int32),
        "start": np.full((batch,), 2, np.int32),
        # A contact point at every audible frame (read only when loss.contact_weight > 0).
        "contact_xy": np.where(labels[..., None] > 0, rng.random((batch, num_frames, 2)), -1.0).astype(np.float32),
    }


def _cost_flops(stage) -> float | None:
    """'flops' of a Lowered or Compiled stage's XLA cost analysis; None where unavailable."""
    from ta2net_jax.model_info import xla_flops

    try:
        return xla_flops(stage.cost_analysis())
    except Exception:  # noqa: BLE001 — optional: some backends do not implement it
        return None


def measure(
    config_spec: str,
    batch: int,
    dtype: str,
    steps: int,
    warmup: int,
    side_pass: str = "config",
    profile: bool = False,
    trace_dir: str | None = None,
) -> dict:
    """One (batch, dtype, side pass): compile, warm up, time. Returns the JSON record; with ``profile`` it
    also holds step_profile.stage_times (trunks against the rest), and with ``trace_dir`` a
    jax.profiler trace of one more step is written there (TensorBoard's profile plugin or Perfetto read it)."""
    import flax
    import jax
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    from ta2net_jax.config_utils import load_config
    from ta2net_jax.model_info import forward_flops, image_size
    from ta2net_jax.train import create_train_state, make_train_step

    overrides = [f"model.compute_dtype={dtype}", f"train.batch_size={batch}"]
    if side_pass != "config":
        overrides.append(f"model.faithful_bn_side_pass={side_pass == 'on'}")
    config = load_config(config_spec, overrides)
    size, num_frames = image_size(config), int(config.model.num_frames)
    device = jax.devices()[0]
    mesh = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Auto,), devices=[device])
    host_batch = random_batch(batch, num_frames, size, config.seed)

    with jax.set_mesh(mesh):
        graphdef, state = create_train_state(config, mesh)
        step_fn = make_train_step(config, graphdef, mesh)
        data = jax.device_put(host_batch, NamedSharding(mesh, P("data")))
        t0 = time.perf_counter()
        lowered = step_fn.lower(state, data)
        compiled = lowered.compile()
        compile_s = time.perf_counter() - t0

        flops_compiled, flops_lowered = _cost_flops(compiled), _cost_flops(lowered)
        flops, source = 3 * forward_flops(config, batch=batch, size=size)["flops_analytic"], "3x_forward_analytic"

        times = []
        for i in range(warmup + steps):
            t = time.perf_counter()
            state, metrics = compiled(state, data)
            jax.block_until_ready((state, metrics))
            if i >= warmup:
                times.append(time.perf_counter() - t)
        loss = float(metrics["loss"])
        step_ms = 1e3 * statistics.median(times)
        stages = stage_times(config, graphdef, state, data, step_ms, warmup, steps) if profile else {}
        trace_error = None
        if trace_dir:
            # A profiler that cannot start (no CUPTI, say) must not cost the row its timings.
            try:
                with jax.profiler.trace(trace_dir):  # one step: a paper-size step's trace is megabytes
                    jax.block_until_ready(compiled(state, data))
            except Exception as err:  # noqa: BLE001 - any profiler failure is reported in the record
                trace_error = f"{type(err).__name__}: {err}"
                print(f"trace not written: {trace_error}", file=sys.stderr)

    step_s = statistics.median(times)
    stats = device.memory_stats() or {}
    peak_bytes = stats.get("peak_bytes_in_use")
    peak = peak_flops(device.device_kind, dtype)
    return {
        "bench": "train_step",
        "config": config_spec,
        "batch": batch,
        "dtype": dtype,
        "faithful_bn_side_pass": bool(config.model.get("faithful_bn_side_pass", False)),
        "cpu_kernels": "onednn" if cpu_kernels.FLAG in os.environ.get("XLA_FLAGS", "").split() else "xla",
        "clips_per_s": batch / step_s,
        "step_ms": 1e3 * step_s,
        "mfu": flops / step_s / peak if peak else None,
        "peak_memory_gib": peak_bytes / 2**30 if peak_bytes is not None else None,
        "device": device.device_kind,
        "platform": device.platform,
        "host_cpu": f"{cpu_name()}, {os.cpu_count()} cores",
        "jax_version": jax.__version__,
        "flax_version": flax.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "flops_per_step": flops,
        "flops_source": source,
        "flops_per_step_compiled": flops_compiled,
        "flops_per_step_lowered": flops_lowered,
        "peak_flops": peak,
        "num_frames": num_frames,
        "image_size": size,
        "steps": steps,
        "warmup": warmup,
        "step_ms_min": 1e3 * min(times),
        "step_ms_max": 1e3 * max(times),
        "compile_s": compile_s,
        "loss": loss,
        **stages,
        **({"trace_error": trace_error} if trace_error else {}),
    }


def run_isolated(args, batch: int, dtype: str, side_pass: str, kernels: str = "onednn") -> dict:
    """`measure` in a fresh Python process (its own device memory peak, its own XLA flags); errors become a
    record."""
    cmd = [
        sys.executable,
        __file__,
        "--config",
        args.config,
        "--batch",
        str(batch),
        "--dtype",
        dtype,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--bn-side-pass",
        side_pass,
        "--single",
        *(["--profile"] if args.profile else []),
        *(["--trace", os.path.join(args.trace, f"B{batch}_{dtype}_{side_pass}")] if args.trace else []),
    ]
    env = {**os.environ, cpu_kernels.ENV: kernels}
    if kernels == "xla" and cpu_kernels.FLAG_NAME in env.get("XLA_FLAGS", ""):  # the parent's flag, not inherited
        env["XLA_FLAGS"] = " ".join(f for f in env["XLA_FLAGS"].split() if cpu_kernels.FLAG_NAME not in f)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {
            "bench": "train_step",
            "config": args.config,
            "batch": batch,
            "dtype": dtype,
            "faithful_bn_side_pass": side_pass,
            "cpu_kernels": kernels,
            "error": f"exit status {proc.returncode} (see stderr above)",
        }
    return json.loads(lines[-1])


def markdown_table(records: list[dict]) -> str:
    fmt = lambda v, f, unit="": "n/a" if v is None else format(v, f) + unit
    header = (
        "config",
        "B",
        "dtype",
        "side pass",
        "CPU kernels",
        "step ms (median)",
        "clips/s",
        "MFU",
        "peak memory GiB",
        "FLOPs/step (source)",
        "device",
    )
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        if "error" in r:
            rows.append(
                f"| {r['config']} | {r['batch']} | {r['dtype']} | {r['faithful_bn_side_pass']} | "
                f"{r.get('cpu_kernels', '')} | {r['error']} | | | | | |"
            )
            continue
        side = "on" if r["faithful_bn_side_pass"] else "off"
        rows.append(
            f"| {r['config']} | {r['batch']} | {r['dtype']} | {side} | {r.get('cpu_kernels', 'xla')} | "
            f"{r['step_ms']:.1f} | "
            f"{r['clips_per_s']:.2f} | "
            f"{fmt(None if r['mfu'] is None else 100 * r['mfu'], '.1f', ' %')} | "
            f"{fmt(r['peak_memory_gib'], '.2f')} | {r['flops_per_step']:.3g} ({r['flops_source']}) | "
            f"{r['device']} |"
        )
    profiled = [r for r in records if "trunks_ms" in r]
    if profiled:
        header = (
            "B",
            "dtype",
            "step ms",
            "inputs ms",
            "trunks fwd+bwd ms",
            "heads + losses ms",
            "optimizer ms",
            "trunks share",
            "clips/s",
            "trunk-bound clips/s",
        )
        rows += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in profiled:
            rows.append(
                f"| {r['batch']} | {r['dtype']} | {r['step_ms']:.1f} | {r['inputs_ms']:.1f} | {r['trunks_ms']:.1f} | "
                f"{r['heads_ms']:.1f} | {r['optimizer_ms']:.1f} | {100 * r['trunks_share']:.0f} % | "
                f"{r['clips_per_s']:.2f} | {r['trunk_bound_clips_per_s']:.2f} |"
            )
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/audible623.py", help="config file[:variant]")
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 16], help="global batch sizes (clips)")
    parser.add_argument(
        "--dtype",
        nargs="+",
        default=["float32", "bfloat16"],
        choices=("float32", "bfloat16"),
        help="model compute dtypes (params, optimizer and losses stay float32)",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation")
    parser.add_argument(
        "--bn-side-pass",
        nargs="+",
        default=["config"],
        choices=("config", "on", "off"),
        help="the original's second decoder pass (model.faithful_bn_side_pass): config value, on, off",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.jsonl"), help="JSONL to append to")
    parser.add_argument(
        "--profile", action="store_true", help="also time the trunks alone and the rest (step_profile.py)"
    )
    parser.add_argument("--trace", help="write a jax.profiler trace of one step per row under this folder")
    parser.add_argument(
        "--cpu-kernels",
        nargs="+",
        default=["onednn"],
        choices=("onednn", "xla"),
        help="XLA:CPU convolutions by oneDNN (what ta2net commands use) or by XLA itself (ta2net_jax/cpu_kernels.py)",
    )
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # child process: print only
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be ≥ 1 and --warmup ≥ 0")

    if args.single:
        cpu_kernels.configure()  # before measure() imports jax; TA2NET_CPU_KERNELS comes from run_isolated
        print(
            json.dumps(
                measure(
                    args.config,
                    args.batch[0],
                    args.dtype[0],
                    args.steps,
                    args.warmup,
                    args.bn_side_pass[0],
                    profile=args.profile,
                    trace_dir=args.trace,
                )
            ),
            flush=True,
        )
        return 0

    records = []
    rows = [(b, d, s, k) for d in args.dtype for b in args.batch for s in args.bn_side_pass for k in args.cpu_kernels]
    for batch, dtype, side_pass, kernels in rows:
        record = run_isolated(args, batch, dtype, side_pass, kernels)
        print(json.dumps(record), flush=True)
        records.append(record)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
    print()
    print(markdown_table(records))
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
