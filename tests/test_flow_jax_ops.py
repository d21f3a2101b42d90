"""Tests for input_pipeline.flow_jax_ops: TV-L1's image operators against float64 loops and OpenCV (gradients,
divergence, cv::remap, cv::resize and the pyramid, cv::medianBlur)."""

from __future__ import annotations

import cv2
import jax.numpy as jnp
import numpy as np
import pytest
from flow_references import ref_centered, ref_divergence, ref_forward, ref_remap

from input_pipeline import flow_jax_ops as ops

RNG = np.random.default_rng(0)


def test_gradients_and_divergence_match_float64_loops():
    img = RNG.uniform(0, 255, (2, 6, 7)).astype(np.float32)
    px, py = RNG.normal(size=(2, 2, 6, 7)).astype(np.float32)
    cdx, cdy = ops.centered_gradient(jnp.asarray(img))
    fdx, fdy = ops.forward_gradient(jnp.asarray(img))
    div = ops.divergence(jnp.asarray(px), jnp.asarray(py))
    for b in range(2):
        for got, want in zip((cdx, cdy, fdx, fdy), (*ref_centered(img[b]), *ref_forward(img[b]))):
            np.testing.assert_allclose(np.asarray(got[b]), want, rtol=0, atol=1e-4)
        np.testing.assert_allclose(np.asarray(div[b]), ref_divergence(px[b], py[b]), rtol=0, atol=1e-5)
    # divergence is the negative adjoint of the forward gradient, <grad u, p> = -<u, div p>, for the p the
    # dual update keeps (x component 0 in the last column, y component 0 in the last row).
    u, qx, qy = RNG.normal(size=(3, 6, 7))
    qx[:, -1], qy[-1] = 0.0, 0.0
    gx, gy = ref_forward(u)
    div = np.asarray(ops.divergence(jnp.asarray(qx), jnp.asarray(qy)), np.float64)
    assert np.sum(gx * qx + gy * qy) == pytest.approx(-np.sum(u * div), rel=1e-5)


@pytest.mark.parametrize(
    "interpolation, border, cv_interp, cv_border",
    [
        ("cubic", "zero", cv2.INTER_CUBIC, cv2.BORDER_CONSTANT),
        ("linear", "replicate", cv2.INTER_LINEAR, cv2.BORDER_REPLICATE),
    ],
)
def test_warp_matches_reference_and_cv_remap(interpolation, border, cv_interp, cv_border):
    h, w = 9, 11
    img = cv2.GaussianBlur(RNG.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.0)
    flow = RNG.uniform(-3, 3, (2, h, w)).astype(np.float32)  # reaches past every border
    flow[:, 0, :3] = [[0.0, -0.25, 1.0], [-1.0, 0.0, 0.5]]  # whole and half pixels, exactly on the border
    got = np.asarray(ops.warp(jnp.asarray(img)[None, None], jnp.asarray(flow)[None], interpolation, border))[0, 0]
    mapx = (np.arange(w, dtype=np.float32) + flow[0]).astype(np.float32)
    mapy = (np.arange(h, dtype=np.float32)[:, None] + flow[1]).astype(np.float32)
    np.testing.assert_allclose(got, ref_remap(img, mapx, mapy, interpolation, border), rtol=0, atol=2e-3)
    want = cv2.remap(img, mapx, mapy, cv_interp, borderMode=cv_border, borderValue=0)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-3)


def test_resize_and_pyramid_match_opencv():
    img = RNG.uniform(0, 255, (29, 37)).astype(np.float32)
    down = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    got = np.asarray(ops.resize_linear(jnp.asarray(img), down.shape, 0.8))
    np.testing.assert_allclose(got, down, rtol=0, atol=1e-3)
    up = cv2.resize(down, (37, 29), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(np.asarray(ops.resize_linear(jnp.asarray(down), (29, 37))), up, rtol=0, atol=1e-3)
    for side in (32, 48, 64, 112):
        shapes, level = [], np.zeros((side, side), np.float32)
        while min(level.shape) >= 16 and len(shapes) < 5:
            shapes.append(level.shape)
            level = cv2.resize(level, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
        assert ops.pyramid_shapes(side, side) == shapes


def test_median_filter_matches_cv_median_blur():
    for n in (9, 25):
        x = RNG.normal(size=(1000, n))
        cols = list(x.T)
        for i, j, _keep_min, _keep_max in ops.median_network(n):
            cols[i], cols[j] = np.minimum(cols[i], cols[j]), np.maximum(cols[i], cols[j])
        np.testing.assert_array_equal(cols[n // 2], np.median(x, axis=1))
    u = RNG.normal(size=(2, 2, 13, 10)).astype(np.float32)
    got = np.asarray(ops.median_filter(jnp.asarray(u), 5))
    for a in range(2):
        for c in range(2):
            np.testing.assert_array_equal(got[a, c], cv2.medianBlur(u[a, c], 5))


def test_warp_refuses_unknown_interpolation_and_border():
    with pytest.raises(ValueError, match="interpolation"):
        ops.warp(jnp.zeros((1, 1, 4, 4)), jnp.zeros((1, 2, 4, 4)), "nearest")
    with pytest.raises(ValueError, match="border"):
        ops.warp(jnp.zeros((1, 1, 4, 4)), jnp.zeros((1, 2, 4, 4)), "cubic", "reflect")
