"""Inflection flow: the temporal finite difference of optical flow, computed on the accelerator.

TA²Net's key signal is the *change* of motion. Given raw optical flow (u, v) in pixels, this module
builds the model's two motion inputs inside `jax.jit`, on whatever sharding the flow arrives with
(batch-major ops only, so a `P('data')` batch stays sharded and nothing goes back to the host).

Alignment (frame t of the clip, F⁺_k = forward flow k→k+1, F⁻_k = backward flow k+1→k), exactly as the
original `MyData.cal_diff` (docs/original.md §4.2):

    motion_t     = concat(F⁺_t,            F⁻_{t−1})            # both flows start at frame t
    inflection_t = concat(F⁺_{t+1} − F⁺_t,  F⁻_{t−2} − F⁻_{t−1})  # forward half looks ahead, backward half back

so frame t needs F⁺_t, F⁺_{t+1}, F⁻_{t−1}, F⁻_{t−2}: a video of N frames (N−1 flows each way) yields
inputs for frames 2 … N−3 only ("kept frames", N−4 of them). The input pipeline therefore hands each
clip that starts at video frame s

    flow_fwd[j] = F⁺_{s+j}      j = 0 … T      (T+1 fields)
    flow_bwd[j] = F⁻_{s−2+j}    j = 0 … T      (T+1 fields)

and `num_valid` (1 … T): clip positions ≥ num_valid repeat the last valid position's inputs, which is
the original's end padding of video, diff, d2f and label (`batch_select`).

Two modes (config `inflection.mode`):

* ``"color"`` — the original's formula: each flow field is first drawn as a Middlebury colour-wheel
  image normalised by its own maximum radius (UniMatch/GMFlow ``flow_to_image``, the most likely
  producer of the original's PNG inputs) and quantised to 8 bits, then differenced. 3 channels per half.
* ``"raw"`` — the same differences on raw (u, v) in pixels, divided by ``flow_scale`` so that values are
  O(1). 2 channels per half. Backward flow ≈ −velocity, so both halves approximate "later minus earlier"
  velocity up to sign.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("color", "raw")


def _middlebury_color_wheel() -> np.ndarray:
    """The 55-colour Middlebury wheel, [55, 3] in [0, 255] (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6)."""
    segments = [
        (15, (255, 0, 0), (0, 1, 0), +1),  # red → yellow: G rises
        (6, (255, 255, 0), (1, 0, 0), -1),  # yellow → green: R falls
        (4, (0, 255, 0), (0, 0, 1), +1),  # green → cyan: B rises
        (11, (0, 255, 255), (0, 1, 0), -1),  # cyan → blue: G falls
        (13, (0, 0, 255), (1, 0, 0), +1),  # blue → magenta: R rises
        (6, (255, 0, 255), (0, 0, 1), -1),
    ]  # magenta → red: B falls
    rows = []
    for n, base, channel, sign in segments:
        ramp = np.floor(255 * np.arange(n) / n)
        block = np.tile(np.array(base, np.float64), (n, 1))
        c = int(np.argmax(channel))
        block[:, c] = ramp if sign > 0 else 255 - ramp
        rows.append(block)
    return np.concatenate(rows, axis=0)


COLOR_WHEEL = _middlebury_color_wheel()


def flow_to_color(flow: jax.Array, quantize: bool = True) -> jax.Array:
    """Colour-codes flow fields the way UniMatch's ``flow_to_image`` does.

    Args:
      flow: [..., H, W, 2] raw (u, v) in pixels.
      quantize: round down to 8 bits, as the original read its inputs back from PNG files.
    Returns:
      [..., H, W, 3] float32 RGB in [0, 1]. Each field is normalised by its own maximum radius, so the
      colour saturation is *relative* magnitude (zero motion is white).
    """
    flow = flow.astype(jnp.float32)
    u, v = flow[..., 0], flow[..., 1]
    radius = jnp.sqrt(u * u + v * v)
    max_radius = jnp.max(radius, axis=(-2, -1), keepdims=True)
    u = u / (max_radius + 1e-5)
    v = v / (max_radius + 1e-5)
    radius = jnp.sqrt(u * u + v * v)
    wheel = jnp.asarray(COLOR_WHEEL / 255.0, jnp.float32)
    num_colors = wheel.shape[0]
    angle = jnp.arctan2(-v, -u) / jnp.pi
    position = (angle + 1.0) / 2.0 * (num_colors - 1)
    k0 = jnp.floor(position).astype(jnp.int32)
    k1 = jnp.where(k0 + 1 == num_colors, 0, k0 + 1)
    frac = (position - k0)[..., None]
    color = (1.0 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (radius <= 1.0)[..., None]
    color = jnp.where(inside, 1.0 - radius[..., None] * (1.0 - color), color * 0.75)
    if quantize:
        color = jnp.floor(255.0 * color) / 255.0
    return color


def _pad_to_valid(x: jax.Array, num_valid: jax.Array) -> jax.Array:
    """Repeats position num_valid−1 over positions ≥ num_valid. x: [B, T, ...], num_valid: [B]."""
    steps = jnp.arange(x.shape[1])
    index = jnp.minimum(steps[None, :], num_valid[:, None] - 1)  # [B, T]
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


def motion_and_inflection(
    flow_fwd: jax.Array, flow_bwd: jax.Array, num_valid: jax.Array, mode: str = "color", flow_scale: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    """First-order motion and inflection flow for every clip position.

    Args:
      flow_fwd: [B, T+1, H, W, 2] F⁺_{s+j}, raw (u, v) in pixels (any float dtype).
      flow_bwd: [B, T+1, H, W, 2] F⁻_{s−2+j}.
      num_valid: [B] int, number of real (unpadded) clip positions, 1 … T.
      mode: "color" (original formula on colour-coded flow) or "raw" (on (u, v) / flow_scale).
      flow_scale: pixels per unit in raw mode (e.g. a tenth of the image size).
    Returns:
      motion, inflection: each [B, T, H, W, 2C] float32 with C = 3 (color) or 2 (raw); the forward
      half is channels [:C], the backward half [C:].
    """
    if mode not in MODES:
        raise ValueError(f"inflection mode {mode!r} is not one of {MODES}")
    if mode == "color":
        fwd, bwd = flow_to_color(flow_fwd), flow_to_color(flow_bwd)
    else:
        fwd = flow_fwd.astype(jnp.float32) / flow_scale
        bwd = flow_bwd.astype(jnp.float32) / flow_scale
    # fwd[:, j] = F⁺_{t}, t = s + j;  bwd[:, j] = F⁻_{t−2}.
    motion = jnp.concatenate([fwd[:, :-1], bwd[:, 1:]], axis=-1)
    inflection = jnp.concatenate([fwd[:, 1:] - fwd[:, :-1], bwd[:, :-1] - bwd[:, 1:]], axis=-1)
    return _pad_to_valid(motion, num_valid), _pad_to_valid(inflection, num_valid)


def model_inputs(batch: dict, mode: str = "color", flow_scale: float = 1.0) -> tuple[jax.Array, ...]:
    """(video, motion, inflection) for TA2Net from a pipeline batch, inside jit.

    Args:
      batch: ``frames`` [B, T, H, W, 3] uint8 (already end-padded by the pipeline), ``flow_fwd`` and
        ``flow_bwd`` [B, T+1, H, W, 2], ``num_valid`` [B].
    Returns:
      video [B, T, H, W, 3] float32 in [0, 1] (no mean/std normalisation, as the original), motion and
      inflection [B, T, H, W, 2C].
    """
    video = batch["frames"].astype(jnp.float32) / 255.0
    motion, inflection = motion_and_inflection(
        batch["flow_fwd"], batch["flow_bwd"], batch["num_valid"], mode=mode, flow_scale=flow_scale
    )
    return video, motion, inflection


def flow_channels(mode: str) -> int:
    """Channels per half (forward or backward) of the motion/inflection inputs."""
    return 3 if mode == "color" else 2
