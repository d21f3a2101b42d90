"""What a training run writes for people to watch: the JSONL log, TensorBoard event files, MFU.

* `MetricsLog`: `<workdir>/metrics.jsonl`, one JSON object per line, every one with a `step`. On resume
  the lines of steps after the restored checkpoint are dropped first (they are about to be trained again),
  so each step appears once.
* `EventWriter`: TensorBoard scalars in `<workdir>/tensorboard/events.out.tfevents.<time>.<host>`, written
  here without TensorFlow or tensorboardX: TFRecord framing (length, masked CRC-32C, data, masked CRC-32C)
  around `tensorflow.Event` protos (wall_time = 1, step = 2, file_version = 3, summary = 5; Summary.value = 1;
  Value.tag = 1, Value.simple_value = 2), encoded by hand. `read_events` reads them back (CRCs checked).
* MFU: model FLOPs per step / step time / (devices × the device's peak FLOP/s for the compute dtype).
  Model FLOPs per clip = 3 × the analytic forward count (2 × conv/matmul MACs, `model_info.analytic_flops`;
  backward ≈ 2 × forward), as in benchmarks/train_step.py. Peak FLOP/s per device kind are data-sheet dense
  figures (`PEAK_FLOPS`); unknown devices (CPU) log `mfu: null` and still log `model_tflops_per_s`.
Everything here writes on process 0 only (`enabled`).
"""
from __future__ import annotations

import json
import math
import os
import socket
import struct
import time
from typing import Iterator

# ---- CRC-32C (Castagnoli), table-driven ----------------------------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---- protobuf wire format (the few fields TensorBoard scalars need) -----------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int | None = None, scalars: dict[str, float] | None = None,
                 file_version: str | None = None) -> bytes:
    out = bytearray(_varint(1 << 3 | 1) + struct.pack("<d", wall_time))
    if step is not None:
        out += _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        out += _length_delimited(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _length_delimited(1, _length_delimited(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value))
            for tag, value in scalars.items())
        out += _length_delimited(5, summary)
    return bytes(out)


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def decode_event(data: bytes) -> dict:
    event: dict = {"scalars": {}}
    for field, _, value in _fields(data):
        if field == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2:
            event["step"] = value
        elif field == 3:
            event["file_version"] = value.decode()
        elif field == 5:
            for f, _, v in _fields(value):
                if f == 1:
                    tag, simple = None, None
                    for ff, _, vv in _fields(v):
                        if ff == 1:
                            tag = vv.decode()
                        elif ff == 2:
                            simple = struct.unpack("<f", vv)[0]
                    event["scalars"][tag] = simple
    return event


def read_records(path: str) -> Iterator[bytes]:
    """The data of each TFRecord in `path`; raises ValueError on a CRC mismatch or a truncated record."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header")
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                raise ValueError(f"{path}: bad length CRC")
            data, footer = f.read(length), f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{path}: truncated record")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{path}: bad data CRC")
            yield data


def read_events(path: str) -> list[dict]:
    return [decode_event(r) for r in read_records(path)]


class EventWriter:
    """TensorBoard scalar event file (process 0 only when `enabled` is False elsewhere)."""

    def __init__(self, logdir: str, enabled: bool = True):
        self.enabled = enabled
        self._file = None
        if enabled:
            os.makedirs(logdir, exist_ok=True)
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
            self.path = os.path.join(logdir, name)
            self._file = open(self.path, "ab")
            self._file.write(_record(encode_event(time.time(), step=0, file_version="brain.Event:2")))
            self._file.flush()

    def scalars(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        finite = {k: float(v) for k, v in values.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if finite:
            self._file.write(_record(encode_event(time.time(), step=step, scalars=finite)))
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class MetricsLog:
    """`<workdir>/metrics.jsonl` on process 0; `truncate_after(step)` drops lines of later steps."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not os.path.exists(self.path):
            return
        kept = []
        with open(self.path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:   # a line torn by a kill
                    continue
                if record.get("step", 0) <= step:
                    kept.append(json.dumps(record) + "\n")
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, self.path)

    def write(self, record: dict) -> None:
        """Appends one line; non-finite floats (a skipped batch's loss) are written as null (valid JSON)."""
        if self.enabled:
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
            with open(self.path, "a") as f:
                f.write(json.dumps(clean) + "\n")


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
