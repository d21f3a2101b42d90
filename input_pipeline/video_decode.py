"""PyAV demuxing and decoding with the checks that no frame is lost, and OpenCV as a fallback: the machinery
under `video.py` (`read_video`, `iter_frames`, `video_info`), which is where callers import from.

Every problem is a VideoReadError naming the file: a decoding error part way, a corrupt packet, fewer
packets than the container declares, or (where no frame count is declared) packets that stop before the
declared duration all raise "truncated or corrupt".
"""

from __future__ import annotations

import dataclasses
import math
import os

import av
import av.logging
import cv2
import numpy as np

from input_pipeline.borders import Borders
from input_pipeline.video_files import VideoReadError, check_file, damage, sniff

# FFmpeg inside PyAV must not write to stderr (messages like "moov atom not found" would otherwise be
# printed above our one-line error); OpenCV's bundled FFmpeg reads this variable on first use.
av.logging.set_level(None)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# Demuxers that FFmpeg will happily open but that are not videos (still images, text rendered as ANSI art).
_NOT_VIDEO_FORMATS = {"image2", "tty", "bin", "xbin", "adf", "idf", "lavfi"}


@dataclasses.dataclass
class DecodedVideo:
    """A decoded video.

    frames: ``[N, H, W, 3]`` uint8 RGB (after the optional border crop and resize).
    fps: native frame rate in frames per second.
    source_size: ``(height, width)`` in pixels before any crop or resize.
    path: the file that was read.
    borders: the black borders cropped before the resize (none unless read with ``crop_borders``).
    times_s: ``[N]`` seconds at which each frame is shown, for a variable-frame-rate file; None when frame
      ``k`` is shown at ``k / fps`` (input_pipeline/frame_times.py).
    """

    frames: np.ndarray
    fps: float
    source_size: tuple[int, int]
    path: str
    borders: Borders = Borders()
    times_s: np.ndarray | None = None


def _ffmpeg_reason(err: BaseException) -> str:
    """The FFmpeg message without PyAV's errno and file-name decorations."""
    msg = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(str(msg).split())


def _open(path: str):
    """Opens ``path`` with PyAV: ``(container, video_stream)``, or ``(None, problem)`` when PyAV cannot parse
    bytes that look like a video container (the caller then tries OpenCV before raising ``problem``).
    Raises VideoReadError for everything else."""
    try:
        container = av.open(path)
    except Exception as err:  # noqa: BLE001 - PyAV raises FFmpegError, but also AttributeError on broken moov
        kind, is_video = sniff(path)
        if is_video:
            note = damage(path, _ffmpeg_reason(err))
            return None, f"truncated or corrupt: cannot parse the {kind} container ({note}); 0 frames decoded"
        raise VideoReadError(path, f"not a video file ({kind})") from None
    fmt = container.format.name
    if fmt in _NOT_VIDEO_FORMATS or fmt.endswith("_pipe"):
        container.close()
        kind, _ = sniff(path)
        raise VideoReadError(path, f"not a video file ({kind if kind != 'unrecognised data' else fmt})")
    if not container.streams.video:
        audio = len(container.streams.audio)
        container.close()
        if sniff(path)[1] and not audio:  # a video container without any parsable stream: cut or damaged
            raise VideoReadError(
                path, f"truncated or corrupt: {damage(path, 'no stream could be parsed')}; 0 frames decoded"
            )
        what = f"{fmt} container with {audio} audio stream(s)" if audio else f"{fmt} container"
        raise VideoReadError(path, f"no video stream ({what}); not a video file")
    # Cover art in MP4/MKV is a one-picture "video" stream: prefer a real one.
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    stream = (moving or container.streams.video)[0]
    if stream.codec_context is None or stream.codec_context.name is None:
        container.close()
        raise VideoReadError(
            path, f"truncated or corrupt: {damage(path, 'the video stream has no codec')}; 0 frames decoded"
        )
    return container, stream


