"""What `ta2net detect` writes, checked before any work: output paths, unique per-video stems, the events CSV,
the overlay of one video."""

from __future__ import annotations

import csv
import io
import os

from input_pipeline import paths

CSV_FIELDS = ("frame", "time_s", "score", "x", "y")
OVERLAY_SUFFIXES = (".gif", ".mp4")
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg")
OVERLAY_MAX_SIDE = 240  # px: the overlay is drawn on the video resized to at most this side


def check_outputs(
    out: str | None = None, csv_path: str | None = None, plot: str | None = None, overlay: str | None = None
) -> None:
    """Checks one video's output paths before any work (paths.check_output_file); also that no two of
    them name the same file. Raises OutputPathError naming the path."""
    given = {"events JSON (--out)": out, "events CSV (--csv)": csv_path}
    given.update({"timeline plot (--plot)": plot, "overlay (--overlay)": overlay})
    suffixes = {"timeline plot (--plot)": PLOT_SUFFIXES, "overlay (--overlay)": OVERLAY_SUFFIXES}
    seen = {}
    for what, path in given.items():
        if not path:
            continue
        paths.check_output_file(path, what, suffixes.get(what))
        real = path if paths.is_remote(path) else os.path.realpath(path)
        if real in seen:
            raise paths.OutputPathError(f"{path}: given as both the {seen[real]} and the {what}")
        seen[real] = what


def output_stems(paths: list[str]) -> list[str]:
    """A unique output name stem per video: its stem (`a` of `a.mp4`), its file name when another video has
    the same stem (`a.mp4`, `a.avi`), with `-2`, `-3` … when file names repeat too (sub-folders)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    names = [s if stems.count(s) == 1 else os.path.basename(p) for s, p in zip(stems, paths)]
    seen: dict = {}
    unique = []
    for name in names:
        n = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = n
        unique.append(name if n == 1 else f"{name}-{n}")
    return unique


def write_events_csv(path: str, events: list[dict]) -> None:
    """One row per event; written in one atomic write (a local path or gs://, input_pipeline.paths)."""
    paths.write_text(path, events_csv_text(events))


def events_csv_text(events: list[dict]) -> str:
    """The events as CSV (CSV_FIELDS; a header, then one row per event)."""
    f = io.StringIO(newline="")
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for e in events:
        writer.writerow(
            {
                "frame": e["frame"],
                "time_s": f"{e['time_s']:.4f}",
                "score": f"{e['score']:.6g}",
                "x": f"{e['x']:.1f}",
                "y": f"{e['y']:.1f}",
            }
        )
    return f.getvalue()


def write_video_overlay(path, video_path: str, decoded, maps, scores, events: list[dict], threshold) -> None:
    """The overlay of `video_path` (detection/overlay.py) at `path`: its frames streamed again at no more than
    OVERLAY_MAX_SIDE px (a long video fits in memory), with `decoded`'s (video.DecodedVideo) rate, timestamps
    and borders; `maps` [N, h, w], `scores` [N] and `events` as `VideoDetector.analyse` gives them."""
    from input_pipeline import video as video_lib
    from ta2net_jax.detection.overlay import write_overlay

    h, w = decoded.source_size
    scale = min(1.0, OVERLAY_MAX_SIDE / max(h, w))
    display_size = (max(2, int(round(h * scale))), max(2, int(round(w * scale))))
    with paths.written_locally(path) as local_path:
        write_overlay(
            local_path,
            video_lib.iter_frames(video_path, size=display_size),
            maps,
            scores,
            events,
            fps=decoded.fps,
            threshold=threshold,
            source_size=(h, w),
            picture_box=decoded.borders.picture_box((h, w)),
            times_s=decoded.times_s,
        )
