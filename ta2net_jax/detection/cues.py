"""Cue lists of detected events for editors and players: SRT subtitles, CSV, and a CMX3600-style EDL.

Every writer takes 0-based event frames at the video's native rate and the rate itself; frame ``k`` starts
at ``k / fps`` seconds. SRT and CSV also take the events' own times (``times_s``, as ``ta2net detect`` reports
them: a variable-rate video's frame timestamps, input_pipeline/frame_times.py) and then use those; the EDL
counts frames, as timecode does. Readers return what the writers wrote, so a cue file parses back to the same
frames.

* SRT: one subtitle per event from ``frame / fps`` lasting ``duration_s``, text ``impact (frame k, score s)``;
  times to the millisecond, which maps back to the frame exactly for any rate below 1,000 fps.
* CSV: ``index,frame,time_s,timecode,score``.
* EDL: one audio ("A") cut per event, the impact clip's source in/out and the record in/out on the video's
  timeline, in SMPTE timecode ``HH:MM:SS:FF``. Timecode counts frames at the nominal integer rate
  ``round(fps)``; 29.97 and 59.94 fps use drop-frame (``HH:MM:SS;FF``, frame labels 0 and 1 (0-3 at 59.94)
  skipped each minute except every tenth), which keeps the timecode on the clock. Other fractional rates
  (23.976) are frame-exact but run 0.1 % slow against the clock, as in every editor.

All files are written to a temporary name in the same folder and renamed (never half-written).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence

import numpy as np

from input_pipeline import paths

__all__ = [
    "frames_to_timecode",
    "read_cue_csv",
    "read_edl",
    "read_srt",
    "timecode_to_frames",
    "write_cue_csv",
    "write_edl",
    "write_srt",
]

_SRT_TIME = re.compile(r"(\d+):(\d\d):(\d\d),(\d\d\d)")
_TIMECODE = re.compile(r"^(\d\d):(\d\d):(\d\d)([:;])(\d\d)$")


def _atomic_write(path, text: str) -> None:
    """One atomic write of `text` (UTF-8, newlines as given) to a file or a `gs://` URL (input_pipeline.paths)."""
    paths.write_text(os.fspath(path), text)


def _drop_frame(fps: float) -> int:
    """Frame labels dropped per minute: 2 at 29.97, 4 at 59.94, else 0 (non-drop)."""
    for nominal, drop in ((30, 2), (60, 4)):
        if abs(fps - nominal * 1000 / 1001) < 1e-3:
            return drop
    return 0


def _nominal(fps: float) -> int:
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return max(1, round(fps))


def frames_to_timecode(frame: int, fps: float) -> str:
    """SMPTE timecode of a 0-based frame index: ``HH:MM:SS:FF`` (``;`` before FF for drop-frame)."""
    frame, nominal, drop = int(frame), _nominal(fps), _drop_frame(fps)
    if frame < 0:
        raise ValueError(f"frame must be >= 0, got {frame}")
    if drop:
        per_10min = nominal * 600 - drop * 9
        per_min = nominal * 60 - drop
        tens, rest = divmod(frame, per_10min)
        frame += drop * 9 * tens + (drop * ((rest - drop) // per_min) if rest > drop else 0)
    ff = frame % nominal
    seconds = frame // nominal
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{';' if drop else ':'}{ff:02d}"


def timecode_to_frames(timecode: str, fps: float) -> int:
    """Inverse of :func:`frames_to_timecode` (either separator accepted; drop-frame follows ``fps``)."""
    match = _TIMECODE.match(timecode.strip())
    if not match:
        raise ValueError(f"not a timecode HH:MM:SS:FF: {timecode!r}")
    hh, mm, ss, _, ff = match.groups()
    nominal, drop = _nominal(fps), _drop_frame(fps)
    minutes = int(hh) * 60 + int(mm)
    return (minutes * 60 + int(ss)) * nominal + int(ff) - drop * (minutes - minutes // 10)


def _events(event_frames, scores) -> tuple[np.ndarray, list]:
    frames = np.asarray(event_frames, np.int64).reshape(-1)
    if frames.size and frames.min() < 0:
        raise ValueError(f"event frames must be >= 0, got {frames.min()}")
    if scores is None:
        return frames, [None] * frames.size
    scores = [float(s) for s in np.asarray(scores, np.float64).reshape(-1)]
    if len(scores) != frames.size:
        raise ValueError(f"{frames.size} event frames but {len(scores)} scores")
    return frames, scores


def _times(frames: np.ndarray, fps: float, times_s: Sequence[float] | None) -> list[float]:
    """Each event's start in seconds: ``times_s`` when given (one per event), else ``frame / fps``."""
    if times_s is None:
        return [float(f) / fps for f in frames]
    times = [float(t) for t in np.asarray(times_s, np.float64).reshape(-1)]
    if len(times) != frames.size:
        raise ValueError(f"{frames.size} event frames but {len(times)} times")
    return times


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_srt(
    event_frames: Sequence[int],
    fps: float,
    path,
    *,
    scores: Sequence[float] | None = None,
    duration_s: float = 0.2,
    text: str = "impact",
    times_s: Sequence[float] | None = None,
) -> None:
    """SRT subtitles: one cue per event, ``[frame / fps, frame / fps + duration_s]`` seconds (``times_s``
    [E], when given, in place of ``frame / fps``)."""
    frames, scores = _events(event_frames, scores)
    _nominal(fps)
    blocks = []
    for i, (frame, score, start_s) in enumerate(zip(frames, scores, _times(frames, fps, times_s)), start=1):
        label = f"{text} (frame {frame}" + (f", score {score:.3g})" if score is not None else ")")
        blocks.append(f"{i}\n{_srt_time(start_s)} --> {_srt_time(start_s + duration_s)}\n{label}\n")
    _atomic_write(path, "\n".join(blocks))


