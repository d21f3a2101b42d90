"""Repeated frames of frame-rate conversions (input_pipeline/frame_repeats.py): which frames are found, which
are not (slow motion, irregular stills), the mapping back to native frames, detect's use of it, and the real
UCF101 clips (the soccer clip is a 29.97 fps file that repeats one frame in six; the boxing clip repeats none)."""

import numpy as np
import pytest
from conftest import realdata

from input_pipeline import frame_repeats


def moving_texture(num_frames: int, speeds, seed: int = 0, size: int = 48) -> np.ndarray:
    """``[N, size, size]`` float32 grey frames: a smooth random texture moving right by speeds[k] px at frame k."""
    rng = np.random.default_rng(seed)
    texture = rng.uniform(0, 255, (size, 4 * size + 64))
    kernel = np.ones(5) / 5  # smooth, so sub-pixel shifts change pixels gradually, as in real footage
    texture = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 1, texture)
    x = np.concatenate([[0.0], np.cumsum(speeds)])[:num_frames]
    cols = np.arange(size)
    frames = []
    for offset in x:
        pos = cols + offset
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        frames.append(texture[:, lo] * (1 - frac) + texture[:, lo + 1] * frac)
    return np.stack(frames).astype(np.float32)


def with_repeats(frames: np.ndarray, every: int, phase: int = 0, noise: float = 0.3, seed: int = 1):
    """Frames with frame j shown twice for j % every == phase (every=1: each frame twice), as a conversion to
    a higher rate does; the copy gets codec-like noise. Returns the frames and the [M] bool truth."""
    rng = np.random.default_rng(seed)
    out, truth = [], []
    for j, f in enumerate(frames):
        out.append(f)
        truth.append(False)
        if j % every == phase:
            out.append(f + rng.normal(0, noise, f.shape).astype(np.float32))
            truth.append(True)
    return np.stack(out), np.array(truth)


@pytest.mark.parametrize("every", [1, 4, 5])
def test_conversion_cadences_are_found_exactly(every):
    frames, truth = with_repeats(moving_texture(60, np.full(60, 2.0)), every, phase=2)
    found = frame_repeats.find_repeats(frames)
    np.testing.assert_array_equal(found, truth)
    kept, repeats = frame_repeats.drop_repeats(frames)
    assert len(kept) == 60 and len(repeats.repeated) == truth.sum()
    np.testing.assert_array_equal(repeats.repeated, np.flatnonzero(truth))


def test_motion_that_only_slows_or_stops_irregularly_is_not_a_repeat():
    # A stick at the top of its swing: speed falls to ~0 over several frames and rises again.
    swing = 3.0 * np.abs(np.cos(np.linspace(0, 3 * np.pi, 60))) + 0.05
    assert not frame_repeats.find_repeats(moving_texture(60, swing)).any()
    # Three one-frame stills at irregular places (a camera that stops now and then): no cadence.
    speeds = np.full(60, 2.0)
    speeds[[7, 23, 44]] = 0.0
    frames = moving_texture(60, speeds)
    assert len(frame_repeats.repeat_candidates(frames)) == 3
    assert not frame_repeats.find_repeats(frames).any()
    # A still scene: nothing moves, so nothing can be told to repeat.
    assert not frame_repeats.find_repeats(np.full((30, 16, 16), 90.0, np.float32)).any()


def test_cadence_allows_a_two_three_pattern_and_a_missed_run():
    assert frame_repeats.cadence(np.array([2, 7, 12, 17, 22])) == 5
    assert frame_repeats.cadence(np.array([1, 3, 6, 8, 11, 13, 16])) == 2  # 24 → 60 fps: gaps 2, 3, 2, 3 …
    assert frame_repeats.cadence(np.array([0, 6, 12, 24, 30, 36])) == 6  # one run hidden in a still moment
    assert frame_repeats.cadence(np.array([3, 11, 16, 33, 41])) is None
    assert frame_repeats.cadence(np.array([5, 11, 17])) is None  # too few runs


