"""Inflection flow against a float64 NumPy reference written from the original's definitions
(docs/original.md §4.2, UniMatch's flow_to_image), including clip-edge alignment and padding,
and computed inside jit on a data-sharded batch with no host round trip."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from input_pipeline.clips import make_clip
from ta2net_jax import inflection


def reference_color_wheel():
    ry, yg, gc, cb, bm, mr = 15, 6, 4, 11, 13, 6
    wheel = np.zeros((55, 3))
    c = 0
    wheel[c : c + ry, 0] = 255
    wheel[c : c + ry, 1] = np.floor(255 * np.arange(ry) / ry)
    c += ry
    wheel[c : c + yg, 0] = 255 - np.floor(255 * np.arange(yg) / yg)
    wheel[c : c + yg, 1] = 255
    c += yg
    wheel[c : c + gc, 1] = 255
    wheel[c : c + gc, 2] = np.floor(255 * np.arange(gc) / gc)
    c += gc
    wheel[c : c + cb, 1] = 255 - np.floor(255 * np.arange(cb) / cb)
    wheel[c : c + cb, 2] = 255
    c += cb
    wheel[c : c + bm, 2] = 255
    wheel[c : c + bm, 0] = np.floor(255 * np.arange(bm) / bm)
    c += bm
    wheel[c : c + mr, 2] = 255 - np.floor(255 * np.arange(mr) / mr)
    wheel[c : c + mr, 0] = 255
    return wheel


def reference_flow_to_image(flow):
    """UniMatch flow_to_image, float64, per channel loop, without the final uint8 cast."""
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    rad_max = np.max(np.sqrt(u**2 + v**2))
    u, v = u / (rad_max + 1e-5), v / (rad_max + 1e-5)
    wheel = reference_color_wheel()
    rad = np.sqrt(u**2 + v**2)
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1) / 2 * (wheel.shape[0] - 1)
    k0 = np.floor(fk).astype(np.int32)
    k1 = k0 + 1
    k1[k1 == wheel.shape[0]] = 0
    f = fk - k0
    out = np.zeros(u.shape + (3,))
    for i in range(3):
        col = (1 - f) * wheel[k0, i] / 255.0 + f * wheel[k1, i] / 255.0
        idx = rad <= 1
        col[idx] = 1 - rad[idx] * (1 - col[idx])
        col[~idx] = col[~idx] * 0.75
        out[..., i] = col
    return out


def reference_inputs(flow_fwd, flow_bwd, t, mode, scale=1.0):
    """motion_t and inflection_t of video frame t from whole-video flows (§4.2), float64."""
    code = (lambda f: reference_flow_to_image(f)) if mode == "color" else (lambda f: f.astype(np.float64) / scale)
    motion = np.concatenate([code(flow_fwd[t]), code(flow_bwd[t - 1])], -1)
    infl = np.concatenate(
        [code(flow_fwd[t + 1]) - code(flow_fwd[t]), code(flow_bwd[t - 2]) - code(flow_bwd[t - 1])], -1
    )
    return motion, infl


def random_video(n=14, h=6, w=7, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(0, 3, (n - 1, h, w, 2)).astype(np.float16),
        "flow_bwd": rng.normal(0, 3, (n - 1, h, w, 2)).astype(np.float16),
        "event_frames": np.array([3, 9]),
    }


def test_color_wheel_matches_reference():
    np.testing.assert_array_equal(inflection.COLOR_WHEEL, reference_color_wheel())


def test_flow_to_color_matches_float64_reference():
    flow = np.random.default_rng(1).normal(0, 4, (9, 11, 2)).astype(np.float32)
    ours = np.asarray(inflection.flow_to_color(jnp.asarray(flow), quantize=False))
    np.testing.assert_allclose(ours, reference_flow_to_image(flow), atol=2e-5)
    quantized = np.asarray(inflection.flow_to_color(jnp.asarray(flow)))
    # 8-bit as the original's PNGs; float32 vs float64 may flip a floor at an exact boundary.
    assert np.mean(np.abs(quantized - np.floor(255 * reference_flow_to_image(flow)) / 255) > 1e-6) < 0.01


@pytest.mark.parametrize("mode", ["color", "raw"])
@pytest.mark.parametrize("start,clip_len", [(2, 6), (5, 6), (8, 6), (2, 12)])
def test_clip_alignment_and_end_padding(mode, start, clip_len):
    """Every clip position equals the whole-video definition; padded positions repeat the last valid one."""
    video = random_video()
    clip = make_clip(video, start, clip_len)
    n = video["frames"].shape[0]
    num_valid = int(clip["num_valid"])
    assert num_valid == min(clip_len, (n - 3) - start + 1)
    batch = jax.tree.map(lambda x: jnp.asarray(x)[None], clip)
    motion, infl = inflection.motion_and_inflection(
        batch["flow_fwd"], batch["flow_bwd"], batch["num_valid"], mode=mode, flow_scale=2.0
    )
    ff, fb = video["flow_fwd"].astype(np.float32), video["flow_bwd"].astype(np.float32)
    for j in range(clip_len):
        t = start + min(j, num_valid - 1)
        ref_motion, ref_infl = reference_inputs(ff, fb, t, mode, 2.0)
        atol = 2e-5 if mode == "raw" else 1.01 / 255  # colour mode is 8-bit quantised
        np.testing.assert_allclose(np.asarray(motion[0, j]), ref_motion, atol=atol)
        np.testing.assert_allclose(np.asarray(infl[0, j]), ref_infl, atol=2 * atol)
        np.testing.assert_array_equal(clip["frames"][j], video["frames"][t])


def test_clip_outside_kept_frames_is_an_error():
    video = random_video()
    with pytest.raises(ValueError, match="outside the kept frames"):
        make_clip(video, 1, 4)
    with pytest.raises(ValueError, match="outside the kept frames"):
        make_clip(video, video["frames"].shape[0] - 2, 4)


def test_computed_in_jit_on_sharded_batch_without_host_transfer():
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    sharding = NamedSharding(mesh, P("data"))
    video = random_video()
    clips = [make_clip(video, s, 6) for s in (2, 3, 4, 8)]
    batch = {k: jax.device_put(np.stack([c[k] for c in clips]), sharding) for k in clips[0]}
    fn = jax.jit(lambda b: inflection.model_inputs(b, "color"))
    with jax.transfer_guard("disallow"):
        video_in, motion, infl = fn(batch)
    assert motion.shape == (4, 6, 6, 7, 6) and infl.shape == (4, 6, 6, 7, 6)
    assert motion.sharding.spec[0] == "data" and infl.sharding.spec[0] == "data"
    ref_motion, ref_infl = reference_inputs(
        video["flow_fwd"].astype(np.float32), video["flow_bwd"].astype(np.float32), 4, "color"
    )
    np.testing.assert_allclose(np.asarray(infl[2, 0]), ref_infl, atol=2.02 / 255)


def test_inflection_energy_maps_follow_the_models_alignment():
    # The training-free cue (NumPy, input_pipeline) and the model's inflection (JAX) are the same differences.
    from input_pipeline import inflection_energy

    rng = np.random.default_rng(3)
    n = 12
    fwd = rng.normal(size=(n - 1, 8, 8, 2)).astype(np.float32)
    bwd = rng.normal(size=(n - 1, 8, 8, 2)).astype(np.float32)
    _, model_inflection = inflection.motion_and_inflection(
        jnp.asarray(fwd[None, 2:]), jnp.asarray(bwd[None, : n - 3]), jnp.array([n - 4]), mode="raw"
    )
    model_inflection = np.asarray(model_inflection[0])
    expected = np.linalg.norm(model_inflection[..., :2], axis=-1) + np.linalg.norm(model_inflection[..., 2:], axis=-1)
    maps = inflection_energy.inflection_magnitude_maps(fwd, bwd)
    np.testing.assert_allclose(maps[2 : n - 2], expected, rtol=1e-5, atol=1e-5)
    assert not maps[:2].any() and not maps[n - 2 :].any()
    energy = inflection_energy.inflection_energy(fwd, bwd)
    assert np.isnan(energy[[0, 1, n - 2, n - 1]]).all()
    k = max(1, round(inflection_energy.TOP_FRACTION * 64))
    np.testing.assert_allclose(energy[5], np.sort(expected[3].ravel())[-k:].mean(), rtol=1e-6)


def test_location_magnitude_sums_the_neighbouring_kept_frames():
    """An event is located by the magnitude summed over frame ± LOCATION_HALF_WINDOW (clipped to the kept
    frames): per frame equal to the windowed maps eval measures, and a contact whose change lands on the next
    frame beats a distractor that moves only at the event frame."""
    from input_pipeline import inflection_energy

    rng = np.random.default_rng(5)
    n, half = 12, inflection_energy.LOCATION_HALF_WINDOW
    fwd = rng.normal(size=(n - 1, 8, 8, 2)).astype(np.float32)
    bwd = rng.normal(size=(n - 1, 8, 8, 2)).astype(np.float32)
    per_frame = inflection_energy.inflection_magnitude_maps(fwd, bwd)
    windowed = inflection_energy.windowed_maps(per_frame)
    for t in range(n):
        expected = sum(per_frame[u] for u in range(max(t - half, 0), min(t + half, n - 1) + 1))
        np.testing.assert_allclose(windowed[t], expected, rtol=1e-5, atol=1e-5)
        if 2 <= t <= n - 3:
            np.testing.assert_allclose(inflection_energy.location_magnitude(fwd, bwd, t), windowed[t], rtol=1e-5)
    # Still flow, a distractor jump at (1, 1) on frame 5 only, a contact at (6, 6) changing over frames 5–6.
    fwd, bwd = np.zeros_like(fwd), np.zeros_like(bwd)
    fwd[6:, 1, 1] = 3.0  # |F⁺_6 − F⁺_5| = 3 at frame 5, nothing after
    fwd[6:, 6, 6] = 2.0
    fwd[7:, 6, 6] = 4.0  # 2 at frame 5 and 2 at frame 6
    assert inflection_energy.energy_peak_xy(fwd, bwd, 5) == (6.5, 6.5)
    one_frame = inflection_energy.inflection_magnitude(fwd, bwd, 5)
    assert np.unravel_index(int(np.argmax(one_frame)), one_frame.shape) == (1, 1)
