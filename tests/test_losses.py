"""Loss terms against hand-worked values and a float64 NumPy reference; the contrastive term on a
4-device batch-sharded global batch equals the single-device value (negatives from every device), for
both `loss.fb_gather` paths (GSPMD and shard_map + all_gather), and on 8 devices in a subprocess."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from configs.common import paper_loss
from ta2net_jax import losses


def test_gaussian_kernel_is_the_originals():
    np.testing.assert_allclose(
        losses.gaussian_label_kernel(), [0.3247, 0.6065, 0.8825, 1.0, 0.8825, 0.6065, 0.3247], atol=1e-4
    )


def test_soft_labels_sum_then_clip():
    labels = jnp.zeros((1, 12), jnp.int32).at[0, 3].set(1).at[0, 5].set(1)
    g = np.asarray(losses.soft_labels(labels))[0]
    k = losses.gaussian_label_kernel()
    assert g[0] == pytest.approx(k[0])  # only the event at 3 reaches frame 0 (d = 3)
    assert g[4] == 1.0  # 0.8825 + 0.8825 clipped to 1
    assert g[9] == 0.0 and g[8] == pytest.approx(k[0])  # d = 3 from frame 5


def test_narrow_soft_labels_keep_contacts_two_frames_apart_apart():
    """σ = 0.5 (configs/default_detector.py:label_sigma): the frame between two contacts 2 frames apart gets
    2·exp(−2) ≈ 0.27, not the plateau of 1 the paper's σ = 2 gives it."""
    labels = jnp.zeros((1, 12), jnp.int32).at[0, 3].set(1).at[0, 5].set(1)
    g = np.asarray(losses.soft_labels(labels, sigma=0.5))[0]
    assert g[3] == 1.0 and g[5] == 1.0
    assert g[4] == pytest.approx(2 * np.exp(-2.0), rel=1e-5)
    assert g[2] == pytest.approx(np.exp(-2.0), rel=1e-5) and g[0] == pytest.approx(np.exp(-18.0), rel=1e-3)


def test_focal_loss_hand_value():
    logits = jnp.array([[[0.0, np.log(3.0)]]])  # p = (0.25, 0.75)
    assert float(losses.focal_loss(logits, jnp.array([[1]]))) == pytest.approx(0.25**2 * -np.log(0.75), rel=1e-6)
    assert float(losses.focal_loss(logits, jnp.array([[0]]))) == pytest.approx(0.75**2 * -np.log(0.25), rel=1e-6)


