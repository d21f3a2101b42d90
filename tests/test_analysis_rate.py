"""A high-frame-rate video scored as interleaved phases (detection/analysis_rate.py, evaluation/rate_tuning.py)."""

from __future__ import annotations

import numpy as np
import pytest
from ml_collections import ConfigDict

from input_pipeline.flow import estimate_flow
from ta2net_jax.detection import analysis_rate


@pytest.mark.parametrize(
    "fps, max_fps, num_frames, stride",
    [
        (60.0, 30.0, 180, 2),
        (45.0, 30.0, 180, 2),  # rint(1.5) = 2
        (44.0, 30.0, 180, 1),
        (29.97, 30.0, 180, 1),
        (25.0, 20.0, 180, 1),
        (29.0, 20.0, 180, 1),
        (30.0, 20.0, 180, 2),
        (30000 / 1001, 20.0, 180, 2),  # NTSC "30 fps" (29.97) counts as 30: phases, as a 30 fps video
        (29.9, 20.0, 180, 2),
        (29.4, 20.0, 180, 1),
        (24000 / 1001, 20.0, 180, 1),
        (60000 / 1001, 20.0, 180, 3),
        (50.0, 20.0, 180, 2),  # rint(2.5) = 2
        (60.0, 20.0, 180, 3),
        (60.0, 20.0, 40, 2),  # three phases of 13 frames are too short for 16-frame windows: two of 20
        (60.0, 30.0, 31, 1),
        (60.0, None, 180, 1),
        (60.0, 0.0, 180, 1),
    ],
)
def test_stride_rule(fps, max_fps, num_frames, stride):
    assert analysis_rate.stride_for(fps, max_fps, num_frames, min_phase_frames=16) == stride


def test_nominal_rate_is_the_nearest_whole_rate():
    assert analysis_rate.nominal_fps(30000 / 1001) == 30.0
    assert analysis_rate.nominal_fps(29.9) == 30.0  # a phone's variable rate, on average
    assert analysis_rate.nominal_fps(60000 / 1001) == 60.0
    assert analysis_rate.nominal_fps(24000 / 1001) == 24.0
    assert analysis_rate.nominal_fps(29.4) == 29.0
    for fps in (30.0, 25.0, 14.0, 29.0, 59.0, 0.5):
        assert analysis_rate.nominal_fps(fps) == fps


def test_interleave_puts_each_phase_back_on_its_frames():
    n, stride = 11, 3
    parts = [np.arange(p, n, stride, dtype=np.float32) for p in range(stride)]
    np.testing.assert_array_equal(analysis_rate.interleave(parts, n), np.arange(n))
    maps = [np.stack([np.full((2, 2), f) for f in part]) for part in parts]
    out = analysis_rate.interleave(maps, n)
    assert out.shape == (n, 2, 2) and (out[:, 0, 0] == np.arange(n)).all()
    with pytest.raises(ValueError, match="phase 1 of 3: 3 frames, expected 4 of 11"):
        analysis_rate.interleave([parts[0], parts[1][:-1], parts[2]], n)


def test_score_phases_scores_each_phase_as_a_video_of_its_own():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (20, 24, 24, 3), dtype=np.uint8)
    seen = []

    def score_phase(part, fps):
        # The phase's own frames, at the phase's frame rate.
        first = int(np.flatnonzero((frames == part[0]).all(axis=(1, 2, 3)))[0])
        np.testing.assert_array_equal(part, frames[first::2])
        seen.append((first, fps))
        index = np.arange(first, 20, 2, dtype=np.float32)
        return index / 100.0, np.repeat(index[:, None, None], 3, axis=1).repeat(3, axis=2)

    values, maps = analysis_rate.score_phases(score_phase, frames, 50.0, 2)
    assert seen == [(0, 25.0), (1, 25.0)]
    np.testing.assert_allclose(values, np.arange(20) / 100.0, rtol=1e-6)
    assert maps.shape == (20, 3, 3) and (maps[:, 1, 2] == np.arange(20)).all()


def _eval_config(bounds):
    data = dict(name="synthetic_collisions", num_frames=8, image_size=64, flow_method="dis")
    return ConfigDict(dict(data=data, eval=dict(analysis_max_fps=bounds, stride=4, tolerance=3)))


