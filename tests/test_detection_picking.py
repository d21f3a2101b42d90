"""Issue 12 picking: fps-aware separation, prominence over a running median, "peaks" mode, the reference
detector and the picking stored in detector.json (hand-checkable cases)."""

import json

import numpy as np
import pytest

from input_pipeline.video import write_video
from ta2net_jax.detection import detectors, events, reference
from ta2net_jax.detection.detect import VideoDetector
from ta2net_jax.detection.events import Picking, local_prominence, pick_events, picking_for, separation_frames


def test_separation_frames_in_seconds():
    assert separation_frames(0.2, 15) == 3
    assert separation_frames(0.2, 60) == 12
    assert separation_frames(0.2, 29.97) == 6
    assert separation_frames(0.01, 15) == 1  # never below one frame
    with pytest.raises(ValueError):
        separation_frames(0.2, 0)


def test_same_content_at_15_and_60_fps_gives_the_same_event_times():
    # Two bumps 0.2 s apart (the second lower) and one at 1.0 s, sampled at 15 and at 60 fps.
    def curve(fps):
        t = np.arange(int(1.5 * fps)) / fps
        return (
            np.exp(-(((t - 0.4) / 0.03) ** 2))
            + 0.8 * np.exp(-(((t - 0.6) / 0.03) ** 2))
            + np.exp(-(((t - 1.0) / 0.03) ** 2))
        )

    p = Picking(threshold=0.5, min_separation_s=0.25)
    times = {fps: p.pick(curve(fps), fps)[0] / fps for fps in (15, 60)}
    np.testing.assert_allclose(times[15], [0.4, 1.0], atol=1 / 15)
    np.testing.assert_allclose(times[60], times[15], atol=1 / 15)
    # A separation in frames does NOT do this: 3 frames = 0.2 s at 15 fps keeps 0.6 s, 0.05 s at 60 fps too,
    # but 4 frames keeps it at 60 fps and merges it at 15 fps.
    frames = Picking(threshold=0.5, min_separation_frames=4)
    assert len(frames.pick(curve(15), 15)[0]) == 2 and len(frames.pick(curve(60), 60)[0]) == 3


def test_local_prominence_is_score_minus_running_median():
    s = np.array([1.0, 1.0, 5.0, 1.0, 1.0, np.nan, 3.0])
    # Centred window of 3, clipped at the ends, finite entries only: medians 1 (of 1, 1), 1, 1 (of 1, 5, 1),
    # 1, 1 (of 1, 1, NaN), –, 3 (of NaN, 3). Frame 2 stands 4 above its baseline; NaN stays NaN.
    prom = local_prominence(s, 3)
    np.testing.assert_allclose(prom[:5], [0.0, 0.0, 4.0, 0.0, 0.0])
    assert np.isnan(prom[5]) and prom[6] == 0.0
    # Window 5 at frame 6: finite (1, NaN, 3) → median 2, prominence 1.
    assert local_prominence(s, 5)[6] == pytest.approx(1.0)
    np.testing.assert_array_equal(local_prominence(s, 1), s)


def test_prominence_picking_follows_a_drifting_baseline():
    # A ramp 0 … 10 with a +2 bump every 10 frames: raw thresholding at 6 fires one long run at the end;
    # with a 5-frame running median the baseline follows the ramp and every bump fires.
    n = 50
    s = np.linspace(0.0, 10.0, n)
    bumps = [5, 15, 25, 35, 45]
    s[bumps] += 2.0
    raw, _ = pick_events(s, 6.0, min_separation=3)
    assert len(raw) < len(bumps)
    frames, prom = pick_events(s, 1.0, min_separation=3, prominence_window=5)
    assert frames.tolist() == bumps
    assert np.all(prom > 1.5)


def test_peaks_mode_fires_each_local_maximum_of_a_run():
    s = np.array([0.0, 2.0, 1.5, 3.0, 1.0, 0.0, 2.5, 2.5, 0.0])
    # One run 1–4 above 0.5 gives ONE event in runs mode, two local maxima (1, 3) in peaks mode; the flat
    # top 6–7 gives one (the earlier frame).
    assert pick_events(s, 0.5)[0].tolist() == [3, 6]
    assert pick_events(s, 0.5, mode="peaks")[0].tolist() == [1, 3, 6]
    assert pick_events(s, 0.5, mode="peaks", min_separation=3)[0].tolist() == [3, 6]


