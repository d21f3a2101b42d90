"""Frames → TV-L1 flow → inflection → model as one jitted program per batch of windows (`detect --flow tvl1-jax`).

The unfused path estimates the whole video's flow on the devices (input_pipeline.flow_jax), copies it to the
host, cuts it into windows (input_pipeline.clips.make_clip) and uploads the windows again for the model
(inference.Predictor). Here a batch of B windows is one call: the RGB frames of the span of video the batch
needs go up once, and everything after that stays on the devices:

    span frames [L, S, S, 3] uint8 (replicated)
      → grey (OpenCV's BT.601 fixed point, bit-exact with cv2.cvtColor RGB2GRAY)
      → TV-L1 of every consecutive pair of the span, forward and backward (2(L−1) pairs, split over the
        mesh's batch axes, `pairs_per_step` pairs per device at a time), stored as float16 as the dataset
        and flow.estimate_flow store flow, so the model sees the values it sees on the unfused path
      → all-gather of the flows, then each device cuts its windows out of them exactly as make_clip lays
        them out (frames s … s+T−1, flow_fwd F⁺_{s+j}, flow_bwd F⁻_{s−2+j}, j ≤ T, end-padded by num_valid)
      → inflection.model_inputs and the eval-mode model on the sharded batch (inference.audible_and_maps)
      → P(audible) [B, T], maps [B, T, h, w], and the span's flows (for `ModelDetector.locate`).

Consecutive windows overlap (stride < T), so flow is computed once per span, not once per window: a batch's
span is (B−1)·stride + T + 4 frames (a shorter video: the next power of two, its last frame repeated), so a
few compiled programs serve videos of every length (`compiled_span_length`). Consecutive batches share
T + 4 − stride frames, whose flows are computed twice. The flows equal the unfused path's up to float32
evaluation order: TV-L1 runs each pair on its own iteration schedule whatever the other pairs of its batch
(flow_jax: masked updates).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from input_pipeline import clips, flow_jax, flow_jax_batch, progress
from ta2net_jax import mesh as mesh_lib
from ta2net_jax.inference import audible_and_maps, merge_windows, mirrored_pass, replicated_eval_state

# cv2.cvtColor(COLOR_RGB2GRAY) on uint8: Y = (9798 R + 19235 G + 3735 B + 2^14) >> 15 (OpenCV 5's fixed
# point, BT.601 weights 0.299 / 0.587 / 0.114); tests/test_fused_detect.py checks it against cv2.
_GREY_WEIGHTS = (9798, 19235, 3735)
_GREY_SHIFT = 15


def to_gray(frames: jax.Array) -> jax.Array:
    """[..., H, W, 3] uint8 RGB → [..., H, W] float32 luma on the 0..255 scale, the integers cv2 gives."""
    x = frames.astype(jnp.int32)
    y = x[..., 0] * _GREY_WEIGHTS[0] + x[..., 1] * _GREY_WEIGHTS[1] + x[..., 2] * _GREY_WEIGHTS[2]
    return jnp.right_shift(y + (1 << (_GREY_SHIFT - 1)), _GREY_SHIFT).astype(jnp.float32)


def _full_span(batch_size: int, clip_len: int, stride: int) -> int:
    """Frames from s₀ − 2 to s_last + T + 1 of `batch_size` consecutive windows."""
    return (batch_size - 1) * stride + clip_len + 2 * clips.FIRST_KEPT


def span_length(num_frames: int, batch_size: int, clip_len: int, stride: int) -> int:
    """Frames a batch of `batch_size` consecutive windows needs at most: from s₀ − 2 to s_last + T + 1."""
    return min(_full_span(batch_size, clip_len, stride), num_frames)


def compiled_span_length(num_frames: int, batch_size: int, clip_len: int, stride: int) -> int:
    """The span length a video is run with: the full span, or for a video shorter than that the next power of
    two (at most the full span), the video's frames then padded with copies of its last frame. Every video
    length needs a program of its own, and each compiled program keeps ≈ 1,300–3,800 memory mappings on the
    CPU: one per length made `calibrate` on 80 synthetic videos of as many lengths run out of the kernel's
    65,530 mappings (LLVM "Cannot allocate memory"); bucketed, a few programs serve every length."""
    full = _full_span(batch_size, clip_len, stride)
    return full if num_frames >= full else min(full, 1 << max(num_frames - 1, 0).bit_length())


def batch_indices(starts, num_valid, base: int, length: int, clip_len: int) -> dict[str, np.ndarray]:
    """Where each window's inputs sit in a span of `length` frames from video frame `base`.

    Returns frame_idx [W, T] (span frames), fwd_idx and bwd_idx [W, T+1] (rows of the span's flows: forward
    pair k→k+1 at row k, backward pair k+1→k at row L−1+k), num_valid [W]: make_clip's layout."""
    starts = np.asarray(starts, np.int64)[:, None] - base
    nv = np.asarray(num_valid, np.int64)[:, None]
    j, j1 = np.arange(clip_len)[None], np.arange(clip_len + 1)[None]
    out = {
        "frame_idx": starts + np.minimum(j, nv - 1),
        "fwd_idx": starts + np.minimum(j1, nv),
        "bwd_idx": (length - 1) + starts - clips.FIRST_KEPT + np.minimum(j1, nv),
    }
    inside = out["frame_idx"].min() >= 0 and out["fwd_idx"].max() <= length - 2 and out["bwd_idx"].min() >= length - 1
    if not inside:
        raise ValueError(f"windows starting at {starts.ravel() + base} do not fit the span {base}…{base + length - 1}")
    return {**{k: v.astype(np.int32) for k, v in out.items()}, "num_valid": nv[:, 0].astype(np.int32)}


