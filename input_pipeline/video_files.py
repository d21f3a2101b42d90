"""What a video file is before it is decoded: the suffixes taken for videos, the one-line error type, and
a diagnosis from the file's first bytes (missing, empty, an image or audio file, a cut MP4) so that
`video.read_video` can say what is wrong with a file FFmpeg refuses; and which files a list of inputs names,
each under a folder-safe key (`keyed_videos`, `folder_key`: `ta2net prepare`'s output folders)."""

from __future__ import annotations

import errno
import hashlib
import os
import re

from input_pipeline import paths

# File name suffixes taken for videos when a folder is searched (detect, eval-videos, prepare).
VIDEO_SUFFIXES = tuple(".mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .wmv .flv .ogv .3gp .ts".split())


def list_video_files(folder: str, *, recursive: bool = False) -> list[str]:
    """Video files (by suffix, hidden files skipped) in `folder`, or anywhere below it, sorted by path; a
    `gs://` folder gives `gs://` URLs. FileNotFoundError when `folder` is not a folder; [] when it holds no video."""
    if not paths.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    names = {p: os.path.basename(p) for p in paths.list_files(folder, recursive=recursive)}
    return [p for p, name in names.items() if name.lower().endswith(VIDEO_SUFFIXES) and not name.startswith(".")]


def missing_reason(path: str) -> str:
    """Why `path` cannot be opened although named: a symlink loop, a broken symlink, or no such file."""
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as err:
            if err.errno == errno.ELOOP:
                return "a symbolic link loop"
        return f"a broken symbolic link (to {os.readlink(path)})"
    return "no such file or folder"


class VideoReadError(ValueError):
    """A video file could not be read; ``str(err) == f"{path}: {problem}"`` (one line)."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.problem))


# The fewest frames anything scores: inflection flow drops two frames at each end of a video.
MIN_FRAMES = 5


class VideoTooShortError(VideoReadError):
    """Fewer decoded frames than inflection flow needs (MIN_FRAMES)."""


def check_frame_count(path, count: int) -> None:
    """Raise VideoTooShortError naming ``path`` when ``count`` decoded frames are fewer than MIN_FRAMES."""
    if count < MIN_FRAMES:
        noun = "frame" if count == 1 else "frames"
        raise VideoTooShortError(
            path, f"only {count} {noun}; at least {MIN_FRAMES} are needed (inflection flow drops 2 at each end)"
        )


def check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoReadError(path, missing_reason(path))
    if os.path.isdir(path):
        raise VideoReadError(path, "is a directory, not a video file")
    if not os.path.isfile(path):
        raise VideoReadError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoReadError(path, "cannot read file (permission denied)")


# (offset, magic bytes, description, is a video container)
_MAGIC = [(4, m, "MP4/MOV", True) for m in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")] + [
    (8, b"AVI ", "AVI", True),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM", True),
    (0, b"FLV", "FLV", True),
    (0, b"\x00\x00\x01\xba", "MPEG program stream", True),
    (0, bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), "ASF/WMV", True),
    (8, b"WAVE", "WAV audio", False),
    (8, b"WEBP", "WebP image", False),
    (0, b"\x89PNG", "PNG image", False),
    (0, b"\xff\xd8\xff", "JPEG image", False),
    (0, b"GIF8", "GIF image", False),
    (0, b"BM", "BMP image", False),
    (0, b"II*\x00", "TIFF image", False),
    (0, b"MM\x00*", "TIFF image", False),
    (0, b"ID3", "MP3 audio", False),
    (0, b"fLaC", "FLAC audio", False),
    (0, b"OggS", "Ogg", False),
]


def sniff(path: str) -> tuple[str, bool]:
    """Guesses the file type from its first bytes: ``(description, is_video_container)``."""
    with open(path, "rb") as f:
        head = f.read(512)
    for offset, magic, name, is_video in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name, is_video
    if len(head) > 188 and head[0] == head[188] == 0x47:  # MPEG-TS sync bytes
        return "MPEG transport stream", True
    try:
        if all(c.isprintable() or c in "\r\n\t\f" for c in head.decode("utf-8")):
            return "text file", False
    except UnicodeDecodeError:
        pass
    return "unrecognised data", False


def damage(path: str, fallback: str) -> str:
    """Why a file that looks like a video container cannot be parsed (MP4 box sizes tell truncation)."""
    return (_mp4_overrun(path) if sniff(path)[0] == "MP4/MOV" else None) or fallback


def _mp4_overrun(path: str) -> str | None:
    """For ISO-BMFF files: a note if a top-level box claims bytes past the end of the file (truncation)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            head = f.read(16)
            box_size, name = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
            if box_size == 1 and len(head) == 16:
                box_size = int.from_bytes(head[8:16], "big")
            elif box_size == 0:  # "to the end of the file"
                return None
            if box_size < 8:
                return f"malformed {name!r} box"
            if offset + box_size > size:
                return f"the file ends inside its {name!r} box ({offset + box_size - size} bytes missing)"
            offset += box_size
    return None


def folder_key(name: str) -> str:
    """A safe, unique folder name for any video name or id: itself when it only has ASCII letters, digits,
    `_` and `-`; otherwise those kept (others as `_`) plus 8 hex digits of the name's MD5, so that
    distinct names never share a folder. The original name is kept in meta.json (`name`)."""
    safe = re.sub(r"[^A-Za-z0-9_\-]", "_", name)
    return safe if safe == name else f"{safe}-{hashlib.md5(name.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def keyed_videos(inputs: list[str]) -> list[tuple[str, str]]:
    """(key, path) for video files given directly or found (recursively) under given folders; `gs://` files
    and folders too (decoded from this machine's cached copy, video.from_local_copy, by whichever runner).

    Keys are `folder_key` of the file stems (any file name works; the original is kept in meta.json); two
    files with the same stem are an error naming both.
    """
    found: dict[str, str] = {}
    for item in inputs:
        if paths.isdir(item):
            videos = list_video_files(item, recursive=True)
        elif paths.exists(item):
            videos = [item]
        else:
            raise FileNotFoundError(f"{item}: {missing_reason(item)}")
        for path in sorted(videos):
            key = folder_key(os.path.splitext(os.path.basename(path))[0])
            if key in found and paths.resolve(found[key]) != paths.resolve(path):
                raise ValueError(f"{path}: same name as {found[key]}; prepared folders are named by file stem")
            found[key] = path
    return sorted(found.items())
