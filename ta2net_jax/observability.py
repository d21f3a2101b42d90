"""What a training run writes for people to watch: the JSONL log, TensorBoard event files, MFU.

* `MetricsLog`: `<workdir>/metrics.jsonl`, one JSON object per line, every one with a `step`. On resume
  the lines of steps after the restored checkpoint are dropped first (they are about to be trained again),
  so each step appears once.
* `EventWriter`: the same scalars for TensorBoard, written by tensorboardX (no TensorFlow) in
  `<workdir>/tensorboard/events.out.tfevents.<time>.<host>.<pid>.<n>`. A resumed run adds a file beside the old ones.
  On `gs://` tensorboardX's own GCS writer (google-cloud-storage) keeps the file in memory and uploads all of it
  at every flush (about every `FLUSH_SECS`): each upload is one atomic object write, so a kill loses at most the
  events since the last flush, as locally.
* Local paths and `gs://` URLs both work (input_pipeline.paths); on `gs://` an appended metrics line rewrites
  the object (GCS has no append), in one atomic upload.
* MFU: model FLOPs per step / step time / (devices × the device's peak FLOP/s for the compute dtype).
  Model FLOPs per clip = 3 × the analytic forward count (2 × conv/matmul MACs, `model_info.analytic_flops`;
  backward ≈ 2 × forward), as in benchmarks/train_step.py. Peak FLOP/s per device kind are data-sheet dense
  figures (`PEAK_FLOPS`); unknown devices (CPU) log `mfu: null` and still log `model_tflops_per_s`.
Everything here writes on process 0 only (`enabled`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time

from input_pipeline import paths

# ---- TensorBoard --------------------------------------------------------------------------------------------

_writer_ids = itertools.count()


class EventWriter:
    """TensorBoard scalars under `logdir`, written by tensorboardX's `SummaryWriter`.

    `scalars` hands the events to tensorboardX's writer thread, which flushes them to disk at most about
    `FLUSH_SECS` later; `close` writes out whatever is still queued. A disabled writer (processes other than 0,
    `train.tensorboard=False`) creates no directory or file and ignores every call.
    """

    FLUSH_SECS = 10

    def __init__(self, logdir: str, enabled: bool = True):
        self.enabled = enabled
        self._writer = None
        if enabled:
            # Imported here: the GPU check (scripts/gpu_check.sh) imports ta2net_jax.train, hence this module, on
            # a machine without tensorboardX.
            from tensorboardX import SummaryWriter

            # tensorboardX names the file by the whole second and opens it with "wb": the suffix keeps a second
            # writer started in the same second (a resume in the same process) from truncating the first one's
            # file. The queue holds about 50 log lines, so that `scalars` does not wait for a slow fsync.
            self._writer = SummaryWriter(
                logdir,
                max_queue=1000,
                flush_secs=self.FLUSH_SECS,
                filename_suffix=f".{os.getpid()}.{next(_writer_ids)}",
            )

    def scalars(self, step: int, values: dict) -> None:
        """Logs each int or float of `values` as a scalar of its key at `step`; bools, None (e.g. `mfu` on a
        device without a known peak) and other types are left out. NaN and Inf are logged as they are."""
        if self._writer is None:
            return
        wall_time = time.time()
        for tag, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(tag, float(value), step, walltime=wall_time)

    def close(self) -> None:
        """Writes the queued events and closes the file; later calls do nothing."""
        if self._writer is not None:
            gcs_files = _gcs_record_writers(self._writer)
            self._writer.close()
            for record_writer in gcs_files:
                # tensorboardX's GCSRecordWriter uploads the whole file again in `__del__`, closed or not: at
                # interpreter exit, when the bucket may be unreachable (a test's emulator already stopped), that
                # upload retried for 2 minutes and ended in a RetryError. The file is complete after close.
                record_writer.close = lambda: None
            self._writer = None


def _gcs_record_writers(summary_writer) -> list:
    """The `gs://` event-file objects (tensorboardX GCSRecordWriter) behind a SummaryWriter (private attributes of
    tensorboardX 2.6.5, looked up defensively: none found means nothing is disarmed)."""
    found = []
    for file_writer in (getattr(summary_writer, "all_writers", None) or {}).values():
        events = getattr(getattr(file_writer, "event_writer", None), "_ev_writer", None)
        record = getattr(getattr(events, "_py_recordio_writer", None), "_writer", None)
        if type(record).__name__ == "GCSRecordWriter":
            found.append(record)
    return found


# ---- JSONL --------------------------------------------------------------------------------------------------


class MetricsLog:
    """`<workdir>/metrics.jsonl` on process 0; `truncate_after(step)` drops lines of later steps."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = paths.join(workdir, "metrics.jsonl")
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not paths.exists(self.path):
            return
        kept = []
        for line in paths.read_text(self.path).splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a kill
                continue
            if record.get("step", 0) <= step:
                kept.append(json.dumps(record) + "\n")
        paths.write_text(self.path, "".join(kept))  # atomic: temp file + rename, or one object upload

    def write(self, record: dict) -> None:
        """Appends one line; non-finite floats (a skipped batch's loss) are written as null (valid JSON)."""
        if self.enabled:
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
            paths.append_line(self.path, json.dumps(clean))


