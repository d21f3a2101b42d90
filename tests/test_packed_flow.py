"""Flow on the accelerator for many videos (input_pipeline/packed_flow.py): `prepare` and `build` with
`tvl1-jax` decode in worker processes and estimate several videos' flow per device call in this process,
each video's flow what it gets alone."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from input_pipeline import flow as flow_lib, flow_jax_batch, packed_flow, prepare as prepare_lib
from input_pipeline.synthetic import SceneConfig, generate_video
from input_pipeline.video import read_video, write_video


def _frames(seed: int, n: int, size: int = 32) -> np.ndarray:
    return generate_video(seed, SceneConfig(height=size, width=size, num_frames=n)).frames


def _assert_same_flow(got, want):
    """float16 fields from two orders of the same per-pair solve: equal up to one float16 step."""
    assert got.dtype == want.dtype == np.float16 and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3)
    assert np.abs(want.astype(np.float32)).max() > 0.1  # a moving scene: the comparison has something to compare


@pytest.fixture
def calls(monkeypatch):
    """The frame counts of the videos in each `estimate_flow_videos` call."""
    seen, real = [], flow_jax_batch.estimate_flow_videos

    def spy(videos, **kw):
        seen.append([len(v) for v in videos])
        return real(videos, **kw)

    monkeypatch.setattr(flow_jax_batch, "estimate_flow_videos", spy)
    return seen


def test_with_flow_groups_videos_keeps_order_and_passes_failures_on(calls):
    a, b, c, d = _frames(1, 4), _frames(2, 3), _frames(3, 5), _frames(4, 3, size=24)
    items = [("a", a), ("failed", None), ("b", b), ("c", c), ("d", d)]
    out = list(packed_flow.with_flow(items, lambda item: item[1], group_pairs=10))
    # a + b reach 10 pairs (6 + 4): one group with the failure between them; c's group closes when d's frame
    # size differs; d alone at the end.
    assert calls == [[4, 3], [5], [3]]
    assert [item[0] for item, *_ in out] == ["a", "failed", "b", "c", "d"]
    assert out[1][1:] == (None, None, 0.0)
    for (_, frames), fwd, bwd, seconds in (o for o in out if o[0][1] is not None):
        want = flow_lib.estimate_flow(frames, "tvl1-jax")
        _assert_same_flow(fwd, want[0])
        _assert_same_flow(bwd, want[1])
        assert seconds > 0


def test_with_flow_of_nothing_but_failures():
    assert list(packed_flow.with_flow([("x", None)], lambda item: item[1])) == [(("x", None), None, None, 0.0)]


def test_prepare_with_tvl1_jax_packs_videos_and_names_a_broken_one(tmp_path, calls):
    """Two decoding workers (spawned), the flow here: each folder's flow is the video's own, a broken file is
    named and skipped, the others are written; a rerun redoes nothing."""
    jobs = []
    for i, n in enumerate((8, 6, 9)):
        path = str(tmp_path / f"clip{i}.mp4")
        write_video(path, _frames(10 + i, n), 25.0)
        jobs.append((f"clip{i}", path))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 8)
    jobs.insert(1, ("broken", str(broken)))
    options = prepare_lib.PrepareOptions(size=32, flow_method="tvl1-jax", max_frames=None)
    out = str(tmp_path / "prepared")
    summary = prepare_lib.prepare_all(jobs, out, options, workers=2, progress=False)
    assert sorted(summary.prepared) == ["clip0", "clip1", "clip2"]
    assert list(summary.failed) == ["broken"] and summary.failed["broken"].startswith(str(broken) + ":")
    assert max(len(call) for call in calls) > 1, calls  # several videos shared a call
    for key, path in jobs:
        if key == "broken":
            continue
        clip = prepare_lib.decode_clip(path, options)
        want = flow_lib.estimate_flow(clip.frames, "tvl1-jax")
        got = prepare_lib.load_prepared(out, key)
        _assert_same_flow(got["flow_fwd"], want[0])
        _assert_same_flow(got["flow_bwd"], want[1])
        assert len(got["frames_jpeg"]) == len(clip.frames) and got["meta"]["seconds"] > 0
    again = prepare_lib.prepare_all(jobs, out, options, workers=2, progress=False)
    assert sorted(again.reused) == ["clip0", "clip1", "clip2"] and again.prepared == []


def test_build_with_tvl1_jax_estimates_the_flow_in_this_process(tmp_path, calls, monkeypatch):
    from input_pipeline.datasets import synthetic_collisions
    from input_pipeline.jpeg_frames import DecodedSource

    monkeypatch.setattr(packed_flow, "GROUP_CALLS", 12)  # 96 pairs on 4 fake devices: two 24-frame videos a call

    raw = str(tmp_path / "raw")
    bad = os.path.join(raw, "tiny", "train", "train_00001")  # garbage bytes with an events file: skipped, named
    os.makedirs(os.path.dirname(bad))
    with open(bad + ".mp4", "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42 not a video" * 8)
    with open(bad + ".json", "w") as f:
        json.dump({"seed": 1, "fps": 25.0, "events": [], "metadata": {}}, f)
    builder = synthetic_collisions.build_dataset(
        str(tmp_path / "tfds"), "tiny", flow_method="tvl1-jax", workers=2, raw_dir=raw
    )
    with open(os.path.join(builder.data_dir, "build_report.json")) as f:
        skipped = json.load(f)["skipped"]
    assert len(skipped["train"]) == 1 and skipped["train"][0].startswith(bad + ".mp4:")
    assert sum(len(call) for call in calls) == 11 and max(len(call) for call in calls) > 1
    assert len(builder.as_data_source("train")) == 5
    for ex in DecodedSource(builder.as_data_source("validation")):
        frames = read_video(os.path.join(builder.raw_dir, "validation", ex["id"].decode() + ".mp4"), size=(32, 32))
        want = flow_lib.estimate_flow(frames.frames, "tvl1-jax")
        _assert_same_flow(ex["flow_fwd"], want[0])
        _assert_same_flow(ex["flow_bwd"], want[1])
