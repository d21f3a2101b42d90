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
