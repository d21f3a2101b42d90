"""The image operators of TV-L1 in JAX (flow_jax.py), each as OpenCV computes it so that the two flows agree:
the pyramid sizes and ``cv::resize(INTER_LINEAR)``, centred / forward gradients and the divergence of the
primal-dual scheme, the 5×5 median of the flow as a sorting network, and ``cv::remap`` (bicubic a = −0.75,
zeros outside). Arrays are batched over frame pairs ``[P, ...]``; sizes are static Python ints."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

_MIN_SIDE = 16  # OpenCV stops the pyramid before a side gets shorter than this
_CUBIC_A = -0.75  # OpenCV's bicubic kernel parameter


def pyramid_shapes(height: int, width: int, nscales: int = 5, scale_step: float = 0.8) -> list[tuple[int, int]]:
    """(H, W) of each pyramid level, finest first, as OpenCV builds them (round(side * scale_step) of the
    previous level; the pyramid ends before a side would be < 16 px)."""
    shapes = [(int(height), int(width))]
    for _ in range(1, nscales):
        h, w = (int(np.rint(s * scale_step)) for s in shapes[-1])
        if h < _MIN_SIDE or w < _MIN_SIDE:
            break
        shapes.append((h, w))
    return shapes


def _linear_taps(src: int, dst: int, scale: float):
    """cv::resize INTER_LINEAR along one axis: source indices (i0, i1) and weight of i1 per output index.

    ``scale`` is source px per output px; OpenCV computes the position in float32 and clamps at the
    edges (weight 1 on the edge pixel), which is what these static tables reproduce."""
    pos = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = (pos - i0.astype(np.float32)).astype(np.float32)
    outside = (i0 < 0) | (i0 >= src - 1)
    frac[outside] = 0.0
    i0 = np.clip(i0, 0, src - 1)
    return i0, np.minimum(i0 + 1, src - 1), frac


def resize_linear(x: jax.Array, shape: tuple[int, int], scale: float | None = None) -> jax.Array:
    """Bilinear resize of ``[..., H, W]`` to ``[..., *shape]`` as cv::resize(INTER_LINEAR) on float32.

    ``scale``: output px per input px when OpenCV was given a factor (fx = fy = scale, size rounded from
    it); None when it was given the output size (factor = size ratio per axis). Horizontal pass first, as
    OpenCV."""
    h, w = x.shape[-2:]
    sy = 1.0 / scale if scale else 1.0 / (shape[0] / h)
    sx = 1.0 / scale if scale else 1.0 / (shape[1] / w)
    a, b, f = _linear_taps(w, shape[1], sx)
    x = jnp.take(x, a, axis=-1) * (1 - f) + jnp.take(x, b, axis=-1) * f
    a, b, f = _linear_taps(h, shape[0], sy)
    return jnp.take(x, a, axis=-2) * (1 - f)[:, None] + jnp.take(x, b, axis=-2) * f[:, None]


def _pad(x: jax.Array, axis: int, before: int, after: int, edge: bool) -> jax.Array:
    """Pad one axis of ``x`` with zeros, or with copies of its edge slice (``edge``) by concatenation, which
    keeps a batch sharding under Explicit mesh axes (jnp.pad's edge mode builds unsharded pieces)."""
    if not edge:  # one pad op fuses into its consumer on a GPU, where a concatenation root was a kernel
        widths = [(0, 0, 0)] * x.ndim
        widths[axis] = (before, after, 0)
        return jax.lax.pad(x, jnp.zeros((), x.dtype), widths)
    n = x.shape[axis]
    first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
    last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
    return jnp.concatenate([first] * before + [x] + [last] * after, axis=axis)


def centered_gradient(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Central differences of ``[..., H, W]`` (half of next minus previous), one-sided half-differences at
    the borders (edge replication): (d/dx, d/dy), each ``[..., H, W]``, intensity per px."""
    xp, yp = _pad(x, -1, 1, 1, edge=True), _pad(x, -2, 1, 1, edge=True)
    return 0.5 * (xp[..., 2:] - xp[..., :-2]), 0.5 * (yp[..., 2:, :] - yp[..., :-2, :])


def forward_gradient(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Forward differences of ``[..., H, W]``: (x[j+1] - x[j], x[i+1] - x[i]), zero in the last column
    (d/dx) and the last row (d/dy), the discretisation whose negative adjoint is :func:`divergence`."""
    dx = _pad(x[..., 1:] - x[..., :-1], -1, 0, 1, edge=False)
    dy = _pad(x[..., 1:, :] - x[..., :-1, :], -2, 0, 1, edge=False)
    return dx, dy


def divergence(px: jax.Array, py: jax.Array) -> jax.Array:
    """Backward-difference divergence of the field (px, py), each ``[..., H, W]``, with zeros before the
    first row and column (OpenCV's ``divergence``)."""
    px_prev = _pad(px[..., :-1], -1, 1, 0, edge=False)
    py_prev = _pad(py[..., :-1, :], -2, 1, 0, edge=False)
    return (px - px_prev) + (py - py_prev)


def _batcher_pairs(lo: int, hi: int):
    """Compare-exchange pairs (i < j) of Batcher's odd-even merge sort of positions lo..hi (inclusive)."""

    def merge(lo, hi, r):
        if 2 * r < hi - lo:
            yield from merge(lo, hi, 2 * r)
            yield from merge(lo + r, hi, 2 * r)
            yield from ((i, i + r) for i in range(lo + r, hi - r, 2 * r))
        else:
            yield lo, lo + r

    if hi > lo:
        mid = lo + (hi - lo) // 2
        yield from _batcher_pairs(lo, mid)
        yield from _batcher_pairs(mid + 1, hi)
        yield from merge(lo, hi, 1)


@functools.cache
def median_network(n: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """A selection network for the median (position n // 2 after sorting) of n values.

    Batcher's sorting network on the next power of two, with the padding positions taken as +inf (every
    comparator touching one is then a no-op) and every comparator that cannot reach the median removed.
    Entries (i, j, keep_min, keep_max): after the step, position i holds min(x_i, x_j) if keep_min and
    position j holds max(x_i, x_j) if keep_max (the other output is never read again). n = 25: 113
    comparators, 202 min/max, against a full sort per pixel (which made the median 80 % of the run time)."""
    size = 1 << max(n - 1, 1).bit_length()
    pairs = [(i, j) for i, j in _batcher_pairs(0, size - 1) if j < n]
    needed, kept = {n // 2}, []
    for i, j in reversed(pairs):
        if i in needed or j in needed:
            kept.append((i, j, i in needed, j in needed))
            needed |= {i, j}
    return tuple(reversed(kept))


def median_filter(x: jax.Array, size: int = 5) -> jax.Array:
    """``size`` x ``size`` median of ``[..., H, W]`` with replicated borders (cv::medianBlur), as a
    min/max selection network over the shifted copies (elementwise, so XLA fuses it into one loop)."""
    r = size // 2
    h, w = x.shape[-2:]
    xp = _pad(_pad(x, -1, r, r, edge=True), -2, r, r, edge=True)
    v = [xp[..., i : i + h, j : j + w] for i in range(size) for j in range(size)]
    for i, j, keep_min, keep_max in median_network(size * size):
        lo = jnp.minimum(v[i], v[j]) if keep_min else None
        hi = jnp.maximum(v[i], v[j]) if keep_max else None
        v[i], v[j] = lo, hi
    return v[size * size // 2]


def _interp_weights(t: jax.Array, interpolation: str) -> list[jax.Array]:
    """float32 weights of the taps at offsets -1..2 ("cubic", a = -0.75) or 0..1 ("linear") for a
    sampling position ``t`` px (0 <= t < 1) past the integer one."""
    if interpolation == "linear":
        return [1 - t, t]
    if interpolation != "cubic":
        raise ValueError(f"interpolation must be 'cubic' or 'linear', not {interpolation!r}")
    a = _CUBIC_A
    c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + 1
    c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return [c0, c1, c2, 1 - c0 - c1 - c2]


def warp(images: jax.Array, flow: jax.Array, interpolation: str = "cubic", border: str = "zero") -> jax.Array:
    """Sample ``images`` [P, C, H, W] at (x + u, y + v): cv::remap of each channel by ``flow`` [P, 2, H, W] (px).

    Sampled at the exact float positions, as cv::remap of OpenCV 5 does with float maps (4.x rounded them to
    1/32 px). ``interpolation``: "cubic" (4x4 taps, a = -0.75,
    OpenCV TV-L1's choice) or "linear" (2x2 taps). ``border``: "zero" (taps outside the frame read 0:
    cv::BORDER_CONSTANT, what OpenCV TV-L1 uses) or "replicate" (the nearest edge pixel)."""
    p, c, h, w = images.shape
    gx = jnp.arange(w, dtype=jnp.float32) + flow[:, 0]
    gy = jnp.arange(h, dtype=jnp.float32)[:, None] + flow[:, 1]
    fx, fy = jnp.floor(gx), jnp.floor(gy)
    ix, iy = fx.astype(jnp.int32), fy.astype(jnp.int32)
    fx, fy = gx - fx, gy - fy
    if border not in ("zero", "replicate"):
        raise ValueError(f"border must be 'zero' or 'replicate', not {border!r}")
    wx, wy = _interp_weights(fx, interpolation), _interp_weights(fy, interpolation)
    offsets = (-1, 0, 1, 2) if interpolation == "cubic" else (0, 1)
    yy = jnp.stack([iy + o for o in offsets for _ in offsets], axis=1)  # [P, taps, H, W]
    xx = jnp.stack([ix + o for _ in offsets for o in offsets], axis=1)
    weight = jnp.stack([wy[i] * wx[j] for i in range(len(offsets)) for j in range(len(offsets))], axis=1)
    if border == "zero":
        weight = jnp.where((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w), weight, 0.0)
    # One gather for every tap and channel (16 separate gathers took longer to compile).
    idx = (jnp.clip(yy, 0, h - 1) * w + jnp.clip(xx, 0, w - 1)).reshape(p, 1, -1)
    vals = jnp.take_along_axis(images.reshape(p, c, h * w), jnp.broadcast_to(idx, (p, c, idx.shape[-1])), axis=2)
    vals = vals.reshape(p, c, len(offsets) ** 2, h, w)
    return jnp.sum(vals * weight[:, None], axis=2)
