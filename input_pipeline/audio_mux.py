"""Put a mono soundtrack next to a video stream: remux the video packets (no re-encode) and encode the audio.

:func:`mux_audio` copies the compressed video packets of the first video stream into the output container
unchanged, so every decoded frame is bit-identical, and encodes the given samples with the container's audio
codec (:data:`AUDIO_CODECS`). When the output container cannot hold the input's video codec (e.g. H.264 into
WebM), the video is decoded and re-encoded (:data:`REENCODE_CODECS`) and the result says so. Audio sample 0
is placed at the first video frame's presentation time; the track is cut or zero-padded to the video's length.
Files are written to a temporary name in the same folder and renamed (never half-written).
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np

from input_pipeline import paths

av.logging.set_level(None)

__all__ = ["AUDIO_CODECS", "REENCODE_CODECS", "MuxError", "MuxResult", "audio_codec_for", "mux_audio"]

# Per output suffix: AAC where players expect it (MP4/MOV; FFmpeg's encoder writes the priming delay into
# the edit list, so decoded audio starts on time), lossless PCM where the container takes it.
AUDIO_CODECS = {
    ".mp4": "aac",
    ".m4v": "aac",
    ".mov": "aac",
    ".mkv": "pcm_s16le",
    ".avi": "pcm_s16le",
    ".webm": "libopus",
}
# (codec, pix_fmt, options) used when the input's video codec cannot go into the output container.
REENCODE_CODECS = {
    ".webm": ("libvpx-vp9", "yuv420p", {"crf": "20", "b": "0"}),
    ".avi": ("mpeg4", "yuv420p", {"qscale": "1"}),
}
_DEFAULT_REENCODE = ("libx264", "yuv444p", {"crf": "0", "preset": "medium"})  # lossless in YUV
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


class MuxError(ValueError):
    """Muxing failed; ``str(err) == f"{path}: {problem}"``."""

    def __init__(self, path, problem: str):
        self.path, self.problem = os.fspath(path), problem
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass
class MuxResult:
    """``video_remuxed``: True when the video packets were copied, False when re-encoded (``note`` says why);
    ``num_video_frames``: video packets/frames written; ``audio_codec``; ``sample_rate`` (Hz) of the track."""

    path: str
    video_remuxed: bool
    video_codec: str
    audio_codec: str
    sample_rate: int
    num_video_frames: int
    note: str = ""


def audio_codec_for(path) -> str:
    """The audio codec :func:`mux_audio` uses for an output file name (by suffix; AAC if unknown)."""
    return AUDIO_CODECS.get(Path(path).suffix.lower(), "aac")


def _frame_format(codec_context) -> str:
    return codec_context.format.name


def _encode_audio(out, stream, samples: np.ndarray, sample_rate: int, start_pts: int) -> None:
    fmt = _frame_format(stream.codec_context)
    size = stream.codec_context.frame_size or 1024
    clipped = np.clip(samples, -1.0, 1.0)
    for begin in range(0, clipped.size, size):
        chunk = clipped[begin : begin + size][None]
        if fmt.startswith("s16"):
            chunk = np.round(chunk * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            chunk = np.round(chunk * 2147483647.0).astype(np.int32)
        else:
            chunk = chunk.astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout="mono")
        frame.sample_rate, frame.pts = sample_rate, start_pts + begin
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def _video_timing(path: str) -> tuple[float, float, int]:
    """``(start_s, duration_s, num_frames)`` of the first video stream, from its packets."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        first, n = None, 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            n += 1
            if packet.pts is not None:
                t = float(packet.pts * packet.time_base)
                first = t if first is None else min(first, t)
    if not n or not rate:
        raise MuxError(path, "no video frames or no frame rate")
    return first or 0.0, n / float(rate), n


