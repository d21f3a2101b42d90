"""grain pipeline: clip sampling as the original, evaluation windows, determinism and resumption,
per-process sharding, and global arrays on the mesh."""

import jax
import numpy as np
import pytest

from input_pipeline import clips, pipeline


def test_training_clip_always_contains_an_event():
    rng = np.random.default_rng(0)
    events = np.array([10, 40])
    for _ in range(200):
        start = clips.training_clip_start(60, events, 16, rng)
        assert 2 <= start and start + 16 - 1 >= min(e for e in events if e >= start)
        assert any(start <= e < start + 16 for e in events)


def test_events_outside_kept_frames_are_never_the_anchor():
    rng = np.random.default_rng(0)
    # events at 0, 1 and N−2 cannot be inputs; the only usable one is 30
    starts = {clips.training_clip_start(40, np.array([0, 1, 30, 38]), 8, rng) for _ in range(100)}
    assert starts == set(range(23, 31))


def test_clips_anywhere_start_uniformly_in_the_given_fraction():
    """With anywhere=0.5, about half the clips of a 200-frame video with one event at 100 start anywhere
    (most of those miss the event), and every kept start is reachable; anywhere=0 is the original's rule."""
    rng = np.random.default_rng(0)
    starts = np.array([clips.training_clip_start(200, np.array([100]), 16, rng, anywhere=0.5) for _ in range(2000)])
    around = (starts >= 85) & (starts <= 100)
    assert 2 <= starts.min() and starts.max() <= 200 - 2 - 16
    assert 0.4 < np.mean(~around) / (1 - 16 / 181) < 0.6  # a uniform start lands around the event 16/181 of times
    assert starts.min() < 10 and starts.max() > 170
    plain = [clips.training_clip_start(200, np.array([100]), 16, np.random.default_rng(s)) for s in range(200)]
    assert all(85 <= s <= 100 for s in plain)


def test_window_starts_cover_every_kept_frame_once_or_more():
    for n, t, stride in [(80, 32, 16), (36, 32, 16), (20, 32, 16), (100, 8, 3)]:
        starts = clips.window_starts(n, t, stride)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : min(s + t, n - 2)] = True
        assert covered[2 : n - 2].all() and not covered[:2].any() and not covered[n - 2 :].any()


