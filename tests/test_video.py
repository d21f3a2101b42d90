"""Tests for input_pipeline.video: round trips, resizing, every bad-input error, and the real clips."""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from input_pipeline.video import DecodedVideo, VideoReadError, iter_frames, read_video, video_info, write_video

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def _frames(n=12, h=48, w=64, seed=0):
    """A smooth random texture sliding right by 1 px per frame: [n, h, w, 3] uint8."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur((rng.random((h, w + n, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    return np.stack([tex[:, n - k : n - k + w] for k in range(n)])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = _frames()
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, frames, 25.0)
    return path, frames


def _assert_error(path, *words):
    with pytest.raises(VideoReadError) as info:
        read_video(path)
    err = info.value
    msg = str(err)
    assert msg.startswith(f"{path}: "), msg
    assert "\n" not in msg, msg
    assert err.path == str(path) and msg == f"{err.path}: {err.problem}"
    for word in words:
        assert word in msg, msg
    return msg


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip(clip):
    path, frames = clip
    video = read_video(path)
    assert isinstance(video, DecodedVideo)
    assert video.frames.shape == frames.shape and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(25.0)
    assert video.source_size == (48, 64)
    assert video.path == str(path)
    err = np.abs(video.frames.astype(int) - frames)
    assert err.mean() < 1.0 and err.max() <= 4  # CRF 0, 4:4:4: only colour-conversion rounding


def test_round_trip_odd_size_and_ntsc_rate(tmp_path):
    frames = _frames(n=7, h=33, w=47)
    path = tmp_path / "odd.mp4"
    write_video(path, frames, 30000 / 1001, pix_fmt="yuv420p")  # odd size: falls back to 4:4:4
    video = read_video(path)
    assert video.frames.shape == frames.shape
    assert video.fps == pytest.approx(30000 / 1001, rel=1e-9)
    assert np.abs(video.frames.astype(int) - frames).max() <= 4
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_yuv420p_and_other_containers(tmp_path):
    frames = _frames(n=6)
    for name in ("c420.mp4", "c.mkv", "c.avi"):
        write_video(tmp_path / name, frames, 12.5, pix_fmt="yuv420p" if name == "c420.mp4" else "yuv444p")
        video = read_video(tmp_path / name)
        assert video.frames.shape == frames.shape and video.fps == pytest.approx(12.5)
        assert np.abs(video.frames.astype(int) - frames).mean() < 6


def test_resize_and_max_frames(clip):
    path, _ = clip
    full = read_video(path).frames
    small = read_video(path, size=(24, 40), max_frames=5)
    assert small.frames.shape == (5, 24, 40, 3)
    assert small.source_size == (48, 64)
    expected = np.stack([cv2.resize(f, (40, 24), interpolation=cv2.INTER_AREA) for f in full[:5]])
    np.testing.assert_array_equal(small.frames, expected)
    with pytest.raises(ValueError):
        read_video(path, size=(0, 10))


def test_video_info(clip):
    path, frames = clip
    info = video_info(path)
    assert info["num_frames"] == len(frames) and info["num_frames_source"] == "header"
    assert info["fps"] == pytest.approx(25.0) and info["size"] == (48, 64) and info["codec"] == "h264"
    assert video_info(path, decode=True)["num_frames"] == len(frames)


def _turn_in_player(path, matrix):
    """Writes ``matrix`` (the 3×3 display matrix, 16.16 / 2.30 fixed point) into the mp4's track header, as a
    phone does for a video shot upright and stored sideways."""
    data = bytearray(Path(path).read_bytes())
    box = data.find(b"tkhd")
    offset = box - 4 + (60 if data[box + 4] == 1 else 48)  # the matrix after the version-dependent fields
    data[offset : offset + 36] = struct.pack(">9i", *matrix)
    Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize(
    "matrix, top_row_white",
    [
        ((0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30), True),  # "rotate 90": shown turned clockwise
        ((0, -(1 << 16), 0, 1 << 16, 0, 0, 0, 0, 1 << 30), False),  # "rotate 270": counter-clockwise
    ],
)
def test_rotated_video_is_read_upright(tmp_path, matrix, top_row_white):
    frames = np.zeros((8, 32, 64, 3), np.uint8)
    frames[:, :, :8] = 255  # stored 64 wide, 32 high, a white stripe at the left
    path = str(tmp_path / "phone.mp4")
    write_video(path, frames, 25.0)
    _turn_in_player(path, matrix)

    video = read_video(path)
    assert video.frames.shape == (8, 64, 32, 3) and video.source_size == (64, 32)
    # clockwise, the left edge goes to the top; counter-clockwise, to the bottom
    assert (video.frames[0, :4, :, 0].mean() > 200) == top_row_white
    assert (video.frames[0, -4:, :, 0].mean() > 200) == (not top_row_white)
    assert video.frames[0, :, :4, 0].mean() < 200  # no longer a stripe at the left
    np.testing.assert_array_equal(np.stack(list(iter_frames(path))), video.frames)
    assert video_info(path)["size"] == (64, 32)
    # OpenCV (the fallback reader) turns it the same way
    ok, bgr = cv2.VideoCapture(path).read()
    assert ok and bgr.shape[:2] == (64, 32)
    np.testing.assert_allclose(bgr[..., ::-1].astype(float), video.frames[0].astype(float), atol=8)


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32), 25)
    with pytest.raises(ValueError, match="non-empty"):
        write_video(tmp_path / "x.mp4", np.zeros((0, 8, 8, 3), np.uint8), 25)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.uint8), 0)
    assert not (tmp_path / "x.mp4").exists()


# ---------------------------------------------------------------------------------------------- bad input


def test_missing_directory_empty(tmp_path):
    _assert_error(tmp_path / "nope.mp4", "no such file")
    _assert_error(tmp_path, "directory")
    (tmp_path / "empty.mp4").write_bytes(b"")
    _assert_error(tmp_path / "empty.mp4", "empty file")


def test_text_file(tmp_path):
    for name in ("notes.txt", "notes.mp4"):  # FFmpeg's tty demuxer would render a .txt as a "video"
        (tmp_path / name).write_text("just some text\n" * 40)
        _assert_error(tmp_path / name, "not a video file", "text")


def test_image_renamed_mp4(tmp_path):
    img = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    ok, png = cv2.imencode(".png", img)
    assert ok
    (tmp_path / "image.mp4").write_bytes(png.tobytes())
    _assert_error(tmp_path / "image.mp4", "not a video file", "PNG")


def test_audio_only(tmp_path):
    with wave.open(str(tmp_path / "sound.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.zeros(800, np.int16).tobytes())
    os.replace(tmp_path / "sound.wav", tmp_path / "sound.mp4")
    _assert_error(tmp_path / "sound.mp4", "no video stream")


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 200])
def test_truncated_mp4(clip, tmp_path, keep):
    path, frames = clip
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    msg = _assert_error(cut, "truncated or corrupt")
    assert " 0 frames" in msg or "frames decoded" in msg, msg
    with pytest.raises(VideoReadError, match="truncated or corrupt"):
        video_info(cut)


def test_truncated_mp4_reports_frames_decoded(clip, tmp_path):
    path, frames = clip
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])  # +faststart: the index survives, the tail does not
    msg = _assert_error(cut, "truncated or corrupt", f"declares {len(frames)} frames")
    assert "frames decoded before the error" in msg


def test_truncated_mkv_without_frame_count(tmp_path):
    path = tmp_path / "c.mkv"
    write_video(path, _frames(n=30), 25)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    _assert_error(cut, "truncated or corrupt")


def test_zero_frames(tmp_path):
    path = tmp_path / "zero.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    _assert_error(path, "no decodable frames")


def test_errors_are_silent(tmp_path, capfd):
    """FFmpeg and OpenCV must not print to stderr: the one-line error is the whole story."""
    (tmp_path / "junk.mp4").write_bytes(os.urandom(3000))
    (tmp_path / "noidx.mp4").write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(3000))
    for name in ("junk.mp4", "noidx.mp4"):
        with pytest.raises(VideoReadError):
            read_video(tmp_path / name)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


# ---------------------------------------------------------------------------------------------- real clips


@pytest.mark.parametrize(
    "rel, n, fps, size",
    [
        ("greatest_hits_condfoleygen/hitting_bag.mp4", 90, 15.0, (340, 604)),
        ("ucf101_audible623/v_BoxingPunchingBag_g05_c01.avi", 296, 25.0, (240, 320)),
    ],
)
def test_real_clips(rel, n, fps, size):
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(f"real clip {path} is absent (shared/realdata not mounted next to the repository)")
    video = read_video(path, size=(112, 112))
    assert video.frames.shape == (n, 112, 112, 3)
    assert video.fps == pytest.approx(fps) and video.source_size == size
    info = video_info(path)
    assert (info["num_frames"], info["size"]) == (n, size) and info["fps"] == pytest.approx(fps)