# ---- MFU ----------------------------------------------------------------------------------------------------

# Dense peak FLOP/s per device by device kind (a substring of `device_kind`, most specific first) and compute
# dtype. NVIDIA data sheets (SXM): float32 is rated at TF32 (XLA's default for fp32 matmuls/convolutions on
# Ampere/Hopper); Google Cloud TPU docs per chip: float32 at the bf16 rate (XLA's default TPU matmul precision
# is one bf16 pass).
PEAK_FLOPS = {
    "H200": {"bfloat16": 989.4e12, "float32": 494.7e12},
    "H100 PCIe": {"bfloat16": 756.0e12, "float32": 378.0e12},
    "H100": {"bfloat16": 989.4e12, "float32": 494.7e12},
    "A100": {"bfloat16": 312.0e12, "float32": 156.0e12},
    "TPU v6": {"bfloat16": 918.0e12, "float32": 918.0e12},
    "TPU v5p": {"bfloat16": 459.0e12, "float32": 459.0e12},
    "TPU v5 lite": {"bfloat16": 197.0e12, "float32": 197.0e12},
    "TPU v5e": {"bfloat16": 197.0e12, "float32": 197.0e12},
    "TPU v4": {"bfloat16": 275.0e12, "float32": 275.0e12},
}


class ThroughputWindow:
    """Throughput and data-wait accounting between two log lines of the trainer."""

    def __init__(self, batch_size: int, flops_per_step: float | None, peak_flops_all_devices: float | None):
        self.batch_size, self.flops_per_step, self.peak = batch_size, flops_per_step, peak_flops_all_devices
        self.reset()

    def reset(self):
        self.start, self.steps, self.wait = time.perf_counter(), 0, 0.0

    def figures(self) -> dict:
        """clips/s, step time and data wait (s), model TFLOP/s and MFU (None when unknown) since `reset`."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        steps_per_s = self.steps / elapsed
        flops_per_s = self.flops_per_step * steps_per_s if self.flops_per_step else None
        return {
            "clips_per_s": steps_per_s * self.batch_size,
            "step_time_s": 1.0 / steps_per_s,
            "data_wait_s": self.wait / self.steps,
            "data_wait_fraction": self.wait / elapsed,
            "model_tflops_per_s": flops_per_s / 1e12 if flops_per_s else None,
            "mfu": flops_per_s / self.peak if flops_per_s and self.peak else None,
        }


def peak_flops(device_kind: str, dtype: str) -> float | None:
    for kind, peaks in PEAK_FLOPS.items():
        if kind in device_kind:
            return peaks.get(dtype)
    return None


def train_flops_per_clip(config) -> float | None:
    """3 × the analytic forward FLOPs of one clip (None if it cannot be traced)."""
    import jax
    import jax.numpy as jnp

    from ta2net_jax import model_info

    try:
        model = model_info.abstract_model(config)
        forward, state = model_info.forward_fn(model)
        inputs = [jax.ShapeDtypeStruct(s, jnp.float32) for s in model_info.input_shapes(config, 1).values()]
        return 3.0 * model_info.analytic_flops(forward, state, *inputs)
    except Exception:  # noqa: BLE001 — MFU is optional; the run goes on without it
        return None