def reference_sim_max(x, alpha=0.25):
    """CCAM SimMaxLoss in float64 with the self column ranked first."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = np.clip(x @ x.T, 0.0005, 0.9995)
    key = s.copy()
    np.fill_diagonal(key, np.inf)
    ranks = np.argsort(np.argsort(-key, axis=1, kind="stable"), axis=1, kind="stable")
    return np.mean(np.exp(-alpha * (ranks - 1)) * -np.log(s))


def reference_fb(fg, bg):
    def cos(a, b):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return np.clip(a @ b.T, 0.0005, 0.9995)

    return reference_sim_max(fg) + np.mean(-np.log(1 - cos(bg, fg))) + reference_sim_max(bg)


def test_rank_weights_and_fb_loss_match_float64_reference():
    rng = np.random.default_rng(0)
    fg, bg = rng.normal(size=(8, 5)) + 1.0, rng.normal(size=(8, 5))
    got = float(losses.foreground_background_loss(jnp.asarray(fg, jnp.float32), jnp.asarray(bg, jnp.float32)))
    assert got == pytest.approx(reference_fb(fg, bg), rel=1e-5)


def test_map_smoothness_stays_within_clips():
    m = jnp.zeros((2, 3, 1, 1)).at[0, 2].set(1.0).at[1, 0].set(1.0)
    # within clips: |m2 + m0 − 2 m1| = 1 for each clip; the original's flattened B·T axis would add
    # the cross-boundary second differences at k = 2, 3 (|0 + 0 − 2| + |1 + 1 − 0|)
    assert float(losses.map_smoothness_loss(m)) == pytest.approx(2.0)


def test_sample_audible_frames_picks_positives():
    labels = jnp.zeros((64, 10), jnp.int32).at[:, 4].set(1).at[:, 7].set(1)
    idx = np.asarray(losses.sample_audible_frames(labels, jax.random.key(0)))
    assert set(idx.tolist()) == {4, 7}


@pytest.mark.parametrize("fb_gather", ["gspmd", "shard_map"])
@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
def test_total_loss_on_sharded_global_batch_equals_single_device(axis_type, fb_gather):
    """The contrastive set is the global batch: 4 devices × 2 clips give the loss of one 8-clip device."""
    rng = np.random.default_rng(1)
    b, t, d = 8, 6, 5
    outputs = {
        "logits": rng.normal(size=(b, t, 2)),
        "fg": rng.normal(size=(b, t, d)) + 0.5,
        "bg": rng.normal(size=(b, t, d)),
        "source_map": rng.uniform(size=(b, t, 2, 2)),
    }
    outputs = {k: jnp.asarray(v, jnp.float32) for k, v in outputs.items()}
    labels = jnp.asarray(rng.uniform(size=(b, t)) > 0.6, jnp.int32)
    cfg = paper_loss()
    cfg.fb_gather = fb_gather
    key = jax.random.key(3)

    def loss_and_grad(outs, labels):
        return jax.value_and_grad(lambda o: losses.ta2net_loss(o, labels, key, cfg)[0])(outs)

    ref_loss, ref_grad = jax.jit(loss_and_grad)(outputs, labels)  # no mesh: one device, plain L_fb
    mesh = jax.make_mesh((4,), ("data",), axis_types=(axis_type,))
    sharding = NamedSharding(mesh, P("data"))
    with jax.set_mesh(mesh):
        sharded = jax.device_put(outputs, sharding)
        loss, grad = jax.jit(loss_and_grad)(sharded, jax.device_put(labels, sharding))
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    for k in outputs:
        np.testing.assert_allclose(np.asarray(grad[k]), np.asarray(ref_grad[k]), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("key,value", [("fb_sampling", "bogus"), ("fb_gather", "ring")])
def test_unknown_contrastive_option_is_an_error(key, value):
    cfg = paper_loss()
    cfg[key] = value
    outs = {
        "logits": jnp.zeros((2, 3, 2)),
        "fg": jnp.ones((2, 3, 4)),
        "bg": jnp.ones((2, 3, 4)),
        "source_map": jnp.zeros((2, 3, 1, 1)),
    }
    with pytest.raises(ValueError, match=key):
        losses.ta2net_loss(outs, jnp.zeros((2, 3), jnp.int32), jax.random.key(0), cfg)


def test_all_frames_sampling_uses_every_frame():
    cfg = paper_loss()
    cfg.fb_sampling = "all_frames"
    rng = np.random.default_rng(2)
    fg, bg = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    outs = {
        "logits": jnp.zeros((2, 3, 2)),
        "fg": jnp.asarray(fg, jnp.float32),
        "bg": jnp.asarray(bg, jnp.float32),
        "source_map": jnp.zeros((2, 3, 1, 1)),
    }
    _, terms = losses.ta2net_loss(outs, jnp.zeros((2, 3), jnp.int32), jax.random.key(0), cfg)
    expected = cfg.fb_weight * reference_fb(fg.reshape(6, 4), bg.reshape(6, 4))
    assert float(terms["fb"]) == pytest.approx(expected, rel=1e-5)


def fb_inputs(n=8, d=5, seed=4):
    """fg, bg [n, d]; fg row 5 duplicates row 1 (another device's), so the clamp makes them tie at 0.9995."""
    rng = np.random.default_rng(seed)
    fg, bg = rng.normal(size=(n, d)) + 0.5, rng.normal(size=(n, d))
    fg[5] = fg[1]
    return jnp.asarray(fg, jnp.float32), jnp.asarray(bg, jnp.float32)


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
def test_shard_map_fb_loss_and_grads_equal_single_device(axis_type):
    fg, bg = fb_inputs()
    value_and_grad = jax.jit(jax.value_and_grad(losses.foreground_background_loss, argnums=(0, 1)))
    sm_value_and_grad = jax.jit(jax.value_and_grad(losses.foreground_background_loss_shard_map, argnums=(0, 1)))
    ref_loss, ref_grads = value_and_grad(fg, bg)
    assert float(ref_loss) == pytest.approx(
        reference_fb(np.asarray(fg, np.float64), np.asarray(bg, np.float64)), rel=1e-5
    )
    no_mesh_loss, _ = sm_value_and_grad(fg, bg)  # no mesh: falls back to the plain computation
    assert float(no_mesh_loss) == pytest.approx(float(ref_loss), rel=1e-6)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        sharding = NamedSharding(mesh, P("data"))
        for args in [
            (jax.device_put(fg, sharding), jax.device_put(bg, sharding)),  # sharded as in_specs
            (jax.device_put(fg, NamedSharding(mesh, P())), bg),
        ]:  # replicated / unplaced
            loss, grads = sm_value_and_grad(*args)
            np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
            for got, want in zip(grads, ref_grads):
                np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-7)
        text = jax.jit(losses.foreground_background_loss_shard_map).lower(*args).as_text()
        assert "all_gather" in text or "all-gather" in text


def test_shard_map_needs_batch_divisible_by_devices():
    fg, bg = fb_inputs(n=6)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Auto,))
    with jax.set_mesh(mesh), pytest.raises(ValueError, match="not divisible by the 4 devices"):
        losses.foreground_background_loss_shard_map(fg, bg)


def test_mesh_without_data_axis_falls_back():
    fg, bg = fb_inputs()
    mesh = jax.make_mesh((4,), ("model",), axis_types=(AxisType.Auto,))
    with jax.set_mesh(mesh):
        got = float(jax.jit(losses.foreground_background_loss_shard_map)(fg, bg))
    assert got == pytest.approx(float(losses.foreground_background_loss(fg, bg)), rel=1e-6)


def test_fb_gather_on_8_devices_in_a_subprocess():
    """tests/fb_gather_8dev.py: 8 fake devices (set before backend init, so a fresh process). One retry
    on an abort or timeout: the rare XLA:CPU collective rendezvous abort (jax_stack.md §2.5)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "8", "PYTHONPATH": repo}
    script = os.path.join(repo, "tests", "fb_gather_8dev.py")
    for attempt in range(2):
        try:
            proc = subprocess.run(
                [sys.executable, script], env=env, cwd=repo, capture_output=True, text=True, timeout=120
            )
        except subprocess.TimeoutExpired:
            if attempt == 0:
                continue
            raise
        if proc.returncode >= 0 or attempt == 1:  # negative: killed by a signal (SIGABRT), retried once
            break
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK 8 devices" in proc.stdout
