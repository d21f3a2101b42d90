"""Long videos in bounded memory, with stage progress (benchmarks/long_video.py measures the memory): the model's
windows cut one batch at a time give what stacking them all gives, the overlay is decoded, rendered and encoded
frame by frame with the same pixels, and the stage bars (input_pipeline/progress.py) draw only when asked to."""

from __future__ import annotations

import io

import jax
import numpy as np
import pytest
from benchmark_scripts import load_benchmark
from jax.sharding import AxisType, Mesh

from input_pipeline import clips, flow as flow_lib, pipeline, progress
from input_pipeline.synthetic import SceneConfig, generate_video
from input_pipeline.video import iter_frames, read_video, write_video
from ta2net_jax.detection import overlay
from ta2net_jax.inference import Predictor, predict_video, predict_videos


def _example(num_frames: int) -> dict:
    frames = generate_video(3, SceneConfig(height=32, width=32, num_frames=num_frames)).frames
    fwd, bwd = flow_lib.estimate_flow(frames)
    return {"id": "v", "fps": 25.0, "frames": frames, "flow_fwd": fwd, "flow_bwd": bwd, "event_frames": np.zeros(0)}


def test_windows_one_batch_at_a_time_equal_all_windows_stacked(smoke_config):
    """A 44-frame video: 9 windows of 8 every 4, i.e. three batches of 4, the last padded: scores and maps equal
    bit for bit those of predict_videos over pipeline.VideoWindows (every window stacked first)."""
    from ta2net_jax.model import build_model

    mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",), axis_types=(AxisType.Auto,))
    predictor = Predictor(build_model(smoke_config, seed=0), smoke_config, mesh)
    example = _example(44)
    t, stride = smoke_config.data.num_frames, smoke_config.eval.stride
    assert len(clips.window_starts(44, t, stride)) > 2 * predictor.batch_size
    got = predict_video(predictor, example, t, stride)
    want = next(predict_videos(predictor, [pipeline.VideoWindows(t, stride).map(dict(example))]))
    np.testing.assert_array_equal(got["scores"], want["scores"])
    np.testing.assert_array_equal(got["maps"], want["maps"])
    assert np.isnan(got["scores"][:2]).all() and np.isfinite(got["scores"][2:-2]).all()


def test_iter_frames_are_read_video_frames(tmp_path):
    frames = generate_video(5, SceneConfig(height=48, width=64, num_frames=12)).frames
    path = tmp_path / "clip.mp4"
    write_video(path, frames, 25.0)
    streamed = iter_frames(path, size=(24, 32))
    assert not isinstance(streamed, np.ndarray)  # a generator: nothing decoded before it is asked for
    np.testing.assert_array_equal(np.stack(list(streamed)), read_video(path, size=(24, 32)).frames)


def test_write_video_from_a_generator_equals_from_an_array(tmp_path):
    frames = generate_video(6, SceneConfig(height=32, width=48, num_frames=10)).frames
    write_video(tmp_path / "array.mp4", frames, 25.0, reproducible=True)
    write_video(tmp_path / "stream.mp4", (f for f in frames), 25.0, reproducible=True)
    np.testing.assert_array_equal(read_video(tmp_path / "stream.mp4").frames, read_video(tmp_path / "array.mp4").frames)
    with pytest.raises(ValueError, match="among frames of uint8"):
        write_video(tmp_path / "bad.mp4", iter([frames[0], frames[1][:16]]), 25.0)
    assert not (tmp_path / "bad.mp4").exists()  # nothing half-written
    with pytest.raises(ValueError, match="must not be empty"):
        write_video(tmp_path / "empty.mp4", iter([]), 25.0)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_overlay_streamed_from_frames_equals_overlay_from_an_array(tmp_path, suffix, monkeypatch):
    """write_overlay on a generator of frames writes the file it writes for the stacked array (GIF bytes equal;
    MP4 decoded equal), and its frames are render_overlay's."""
    import input_pipeline.video as video_lib

    # x264's threaded lookahead makes two lossy encodes of the same frames differ now and then: encode both
    # reproducibly, so a difference can only come from the frames.
    encode = video_lib.write_video
    monkeypatch.setattr(video_lib, "write_video", lambda *a, **k: encode(*a, **k, reproducible=True))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 30, 40, 3), dtype=np.uint8)
    maps, scores = rng.random((12, 4, 4)), rng.random(12)
    events = [{"frame": 4, "x": 20.0, "y": 10.0}]
    rendered = overlay.render_overlay(frames, maps, scores, events, threshold=0.5)
    assert rendered.shape == (12, 30 + overlay.STRIP_HEIGHT, 40, 3)
    np.testing.assert_array_equal(
        np.stack(list(overlay.overlay_frames(iter(frames), maps, scores, events, threshold=0.5))), rendered
    )
    a, b = tmp_path / f"array{suffix}", tmp_path / f"stream{suffix}"
    overlay.write_overlay(str(a), frames, maps, scores, events, fps=25.0, threshold=0.5)
    overlay.write_overlay(str(b), iter(frames), maps, scores, events, fps=25.0, threshold=0.5)
    if suffix == ".gif":
        assert a.read_bytes() == b.read_bytes()
    else:
        np.testing.assert_array_equal(read_video(b).frames, read_video(a).frames)


