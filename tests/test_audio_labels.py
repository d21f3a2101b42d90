"""Audio labels: decoding, onsets → frames, lag estimate and rejection, on synthetic videos with a rendered
soundtrack (exact event frames) and on the Greatest Hits clips (audio_onsets.json from librosa 0.11.0)."""

import json

import numpy as np
import pytest
from conftest import realdata

from input_pipeline import audio, audio_labels, synthetic_audio
from input_pipeline.synthetic import SceneConfig, generate_video

NUM_FRAMES = 50
SIZE = 48
# Seeds whose contacts are >= 3 frames apart (two clicks 1-2 frames apart are one onset for librosa's peak
# picker at 25 fps), at both frame rates; events: 25 fps 5: 13 27 35, 8: 12 25 32 (48), 9: 12 27 36 42;
# 15 fps 5: 8 16 21, 8: 7 15 19 29 37 44, 9: 7 16 22 25.
SEEDS = (5, 8, 9)


def _events(seed: int, fps: float):
    video = generate_video(seed, SceneConfig(height=SIZE, width=SIZE, num_frames=NUM_FRAMES, fps=fps))
    return video, sorted({e.frame for e in video.events})


@pytest.fixture(scope="module", params=[(25.0, 2), (15.0, 1)], ids=["25fps_lag2", "15fps_lag1"])
def dataset(request, tmp_path_factory):
    """One synthetic dataset per frame rate, sound ``lag`` frames after the picture: 3 clips with clicks, one
    with noise only, one with a silent (all-zero) track, one without an audio stream."""
    fps, lag = request.param
    root = tmp_path_factory.mktemp(f"audio_{int(fps)}")
    truth = {}
    for seed in SEEDS:
        video, frames = _events(seed, fps)
        path = str(root / f"clip{seed}.mp4")
        track = synthetic_audio.render_soundtrack(frames, fps, NUM_FRAMES, lag_s=lag / fps)
        synthetic_audio.write_video_with_audio(path, video.frames, fps, track, 22050)
        # A click rendered past the end of the track is not in the video's sound.
        truth[path] = [f for f in frames if f + lag < NUM_FRAMES - 0.5]
    video, _ = _events(3, fps)
    extra = {}
    for name, track in (
        ("noise", synthetic_audio.render_soundtrack([], fps, NUM_FRAMES, noise_std=0.1)),
        ("zeros", np.zeros(int(NUM_FRAMES / fps * 22050), np.float32)),
        ("no_audio", None),
    ):
        extra[name] = str(root / f"{name}.mp4")
        synthetic_audio.write_video_with_audio(extra[name], video.frames, fps, track, 22050)
    result = audio_labels.audio_labels_for_videos([*truth, *extra.values()])
    return fps, lag, truth, extra, result


def test_lag_is_the_rendered_lag(dataset):
    _fps, lag, _, _, result = dataset
    assert abs(result.lag.lag_frames - lag) <= 1, result.lag
    assert result.lag.lag_frames == lag, result.lag  # stronger: the labels test below needs it exact
    assert set(result.lag.correlation_by_lag) == set(range(-3, 4))


def test_labels_are_the_exact_event_frames(dataset):
    _, lag, truth, _, result = dataset
    for path, frames in truth.items():
        assert path in result.labels, result.rejected.get(path)
        got = result.labels[path]
        assert got.frames.tolist() == frames, path
        assert got.lag_frames == lag and got.agreement >= audio_labels.DEFAULT_MIN_AGREEMENT
        assert got.strengths.shape == got.frames.shape and np.all(got.strengths > 0)


def test_clips_without_usable_sound_are_named_with_a_reason(dataset):
    _, _, _truth, extra, result = dataset
    assert set(result.rejected) == set(extra.values())
    assert "agreement" in result.rejected[extra["noise"]]
    assert "no audio onsets" in result.rejected[extra["zeros"]]
    assert "no audio stream" in result.rejected[extra["no_audio"]]