def read_srt(path) -> list[tuple[float, float, str]]:
    """``[(start_s, end_s, text), ...]`` of an SRT file."""
    with open(path, encoding="utf-8-sig") as f:
        blocks = [b for b in re.split(r"\n\s*\n", f.read().strip()) if b.strip()]
    cues = []
    for block in blocks:
        lines = block.strip().splitlines()
        times = _SRT_TIME.findall(lines[1]) if len(lines) > 1 else []
        if len(times) != 2:
            raise ValueError(f"{os.fspath(path)}: bad SRT cue {block!r}")
        start_s, end_s = (int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in times)
        cues.append((start_s, end_s, "\n".join(lines[2:])))
    return cues


def write_cue_csv(
    event_frames: Sequence[int],
    fps: float,
    path,
    *,
    scores: Sequence[float] | None = None,
    times_s: Sequence[float] | None = None,
) -> None:
    """CSV cue list: ``index,frame,time_s,timecode,score`` (time_s = frame / fps, or ``times_s`` [E] when
    given; score empty if not given)."""
    frames, scores = _events(event_frames, scores)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "frame", "time_s", "timecode", "score"])
    for i, (frame, score, time_s) in enumerate(zip(frames, scores, _times(frames, fps, times_s)), start=1):
        writer.writerow(
            [
                i,
                int(frame),
                f"{time_s:.6f}",
                frames_to_timecode(frame, fps),
                "" if score is None else f"{score:.6g}",
            ]
        )
    _atomic_write(path, buf.getvalue())


def read_cue_csv(path) -> list[dict]:
    """Rows of :func:`write_cue_csv`: ``frame`` int, ``time_s`` float, ``timecode`` str, ``score`` float/None."""
    with open(path, newline="") as f:
        return [
            {
                "frame": int(r["frame"]),
                "time_s": float(r["time_s"]),
                "timecode": r["timecode"],
                "score": float(r["score"]) if r["score"] else None,
            }
            for r in csv.DictReader(f)
        ]


def write_edl(
    event_frames: Sequence[int],
    fps: float,
    path,
    *,
    scores: Sequence[float] | None = None,
    title: str = "ta2net audible events",
    reel: str = "AX",
    clip_name: str = "impact",
    duration_frames: int = 1,
) -> None:
    """CMX3600-style EDL: event ``i`` places ``clip_name`` (source 00:00:00:00 for ``duration_frames``) on
    audio track A at the event frame of the record timeline; a comment line keeps frame and score."""
    frames, scores = _events(event_frames, scores)
    drop = _drop_frame(fps)
    lines = [f"TITLE: {title}", f"FCM: {'DROP FRAME' if drop else 'NON-DROP FRAME'}", ""]
    for i, (frame, score) in enumerate(zip(frames, scores), start=1):
        tc = [frames_to_timecode(f, fps) for f in (0, duration_frames, frame, frame + duration_frames)]
        lines.append(f"{i:03d}  {reel[:8]:<8} A     C        {' '.join(tc)}")
        lines.append(f"* FROM CLIP NAME: {clip_name}")
        lines.append(f"* COMMENT: frame {frame}" + (f" score {score:.6g}" if score is not None else ""))
        lines.append("")
    _atomic_write(path, "\n".join(lines))


def read_edl(path, fps: float) -> list[dict]:
    """Events of an EDL: ``number``, ``record_in``/``record_out`` (frames, from the timecodes), ``timecode``
    (record in) and ``comment``."""
    events = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[0].isdigit():
                events.append(
                    {
                        "number": int(parts[0]),
                        "timecode": parts[-2],
                        "record_in": timecode_to_frames(parts[-2], fps),
                        "record_out": timecode_to_frames(parts[-1], fps),
                        "comment": "",
                    }
                )
            elif line.startswith("* COMMENT:") and events:
                events[-1]["comment"] = line.split(":", 1)[1].strip()
    return events


CUE_SUFFIXES = (".srt", ".csv", ".edl")


def write_cue_file(
    path,
    event_frames: Sequence[int],
    fps: float,
    *,
    scores: Sequence[float] | None = None,
    times_s: Sequence[float] | None = None,
) -> None:
    """Writes the cue format named by the suffix of ``path`` (:data:`CUE_SUFFIXES`) with default settings;
    ``times_s`` (the events' times) goes to the SRT and CSV writers (the EDL counts frames)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    writers = {".srt": write_srt, ".csv": write_cue_csv, ".edl": write_edl}
    if suffix not in writers:
        raise ValueError(f"{os.fspath(path)}: unknown cue format {suffix!r}; use one of {', '.join(CUE_SUFFIXES)}")
    timed = {"times_s": times_s} if suffix != ".edl" else {}
    writers[suffix](event_frames, fps, path, scores=scores, **timed)