def test_stage_bars_draw_only_when_shown(monkeypatch):
    frames = generate_video(2, SceneConfig(height=32, width=32, num_frames=6)).frames
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    for shown in (False, True):
        out = io.StringIO()
        monkeypatch.setattr("sys.stderr", out)
        with progress.shown(shown):
            flow_lib.estimate_flow(frames)
        assert ("flow (dis)" in out.getvalue()) is shown, out.getvalue()
    assert not progress.is_shown()  # the block's setting does not outlive it


def test_decoded_frames_are_held_once_in_one_growing_array():
    """read_video keeps frames in a FrameArray: preallocated from the header's count, grown when the header is
    short, trimmed when it is long, frames of another size left out (read_video then reports the change)."""
    from input_pipeline.video_decode import FrameArray

    frames = np.arange(7 * 2 * 3 * 3, dtype=np.uint8).reshape(7, 2, 3, 3)
    for capacity in (1, 3, 7, 8, 50):
        held = FrameArray(capacity)
        for frame in frames:
            held.append(frame)
        held.append(np.zeros((3, 2, 3), np.uint8))  # another size: not kept
        got = held.array()
        np.testing.assert_array_equal(got, frames)
        assert held.mismatched == 1
        if capacity in (7, 50):  # the header's count exact: no copy; far too high: a copy frees the rest
            assert (got.base is not None) == (capacity == 7)
    with pytest.raises(ValueError, match="no frames"):
        FrameArray(4).array()
    # A header claiming a billion frames preallocates only max_prealloc_bytes, and grows from there.
    held = FrameArray(10**9, max_prealloc_bytes=3 * frames[0].nbytes)
    for frame in frames:
        held.append(frame)
    np.testing.assert_array_equal(held.array(), frames)


def test_long_video_benchmark_scores_detect_against_the_discs_exact_bounces():
    """benchmarks/long_video.py's ground truth: the frames its trajectory calls bounces (the frame nearer each
    contact instant) are exactly where the disc turns from falling to rising, and its scoring counts hits,
    misses and wrap-around false alarms as the project's one-to-one matching does."""
    bench = load_benchmark("long_video")
    height, width, radius = 360, 640, 30
    trajectory = bench.disc_trajectory(900, height, width, radius)
    y, bounces, wraps = trajectory["y"], trajectory["bounces"], trajectory["wraps"]
    # The frame nearer each contact instant is where the sampled disc turns from falling to rising, and there
    # is no other down → up turn (no contact the truth misses).
    step = np.diff(y)  # step[i] = y[i + 1] - y[i], image rows grow downwards
    turns = np.flatnonzero((step[:-1] > 0) & (step[1:] < 0)) + 1
    np.testing.assert_array_equal(turns, bounces)
    assert bounces.size > 20 and wraps.size == 900 * 3 // (width - 2 * radius)
    assert np.all(trajectory["impact_speed"] > 0)
    # The frames follow the trajectory: the red disc's centroid is the centre, on a bounce and on a wrap.
    frames = list(bench.bouncing_disc({k: trajectory[k][: wraps[0] + 1] for k in ("x", "y")}, height, width, radius))
    for i in (bounces[3], wraps[0]):
        red = (frames[i][..., 0] == 220) & (frames[i][..., 1] == 40)
        rows, cols = np.nonzero(red)
        assert abs(rows.mean() - y[i]) < 1 and abs(cols.mean() - trajectory["x"][i]) < 1

    perfect = bench.score_events(bounces, trajectory)
    assert all(perfect[f"tol{t}"]["f1"] == 1.0 for t in (1, 2, 3)) and perfect["false_alarms_at_wraps"] == 0
    assert all(b["found"] == 1.0 for b in perfect["found_by_impact_speed"].values())
    assert sum(b["bounces"] for b in perfect["found_by_impact_speed"].values()) == bounces.size
    # Every other bounce, two frames late, and one event on each wrap that is > 3 frames from any bounce.
    lonely = [w for w in wraps if np.abs(bounces - w).min() > 3]
    events = np.sort(np.concatenate([bounces[::2] + 2, lonely]))
    got = bench.score_events(events, trajectory)
    kept = bounces[::2].size
    assert got["tol1"]["tp"] == 0 and got["tol3"]["tp"] == got["tol2"]["tp"] == kept
    assert (got["tol3"]["fp"], got["tol3"]["fn"]) == (len(lonely), bounces.size - kept)
    assert got["false_alarms_at_wraps"] == len(lonely) > 0