def test_reference_curve_by_hand():
    # 6 frames of a uniform flow field: fwd[k] = speeds[k] px along x. |F⁺_{t+1} − F⁺_t| = |Δspeed|.
    speeds = np.array([1.0, 1.0, 4.0, 4.0, 4.0])  # the motion jumps between flow 1 and 2
    fwd = np.zeros((5, 4, 4, 2), np.float32)
    fwd[..., 0] = speeds[:, None, None]
    d = np.array([0.0, 3.0, 0.0, 0.0])  # frames 0…3; frames 4, 5 unscored
    s = reference.reference_curve(fwd)
    expected = np.convolve(d, [0.25, 0.5, 0.25], "same") / np.convolve(np.ones(4), [0.25, 0.5, 0.25], "same")
    np.testing.assert_allclose(s[:4], expected)
    assert np.isnan(s[4:]).all()
    z = reference.reference_scores(fwd)
    finite = s[:4]
    np.testing.assert_allclose(z[:4], (finite - np.median(finite)) / np.std(finite))
    # median + 1·std of s  <=>  z > 1: the only event is frame 1.
    p = detectors.get("reference").default_picking()
    assert p.pick(z, 15)[0].tolist() == [1]


def test_reference_detector_on_a_tiny_video_at_two_frame_rates(tmp_path):
    # A bright square moving right at 60 px/s (4 px per frame at 15 fps, 1 at 60) that stops dead at 0.6 s:
    # the reference's strongest event is at the stop, at the same time, and it always runs at 112 px DIS.
    found = {}
    for fps in (15, 60):
        n, stop, step = int(1.2 * fps), int(round(0.6 * fps)), 60 // fps
        frames = np.zeros((n, 64, 64, 3), np.uint8)
        for i in range(n):
            x = 4 + min(i, stop) * step
            frames[i, 24:40, x : x + 12] = 255
        path = str(tmp_path / f"stop_{fps}.mp4")
        write_video(path, frames, fps)
        det = VideoDetector(method="reference", image_size=48, flow_method="farneback")
        assert det.image_size == 112 and det.flow_method == "dis"
        a = det.analyse(path)
        strongest = max(a["events"], key=lambda e: e["score"])
        found[fps] = strongest["time_s"]
    assert found[15] == pytest.approx(0.6, abs=0.1)
    assert found[60] == pytest.approx(0.6, abs=0.1)


def test_detector_json_picking_round_trip(tmp_path):
    tuned = Picking(threshold=0.7, min_separation_s=0.3, prominence_window_s=0.5)
    text = json.dumps({"inflection_picking": tuned.to_dict(), "inflection_threshold": 9.0})
    run = detectors.Run(str(tmp_path), None, json.loads(text))
    assert picking_for(detectors.get("inflection"), run, None) == tuned  # the full picking wins
    old = detectors.Run(str(tmp_path), None, {"inflection_threshold": 9.0})  # an older detector.json
    p = picking_for(detectors.get("inflection"), old, None)
    assert p.threshold == 9.0 and p == detectors.get("inflection").default_picking().replace(threshold=9.0)
    with pytest.raises(ValueError, match="unknown picking"):
        Picking.from_dict({"threshold": 1.0, "window": 3})


def test_run_config_separation_seconds_and_frames():
    import ml_collections

    cfg = ml_collections.ConfigDict({"eval": {"min_separation": 4, "min_separation_s": None}})
    p = picking_for(detectors.get("model"), None, cfg)
    assert p.min_separation_s is None and p.separation(60) == 4  # the older frames key still works
    cfg.eval.min_separation_s = 0.25
    p = picking_for(detectors.get("model"), None, cfg)
    assert p.separation(60) == 15 and p.separation(16) == 4
    # The reference keeps its own 3-frame rule whatever the run says.
    assert picking_for(detectors.get("reference"), None, cfg).separation(60) == 3


def test_tune_picking_keeps_everything_but_the_threshold():
    s = np.zeros(40)
    s[[10, 20, 30]] = [3.0, 2.0, 1.0]
    s[[5, 25]] = 0.5  # distractors below every true peak
    base = Picking(threshold=99.0, min_separation_s=0.2, prominence_window_s=0.0)
    best, f1 = events.tune_picking([(s, [10, 20, 30], 10.0)], base, tol=1)
    assert f1 == 1.0 and 0.5 <= best.threshold < 1.0
    assert best.replace(threshold=99.0) == base
