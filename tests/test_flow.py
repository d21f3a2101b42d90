"""Tests for input_pipeline.flow: shapes, sign conventions on known shifts, TV-L1, errors, float16 precision."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import QUICK_TVL1

from input_pipeline.flow import FLOW_METHODS, endpoint_error, estimate_flow, flow_on_demand


def _shifted_pair(dx, dy, h=64, w=64, seed=0):
    """Two RGB frames [2, h, w, 3] uint8: a smooth texture, then the same texture moved by (+dx, +dy) px."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur((rng.random((h + 32, w + 32, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    # Sampling the texture at (x - dx, y - dy) moves its content by (+dx, +dy), sub-pixel shifts included.
    moved = cv2.warpAffine(
        big,
        np.float32([[1, 0, dx], [0, 1, dy]]),
        big.shape[1::-1],
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.stack([big[16 : 16 + h, 16 : 16 + w], moved[16 : 16 + h, 16 : 16 + w]])


def _interior(flow, margin=10):
    return flow[:, margin:-margin, margin:-margin].astype(np.float32)


def test_shapes_and_dtypes():
    frames = np.concatenate([_shifted_pair(1, 0), _shifted_pair(2, 1, seed=1)])  # 4 frames
    fwd, bwd = estimate_flow(frames)
    assert fwd.shape == bwd.shape == (3, 64, 64, 2)
    assert fwd.dtype == bwd.dtype == np.float16


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("dx, dy", [(2.0, -1.0), (-1.5, 2.5), (0.0, 0.0)])
def test_known_shift(method, dx, dy):
    fwd, bwd = estimate_flow(_shifted_pair(dx, dy), method)
    exact = np.broadcast_to(np.float32([dx, dy]), fwd.shape)
    assert endpoint_error(_interior(fwd), _interior(exact)) < 0.25
    assert endpoint_error(_interior(bwd), -_interior(exact)) < 0.25
    # Backward flow of a pure translation is the negated forward flow.
    assert endpoint_error(_interior(fwd), -_interior(bwd)) < 0.3


def test_workers_do_not_change_the_result():
    frames = np.concatenate([_shifted_pair(1, 1), _shifted_pair(-2, 0, seed=3), _shifted_pair(0, 1, seed=4)])
    one = estimate_flow(frames, workers=1)
    three = estimate_flow(frames, workers=3)
    every_core = estimate_flow(frames, workers=None)  # what detect and eval use
    for a, b, c in zip(one, three, every_core):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_forward_only_is_the_same_forward_flow_for_half_the_work(monkeypatch):
    """backward=False (the reference detector): bwd is None, fwd is bit for bit the two-direction one, and
    OpenCV is called once per pair instead of twice."""
    import input_pipeline.flow as flow_lib

    frames = np.concatenate([_shifted_pair(1, 1), _shifted_pair(-2, 0, seed=3)])  # 4 frames, 3 pairs
    both = estimate_flow(frames, workers=2)
    calls = []
    factory = flow_lib._factory

    def counting(*args):
        make = factory(*args)

        def counted():
            calc = make()
            return lambda a, b: calls.append(1) or calc(a, b)

        return counted

    monkeypatch.setattr(flow_lib, "_factory", counting)
    fwd, bwd = estimate_flow(frames, workers=2, backward=False)
    assert bwd is None and len(calls) == 3
    np.testing.assert_array_equal(fwd, both[0])


def test_a_failing_worker_stops_the_others(monkeypatch):
    """An error in one flow thread (or Ctrl-C in the main one) stops the other threads after their current
    pair, instead of leaving the pool to finish every chunk before the error is seen. The error is raised in
    the second chunk's thread, as the main thread waits on the first chunk's result (pool.map's order)."""
    import time

    import input_pipeline.flow as flow_lib

    calls = []

    def failing_in_the_second_chunk(*args):
        def make():
            def calc(a, b):
                calls.append(int(a[0, 0]))
                if a[0, 0] == 40 and b[0, 0] == 41:  # the second chunk's first pair (frames hold their index)
                    raise RuntimeError("a pair failed")
                time.sleep(0.02)
                return np.zeros((*a.shape, 2), np.float32)

            return calc

        return make

    monkeypatch.setattr(flow_lib, "_factory", failing_in_the_second_chunk)
    frames = np.repeat(np.arange(81, dtype=np.uint8), 8 * 8 * 3).reshape(81, 8, 8, 3)  # frame k is grey k
    with pytest.raises(RuntimeError, match="a pair failed"):
        estimate_flow(frames, workers=2)  # 80 pairs, 40 to each of two threads: 160 calls in all
    assert 40 in calls and len(calls) < 20, calls


def test_every_core_without_an_affinity_mask(monkeypatch):
    """workers=None on a system without os.sched_getaffinity (macOS, Windows) counts the machine's cores."""
    import input_pipeline.flow as flow_lib

    monkeypatch.delattr(flow_lib.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(flow_lib.os, "cpu_count", lambda: 3)
    assert flow_lib._usable_cores() == 3
    frames = np.concatenate([_shifted_pair(1, 1), _shifted_pair(-2, 0, seed=3)])
    for a, b in zip(estimate_flow(frames, workers=1), estimate_flow(frames, workers=None)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1-jax"])
def test_flow_on_demand_is_estimate_flow_field_by_field(method):
    """Fields estimated one pair at a time, in any order, equal estimate_flow's bit for bit; nothing is
    estimated before it is read, and a pair is estimated once for both directions."""
    size = 24 if method == "tvl1-jax" else 64
    options = {"tvl1_options": QUICK_TVL1} if method == "tvl1-jax" else {}  # equal for any settings
    frames = np.concatenate([_shifted_pair(1, 1, size, size), _shifted_pair(-2, 0, size, size, seed=3)])
    fwd, bwd = estimate_flow(frames, method, **options)
    lazy_fwd, lazy_bwd = flow_on_demand(frames, method, **options)
    assert lazy_fwd.shape == fwd.shape and lazy_fwd.dtype == fwd.dtype and len(lazy_bwd) == 3
    assert lazy_fwd.estimated == 0
    np.testing.assert_array_equal(lazy_bwd[2], bwd[2])
    np.testing.assert_array_equal(lazy_fwd[-1], fwd[2])  # the same pair: not estimated again
    assert lazy_fwd.estimated == 1
    np.testing.assert_array_equal(lazy_fwd[0], fwd[0])
    np.testing.assert_array_equal(lazy_bwd[::-1], bwd[::-1])
    np.testing.assert_array_equal(lazy_fwd[[1, 0]], fwd[[1, 0]])
    assert lazy_fwd.estimated == 3 and lazy_fwd[5:].shape == (0, size, size, 2)
    with pytest.raises(IndexError, match="flow field 3 out of range for 3 fields"):
        lazy_fwd[3]


def test_tvl1_options_reach_the_jax_solver_on_both_paths():
    """TV-L1 settings (e.g. the data weight a model's tvl1-jax thresholds were chosen with) change the flow,
    equal the solver called with them, and reach the lazy fields too; other estimators refuse them."""
    from input_pipeline import flow_jax_batch
    from input_pipeline.flow import to_gray

    frames = _shifted_pair(2, 1, 24, 24)
    options = {"lambda_": 0.6, "nscales": 2, "warps": 2}
    fwd, bwd = estimate_flow(frames, "tvl1-jax", tvl1_options=options)
    ref_fwd, ref_bwd = flow_jax_batch.estimate_flow_batch(to_gray(frames), **options)
    np.testing.assert_array_equal(fwd, ref_fwd.astype(np.float16))
    np.testing.assert_array_equal(bwd, ref_bwd.astype(np.float16))
    assert not np.array_equal(fwd, estimate_flow(frames, "tvl1-jax", tvl1_options={**options, "lambda_": 0.15})[0])
    lazy_fwd, _ = flow_on_demand(frames, "tvl1-jax", tvl1_options=options)
    np.testing.assert_array_equal(lazy_fwd[0], fwd[0])
    for method in ("dis", "farneback"):
        with pytest.raises(ValueError, match="tvl1_options only apply to method 'tvl1-jax'"):
            estimate_flow(frames, method, tvl1_options={"lambda_": 0.6})
        with pytest.raises(ValueError, match="tvl1_options only apply"):
            flow_on_demand(frames, method, tvl1_options={"lambda_": 0.6})


def test_flow_on_demand_checks_its_input_before_any_work():
    with pytest.raises(ValueError, match="unknown flow method"):
        flow_on_demand(_shifted_pair(1, 0), "sparse")
    with pytest.raises(ValueError, match="uint8 RGB"):
        flow_on_demand(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        flow_on_demand(_shifted_pair(1, 0)[:1])


def test_tvl1_tiny_pair():
    frames = _shifted_pair(1.0, -1.0, h=32, w=32)
    if not hasattr(cv2, "optflow"):
        with pytest.raises(RuntimeError, match="opencv-contrib-python-headless"):
            estimate_flow(frames, "tvl1")
        return
    fwd, bwd = estimate_flow(frames, "tvl1")
    assert fwd.shape == (1, 32, 32, 2) and fwd.dtype == np.float16
    exact = np.broadcast_to(np.float32([1.0, -1.0]), fwd.shape)
    assert endpoint_error(_interior(fwd, 8), _interior(exact, 8)) < 0.3
    assert endpoint_error(_interior(bwd, 8), -_interior(exact, 8)) < 0.3


def test_tvl1_without_contrib(monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    with pytest.raises(RuntimeError, match="opencv-contrib-python-headless"):
        estimate_flow(_shifted_pair(1, 0, h=16, w=16), "tvl1")


def test_bad_arguments():
    frames = _shifted_pair(1, 0, h=16, w=16)
    with pytest.raises(ValueError) as info:
        estimate_flow(frames, "raft")
    assert all(m in str(info.value) for m in FLOW_METHODS)
    with pytest.raises(ValueError, match="at least 2 frames"):
        estimate_flow(frames[:1])
    with pytest.raises(ValueError, match="uint8"):
        estimate_flow(frames.astype(np.float32))
    with pytest.raises(ValueError, match="unknown DIS options"):
        estimate_flow(frames, dis_options={"patchsize": 4})


def test_endpoint_error():
    exact = np.zeros((2, 4, 4, 2), np.float32)
    est = exact.copy()
    est[0, 0, 0] = (3.0, 4.0)  # one pixel off by 5 px
    assert endpoint_error(est, exact) == pytest.approx(5 / 32)
    mask = np.zeros((2, 4, 4), bool)
    mask[0, 0, :2] = True
    assert endpoint_error(est, exact, mask) == pytest.approx(2.5)
    assert np.isnan(endpoint_error(est, exact, np.zeros_like(mask)))


def test_float16_precision_bound():
    """The module docstring's bound: float16 rounding error <= 2**-11 of the magnitude."""
    values = np.random.default_rng(0).uniform(-64, 64, 100_000).astype(np.float32)
    err = np.abs(values.astype(np.float16).astype(np.float32) - values)
    assert np.all(err <= np.abs(values) * 2.0**-11 + 1e-7)
    assert err[np.abs(values) < 16].max() <= 2.0**-8