@pytest.mark.parametrize("detector", ["inflection", "reference"])
def test_training_free_scores_are_made_in_chunks_of_frames(detector):
    """The training-free detectors' per-pixel maps and scores are computed `CHUNK_FRAMES` frames at a time:
    bit for bit what one pass over the whole video gives, with temporaries of a chunk's size (tracemalloc sees
    NumPy's buffers): the peak above the inputs is the maps plus a few chunks, where one pass would hold
    several whole-video copies of the flow (a 10-minute video at 112²: 10.8 GiB before, benchmarks/RESULTS.md)."""
    import tracemalloc

    from input_pipeline import inflection_energy
    from ta2net_jax.detection import reference

    rng = np.random.default_rng(0)
    n, h, w = 300, 24, 32
    fwd = rng.normal(size=(n - 1, h, w, 2)).astype(np.float32)
    bwd = rng.normal(size=(n - 1, h, w, 2)).astype(np.float32)

    def maps_of(chunk: int) -> np.ndarray:
        if detector == "inflection":
            return inflection_energy.inflection_magnitude_maps(fwd, bwd, chunk_frames=chunk)
        return reference.change_maps(fwd, chunk_frames=chunk)

    def scores_of(maps: np.ndarray, chunk: int) -> np.ndarray:
        if detector == "inflection":
            return inflection_energy.robust_zscore(inflection_energy.energy_of_maps(maps, chunk_frames=chunk))
        return reference.scores_of_maps(maps)

    whole_scores = (
        inflection_energy.inflection_scores(fwd, bwd) if detector == "inflection" else reference.reference_scores(fwd)
    )
    whole = maps_of(n)
    for chunk in (1, 7, 64, 256):
        np.testing.assert_array_equal(maps_of(chunk), whole)
        np.testing.assert_array_equal(scores_of(whole, chunk), whole_scores)

    def peak_above_inputs(chunk: int) -> int:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        scores_of(maps_of(chunk), chunk)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return peak

    chunk = 16
    bound = whole.nbytes + 8 * chunk * h * w * 2 * 4  # the maps, and a few chunk-sized [chunk, H, W, 2] float32
    assert peak_above_inputs(chunk) <= bound
    assert peak_above_inputs(n) > 2 * bound  # one pass over the whole video: the bound is what chunks buy


def test_long_video_benchmark_names_each_run_by_its_path(tmp_path):
    """Two runs whose folders end alike (runs/a/bundle, runs/b/bundle) get output folders of their own."""
    bench = load_benchmark("long_video")
    assert bench.run_label(str(bench.ROOT / "runs" / "a" / "bundle")) == "runs-a-bundle"
    assert bench.run_label(str(bench.ROOT / "runs" / "b" / "bundle")) == "runs-b-bundle"
    outside = tmp_path / "u112"
    assert bench.run_label(str(outside)) == "-".join(outside.resolve().parts[1:])