def _native_picking():
    from ta2net_jax.detection.events import Picking

    return Picking(threshold=0.5, min_separation_frames=2)


def _videos(split):
    """Two 60 fps videos and one 20 fps video; at the native rate every curve misses its events, except the
    20 fps one, whose events peak at 0.6."""
    out = []
    for i, fps in enumerate((60.0, 60.0, 20.0)):
        scores = np.full(64, 0.1)
        if fps == 20.0:
            scores[[20, 40]] = 0.6
        out.append(
            {
                "id": f"{split}_{i}",
                "fps": fps,
                "num_frames": 64,
                "event_frames": np.array([20, 40]),
                "scores": scores,
                "maps": np.zeros((64, 2, 2)),
            }
        )
    return out


def _rescored(bound_that_finds):
    """A stand-in for rate_tuning._strided: videos above the bound get curves that find the events at one
    bound (`bound_that_finds`: peaks of 0.9, with false peaks of 0.7 elsewhere) and nothing at the others."""

    def strided(config, score_phase, split, videos, max_fps, progress):
        out = {}
        for i, v in enumerate(videos):
            if analysis_rate.stride_for(v["fps"], max_fps, v["num_frames"], config.data.num_frames) > 1:
                s = np.full(v["num_frames"], 0.1)
                if max_fps == bound_that_finds:
                    s[v["event_frames"]] = 0.9
                    s[[5, 55]] = 0.7
                out[i] = (s, np.ones((v["num_frames"], 2, 2)))
        return out

    return strided


def test_the_bound_is_chosen_on_the_tuning_split_and_applied_to_both(monkeypatch):
    from ta2net_jax.evaluation import rate_tuning

    monkeypatch.setattr(rate_tuning, "_strided", _rescored(30.0))
    splits = {"validation": _videos("validation"), "test": _videos("test")}
    native = _native_picking()
    record = rate_tuning.choose_analysis_rate(
        _eval_config((20.0, 30.0)), None, None, 0.0, splits, "validation", native, progress=False
    )
    assert record["max_fps"] == 30.0
    # The phase-scored videos' own threshold clears their false peaks (0.7); the native one would not.
    assert 0.7 <= record["threshold"] < 0.9
    f1 = record["validation_f1_by_max_fps"]
    assert set(f1) == {"native", "20", "30"} and f1["30"] == 1.0 > f1["native"] == f1["20"]
    for split in ("validation", "test"):
        fast, slow = splits[split][0], splits[split][2]
        assert fast["analysis_stride"] == 2 and fast["scores"][20] == 0.9 and (fast["maps"] == 1).all()
        assert rate_tuning.picking_for(fast, native).threshold == record["threshold"]
        # Below the bound: native scores, native picking (the 0.6 peaks still fire at 0.5).
        assert "analysis_stride" not in slow and rate_tuning.picking_for(slow, native) == native
        assert list(native.pick(slow["scores"], slow["fps"])[0]) == [20, 40]


def test_native_rate_wins_ties_and_no_bounds_means_no_choice(monkeypatch):
    from ta2net_jax.evaluation import rate_tuning

    monkeypatch.setattr(rate_tuning, "_strided", _rescored(None))  # re-scoring finds nothing more
    splits = {"validation": _videos("validation"), "test": _videos("test")}
    native = _native_picking()
    record = rate_tuning.choose_analysis_rate(
        _eval_config((30.0,)), None, None, 0.0, splits, "validation", native, progress=False
    )
    assert record["max_fps"] is None and record["threshold"] is None
    assert set(record["validation_f1_by_max_fps"]) == {"native", "30"}
    assert all("analysis_stride" not in v and "phase_threshold" not in v for v in splits["test"])
    assert rate_tuning.choose_analysis_rate(_eval_config(()), None, None, 0.0, splits, "validation", native) is None


