"""Float64 loop references of the TV-L1 operators and steps (OpenCV's definitions, one pixel at a time), shared
by tests/test_flow_jax_ops.py and tests/test_flow_jax.py."""

from __future__ import annotations

import numpy as np


def clamp(i, n):
    return min(max(i, 0), n - 1)


def ref_centered(img):
    h, w = img.shape
    dx, dy = np.zeros((h, w)), np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            dx[y, x] = 0.5 * (img[y, clamp(x + 1, w)] - img[y, clamp(x - 1, w)])
            dy[y, x] = 0.5 * (img[clamp(y + 1, h), x] - img[clamp(y - 1, h), x])
    return dx, dy


def ref_forward(img):
    h, w = img.shape
    dx, dy = np.zeros((h, w)), np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            dx[y, x] = img[y, x + 1] - img[y, x] if x < w - 1 else 0.0
            dy[y, x] = img[y + 1, x] - img[y, x] if y < h - 1 else 0.0
    return dx, dy


def ref_divergence(px, py):
    h, w = px.shape
    div = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            div[y, x] = px[y, x] - (px[y, x - 1] if x else 0.0) + py[y, x] - (py[y - 1, x] if y else 0.0)
    return div


def cubic(t):
    a = -0.75
    return [
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) ** 2 + 1,
        None,
    ]


def ref_remap(img, mapx, mapy, interpolation, border):
    """cv::remap (OpenCV 5, float maps) in float64: exact positions, 4x4 cubic or 2x2 linear taps."""
    h, w = img.shape
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ix, iy = int(np.floor(mapx[y, x])), int(np.floor(mapy[y, x]))
            tx, ty = float(mapx[y, x]) - ix, float(mapy[y, x]) - iy
            if interpolation == "cubic":
                wx, wy, offs = cubic(tx), cubic(ty), (-1, 0, 1, 2)
                wx[3], wy[3] = 1 - sum(wx[:3]), 1 - sum(wy[:3])
            else:
                wx, wy, offs = [1 - tx, tx], [1 - ty, ty], (0, 1)
            for i, oy in enumerate(offs):
                for j, ox in enumerate(offs):
                    yy, xx = iy + oy, ix + ox
                    inside = 0 <= yy < h and 0 <= xx < w
                    if border == "zero" and not inside:
                        continue
                    out[y, x] += wy[i] * wx[j] * img[clamp(yy, h), clamp(xx, w)]
    return out
