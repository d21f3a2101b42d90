"""TV-L1 in JAX on the devices: batches of frame pairs per jitted call, split over a mesh (flow_jax.py is the
algorithm, ``tvl1_flow``; this is how pairs reach it).

``estimate_flow_batch(frames)`` gives forward and backward flow of one video's consecutive frames with the
conventions of ``input_pipeline.flow.estimate_flow``; ``estimate_flow_videos(videos)`` the same for several
videos, their pairs packed into shared calls. A call holds ``call_size`` pairs (a power of two per device up
to the platform's default), laid out as ``NamedSharding(mesh, P('data'))`` and solved under one jit; with
compaction each device compacts its own pairs (``jax.shard_map``), so no pair crosses devices.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from input_pipeline import progress
from input_pipeline.flow_jax import tvl1_flow

__all__ = [
    "ACCELERATOR_COMPACTION",
    "ACCELERATOR_PAIRS",
    "call_size",
    "default_compaction",
    "default_pairs_per_device",
    "estimate_flow_batch",
    "estimate_flow_videos",
    "pairs_per_call",
]


# Per device and call on accelerators, measured on one H200 at 112² (benchmarks/RESULTS.md, "On one NVIDIA
# H200"): with 1,024 pairs per call, 801 pairs/s without compaction, 2,114 with k = 3 and 2,425 with k = 5
# (2,528 at 2,048 pairs); 128 pairs per call gave 746 with k = 3. On the CPU 2 pairs per device and call, no
# compaction: large batches leave the cache there (159 / 180 / 260 ms per pair at 2 / 8 / 31 pairs per call).
ACCELERATOR_PAIRS = 1024
ACCELERATOR_COMPACTION = 5
_REFERENCE_PIXELS = 112 * 112  # frame size the accelerator figures were measured at


def default_compaction(platform: str) -> int:
    """``compaction`` for ``platform`` ("cpu", "gpu", "tpu"): :data:`ACCELERATOR_COMPACTION` on accelerators,
    0 on the CPU (where a call holds 2 pairs per device)."""
    return 0 if platform == "cpu" else ACCELERATOR_COMPACTION


def default_pairs_per_device(platform: str, height: int, width: int) -> int:
    """Pairs per device and call for frames of H x W px on ``platform``: 2 on the CPU; on accelerators
    :data:`ACCELERATOR_PAIRS` at 112², scaled down with the frame's area (to a power of two, at least 16) so
    that a call's working memory stays near that of the measured size."""
    if platform == "cpu":
        return 2
    scaled = ACCELERATOR_PAIRS * _REFERENCE_PIXELS / (height * width)
    return int(np.clip(1 << int(np.floor(np.log2(max(scaled, 1.0)))), 16, ACCELERATOR_PAIRS))


