"""Variable-frame-rate video: frame timestamps read, and used wherever frames become seconds or seconds frames
(detect's event times, cues, the timeline, the dub, labels from sound); constant-rate files keep k / fps."""

from fractions import Fraction

import av
import numpy as np
import pytest
from test_frame_repeats import moving_texture

from input_pipeline import audio, frame_times
from input_pipeline.video import read_video, video_info, write_video

# A phone in dim light: 30 fps for 24 frames, then 15 fps for 26 (the container's average: 20.5 fps).
VFR_TIMES_S = np.concatenate([np.arange(24) / 30.0, 24 / 30.0 + np.arange(1, 27) / 15.0])


def write_vfr(path, rgb: np.ndarray, times_s: np.ndarray) -> None:
    """H.264 MP4 whose frame k carries the presentation time times_s[k] (ms clock), as phones write them."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=60)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.options = {"crf": "12"}
        for frame_rgb, t in zip(rgb, times_s):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def turning_texture(times_s: np.ndarray, px_per_s: float = 60.0, turns: tuple = (15, 32)) -> np.ndarray:
    """``[N, 64, 64, 3]`` uint8 frames shown at ``times_s``: a texture sliding right at ``px_per_s``, reversing
    abruptly at the frames ``turns`` (a frame after a longer interval has moved further, as in real footage)."""
    k = np.arange(len(times_s) - 1)
    direction = (-1.0) ** np.sum(k[:, None] >= np.asarray(turns, int).reshape(1, -1), axis=1)
    moved = direction * px_per_s * np.diff(times_s)  # pixels between frame k and k + 1
    grey = np.clip(moving_texture(len(times_s), np.r_[moved, 0.0], size=64), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("vfr") / "phone.mp4"
    write_vfr(path, turning_texture(VFR_TIMES_S), VFR_TIMES_S)
    return str(path)


def test_uniform_stamps_stay_uniform():
    fps = 30000 / 1001
    ntsc = np.round(np.arange(100) / fps * 90000) / 90000  # an MPEG-TS 90 kHz clock
    assert frame_times.presentation_times(list(ntsc + 3.2), fps) is None
    assert frame_times.presentation_times([0.0, 0.04, None, 0.12], 25.0) is None  # a frame without a stamp
    assert frame_times.presentation_times([0.0, 0.04, 0.04, 0.12], 25.0) is None  # a stamp repeated
    # A single frame dropped by a screen recorder: every later frame is one interval late.
    dropped = np.delete(np.arange(50) / 25.0, 10)
    assert np.allclose(frame_times.presentation_times(list(dropped), 25.0), dropped)


def test_stamps_in_file_order_are_sorted_and_start_at_zero():
    shown = 1.5 + VFR_TIMES_S
    decode_order = list(shown[[0, 3, 1, 2, *range(4, len(shown))]])  # I P B B ...
    assert np.allclose(frame_times.presentation_times(decode_order, 20.5), VFR_TIMES_S)


def test_frames_and_seconds_are_inverse_and_continue_past_the_ends():
    frames = np.array([-2.0, 0.0, 10.5, 23.0, 30.0, 49.0, 52.0])
    seconds = frame_times.frames_to_seconds(frames, 20.0, VFR_TIMES_S)
    assert seconds[2] == pytest.approx(10.5 / 30.0)  # between two 30 fps frames
    assert seconds[4] == pytest.approx(VFR_TIMES_S[30])
    assert seconds[0] == pytest.approx(-0.1) and seconds[-1] == pytest.approx(VFR_TIMES_S[-1] + 3 / 20.0)
    assert np.allclose(frame_times.seconds_to_frames(seconds, 20.0, VFR_TIMES_S), frames)
    assert np.allclose(frame_times.frames_to_seconds(frames, 20.0), frames / 20.0)
    assert frame_times.describe(None, 20.0) == {"frame_times": "uniform"}
    described = frame_times.describe(VFR_TIMES_S, 20.0)
    assert described["frame_times"] == "timestamps"
    assert described["frame_rate_range"] == pytest.approx([15.0, 30.0])


def test_a_variable_rate_file_is_read_with_its_timestamps(vfr_video, tmp_path):
    decoded = read_video(vfr_video, size=(32, 32))
    assert len(decoded.frames) == len(VFR_TIMES_S)
    assert decoded.times_s == pytest.approx(VFR_TIMES_S, abs=1e-3)
    assert decoded.fps < 25.0  # the container's average rate, which uniform time would use
    info = video_info(vfr_video)
    assert info["times_s"] == pytest.approx(VFR_TIMES_S, abs=1e-3)  # from the packets, nothing decoded
    constant = tmp_path / "constant.mp4"
    write_video(constant, turning_texture(np.arange(20) / 25.0), 25.0, crf=18, pix_fmt="yuv420p")
    assert read_video(constant).times_s is None and video_info(constant)["times_s"] is None


def test_written_video_keeps_its_frames_timestamps(tmp_path):
    """write_video(times_s=...) stores each frame's own presentation time (the overlay of a variable-rate file
    as MP4), read back as written; timestamps that do not increase, or do not match the frames, are refused."""
    from ta2net_jax.detection.overlay import write_overlay

    rgb = turning_texture(VFR_TIMES_S)
    path = tmp_path / "written.mp4"
    write_video(path, rgb, 20.5, crf=18, pix_fmt="yuv420p", times_s=VFR_TIMES_S + 2.0)  # from the first frame
    assert read_video(path).times_s == pytest.approx(VFR_TIMES_S, abs=1e-4)
    overlay = tmp_path / "overlay.mp4"
    scores = np.linspace(0.0, 1.0, len(rgb))
    write_overlay(str(overlay), iter(rgb), None, scores, [], fps=20.5, times_s=VFR_TIMES_S)
    assert video_info(overlay)["times_s"] == pytest.approx(VFR_TIMES_S, abs=1e-4)
    for times, match in ((VFR_TIMES_S[::-1], "increasing"), (VFR_TIMES_S[:-1], "timestamps")):
        with pytest.raises(ValueError, match=match):
            write_video(tmp_path / "bad.mp4", rgb, 20.5, times_s=times)
    assert not list(tmp_path.glob("*bad*"))  # nothing half-written left behind


def test_detect_times_events_by_the_frames_timestamps(vfr_video, tmp_path):
    from ta2net_jax.cli.main import main
    from ta2net_jax.detection import cues
    from ta2net_jax.detection.detect import VideoDetector

    # The two reversals score ~37 robust z-units, codec noise and the rate switch < 2.
    detector = VideoDetector(method="inflection", image_size=64, threshold=5.0)
    result = detector(vfr_video, plot=str(tmp_path / "timeline.png"), overlay=str(tmp_path / "overlay.gif"))
    assert result["frame_times"] == "timestamps"
    assert result["frame_rate_range"] == pytest.approx([15.0, 30.0], rel=0.01)
    frames = [e["frame"] for e in result["events"]]
    assert len(frames) == 2 and abs(frames[0] - 15) <= 1 and abs(frames[1] - 32) <= 1, frames
    for e in result["events"]:
        assert e["time_s"] == pytest.approx(VFR_TIMES_S[e["frame"]], abs=1e-3)
    # after the slowdown, frame / average fps would be 0.18 s (almost three 15 fps frames) late
    assert frames[1] / result["fps"] - VFR_TIMES_S[frames[1]] > 0.15
    assert (tmp_path / "timeline.png").stat().st_size > 0
    from PIL import Image

    with Image.open(tmp_path / "overlay.gif") as gif:  # each frame shown for its own interval (GIF: 10 ms units)
        shown_ms = []
        for k in range(gif.n_frames):
            gif.seek(k)
            shown_ms.append(gif.info["duration"])
    assert set(shown_ms[:23]) <= {30, 40} and set(shown_ms[24:-1]) <= {60, 70}, shown_ms
    # The CLI's cue list carries the frames' times too ("impact (frame k, score s)").
    srt = tmp_path / "cues.srt"
    args = ["detect", vfr_video, "--method", "inflection", "--cues", str(srt), "--threshold", "5"]
    assert main(args) == 0
    cued = cues.read_srt(srt)
    assert len(cued) == 2
    for start_s, _, text in cued:
        frame = int(text.split("frame ")[1].split(",")[0])
        assert start_s == pytest.approx(VFR_TIMES_S[frame], abs=1e-3)


def test_flow_per_unit_interval_keeps_steady_motion_steady(vfr_video, tmp_path, monkeypatch):
    from ta2net_jax.detection.detect import VideoDetector

    # The texture's speed in pixels per second never changes: at the 30 → 15 fps switch (frame 24) each frame
    # moves twice as far, which the raw flow would take for an abrupt change of motion.
    switch = range(20, 28)
    detector = VideoDetector(method="inflection", image_size=64, threshold=5.0)
    result = detector(vfr_video)
    assert result["flow_per_unit_interval"]
    assert not any(e["frame"] in switch for e in result["events"])
    # Frames 20 and 40 of a steady 30 fps pan lost by the recorder: two pairs span two intervals.
    steady = np.arange(61) / 30.0
    kept = np.delete(np.arange(61), [20, 40])
    dropped = tmp_path / "dropped.mp4"
    write_vfr(dropped, turning_texture(steady, px_per_s=90.0, turns=())[kept], steady[kept])
    plain = VideoDetector(method="inflection", threshold=10.0)
    assert [e["frame"] for e in plain(str(dropped))["events"] if e["frame"] < 45] == [], "a drop made an event"

    monkeypatch.setattr(frame_times, "per_unit_interval", lambda fwd, bwd, times_s, fps: (fwd, bwd))
    assert any(e["frame"] in switch for e in detector(vfr_video)["events"])
    assert len([e for e in plain(str(dropped))["events"] if e["frame"] < 45]) == 2


def test_a_fast_variable_rate_video_gets_its_phases_flow_per_unit_interval(tmp_path, monkeypatch):
    from ta2net_jax.cli.commands import _model_source
    from ta2net_jax.detection.detect import VideoDetector

    times_s = np.concatenate([np.arange(40) / 48.0, 40 / 48.0 + np.arange(1, 41) / 30.0])  # averages 37 fps
    path = tmp_path / "fast.mp4"
    write_vfr(path, turning_texture(times_s), times_s)
    seen = []
    scale = frame_times.per_unit_interval

    def recording(fwd, bwd, phase_times_s, fps):
        seen.append((len(fwd), phase_times_s is not None, fps))
        return scale(fwd, bwd, phase_times_s, fps)

    monkeypatch.setattr(frame_times, "per_unit_interval", recording)
    result = VideoDetector(workdir=_model_source(None))(str(path))
    assert result["analysis_stride"] == 2 and result["flow_per_unit_interval"]
    # each phase's 40 frames (39 flow pairs), timed by its own timestamps at half the average rate
    assert seen == [(39, True, pytest.approx(result["fps"] / 2))] * 2


def test_the_dub_sounds_when_the_frame_is_shown(vfr_video, tmp_path):
    from ta2net_jax.detection import dub

    out = tmp_path / "dubbed.mkv"
    dub.dub_video(vfr_video, [10, 26], out, mix="replace", sound_kind="click")
    samples, rate = audio.read_audio(out, None, align_to_video=True)
    onsets = audio.detect_onsets(samples, rate)
    found_s = onsets.times_s - onsets.latency_s
    assert found_s == pytest.approx(VFR_TIMES_S[[10, 26]], abs=0.03)
    # frame 26 / the average rate would be 0.3 s late
    info = video_info(vfr_video)
    assert 26 / info["fps"] - VFR_TIMES_S[26] > 0.25


def test_onsets_go_to_the_frame_shown_at_their_time():
    onset_s = VFR_TIMES_S[[5, 30, 45]] + 0.01
    frames = audio.onsets_to_frames(onset_s, 20.5, len(VFR_TIMES_S), frame_times_s=VFR_TIMES_S)
    assert frames.tolist() == [5, 30, 45]
    assert audio.onsets_to_frames(onset_s, 20.5, len(VFR_TIMES_S)).tolist() != [5, 30, 45]


def test_prepare_times_a_variable_rate_source_by_its_timestamps(vfr_video, tmp_path):
    """`prepare` at the native rate stores a variable-rate source's flow per unit interval (as detect scores it)
    and its timestamps; resampled, output frame j is the frame shown nearest to j / fps and labels map by
    the timestamps, not by the average rate."""
    from input_pipeline import flow as flow_lib, prepare as prep

    native = prep.prepare_video(vfr_video, str(tmp_path), "native", prep.PrepareOptions(size=32, max_frames=None))
    assert native["frame_times"] == "timestamps" and native["flow_per_unit_interval"]
    assert native["source_times_s"] == pytest.approx(VFR_TIMES_S, abs=1e-3)
    stored = prep.load_prepared(str(tmp_path), "native")
    raw_fwd, _ = flow_lib.estimate_flow(read_video(vfr_video, size=(32, 32)).frames, "dis")
    gains = frame_times.interval_gains(np.asarray(native["source_times_s"]), native["native_fps"])
    assert gains[:23] == pytest.approx(30 / native["native_fps"], rel=0.02)  # faster than average (ms clock)
    assert gains[24:] == pytest.approx(15 / native["native_fps"], rel=0.02)
    want = raw_fwd.astype(np.float32) * gains[:, None, None, None]
    np.testing.assert_allclose(stored["flow_fwd"].astype(np.float32), want, atol=0.02, rtol=2e-3)

    options = prep.PrepareOptions(size=32, fps=30.0, max_frames=None)
    resampled = prep.prepare_video(vfr_video, str(tmp_path), "at30", options)
    times = np.asarray(resampled["source_times_s"])  # as decoded: on the file's millisecond clock
    shown = np.arange(int(times[-1] * 30 + 1e-9) + 1) / 30.0
    nearest = [int(np.flatnonzero(np.abs(times - t) <= np.abs(times - t).min() + 1e-9)[-1]) for t in shown]
    assert resampled["source_frames"] == nearest and not resampled["flow_per_unit_interval"]
    # native frame 30 is shown at 1.267 s: output frame 38 at 30 fps (the average rate would say 44)
    assert frame_times.output_frames(np.array([30]), resampled, 30.0).tolist() == [38]
    assert frame_times.map_frame_index(np.array([30]), resampled["native_fps"], 30.0).tolist() != [38]
