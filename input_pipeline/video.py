"""Decode video files, with one-line errors that name the file and the problem.

Frames are ``uint8`` RGB arrays of shape ``[N, H, W, 3]``, decoded at the **native frame rate** (every
frame, no temporal resampling), as the original TA²Net does. Decoding uses PyAV; OpenCV
(``cv2.VideoCapture``, FFmpeg backend) is a fallback used only when PyAV cannot open a file that OpenCV
can. Every problem is reported as :class:`VideoReadError` (``str(err) == f"{path}: {problem}"``):
missing file, directory, empty file, not a video, no video stream, truncated or corrupt, zero frames.
Frames are never silently lost: a decoding error part way, a corrupt packet, fewer packets than the
container declares, or (where no frame count is declared) packets that stop before the declared
duration all raise "truncated or corrupt".

The file diagnosis (suffixes, the error type, what the first bytes say) is in `video_files.py`, the checked
demuxing and decoding under these functions in `video_decode.py`, writing (:func:`write_video`) in
`video_writer.py`; what callers need is re-exported here, so they import from one place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import av
import numpy as np

from input_pipeline import frame_times, paths, progress
from input_pipeline.borders import BorderProfile, Borders, find_borders
from input_pipeline.video_decode import (
    DecodedVideo,
    FrameArray,
    decoded_frames,
    open_checked,
    quarter_turns,
    raise_problem,
    read_cv2,
    resize,
    scan,
    upright_rgb,
)
from input_pipeline.video_files import (
    MIN_FRAMES,
    VIDEO_SUFFIXES,
    VideoReadError,
    VideoTooShortError,
    check_frame_count,
    list_video_files,
    missing_reason,
)
from input_pipeline.video_writer import write_video

__all__ = [
    "VIDEO_SUFFIXES",
    "DecodedVideo",
    "MIN_FRAMES",
    "VideoReadError",
    "VideoTooShortError",
    "check_frame_count",
    "iter_frames",
    "list_video_files",
    "missing_reason",
    "read_video",
    "video_info",
    "write_video",
]


def from_local_copy(reader, path, **kwargs):
    """`reader(local file, **kwargs)` on this machine's copy of a `gs://` video (decoders need a file;
    paths.local_copy, cached); every VideoReadError (AudioReadError too) and `DecodedVideo.path` name `path`."""
    local = _local_copy(path)
    with _named(path):
        result = reader(local, **kwargs)
    return dataclasses.replace(result, path=path) if isinstance(result, DecodedVideo) else result


def _local_copy(url: str) -> str:
    try:
        return paths.local_copy(url)
    except IsADirectoryError:
        raise VideoReadError(url, "is a directory, not a video file") from None
    except FileNotFoundError:
        raise VideoReadError(url, missing_reason(url)) from None


@contextlib.contextmanager
def _named(url: str):
    """A VideoReadError (or subclass) raised inside names `url` instead of its local copy."""
    try:
        yield
    except VideoReadError as err:
        raise type(err)(url, err.problem) from None


def read_video(
    path, *, size: tuple[int, int] | None = None, max_frames: int | None = None, crop_borders: bool = False
) -> DecodedVideo:
    """Decodes every frame of a video file at its native frame rate.

    Args:
      path: video file (any container/codec FFmpeg reads: mp4, avi, mkv, webm, ...), or a `gs://` URL (read
        from this machine's cached copy: `from_local_copy`).
      size: optional ``(height, width)``; each frame is resized straight to it with ``cv2.INTER_AREA``
        (aspect ratio not kept).
      max_frames: stop after this many frames (the rest of the file is then not checked).
      crop_borders: crop static black borders (letterbox, pillarbox; input_pipeline/borders.py) before the
        resize; the file is then decoded twice (once for the borders), never held at full size.

    Returns:
      DecodedVideo with ``frames`` ``[N, H, W, 3]`` uint8 RGB, ``fps`` (frames per second; the average rate
      for a variable-rate file), ``source_size`` ``(height, width)`` before any crop or resize, the ``borders``
      cropped, and ``times_s`` (``[N]`` presentation times in seconds when the rate varies, else None).

    Raises:
      VideoReadError: one line naming the file and the problem (see the module docstring).
      ValueError: for invalid ``size`` / ``max_frames``.
    """
    if size is not None and (len(size) != 2 or min(int(size[0]), int(size[1])) < 1):
        raise ValueError(f"size must be (height, width) with positive ints, got {size!r}")
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames!r}")
    size = None if size is None else (int(size[0]), int(size[1]))
    path = os.fspath(path)
    if paths.is_remote(path):
        return from_local_copy(read_video, path, size=size, max_frames=max_frames, crop_borders=crop_borders)
    container, stream, fps = open_checked(path)
    if container is None:  # PyAV could not parse a file that looks like a video container
        if not crop_borders:
            return read_cv2(path, size, max_frames) or raise_problem(path, stream)  # `stream` holds the problem
        video = read_cv2(path, None, max_frames) or raise_problem(path, stream)
        borders = find_borders(video.frames)
        frames = [resize(frame, size) for frame in borders.crop(video.frames)]
        return dataclasses.replace(video, frames=np.stack(frames), borders=borders)
    borders = Borders()
    name = os.path.basename(path)
    if crop_borders:  # a first pass for the borders alone
        profile = BorderProfile()
        try:
            with _frame_bar(stream, max_frames, f"borders of {name}") as bar:

                def add(frame):
                    profile.add(upright_rgb(frame))
                    bar.update()

                scan(path, container, stream, decode=True, max_frames=max_frames, on_frame=add)
        finally:
            container.close()
        borders = profile.borders()
        container, stream, fps = open_checked(path)
    capacity = _expected_frames(stream, max_frames) or 256  # grown past it if the header is short
    frames = FrameArray(min(capacity, max_frames) if max_frames else capacity)
    source_sizes: dict[tuple[int, int], None] = {}  # insertion-ordered: the first frame's size comes first
    stamps_s: list[float | None] = []

    try:
        with _frame_bar(stream, max_frames, f"decode {name}") as bar:

            def on_frame(frame):
                rgb = upright_rgb(frame)
                source_sizes.setdefault(rgb.shape[:2])
                frames.append(resize(borders.crop(rgb), size))
                bar.update()

            scan(path, container, stream, decode=True, on_frame=on_frame, max_frames=max_frames, stamps_s=stamps_s)
    finally:
        container.close()
    if len(source_sizes) > 1 and size is None:
        raise VideoReadError(
            path, f"frame size changes within the video ({list(source_sizes)}); pass size=(H, W) to resize every frame"
        )
    size_0 = tuple(int(s) for s in next(iter(source_sizes)))
    return DecodedVideo(frames.array(), fps, size_0, path, borders, frame_times.presentation_times(stamps_s, fps))


def iter_frames(path, *, size: tuple[int, int] | None = None):
    """The frames of a video file one at a time, ``[H, W, 3]`` uint8 RGB (resized to ``size`` = (height,
    width) as `read_video` resizes), never all in memory: for a second pass over a long video (`ta2net detect`'s
    overlay). Raises VideoReadError as `read_video` does, when the problem is met (frames before it are
    yielded). Borders are not cropped."""
    path = os.fspath(path)
    if paths.is_remote(path):
        local = _local_copy(path)
        with _named(path):
            yield from iter_frames(local, size=size)
        return
    container, stream, _ = open_checked(path)
    if container is None:  # only OpenCV reads it: decoded whole, as read_video does
        video = read_cv2(path, size, None) or raise_problem(path, stream)
        yield from video.frames
        return
    try:
        for frame in decoded_frames(path, container, stream, decode=True):
            yield resize(upright_rgb(frame), size)
    finally:
        container.close()


def _expected_frames(stream, max_frames: int | None) -> int | None:
    """The header's frame count, at most `max_frames`; None when the header has none."""
    total = int(stream.frames or 0) or None
    return min(total, int(max_frames)) if max_frames is not None and total is not None else total


def _frame_bar(stream, max_frames: int | None, desc: str):
    """A stage bar over a video's frames (progress.py), its total the header's frame count when it has one."""
    return progress.bar(_expected_frames(stream, max_frames), desc)


def video_info(path, *, decode: bool = False) -> dict:
    """Reads a video's header and checks its packets, without converting frames.

    Args:
      path: video file.
      decode: count frames by decoding them (slower) instead of trusting the header's frame count.

    Returns:
      dict with ``fps`` (float; the average rate for a variable-rate file), ``num_frames`` (int),
      ``num_frames_source`` ("header", "packets" or "decoded"), ``size`` ``(height, width)``, ``duration_s``
      (float or None), ``codec``, ``container``, ``times_s`` (``[N]`` presentation times in seconds when the
      rate varies, else None: input_pipeline/frame_times.py; from the packets' timestamps unless ``decode``).

    Raises:
      VideoReadError: the same errors as :func:`read_video` (a truncation is found from packets alone).
    """
    path = os.fspath(path)
    if paths.is_remote(path):
        return from_local_copy(video_info, path, decode=decode)
    container, stream, fps = open_checked(path)
    if container is None:
        video = read_cv2(path, None, None) or raise_problem(path, stream)
        return {
            "fps": video.fps,
            "num_frames": len(video.frames),
            "num_frames_source": "decoded",
            "size": video.source_size,
            "duration_s": len(video.frames) / video.fps,
            "codec": None,
            "container": "opencv",
            "times_s": None,
        }
    try:
        declared = int(stream.frames or 0)
        stamps_s: list[float | None] = []
        counted = scan(path, container, stream, decode=decode, stamps_s=stamps_s)
        source = "decoded" if decode else ("header" if declared else "packets")
        return {
            "fps": fps,
            "num_frames": declared if source == "header" else counted,
            "num_frames_source": source,
            "size": _upright_size(path, (int(stream.codec_context.height), int(stream.codec_context.width))),
            "duration_s": container.duration / av.time_base if container.duration else None,
            "codec": stream.codec_context.name,
            "container": container.format.name,
            "times_s": frame_times.presentation_times(stamps_s, fps),
        }
    finally:
        container.close()


def _upright_size(path: str, size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (height, width) as the frames are shown (`upright_rgb`): swapped when the first frame's display
    matrix turns the picture a quarter turn. Only that frame is decoded; a file whose first frame does not
    decode keeps the stored size (read_video names the problem)."""
    try:
        with contextlib.closing(av.open(path)) as container:
            frame = next(container.decode(video=0), None)
    except av.error.FFmpegError:
        return size
    return (size[1], size[0]) if frame is not None and quarter_turns(frame) % 2 else size