def call_size(num_pairs: int, ways: int, pairs_per_device: int) -> int:
    """Pairs per jitted call for ``num_pairs`` pairs over ``ways`` devices: ``pairs_per_device`` per device,
    or for fewer pairs the next power of two per device that holds them, so that clips of many lengths share
    a few compiled shapes (the padding pairs are blank: they stop after one step, and under compaction
    leave the batch at the next outer iteration). A multiple of ``ways``."""
    need = -(-num_pairs // ways)
    return ways * min(pairs_per_device, 1 << max(need - 1, 0).bit_length())


def default_mesh() -> Mesh:
    """All of this process's devices on one "data" axis: where the flow runs unless a mesh is given."""
    return Mesh(np.asarray(jax.local_devices()), ("data",), axis_types=(AxisType.Auto,))


def pairs_per_call(height: int, width: int, mesh: Mesh | None = None) -> int:
    """Pairs in one full call at H x W px over ``mesh``'s data axis (default :func:`default_mesh`):
    :func:`default_pairs_per_device` times its devices."""
    mesh = default_mesh() if mesh is None else mesh
    return mesh.shape["data"] * default_pairs_per_device(mesh.devices.flat[0].platform, height, width)


def estimate_flow_batch(
    frames: np.ndarray, *, mesh: Mesh | None = None, max_pairs: int | None = None, **params
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward TV-L1 flow between consecutive grey frames, computed on the accelerator.

    Args:
      frames: [N, H, W] grey frames (uint8, or float on the same 0..255 scale), N >= 2.
      mesh: a mesh with a "data" axis over devices of this process; the pairs are split over it
        (default: all of this process's devices).
      max_pairs: pairs per jitted call at most (rounded up to a multiple of the data-axis size; default
        :func:`default_pairs_per_device` times the devices: 2 per device on the CPU, 1,024 at 112²
        on accelerators). Fewer pairs go in one call of :func:`call_size` (a power of two per device); the
        last call is padded with blank pairs, so the calls of a video share one compiled shape.
      params: overrides of :data:`input_pipeline.flow_jax.SETTINGS` (and ``interpolation``,
        ``border``, ``compaction``, ``steps_per_check``), see :func:`tvl1_flow`. ``compaction`` defaults to
        :func:`default_compaction` (5 on accelerators, 0 on the CPU); with it each device compacts its own
        pairs (the solver runs under `jax.shard_map`), so no pair crosses devices.
    Returns:
      (fwd, bwd), each [N-1, H, W, 2] float32 (u, v) px: fwd[k] maps frame k to k+1 at the pixels of
      frame k, bwd[k] maps frame k+1 to k at the pixels of frame k+1 (input_pipeline.flow's conventions).
    """
    return estimate_flow_videos([frames], mesh=mesh, max_pairs=max_pairs, **params)[0]


def estimate_flow_videos(
    videos, *, mesh: Mesh | None = None, max_pairs: int | None = None, **params
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`estimate_flow_batch` of several videos at once: their pairs (each video's forward pairs, then
    its backward ones) packed into shared calls, so many short videos fill calls of ``max_pairs`` instead
    of one padded call each, and no pair ever spans two videos (such a pair never meets OpenCV's stopping
    test and keeps its call stepping to the end of the schedule). Each pair's flow does not depend on the
    others in its call (per-pair stopping), so the result is each video's own flow.

    Args:
      videos: a sequence of [N_i, H, W] grey frames (one H, W for all; N_i >= 2).
      mesh, max_pairs, params: as :func:`estimate_flow_batch`.
    Returns:
      [(fwd, bwd)] per video, each [N_i - 1, H, W, 2] float32.
    """
    videos = [np.asarray(v) for v in videos]
    if not videos:
        raise ValueError("no videos")
    for i, v in enumerate(videos):
        if v.ndim != 3:
            raise ValueError(f"video {i}: frames must be [N, H, W] grey, got shape {v.shape}")
        if len(v) < 2:
            raise ValueError(f"video {i}: need at least 2 frames for optical flow, got {len(v)}")
        if v.shape[1:] != videos[0].shape[1:]:
            raise ValueError(f"video {i}: frames of {v.shape[1:]}, video 0's are {videos[0].shape[1:]}")
    h, w = videos[0].shape[1:]
    grey = np.concatenate(videos).astype(np.float32)
    firsts = np.cumsum([0] + [len(v) for v in videos[:-1]])
    k = [first + np.arange(len(v) - 1) for first, v in zip(firsts, videos)]
    src = np.concatenate([np.r_[ks, ks + 1] for ks in k])  # per video: pairs k→k+1, then k+1→k
    dst = np.concatenate([np.r_[ks + 1, ks] for ks in k])
    mesh = default_mesh() if mesh is None else mesh
    ways = mesh.shape["data"]
    platform = mesh.devices.flat[0].platform
    per_device = default_pairs_per_device(platform, h, w) if max_pairs is None else -(-max_pairs // ways)
    chunk = call_size(len(src), ways, per_device)
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    params = {"compaction": default_compaction(platform), **params}
    solve = functools.partial(tvl1_flow, **params)
    if params["compaction"]:  # per device (on one device too: an Explicit axis cannot gather a sharded batch)
        pairs = PartitionSpec("data")
        solve = jax.jit(jax.shard_map(solve, mesh=mesh, in_specs=(pairs, pairs), out_specs=pairs))
    out = np.empty((len(src), h, w, 2), np.float32)
    blank = np.zeros((chunk, h, w), np.float32)
    with progress.bar(len(src), "flow (tvl1-jax)", unit="pair") as bar:
        for start in range(0, len(src), chunk):
            a, b = grey[src[start : start + chunk]], grey[dst[start : start + chunk]]
            m = len(a)
            if m < chunk:  # blank pairs: zero flow, they stop after one step
                a, b = np.concatenate([a, blank[m:]]), np.concatenate([b, blank[m:]])
            flow = solve(jax.device_put(a, sharding), jax.device_put(b, sharding))
            out[start : start + m] = np.asarray(flow)[:m]
            bar.update(m)
    flows, row = [], 0
    for v in videos:
        n = len(v) - 1
        flows.append((out[row : row + n], out[row + n : row + 2 * n]))
        row += 2 * n
    return flows
