"""Input-pipeline throughput: frames/s per CPU core from a built real-video dataset to device arrays.

The paper configuration (configs/audible623_data.py: clips of T = 64 frames at 112×112, batch 4): the
training pipeline of input_pipeline/pipeline.py (ArrayRecord read of the video's JPEG record → TFDS
deserialisation → clip sampling → lazy JPEG decoding of the clip's 64 frames → its T+1 forward and T+1
backward flow fields copied from the memory-mapped flow side file → batch), then
`jax.device_put` of the batch and `block_until_ready`: video frames, flow and everything the inflection
inputs are computed from are on the device. With `--inflection` the jit `inflection.model_inputs` (video
in [0, 1], motion and colour inflection flow) also runs on the device and is waited for; on a CPU-only
machine that puts the model-side arithmetic on the same cores, so it is reported as a separate row.

frames/s = clips · T / wall time over `--batches` batches after `--warmup`; per core = that / the number
of cores the process may run on (`--cores 1` pins it to one core with sched_setaffinity).

Dataset: `--data-dir` with an `audible623` build of `--builder-config`; by default the two real UCF101
clips of ../shared/realdata (296 and 240 frames, real content) are built there first (about 10 s).
`--source-size` (default 497, Audible623's training rows) presents those examples as a source of that many
(example i is stored example i mod 2; the same records and flow are read): grain's shuffle
(`index_shuffle`, cycle walking) costs 16.6 ms per element on a 2-element range and 0.11 ms on 497, so the
bare 2-example source measures grain's shuffle more than the input pipeline. `--source-size 0` uses the
source as built. The page cache is warm (2 videos, read over and over): with a dataset larger than memory
the reads (~8 MB per 64-frame clip at 112²) come from disk.

    python benchmarks/input_pipeline.py                       # 1 core and all cores, appends to results.jsonl
    python benchmarks/input_pipeline.py --cores 1 --inflection

`--config CONFIG` measures a synthetic-data config's training pipeline instead (e.g.
`configs/default_detector.py:mix_small=0.25`: v2_64 with a quarter of `small`, T = 16, B = 16), on its dataset
as `ta2net build --config CONFIG` built it (`--data-dir` overrides its folder; `--batch` and `--num-frames`
default to the config's; no `--source-size`: the sets have hundreds of videos).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REALDATA = ROOT.parent / "shared" / "realdata"
DEFAULT_DATA_DIR = "/tmp/ta2net_bench_tfds"


class RepeatedSource:
    """`size` examples cycling over `source` (picklable, random access)."""

    def __init__(self, source, size: int):
        self.source, self.size = source, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index):
        return self.source[int(index) % len(self.source)]


def measure(args, cores: str) -> dict:
    if cores == "1":
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    num_cores = len(os.sched_getaffinity(0))
    import jax
    import numpy as np
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    from input_pipeline import pipeline, registry
    from ta2net_jax import inflection
    from ta2net_jax.config_utils import load_config

    sizes = [f"train.batch_size={args.batch}"] * bool(args.batch) + [f"data.num_frames={args.num_frames}"] * bool(
        args.num_frames
    )
    if args.config:  # a synthetic-data config, on the dataset `ta2net build` made for it
        config = load_config(args.config, sizes + [f"data.data_dir={args.data_dir}"] * bool(args.data_dir))
        name = args.config
    else:
        config = load_config(
            str(ROOT / "configs" / "audible623_data.py"),
            [
                f"data.data_dir={args.data_dir or DEFAULT_DATA_DIR}",
                f"data.manual_dir={args.manual_dir}",
                f"data.annotations_dir={args.annotations_dir}",
                f"data.builder_config={args.builder_config}",
                f"train.batch_size={args.batch or 4}",
                f"data.num_frames={args.num_frames or 64}",
                "data.validation_fraction=0.0",
            ],
        )
        name = f"configs/audible623_data.py (audible623:{args.builder_config})"
    batch_size, num_frames = int(config.train.batch_size), int(config.data.num_frames)
    builder = registry.get_builder(config.data, build_if_missing=not args.config, workers=2)
    source = pipeline.data_source(config.data, "train")
    built_examples = len(source)
    if not args.config and args.source_size > built_examples:
        source = RepeatedSource(source, args.source_size)
    it = iter(pipeline.train_dataset(config, source, mixture=pipeline.mixture_sources(config.data)))
    device = jax.devices()[0]
    step = jax.jit(
        lambda b: inflection.model_inputs(b, mode=config.inflection.mode, flow_scale=config.inflection.flow_scale)
    )

    def one():
        batch = next(it)
        on_device = jax.device_put(
            {k: batch[k] for k in ("frames", "flow_fwd", "flow_bwd", "labels", "num_valid")}, device
        )
        out = step(on_device) if args.inflection else on_device
        jax.block_until_ready(out)
        return batch

    for _ in range(args.warmup):
        batch = one()
    t0 = time.perf_counter()
    for _ in range(args.batches):
        batch = one()
    seconds = time.perf_counter() - t0
    frames = args.batches * batch_size * num_frames
    size = int(batch["frames"].shape[2])
    return {
        "bench": "input_pipeline",
        "config": f"{name}, T={num_frames}, {size}x{size}, B={batch_size}",
        "frames_per_s_per_core": frames / seconds / num_cores,
        "frames_per_s": frames / seconds,
        "clips_per_s": args.batches * batch_size / seconds,
        "clips_per_s_per_core": args.batches * batch_size / seconds / num_cores,
        "cores": num_cores,
        "includes_inflection": bool(args.inflection),
        "device": f"{device.platform}: {device.device_kind}",
        "host_cpu": f"{cpu_name()}, {os.cpu_count()} cores",
        # The 1-minute load average at the end: on a shared machine, other processes' load lowers the figure.
        "load_avg_1min": os.getloadavg()[0],
        # 1.0.0: flow inside each record; 2.0.0: flow in a side file per split (docs/datasets.md)
        "dataset": f"{builder.name}:{builder.builder_config.name}",
        "dataset_version": str(builder.version),
        "examples_built": built_examples,
        "source_examples": len(source),
        "batches": args.batches,
        "warmup": args.warmup,
        "batch": batch_size,
        "num_frames": num_frames,
        "image_size": size,
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="a synthetic-data config instead (see above)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"TFDS data dir (default {DEFAULT_DATA_DIR}, built if needed; with --config: its own)",
    )
    parser.add_argument("--manual-dir", default=str(REALDATA / "ucf101_audible623"), help="videos")
    parser.add_argument("--annotations-dir", default=str(REALDATA / "audible623"), help="label CSVs")
    parser.add_argument("--builder-config", default="paper", help="audible623 builder config (paper: 112×112)")
    parser.add_argument("--cores", nargs="+", default=["1", "all"], choices=("1", "all"))
    parser.add_argument("--inflection", action="store_true", help="also compute the inflection inputs on device")
    parser.add_argument(
        "--source-size",
        type=int,
        default=497,
        help="present the built examples as a source of this many (0: as built); see above",
    )
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (default 4; with --config its own)")
    parser.add_argument("--num-frames", type=int, default=None, help="T (default 64; with --config its own)")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.jsonl"), help="JSONL to append to")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:  # child process: one measurement, printed as JSON
        print(json.dumps(measure(args, args.single)), flush=True)
        return 0
    import subprocess

    status = 0
    for cores in args.cores:  # each in a fresh process: affinity and caches are its own
        cmd = [sys.executable, __file__, "--single", cores] + [
            a for a in (argv or sys.argv[1:]) if a not in ("1", "all", "--cores")
        ]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            print(f"cores={cores}: failed with exit status {proc.returncode}", file=sys.stderr)
            status = 1
            continue
        record = json.loads(lines[-1])
        print(json.dumps(record), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