def _write(src: str, tmp: str, samples: np.ndarray, sample_rate: int, audio_codec: str, reencode) -> tuple[str, int]:
    """Writes ``tmp``; ``reencode`` None copies the video packets, else ``(codec, pix_fmt, options)``."""
    start_s, duration_s, _ = _video_timing(src)
    n_samples = round(duration_s * sample_rate)
    track = np.zeros(n_samples, np.float32)
    track[: min(n_samples, samples.size)] = samples[:n_samples]
    written = 0
    options = {"movflags": "+faststart"} if Path(tmp).suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with av.open(src) as inp, av.open(tmp, "w", options=options) as out:
        vin = inp.streams.video[0]
        if reencode is None:
            vout = out.add_stream_from_template(vin)  # ValueError when the container cannot hold the codec
        else:
            codec, pix_fmt, opts = reencode
            vout = out.add_stream(codec, rate=vin.average_rate or vin.guessed_rate)
            vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, pix_fmt
            vout.options = dict(opts)
        aout = out.add_stream(audio_codec, rate=sample_rate, layout="mono")
        if reencode is None:
            for packet in inp.demux(vin):
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
                packet.stream = vout
                out.mux(packet)
                written += 1
        else:
            for frame in inp.decode(vin):
                frame.pts, frame.time_base = written, Fraction(1) / vout.codec_context.framerate
                for packet in vout.encode(frame.reformat(format=pix_fmt)):
                    out.mux(packet)
                written += 1
            for packet in vout.encode(None):
                out.mux(packet)
        _encode_audio(out, aout, track, sample_rate, round(start_s * sample_rate) if reencode is None else 0)
        name = vout.codec_context.name
    return name, written


def mux_audio(
    video_path,
    samples: np.ndarray,
    sample_rate: int,
    out_path,
    *,
    audio_codec: str | None = None,
    force_reencode: bool = False,
) -> MuxResult:
    """Writes ``out_path``: the video of ``video_path`` plus ``samples`` as its only audio track.

    Args:
      video_path: source video (its own audio, if any, is dropped); a file or a `gs://` URL.
      samples: [S] float mono in [-1, 1] at ``sample_rate`` Hz; sample 0 plays with the first video frame.
      out_path: output file or `gs://` URL; the container follows the suffix (.mp4, .mov, .mkv, .avi, .webm, ...).
      audio_codec: overrides :func:`audio_codec_for`.
      force_reencode: re-encode the video even when it could be remuxed.

    Raises:
      MuxError: the source has no video stream, or neither remuxing nor re-encoding works.
    """
    if paths.is_remote(out_path):  # written here, uploaded in one object write when complete
        dst = os.fspath(out_path)
        with paths.written_locally(dst) as local:
            try:
                result = mux_audio(
                    video_path, samples, sample_rate, local, audio_codec=audio_codec, force_reencode=force_reencode
                )
            except MuxError as err:
                raise MuxError(dst if err.path == local else err.path, err.problem) from None
        return dataclasses.replace(result, path=dst)
    src, out_path = os.fspath(video_path), Path(out_path)
    local_src = paths.local_copy(src)  # PyAV reads files: a gs:// source from this machine's cached copy
    samples = np.asarray(samples, np.float32).reshape(-1)
    codec = audio_codec or audio_codec_for(out_path)
    if codec == "libopus" and sample_rate not in _OPUS_RATES:
        raise MuxError(out_path, f"Opus needs a sample rate in {_OPUS_RATES}, got {sample_rate}")
    with av.open(local_src) as probe:
        if not probe.streams.video:
            raise MuxError(src, "no video stream to put the sound on")
    tmp = str(out_path.with_name(f".{out_path.stem}.partial-{os.getpid()}{out_path.suffix}"))
    note = ""
    try:
        if not force_reencode:
            try:
                name, n = _write(local_src, tmp, samples, sample_rate, codec, None)
                os.replace(tmp, out_path)
                return MuxResult(str(out_path), True, name, codec, sample_rate, n)
            except (ValueError, av.error.FFmpegError) as err:
                note = (
                    f"video re-encoded: the {out_path.suffix or 'output'} container cannot take the source's "
                    f"video stream as is ({' '.join(str(err).split())})"
                )
        else:
            note = "video re-encoded on request"
        reencode = REENCODE_CODECS.get(out_path.suffix.lower(), _DEFAULT_REENCODE)
        try:
            name, n = _write(local_src, tmp, samples, sample_rate, codec, reencode)
        except (ValueError, av.error.FFmpegError) as err:
            raise MuxError(
                out_path, f"cannot write {reencode[0]} video with {codec} audio here ({' '.join(str(err).split())})"
            ) from None
        os.replace(tmp, out_path)
        return MuxResult(str(out_path), False, name, codec, sample_rate, n, note)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