def test_augment_flips_frames_and_flow_together():
    rng = np.random.default_rng(0)
    clip = {
        "frames": rng.integers(0, 255, (2, 4, 5, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(size=(3, 4, 5, 2)).astype(np.float16),
        "flow_bwd": rng.normal(size=(3, 4, 5, 2)).astype(np.float16),
    }
    for seed in range(10):  # some seeds flip, some do not
        out = clips.augment(clip, np.random.default_rng(seed), hflip=True, brightness=0, contrast=0)
        if not np.array_equal(out["frames"], clip["frames"]):
            np.testing.assert_array_equal(out["frames"], clip["frames"][:, :, ::-1])
            np.testing.assert_array_equal(out["flow_fwd"][..., 0], -clip["flow_fwd"][:, :, ::-1, 0])
            np.testing.assert_array_equal(out["flow_bwd"][..., 1], clip["flow_bwd"][:, :, ::-1, 1])


def _moving_square(size: int = 16):
    """Frames [3, 16, 16, 3] of a 3 px square moving 3 px right and 1 px down per frame, its exact flows (the
    square's pixels, zero elsewhere) and its centre as the contact point of each frame (fractions)."""
    frames = np.zeros((3, size, size, 3), np.uint8)
    flow = np.zeros((2, size, size, 2), np.float32)
    contact = np.zeros((3, 2), np.float32)
    for t in range(3):
        x, y = 2 + 3 * t, 4 + t
        frames[t, y : y + 3, x : x + 3] = 255
        contact[t] = ((x + 1.5) / size, (y + 1.5) / size)  # continuous pixels: pixel i spans [i, i + 1)
        if t < 2:
            flow[t, y : y + 3, x : x + 3] = (3.0, 1.0)
    contact[1] = -1.0  # a frame with no contact keeps −1
    return {"frames": frames, "flow_fwd": flow, "flow_bwd": -flow, "contact_xy": contact}


def _centre(frame: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(frame[..., 0])
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_turn_frames_flows_and_contacts_together(k):
    """After k quarter turns the square still moves by its (turned) flow: the centre of its pixels moves from
    frame to frame by the flow read at them, and the contact point is still its centre (independent of the
    rule the code applies)."""
    clip = _moving_square()
    turned = clips.quarter_turns(clip, k)
    for t in range(2):
        at = turned["frames"][t, ..., 0] > 0
        moved = _centre(turned["frames"][t + 1]) - _centre(turned["frames"][t])
        np.testing.assert_allclose(turned["flow_fwd"][t][at].mean(0), moved, atol=1e-6)
        np.testing.assert_allclose(turned["flow_bwd"][t][at].mean(0), -moved, atol=1e-6)
    for t in (0, 2):  # fractions of the 16 px frame: the pixel centre (c + 0.5) / 16
        np.testing.assert_allclose(turned["contact_xy"][t], (_centre(turned["frames"][t]) + 0.5) / 16, atol=1e-6)
    np.testing.assert_array_equal(turned["contact_xy"][1], [-1.0, -1.0])
    assert turned["flow_fwd"].dtype == np.float32 and clips.quarter_turns(clip, 4) is clip
    with pytest.raises(ValueError, match="square"):
        clips.quarter_turns({**clip, "frames": clip["frames"][:, :, :12]}, 1)


def test_augment_turns_the_given_fraction_of_clips():
    clip = _moving_square()
    turned = [
        not np.array_equal(clips.augment(clip, np.random.default_rng(s), hflip=False, brightness=0, contrast=0,
                                         rotate=0.5)["frames"], clip["frames"])
        for s in range(400)
    ]  # fmt: skip
    assert 0.4 < np.mean(turned) < 0.6
    plain = clips.augment(clip, np.random.default_rng(0), hflip=False, brightness=0, contrast=0)
    np.testing.assert_array_equal(plain["frames"], clip["frames"])


def test_augment_flow_gain_scales_both_flows_by_one_gain_in_range():
    clip = _moving_square()
    gains = []
    for seed in range(200):
        out = clips.augment(clip, np.random.default_rng(seed), hflip=False, brightness=0, contrast=0, flow_gain=2.0)
        moving = clip["flow_fwd"] != 0
        gain = out["flow_fwd"][moving] / clip["flow_fwd"][moving]
        np.testing.assert_allclose(gain, gain[0], rtol=1e-6)  # one gain per clip, u and v alike
        np.testing.assert_allclose(out["flow_bwd"][moving] / clip["flow_bwd"][moving], gain[0], rtol=1e-6)
        np.testing.assert_array_equal(out["frames"], clip["frames"])
        assert out["flow_fwd"].dtype == clip["flow_fwd"].dtype
        gains.append(gain[0])
    assert 0.5 <= min(gains) < 0.6 and 1.8 < max(gains) <= 2.0  # log-uniform over [1/2, 2]
    assert 0.4 < np.mean(np.array(gains) > 1.0) < 0.6
    plain = clips.augment(clip, np.random.default_rng(0), hflip=False, brightness=0, contrast=0)
    np.testing.assert_array_equal(plain["flow_fwd"], clip["flow_fwd"])
    with pytest.raises(ValueError, match="flow_gain"):
        clips.augment(clip, np.random.default_rng(0), hflip=False, brightness=0, contrast=0, flow_gain=0.5)


def _random_video(num_frames=14, size=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(size=(num_frames - 1, size, size, 2)).astype(np.float16),
        "flow_bwd": rng.normal(size=(num_frames - 1, size, size, 2)).astype(np.float16),
        "event_frames": np.array([3, 7, 10]),
        "event_xy": rng.uniform(0, size, (3, 2)),
    }


@pytest.mark.parametrize("start, clip_len", [(2, 6), (4, 6), (7, 6), (9, 6)])  # the last two end-padded
def test_time_reversed_clip_is_the_clip_of_the_reversed_video(start, clip_len):
    video = _random_video()
    n = video["frames"].shape[0]
    backwards = {  # time runs the other way: F⁺' of a frame is F⁻ of its mirror, and the reverse
        "frames": video["frames"][::-1],
        "flow_fwd": video["flow_bwd"][::-1],
        "flow_bwd": video["flow_fwd"][::-1],
        "event_frames": n - 1 - video["event_frames"],
        "event_xy": video["event_xy"],
    }
    clip = clips.make_clip(video, start, clip_len)
    valid = int(clip["num_valid"])
    # The reversed video has real frames where this clip was end-padded: compare the valid positions, and
    # check that the padding repeats the last of them as make_clip pads.
    expected = clips.make_clip(backwards, n - start - valid, valid)
    reversed_clip = clips.time_reversed(clip)
    assert int(reversed_clip["num_valid"]) == valid and clip["labels"].sum() > 0
    for key in ("frames", "flow_fwd", "flow_bwd", "labels", "contact_xy"):
        kept = valid + 1 if key.startswith("flow") else valid
        np.testing.assert_array_equal(reversed_clip[key][:kept], expected[key], err_msg=key)
        padding = reversed_clip[key][kept:]
        np.testing.assert_array_equal(padding, np.broadcast_to(expected[key][-1], padding.shape), err_msg=key)
    for key in ("frames", "flow_fwd", "labels"):  # the clip it came from is left as it was
        np.testing.assert_array_equal(clip[key], clips.make_clip(video, start, clip_len)[key])


def test_time_reversal_swaps_the_halves_of_the_models_inputs_frame_by_frame():
    from ta2net_jax.inflection import motion_and_inflection

    clip = clips.make_clip(_random_video(), 7, 6)  # 5 valid positions and one padded
    valid = int(clip["num_valid"])
    reversed_clip = clips.time_reversed(clip)

    def inputs(c):
        return [np.asarray(x[0]) for x in motion_and_inflection(c["flow_fwd"][None], c["flow_bwd"][None],
                                                                 np.array([valid]), mode="raw")]  # fmt: skip

    for original, backwards in zip(inputs(clip), inputs(reversed_clip)):
        swapped = np.concatenate([original[..., 2:], original[..., :2]], axis=-1)  # backward half first
        np.testing.assert_allclose(backwards[:valid], swapped[:valid][::-1], atol=1e-6)
        np.testing.assert_array_equal(backwards[valid:], backwards[valid - 1 : valid])  # end padding


def test_augment_reverses_the_given_fraction_of_clips():
    clip = clips.make_clip(_random_video(), 4, 6)
    reversed_clip = clips.time_reversed(clip)
    outcomes = []
    for seed in range(400):
        out = clips.augment(clip, np.random.default_rng(seed), hflip=False, brightness=0, contrast=0, reverse=0.5)
        backwards = np.array_equal(out["flow_fwd"], reversed_clip["flow_fwd"])
        assert backwards or np.array_equal(out["flow_fwd"], clip["flow_fwd"])
        outcomes.append(backwards)
    assert 0.4 < np.mean(outcomes) < 0.6
    plain = clips.augment(clip, np.random.default_rng(0), hflip=False, brightness=0, contrast=0)
    np.testing.assert_array_equal(plain["labels"], clip["labels"])


def _batches(it, n):
    return [next(it) for _ in range(n)]


def test_training_pipeline_is_deterministic_and_resumes_from_state(smoke_config):
    source = pipeline.data_source(smoke_config.data, "train")
    a = _batches(iter(pipeline.train_dataset(smoke_config, source)), 5)
    b = _batches(iter(pipeline.train_dataset(smoke_config, source)), 5)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert a[0]["frames"].shape == (4, 8, 32, 32, 3) and a[0]["flow_fwd"].shape == (4, 9, 32, 32, 2)
    assert (a[0]["labels"].sum(axis=1) >= 1).all()  # every clip contains an event

    it = iter(pipeline.train_dataset(smoke_config, source))
    _batches(it, 2)
    state = it.get_state()
    expected = _batches(it, 3)
    resumed = iter(pipeline.train_dataset(smoke_config, source))
    resumed.set_state(state)
    for x, y in zip(expected, _batches(resumed, 3)):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_processes_read_disjoint_shards(smoke_config):
    source = pipeline.data_source(smoke_config.data, "validation")
    ids = [
        [v["id"] for v in pipeline.eval_videos(smoke_config, source, process_index=i, process_count=2)]
        for i in range(2)
    ]
    assert not set(ids[0]) & set(ids[1]) and len(ids[0]) + len(ids[1]) == len(source)


def test_global_batch_is_sharded_on_the_data_axis(smoke_config):
    from ta2net_jax import mesh as mesh_lib

    mesh = mesh_lib.make_mesh(smoke_config.mesh)
    batch = next(iter(pipeline.train_dataset(smoke_config, pipeline.data_source(smoke_config.data, "train"))))
    arrays = mesh_lib.to_global(batch, mesh_lib.batch_sharding(mesh))
    assert arrays["frames"].shape == batch["frames"].shape
    assert len(arrays["frames"].addressable_shards) == jax.device_count() == 4
    np.testing.assert_array_equal(np.asarray(arrays["labels"]), batch["labels"])


def test_batch_not_divisible_by_processes_is_an_error(smoke_config):
    smoke_config.train.batch_size = 3
    with pytest.raises(ValueError, match="not divisible"):
        pipeline.train_dataset(smoke_config, [], process_count=2)


def test_resize_clip_scales_flow_to_the_new_pixels():
    clip = {
        "frames": np.full((2, 16, 8, 3), 77, np.uint8),
        "flow_fwd": np.broadcast_to(np.array([1.0, 2.0], np.float16), (3, 16, 8, 2)).copy(),
        "flow_bwd": np.broadcast_to(np.array([-1.0, 0.5], np.float16), (3, 16, 8, 2)).copy(),
        "contact_xy": np.array([[0.25, 0.75], [-1.0, -1.0]], np.float32),
    }
    out = clips.resize_clip(clip, 32)
    assert out["frames"].shape == (2, 32, 32, 3) and (out["frames"] == 77).all()
    assert out["flow_fwd"].dtype == np.float16 and out["flow_fwd"].shape == (3, 32, 32, 2)
    np.testing.assert_array_equal(out["flow_fwd"][0, 5, 7], [4.0, 4.0])  # u × 32/8, v × 32/16
    np.testing.assert_array_equal(out["flow_bwd"][2, 31, 0], [-4.0, 1.0])
    np.testing.assert_array_equal(out["contact_xy"], clip["contact_xy"])  # fractions of the frame
    same = {k: v[:, :8] if k != "contact_xy" else v for k, v in clip.items()}
    assert clips.resize_clip(same, 8) is same


def _white_videos(n=3, frames=24, size=16):
    return [
        {
            "frames": np.full((frames, size, size, 3), 255, np.uint8),
            "flow_fwd": np.zeros((frames - 1, size, size, 2), np.float16),
            "flow_bwd": np.zeros((frames - 1, size, size, 2), np.float16),
            "event_frames": np.array([10]),
            "event_xy": np.array([[8.0, 12.0]], np.float32),
        }
        for _ in range(n)
    ]


def test_mixture_draws_its_fraction_resized_and_resumes(smoke_config):
    smoke_config.data.brightness = smoke_config.data.contrast = 0.0
    smoke_config.data.image_size = 32  # the tiny set's size; the white 16 px videos are resized to it
    source = pipeline.data_source(smoke_config.data, "train")
    mixture = [(_white_videos(), 0.25)]
    it = iter(pipeline.train_dataset(smoke_config, source, mixture=mixture))
    batches = _batches(it, 10)
    assert all(b["frames"].shape == (4, 8, 32, 32, 3) for b in batches)
    white = np.concatenate([(b["frames"] == 255).all(axis=(1, 2, 3, 4)) for b in batches])
    assert 0.1 < white.mean() < 0.45  # 40 clips at 1/4 (the renders are never all white)
    state = it.get_state()
    expected = _batches(it, 2)
    resumed = iter(pipeline.train_dataset(smoke_config, source, mixture=mixture))
    resumed.set_state(state)
    for x, y in zip(expected, _batches(resumed, 2)):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_mixture_fractions_are_checked_and_components_named(smoke_config):
    smoke_config.data.image_size = 64  # the run's size; a component keeps its own (it is resized per clip)
    smoke_config.data.mixture = (("small", 0.3),)
    ((component, fraction),) = pipeline.mixture_configs(smoke_config.data)
    assert component.builder_config == "small" and fraction == 0.3 and "mixture" not in component
    assert smoke_config.data.builder_config == "tiny" and "image_size" not in component
    assert component.flow_method == smoke_config.data.flow_method == "dis"
    smoke_config.data.mixture = (("small", 0.3), ("v2_64_240", 0.2, "tvl1-jax"))
    (small, _), (other_flow, fraction) = pipeline.mixture_configs(smoke_config.data)
    assert small.flow_method == "dis" and other_flow.flow_method == "tvl1-jax" and fraction == 0.2
    assert other_flow.builder_config == "v2_64_240" and smoke_config.data.flow_method == "dis"
    for bad in [(("small", 0.0),), (("small", 0.6), ("paper", 0.5)), (("small", 0.3, "dis", 1),)]:
        smoke_config.data.mixture = bad
        with pytest.raises(ValueError, match="data.mixture"):
            pipeline.mixture_configs(smoke_config.data)


def test_grain_worker_processes_give_the_same_batches(smoke_config):
    """`data.worker_count > 0` sends the data source (and its TFDS builder) to worker processes by pickle; a
    registered builder config used to come back as a copy that TFDS refused, failing every worker. Started at
    a batch (a resumed run whose worker count changed), two workers give the in-process batches from there."""
    source = pipeline.data_source(smoke_config.data, "train")
    in_process = _batches(iter(pipeline.train_dataset(smoke_config, source)), 3)
    smoke_config.data.worker_count = 1
    with_worker = _batches(iter(pipeline.train_dataset(smoke_config, source)), 3)
    smoke_config.data.worker_count = 2
    resumed = _batches(iter(pipeline.train_dataset(smoke_config, source, start_batch=1)), 2)
    for x, y in zip(in_process + in_process[1:], with_worker + resumed):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.parametrize(
    "config",
    [
        "default_detector.py:smoke",
        "default_detector.py:smoke,flow_mix=0.25",  # a derived config (another flow estimator) as well
        "audible623_data.py:smoke",
        "audible623_data.py:dataset=repcount",
    ],
)
def test_builders_pickle_with_their_config(config, tmp_path):
    import os
    import pickle

    from input_pipeline import registry
    from ta2net_jax.config_utils import load_config

    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "configs", config), [f"data.data_dir={tmp_path}"])
    data_cfgs = [cfg.data] + [component for component, _ in pipeline.mixture_configs(cfg.data)]
    for data_cfg in data_cfgs:
        builder = registry.make_builder(data_cfg, workers=1)
        copy = pickle.loads(pickle.dumps(builder))
        assert copy.builder_config == builder.builder_config