def test_mapping_back_to_native_frames():
    repeats = frame_repeats.FrameRepeats(kept=np.array([0, 1, 3, 4, 6]), num_frames=8)
    np.testing.assert_array_equal(repeats.repeated, [2, 5, 7])
    np.testing.assert_array_equal(repeats.to_native(np.array([10, 11, 13, 14, 16])), [10, 11, 11, 13, 14, 14, 16, 16])
    maps = np.arange(5 * 2 * 2).reshape(5, 2, 2)
    assert repeats.to_native(maps).shape == (8, 2, 2)
    assert [repeats.kept_position(f) for f in range(8)] == [0, 1, 1, 2, 3, 3, 4, 4]
    assert repeats.fps(30.0) == pytest.approx(30.0 * 4 / 6)  # 5 kept frames span 6 native intervals
    assert frame_repeats.no_repeats(4).fps(25.0) == 25.0
    # Nothing repeated: the arrays themselves come back, not copies (a long video's frames and maps).
    still = np.random.default_rng(0).integers(0, 255, size=(6, 8, 8, 3), dtype=np.uint8)
    frames, none = frame_repeats.drop_repeats(still)
    assert frames is still and len(none.repeated) == 0
    per_frame = np.arange(6 * 2 * 2, dtype=np.float32).reshape(6, 2, 2)
    assert none.to_native(per_frame) is per_frame


def test_frame_differences_in_chunks_are_one_pass_bit_for_bit():
    """`frame_differences` converts a chunk of frames to float at a time (a long video's float copy would be
    several GiB): the same float32 values as the whole video at once, RGB and grey, at every chunk size."""
    rng = np.random.default_rng(1)
    for frames in (rng.integers(0, 256, (40, 9, 7, 3), dtype=np.uint8), rng.random((40, 9, 7)) * 255):
        grey = frames.astype(np.float32)
        grey = grey.mean(axis=-1) if grey.ndim == 4 else grey
        whole = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
        for chunk in (1, 2, 13, 39, 40, 256):
            got = frame_repeats.frame_differences(frames, chunk_frames=chunk)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, whole)
    assert frame_repeats.frame_differences(np.zeros((1, 4, 4, 3), np.uint8)).shape == (0,)


def test_detect_drops_the_repeats_of_a_converted_video_and_reports_native_frames(tmp_path):
    from input_pipeline import video
    from ta2net_jax.detection.detect import VideoDetector

    grey, truth = with_repeats(moving_texture(50, np.full(50, 2.0), size=64), every=5, phase=1, noise=0.0)
    rgb = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    path = str(tmp_path / "converted.mp4")
    video.write_video(path, rgb, 30.0, crf=18, pix_fmt="yuv420p")
    a = VideoDetector(method="inflection", image_size=64).analyse(path)
    assert a["repeated_frames"] == np.flatnonzero(truth).tolist()
    assert len(a["scores"]) == len(rgb) and a["maps"].shape[0] == len(rgb)
    assert a["analysis_fps"] == pytest.approx(30.0 * 49 / 59)
    kept = VideoDetector(method="inflection", image_size=64, keep_repeats=True).analyse(path)
    assert kept["repeated_frames"] == [] and kept["analysis_fps"] == 30.0
    # The reference (issue 12's fixed definition) always scores every frame.
    assert VideoDetector(method="reference").analyse(path)["repeated_frames"] == []
    # eval-videos lists them per video, and --keep-repeats keeps them.
    from ta2net_jax.evaluation import videos

    for keep, expected in ((False, {"converted.mp4": a["repeated_frames"]}), (True, {})):
        result = videos.evaluate_files(
            [path],
            "3,20,40",
            str(tmp_path / f"eval_{keep}"),
            methods=("inflection",),
            progress=False,
            keep_repeats=keep,
        )
        assert result["detectors"]["inflection"]["repeated_frames"] == expected


def test_the_real_ucf101_clips():
    from input_pipeline.video import read_video

    soccer = read_video(realdata("ucf101_audible623", "v_SoccerJuggling_g23_c01.avi"), size=(64, 64)).frames
    found = np.flatnonzero(frame_repeats.find_repeats(soccer))
    assert len(found) == 39 and frame_repeats.cadence(found) == 6  # 29.97 fps of 24.98 fps content
    boxing = read_video(realdata("ucf101_audible623", "v_BoxingPunchingBag_g05_c01.avi"), size=(64, 64)).frames
    assert not frame_repeats.find_repeats(boxing).any()