def test_onsets_to_frames_convention():
    fps = 10.0
    times_s = [0.0, 0.049, 0.05, 0.151, 0.96, -0.06, 1.2]
    # nearest frame, halves go up; before 0 or past the last frame dropped; one frame counts once
    assert audio.onsets_to_frames(times_s, fps, 10).tolist() == [0, 1, 2]
    assert audio.onsets_to_frames(times_s, fps, 11).tolist() == [0, 1, 2, 10]
    assert audio.onsets_to_frames([0.3, 0.55], fps, 10, lag_frames=2).tolist() == [1, 4]
    frames, strengths = audio.onsets_to_frames([0.1, 0.12, 0.5], fps, 10, strengths=[1.0, 3.0, 2.0])
    assert frames.tolist() == [1, 5] and strengths.tolist() == [3.0, 2.0]


def test_estimate_lag_recovers_a_shift_and_respects_the_bound():
    rng = np.random.default_rng(0)
    curves = [rng.normal(size=60) for _ in range(3)]
    for shift in (-2, 0, 3):
        envelopes = [np.roll(c, shift) for c in curves]  # envelope[t + shift] == curve[t]
        assert audio_labels.estimate_lag(envelopes, curves, max_lag=3).lag_frames == shift
    assert audio_labels.estimate_lag([np.roll(c, 5) for c in curves], curves, max_lag=3).lag_frames in range(-3, 4)
    with pytest.raises(ValueError, match="constant"):
        audio_labels.estimate_lag([np.zeros(60)], [curves[0]])


def test_read_audio_errors_name_the_file(tmp_path, dataset):
    _, _, _, extra, _ = dataset
    with pytest.raises(audio.NoAudioStreamError, match="no_audio.mp4: no audio stream"):
        audio.read_audio(extra["no_audio"])
    with pytest.raises(audio.AudioReadError, match="missing.mp4: no such file"):
        audio.read_audio(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(audio.AudioReadError, match="bad.mp4: cannot open"):
        audio.read_audio(bad)


def test_read_audio_resamples_to_mono(dataset):
    fps, _, truth, _, _ = dataset
    path = next(iter(truth))
    samples, rate = audio.read_audio(path, 16000)
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - NUM_FRAMES / fps * 16000) <= 2


ONSETS_JSON = ("greatest_hits_condfoleygen", "audio_onsets.json")


@pytest.mark.parametrize("name", ["hitting_bag.mp4", "hitting_metal.mp4"])
def test_greatest_hits_onsets_match_audio_onsets_json(name):
    with open(realdata(*ONSETS_JSON)) as f:
        entry = json.load(f)[name]
    setting = entry["audio_onsets"]["delta_0.3_condfoleygen"]
    path = realdata("greatest_hits_condfoleygen", name)
    labels = audio_labels.audio_labels_for_video(path)
    # librosa's onset times are reproduced exactly (PyAV decode + soxr_hq resample == librosa.load)
    np.testing.assert_allclose(labels.times_s, setting["times_s"], atol=1e-3)
    expected = np.floor(np.asarray(setting["frames_at_native_fps"]) + 0.5).astype(int)
    assert labels.fps == entry["fps"] and labels.num_frames == entry["n_frames_decoded"]
    assert labels.frames.size == expected.size
    assert np.max(np.abs(labels.frames - expected)) <= 1
    raw = audio_labels.audio_labels_for_video(path, latency_hops=0)  # librosa's times, no latency removed
    assert raw.frames.tolist() == expected.tolist()


def test_audio_onsets_entry_reproduces_the_shared_json(dataset):
    with open(realdata(*ONSETS_JSON)) as f:
        shared = json.load(f)
    for name, expected in shared.items():
        entry = audio.audio_onsets_entry(realdata("greatest_hits_condfoleygen", name))
        note = expected["audio_onsets"].pop("note")
        assert note and entry == expected, name
    _, _, _, extra, _ = dataset
    assert audio.audio_onsets_entry(extra["no_audio"])["audio_onsets"] is None


def test_labels_json_is_a_labels_file_for_parse_labels(dataset, tmp_path):
    from input_pipeline.labels import parse_labels

    _, lag, truth, extra, result = dataset
    path = tmp_path / "audio_labels.json"
    path.write_text(json.dumps(result.labels_json()))
    for video, frames in truth.items():
        assert parse_labels(str(path), video).frames.tolist() == frames
    report = json.loads(json.dumps(result.report_json()))
    assert report["lag_frames"] == lag and set(report["rejected"]) == set(extra.values())
