"""Test-time mirroring (inference.py `hflip_tta`): the mirrored windows are the training augmentation's mirror,
the two-view mean is exactly the mean of the two plain passes, and it makes the predictor mirror-equivariant
(the fused TV-L1 program with it: tests/test_fused_detect.py)."""

from __future__ import annotations

import jax
import numpy as np
from conftest import AlwaysFlip
from jax.sharding import AxisType, Mesh

from input_pipeline import clips
from ta2net_jax.inference import Predictor, hflip_windows


def _windows(num_windows: int = 3, t: int = 8, size: int = 32, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(0, 256, (num_windows, t, size, size, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(0, 2, (num_windows, t + 1, size, size, 2)).astype(np.float16),
        "flow_bwd": rng.normal(0, 2, (num_windows, t + 1, size, size, 2)).astype(np.float16),
        "num_valid": np.array([t, t, t - 3][:num_windows], np.int32),
    }


def _mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()[:1]), ("data",), axis_types=(AxisType.Auto,))


def test_hflip_windows_is_the_training_mirror():
    windows = _windows()
    mirrored = {k: np.asarray(v) for k, v in hflip_windows(windows).items()}
    clip = {k: windows[k][0] for k in ("frames", "flow_fwd", "flow_bwd")}
    want = clips.augment(clip, AlwaysFlip(), hflip=True, brightness=0, contrast=0)
    for key in ("frames", "flow_fwd", "flow_bwd"):
        np.testing.assert_array_equal(mirrored[key][0], want[key])
    np.testing.assert_array_equal(mirrored["num_valid"], windows["num_valid"])
    twice = hflip_windows(mirrored)
    for key in windows:
        np.testing.assert_array_equal(np.asarray(twice[key]), windows[key])


def test_two_view_mean_is_exact_and_mirror_equivariant(smoke_config):
    from ta2net_jax.model import build_model

    model = build_model(smoke_config, seed=0)
    plain = Predictor(model, smoke_config, _mesh(), batch_size=4, hflip_tta=False)
    both = Predictor(model, smoke_config, _mesh(), batch_size=4, hflip_tta=True)
    assert not plain.hflip_tta and both.hflip_tta
    windows = _windows()
    mirrored = {k: np.asarray(v) for k, v in hflip_windows(windows).items()}
    p, m = plain(windows)
    pm, mm = plain(mirrored)
    assert np.abs(p - pm).max() > 1e-4  # a random model is not mirror-invariant: the mean is not a no-op
    got_p, got_m = both(windows)
    np.testing.assert_allclose(got_p, 0.5 * (p + pm), atol=1e-6)
    np.testing.assert_allclose(got_m, 0.5 * (m + mm[..., ::-1]), atol=1e-6)
    # Averaged over the mirror, the mirrored input gives the same P(audible) and the mirrored map.
    again_p, again_m = both(mirrored)
    np.testing.assert_allclose(again_p, got_p, atol=1e-6)
    np.testing.assert_allclose(again_m, got_m[..., ::-1], atol=1e-6)