@pytest.mark.parametrize("flow", ["dis", "tvl1-jax"])
def test_detect_scores_a_video_above_the_bound_as_its_phases(tmp_path, flow, monkeypatch):
    """The shipped bundle told to analyse at ≤ 10 fps: a 15 fps clip is scored as two 7.5 fps phases, each
    exactly as the bundle scores that phase as a video of its own (locator blend and maps included); the
    events are picked and located at the native rate, from native flow estimated only around them. With
    tvl1-jax the phases run fused."""
    import json
    import shutil

    from conftest import QUICK_TVL1, realdata

    from input_pipeline import flow as flow_lib
    from input_pipeline.video import read_video
    from ta2net_jax.detection.detect import VideoDetector
    from ta2net_jax.detection.detectors import Scores
    from ta2net_jax.detection.events import Picking
    from ta2net_jax.export import bundle

    folder = str(tmp_path / "bundle")
    shutil.copytree(bundle.packaged_model_dir(), folder)
    tuned_path = f"{folder}/detector.json"
    # One phase threshold for every flow: the bundle's own for tvl1-jax (thresholds_by_flow) dropped.
    tuned = {k: v for k, v in json.load(open(tuned_path)).items() if k != "thresholds_by_flow"}
    json.dump({**tuned, "analysis_rate": {"max_fps": 10.0, "threshold": 0.3}}, open(tuned_path, "w"))
    video = realdata("greatest_hits_condfoleygen", "hitting_bag.mp4")
    native_flows = []
    on_demand = flow_lib.flow_on_demand
    monkeypatch.setattr(
        flow_lib, "flow_on_demand", lambda *a, **k: native_flows.append(on_demand(*a, **k)) or native_flows[-1]
    )
    # The phases' equality holds whatever TV-L1 does; a few iterations keep its CPU cost to seconds.
    cheap = {"tvl1_options": QUICK_TVL1} if flow == "tvl1-jax" else {}
    strided = VideoDetector(workdir=folder, flow_method=flow, **cheap)
    analysed = strided.analyse(video)
    assert analysed["analysis_stride"] == 2 and analysed["decoded"].fps == 15.0
    assert len(analysed["scores"]) == 90 and analysed["events"]
    # Picked with the phase threshold, the rest of the bundle's picking unchanged.
    phase_picking = Picking(**{**tuned["model_picking"], "threshold": 0.3})
    assert analysed["picking"] == phase_picking

    # Each phase scored as a video of its own (7.5 fps is below the bound: native scoring).
    frames = read_video(video, size=(strided.image_size,) * 2).frames
    values, maps = [], []
    for phase in range(2):
        part = frames[phase::2]
        if strided.fused:
            scored = strided.detector.fused_scores(part, 7.5)
        else:
            scored = strided.detector.scores(part, *estimate_flow(part, flow), 7.5)
        assert strided.detector.stride(len(part), 7.5) == 1
        values.append(scored.values)
        maps.append(scored.maps)
    np.testing.assert_allclose(analysed["scores"], analysis_rate.interleave(values, 90), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(analysed["maps"], analysis_rate.interleave(maps, 90), atol=1e-6)
    assert [e["frame"] for e in analysed["events"]] == list(phase_picking.pick(analysed["scores"], 15.0)[0])

    # The native flow only located the events: a few fields around each were estimated (each equal to
    # estimate_flow's, tests/test_flow.py), and the locations are those every field gives.
    ((lazy_fwd, _),) = native_flows
    assert 0 < lazy_fwd.estimated < len(frames) - 1 and lazy_fwd.estimated <= 6 * len(analysed["events"])
    whole = Scores(analysed["scores"], analysed["maps"], *estimate_flow(frames, flow, **cheap))
    decoded = analysed["decoded"]
    for event in analysed["events"]:
        x, y = strided.detector.locate(whole, event["frame"])
        assert decoded.borders.to_source(x, y, frames.shape[1:3], decoded.source_size) == (event["x"], event["y"])

    if flow == "dis":  # the command's JSON; a threshold given on the command line applies to phases too
        result = VideoDetector(workdir=folder, flow_method=flow, threshold=0.45)(video)
        assert result["analysis_stride"] == 2 and result["analysis_max_fps"] == 10.0 and result["fps"] == 15.0
        assert result["threshold"] == 0.45 and result["picking"] == {**tuned["model_picking"], "threshold": 0.45}
        got = np.array([np.nan if s is None else s for s in result["scores"]], np.float32)
        np.testing.assert_allclose(got, analysed["scores"], rtol=1e-6, atol=1e-7)