def frame_rate(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0 and math.isfinite(float(rate)):
            return float(rate)
    return None


def quarter_turns(frame) -> int:
    """How many quarter turns counter-clockwise (0–3) the display matrix of a decoded PyAV frame asks for:
    ``frame.rotation`` is the angle in degrees it turns the picture counter-clockwise, as np.rot90 turns for
    positive k (phone videos shot upright are stored sideways with a 90° or −90° matrix)."""
    return int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4


def upright_rgb(frame) -> np.ndarray:
    """A decoded PyAV frame as ``[H, W, 3]`` uint8 RGB the way players show it, turned by its display matrix
    (`quarter_turns`; FFmpeg's players and OpenCV turn it, so the fallback reader already does)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    # Straight to (H, W): the aspect ratio is not kept, as in the original TA²Net (no crop).
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def scan(
    path: str,
    container,
    stream,
    *,
    decode: bool,
    on_frame=None,
    max_frames: int | None = None,
    stamps_s: list | None = None,
) -> int:
    """`decoded_frames`, each decoded frame passed to ``on_frame``; returns the frames decoded (packets counted
    with ``decode=False``)."""
    frames = decoded_frames(path, container, stream, decode=decode, max_frames=max_frames, stamps_s=stamps_s)
    while True:
        try:
            frame = next(frames)
        except StopIteration as done:
            return done.value
        if on_frame is not None:
            on_frame(frame)


def decoded_frames(
    path: str, container, stream, *, decode: bool, max_frames: int | None = None, stamps_s: list | None = None
):
    """Demuxes every packet (all streams) and yields the video stream's decoded frames (av.VideoFrame); its
    return value is the number of frames decoded. ``stamps_s``, when given, gets each frame's presentation time
    in seconds (None where the file has none): the decoded frames' in order, or with ``decode=False`` the
    video packets' in file order (input_pipeline/frame_times.py sorts them).

    Raises "truncated or corrupt" when decoding or demuxing fails, a packet is flagged corrupt, fewer
    packets are present than the header declares, or (no declared count) the packets of all streams end
    before the declared duration. With ``decode=False`` only packets are checked and counted.
    """
    if decode:
        stream.thread_type = "AUTO"  # frame threads: faster, same frames in the same order
    declared = int(stream.frames or 0)
    fps = frame_rate(stream) or 25.0
    start = (container.start_time or 0) / av.time_base
    n_packets = n_frames = n_corrupt = 0
    end_time = 0.0

    def fail(what: str):
        done = f"{n_frames} frames decoded" if decode else f"{n_packets} frames present"
        raise VideoReadError(path, f"truncated or corrupt: {what}; {done} before the error")

    try:
        for packet in container.demux():
            if packet.size and packet.pts is not None and packet.time_base is not None:
                t = float((packet.pts + (packet.duration or 0)) * packet.time_base) - start
                if packet.stream.index == stream.index and not packet.duration:
                    t += 1.0 / fps
                end_time = max(end_time, t)
            if packet.stream.index != stream.index:
                continue
            if packet.size:
                n_packets += 1
                n_corrupt += bool(packet.is_corrupt)
                if stamps_s is not None and not decode:
                    stamps_s.append(None if packet.pts is None else float(packet.pts * packet.time_base))
            if not decode:
                continue
            for frame in packet.decode():
                n_frames += 1
                if stamps_s is not None:
                    stamps_s.append(frame.time)
                yield frame
                if max_frames is not None and n_frames >= max_frames:
                    return n_frames  # stopped on purpose: the rest of the file is not checked
    except VideoReadError:
        raise
    except av.error.DecoderNotFoundError:
        raise VideoReadError(path, f"unsupported video codec {stream.codec_context.name!r}") from None
    except Exception as err:  # noqa: BLE001 - any FFmpeg failure part way means lost frames
        fail(f"{'decoding' if decode else 'demuxing'} failed ({_ffmpeg_reason(err)})")
    if declared and n_packets < declared:
        fail(f"the container declares {declared} frames but only {n_packets} are present")
    if n_corrupt:
        fail(f"{n_corrupt} corrupt packet(s) (the file ends inside a frame or is damaged)")
    duration = container.duration / av.time_base if container.duration else None
    if not declared and duration and end_time < duration - 1.5 / fps:
        fail(f"packets end at {end_time:.2f} s but the container declares {duration:.2f} s")
    if n_packets == 0 or (decode and n_frames == 0):
        c = stream.codec_context
        raise VideoReadError(
            path, f"no decodable frames (video stream {c.name} {c.width}x{c.height} has {n_packets} packets)"
        )
    return n_frames if decode else n_packets


class FrameArray:
    """Decoded frames of one shape written into one preallocated ``[capacity, H, W, 3]`` array, grown by half
    whenever it is full: a long video is held once, not as a list of frames stacked (copied) at the end.

    ``capacity``: the frames expected (the header's count when it has one), preallocated up to
    ``max_prealloc_bytes`` (a header can claim any count; past that the array grows as frames come). A frame
    of another shape than the first is not kept (`read_video` reports a size change after the scan);
    ``mismatched`` counts them.
    """

    def __init__(self, capacity: int, max_prealloc_bytes: int = 2 << 30):
        self.capacity, self.count, self.mismatched = max(int(capacity), 1), 0, 0
        self.max_prealloc_bytes = int(max_prealloc_bytes)
        self._data: np.ndarray | None = None

    def append(self, frame: np.ndarray) -> None:
        if self._data is None:
            capacity = min(self.capacity, max(1, self.max_prealloc_bytes // max(frame.nbytes, 1)))
            self._data = np.empty((capacity, *frame.shape), frame.dtype)
        elif frame.shape != self._data.shape[1:]:
            self.mismatched += 1
            return
        elif self.count == len(self._data):
            grown = np.empty((len(self._data) + len(self._data) // 2 + 1, *frame.shape), frame.dtype)
            grown[: self.count] = self._data
            self._data = grown
        self._data[self.count] = frame
        self.count += 1

    def array(self) -> np.ndarray:
        """``[count, H, W, 3]``: a view when most of the capacity is used, else a copy that frees the rest."""
        if self._data is None:
            raise ValueError("no frames")
        kept = self._data[: self.count]
        return kept if self.count * 10 >= len(self._data) * 9 else kept.copy()


def read_cv2(path: str, size, max_frames) -> DecodedVideo | None:
    """Reads with OpenCV's FFmpeg backend; ``None`` if OpenCV cannot open it either."""
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        declared = int(max(cap.get(cv2.CAP_PROP_FRAME_COUNT), 0))
        frames, source_size = [], None
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            source_size = bgr.shape[:2]
            frames.append(resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
        cap.release()
    finally:
        cv2.utils.logging.setLogLevel(old)
    if not frames:
        return None
    # OpenCV's count is estimated from duration x fps when the header has none, so allow one frame.
    if max_frames is None and declared and len(frames) < declared - 1:
        raise VideoReadError(path, f"truncated or corrupt: OpenCV decoded {len(frames)} of {declared} declared frames")
    if not (fps > 0 and math.isfinite(fps)):
        raise VideoReadError(path, "no frame rate in the file")
    return DecodedVideo(np.stack(frames), fps, tuple(int(s) for s in source_size), path)


def open_checked(path: str):
    """``(container, stream, fps)``, or ``(None, problem, None)`` if only OpenCV may still read the file."""
    check_file(path)
    container, stream = _open(path)
    if container is not None and frame_rate(stream) is None:
        container.close()
        raise VideoReadError(path, "no frame rate in the file")
    return container, stream, container and frame_rate(stream)


def raise_problem(path: str, problem: str):
    raise VideoReadError(path, problem)
