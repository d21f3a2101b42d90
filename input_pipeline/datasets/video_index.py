"""Finding a dataset's video files by id, anywhere under a folder, in any container.

`VideoIndex(root)` walks the folder once; `find(video_id, segment)` returns the file for an annotation's id:
`<id>.<any>`, or a Kinetics-style `<id>_<start>_<end>.<any>` (the annotated YouTube segment first), and says
when several files match. Used by the real-video builders (real_videos.py).
"""

from __future__ import annotations

import os
import re

# Files that can share a video's stem but are not videos (sidecars, images, audio, partial downloads).
NON_VIDEO_SUFFIXES = set(
    ".json .txt .csv .md .npz .npy .jpg .jpeg .png .gif .bmp .wav .mp3 .flac .aac .m4a .ogg .opus .zip .tar .gz "
    ".part .tmp .ytdl .pkl .py .html .srt .vtt .xml .log .flo".split()
)
PREFERRED_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")
KINETICS_NAME = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")  # <youtube_id>_000023_000033


class VideoIndex:
    """All candidate video files under a root, by id: `<id>.<any>` or Kinetics' `<id>_<start>_<end>.<any>`."""

    def __init__(self, root: str):
        self.root = root
        self.by_id: dict[str, list[tuple[str, tuple[int, int] | None]]] = {}
        self.num_files = 0
        for folder, dirs, names in os.walk(root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                stem, suffix = os.path.splitext(name)
                if name.startswith(".") or suffix.lower() in NON_VIDEO_SUFFIXES:
                    continue
                path = os.path.join(folder, name)
                self.num_files += 1
                self.by_id.setdefault(stem, []).append((path, None))
                m = KINETICS_NAME.match(stem)
                if m:
                    segment = (int(m.group("start")), int(m.group("end")))
                    self.by_id.setdefault(m.group("id"), []).append((path, segment))

    def find(self, video_id: str, segment: tuple[int, int] | None = None) -> tuple[str | None, str | None]:
        """(path or None, note about ambiguity or None). Preference: the annotated segment, an exact stem,
        a common container (mp4, avi, mkv, webm, mov), then the shortest path."""
        candidates = self.by_id.get(video_id, [])
        if not candidates:
            return None, None
        suffix_rank = lambda p: (
            PREFERRED_SUFFIXES.index(os.path.splitext(p)[1].lower())
            if os.path.splitext(p)[1].lower() in PREFERRED_SUFFIXES
            else len(PREFERRED_SUFFIXES)
        )
        ranked = sorted(
            candidates,
            key=lambda c: (
                segment is not None and c[1] != segment,
                c[1] is not None,
                suffix_rank(c[0]),
                len(c[0]),
                c[0],
            ),
        )
        note = None
        if len(ranked) > 1:
            others = ", ".join(self.rel(p) for p, _ in ranked[1:])
            note = f"{len(ranked)} files match; using {self.rel(ranked[0][0])}, not {others}"
        return ranked[0][0], note

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)