class FusedPredictor:
    """The eval-mode model with TV-L1 flow in front of it, jit-compiled, on a mesh (module docstring).

    `batch_size` windows per call (a multiple of the mesh's batch parallelism; default eval.batch_size);
    `pairs_per_step`: flow pairs each device solves at a time at most (default
    flow_jax_batch.default_pairs_per_device: 2 on the CPU, where large batches leave the cache, 1,024 at 112² on
    accelerators; a span with fewer pairs solves them in one step, padded to a power of two per device as
    flow_jax_batch.call_size does); `flow_params`: overrides of flow_jax.SETTINGS and `compaction` (default
    flow_jax_batch.default_compaction: 5 on accelerators, 0 on the CPU; the unfused `tvl1-jax` uses the same);
    `hflip_tta`: as inference.Predictor's (the mirrored pass mirrors the estimated flow, it does not
    estimate it again)."""

    def __init__(
        self,
        model: nnx.Module,
        config,
        mesh: jax.sharding.Mesh,
        batch_size: int | None = None,
        pairs_per_step: int | None = None,
        flow_params: dict | None = None,
        hflip_tta: bool | None = None,
    ):
        self.batch_size = batch_size or config.eval.batch_size
        hflip_tta = mirrored_pass(config, hflip_tta)
        self.ways = mesh_lib.batch_parallelism(mesh)
        if self.batch_size % self.ways:
            raise ValueError(f"eval.batch_size {self.batch_size} is not divisible by {self.ways} devices")
        self._platform, self._pairs_per_step = mesh.devices.flat[0].platform, pairs_per_step
        compaction = flow_jax_batch.default_compaction(self._platform)
        self.clip_len, self.stride = int(config.data.num_frames), int(config.eval.stride)
        graphdef, self.state = replicated_eval_state(model, mesh)
        self.mesh = mesh
        axes = mesh_lib.batch_axes(mesh)
        self._split = NamedSharding(mesh, P(axes))
        self._replicated = mesh_lib.replicated(mesh)
        mode, flow_scale = config.inflection.mode, config.inflection.flow_scale
        tvl1 = functools.partial(flow_jax.tvl1_flow, **{"compaction": compaction, **(flow_params or {})})

        def flows_and_windows(frames, src, dst, gains, frame_idx, fwd_idx, bwd_idx):
            # Per device: its share of the pairs, then (after the all-gather) its share of the windows.
            chunk = min(self.step_pairs(*frames.shape[1:3]), src.shape[0])  # _pairs made the share a multiple
            grey = to_gray(frames)
            a, b = grey[src].reshape(-1, chunk, *grey.shape[1:]), grey[dst].reshape(-1, chunk, *grey.shape[1:])
            # lax.map: `chunk` pairs per while loop, so a pair that converges late holds up only its chunk.
            flow = jax.lax.map(lambda ab: tvl1(ab[0], ab[1]), (a, b)).reshape(-1, *grey.shape[1:], 2)
            # float16 as stored, then per unit interval as frame_times.per_unit_interval scales stored flow
            # (gains of 1 leave it bit-identical: one program for constant- and variable-rate video).
            flow = flow.astype(jnp.float16).astype(jnp.float32) * gains[:, None, None, None]
            flow = flow.astype(jnp.float16)
            every = jax.lax.all_gather(flow, axes, tiled=True)  # [pairs, S, S, 2]: every window's flows
            return flow, frames[frame_idx], every[fwd_idx], every[bwd_idx]

        split = P(axes)
        sharded = jax.shard_map(
            flows_and_windows,
            mesh=mesh,
            in_specs=(P(), split, split, split, split, split, split),
            out_specs=(split, split, split, split),
        )

        def forward(state, frames, src, dst, gains, idx):
            flows, win_frames, flow_fwd, flow_bwd = sharded(
                frames, src, dst, gains, idx["frame_idx"], idx["fwd_idx"], idx["bwd_idx"]
            )
            batch = {"frames": win_frames, "flow_fwd": flow_fwd, "flow_bwd": flow_bwd, "num_valid": idx["num_valid"]}
            probs, maps = audible_and_maps(nnx.merge(graphdef, state), batch, mode, flow_scale, hflip_tta)
            return probs, maps, flows

        self._forward = jax.jit(forward)

    def step_pairs(self, height: int, width: int) -> int:
        """Flow pairs each device solves at a time for frames of H x W px (`pairs_per_step`)."""
        return self._pairs_per_step or flow_jax_batch.default_pairs_per_device(self._platform, height, width)

    def _pairs(self, length: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Source and target span frame of every flow row: forward pairs k→k+1, then backward k+1→k, then
        (0, 0) pairs up to a multiple of flow_jax_batch.call_size (identical frames: zero flow, and the solver stops
        them after one inner iteration)."""
        k = np.arange(length - 1)
        src, dst = np.concatenate([k, k + 1]), np.concatenate([k + 1, k])
        unit = flow_jax_batch.call_size(len(src), self.ways, self.step_pairs(height, width))
        pad = -len(src) % unit
        return np.pad(src, (0, pad)).astype(np.int32), np.pad(dst, (0, pad)).astype(np.int32)

    def predict_video(self, frames: np.ndarray, interval_gains: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every window of one video.

        Args:
          frames: [N, S, S, 3] uint8 RGB at the model's input size, N ≥ 5.
          interval_gains: [N−1] factors that put pair k's flow (both directions) per unit interval, a
            variable-rate file's (input_pipeline/frame_times.interval_gains); None: 1 (uniform time).
        Returns:
          scores [N] P(audible) averaged over windows (NaN on frames 0, 1, N−2, N−1), maps [N, h, w], and
          flow_fwd / flow_bwd [N−1, S, S, 2] float16 (u, v) px (flow.estimate_flow's conventions).
        """
        n = frames.shape[0]
        starts = clips.window_starts(n, self.clip_len, self.stride)
        last_kept = n - 1 - clips.FIRST_KEPT
        num_valid = [min(self.clip_len, last_kept - s + 1) for s in starts]
        length = compiled_span_length(n, self.batch_size, self.clip_len, self.stride)
        if length > n:  # padded frames: no window reads them, and their flows (zero) are dropped below
            frames = np.concatenate([frames, np.repeat(frames[-1:], length - n, axis=0)])
        src, dst = self._pairs(length, *frames.shape[1:3])
        # The pair each flow row spans (padding rows: frames that are copies, zero flow whatever the gain).
        pair_of_row = np.minimum(src, dst)
        gains = np.ones(len(frames) - 1, np.float32)  # frames padded to the span: gain 1
        if interval_gains is not None:
            if len(interval_gains) != n - 1:
                raise ValueError(f"{len(interval_gains)} interval gains for {n} frames (expected {n - 1})")
            gains[: n - 1] = interval_gains
        flow_fwd = np.zeros((n - 1, *frames.shape[1:3], 2), np.float16)
        flow_bwd = np.zeros_like(flow_fwd)
        probs, maps = [], []
        with jax.set_mesh(self.mesh), progress.bar(len(starts), "flow + model", unit="window") as bar:
            src_d, dst_d = jax.device_put(src, self._split), jax.device_put(dst, self._split)
            for i in range(0, len(starts), self.batch_size):
                s, nv = starts[i : i + self.batch_size], num_valid[i : i + self.batch_size]
                w = len(s)
                pad = self.batch_size - w  # repeat the last window, as Predictor does; its outputs are dropped
                s, nv = s + [s[-1]] * pad, nv + [nv[-1]] * pad
                # The span starts 2 frames before the first window, moved back so that it ends inside the video.
                base = min(s[0] - clips.FIRST_KEPT, len(frames) - length)
                idx = batch_indices(s, nv, base, length, self.clip_len)
                p, m, flows = self._forward(
                    self.state,
                    jax.device_put(frames[base : base + length], self._replicated),
                    src_d,
                    dst_d,
                    jax.device_put(gains[base + pair_of_row], self._split),
                    {k: jax.device_put(v, self._split) for k, v in idx.items()},
                )
                probs.append(np.asarray(p)[:w])
                maps.append(np.asarray(m)[:w])
                flows = np.asarray(flows)
                real = min(length, n - base)  # the span's frames that are the video's
                flow_fwd[base : base + real - 1] = flows[: real - 1]
                flow_bwd[base : base + real - 1] = flows[length - 1 : length + real - 2]
                bar.update(w)
        scores, merged = merge_windows(
            np.asarray(starts), np.asarray(num_valid), np.concatenate(probs), np.concatenate(maps), n
        )
        return {"scores": scores, "maps": merged, "flow_fwd": flow_fwd, "flow_bwd": flow_bwd}
