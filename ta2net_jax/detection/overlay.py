"""Overlay video / GIF: the frames with the sound-source heatmap, a flash on each detected event, the
event's source point, and a score strip with a cursor along the bottom.

* Heatmap: per-frame maps [N, h, w] (the model's CCAM map, or the inflection magnitude for the
  training-free method) resized bilinearly to the frame, normalised by the video's 1st–99th percentile,
  coloured with matplotlib's "inferno" and alpha-blended (alpha ∝ heat, at most ``HEAT_ALPHA``).
* Flash: on an event frame a yellow border and brightening, decaying linearly over ``FLASH_FRAMES`` frames,
  and a cross at the event's (x, y) held as long as the flash.
* Output by suffix: ``.gif`` (Pillow, adaptive palette, looped) or any video container (``video.write_video``,
  H.264 yuv420p where available).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["overlay_frames", "render_overlay", "write_overlay"]

HEAT_ALPHA = 0.6
FLASH_FRAMES = 4
STRIP_HEIGHT = 28
YELLOW = np.array([255, 230, 0], np.float32)


def _resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(a.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _colormap() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)


def _strip(scores: np.ndarray, events, width: int, threshold: float | None) -> np.ndarray:
    """[STRIP_HEIGHT, width, 3] score strip: dark background, curve, threshold, event ticks."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, STRIP_HEIGHT), (20, 20, 28))
    draw = ImageDraw.Draw(img)
    s = np.asarray(scores, np.float64)
    finite = s[np.isfinite(s)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if threshold is not None and np.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    hi = hi if hi > lo else lo + 1.0
    n = max(s.size - 1, 1)

    def y(v):
        return STRIP_HEIGHT - 3 - (v - lo) / (hi - lo) * (STRIP_HEIGHT - 6)

    if threshold is not None and np.isfinite(threshold):
        draw.line([(0, y(threshold)), (width, y(threshold))], fill=(110, 110, 110))
    for e in events:
        draw.line([(e / n * (width - 1), 0), (e / n * (width - 1), STRIP_HEIGHT)], fill=(200, 40, 40))
    points = [(i / n * (width - 1), y(v)) for i, v in enumerate(s) if np.isfinite(v)]
    if len(points) > 1:
        draw.line(points, fill=(90, 170, 255), width=1)
    return np.asarray(img, np.float32)


def overlay_frames(
    frames: Iterable[np.ndarray],
    maps: np.ndarray | None,
    scores: np.ndarray,
    events: list[dict],
    *,
    threshold: float | None = None,
    source_size: tuple[int, int] | None = None,
    picture_box: tuple[int, int, int, int] | None = None,
) -> Iterator[np.ndarray]:
    """The overlay one frame at a time (a generator: a long video is never held as float images).

    frames: [H, W, 3] uint8 each, len(scores) of them (an array [N, H, W, 3] or any iterable); maps [N, h, w]
    or None; events with frame, x, y (pixels of ``source_size``, default the frames' size); ``picture_box``
    (y0, x0, y1, x1) in those pixels: where the maps lie (the picture inside cropped black borders; default
    the whole frame). Yields [H + STRIP_HEIGHT, W, 3] uint8 per frame."""
    n = min(len(scores), len(frames)) if hasattr(frames, "__len__") else len(scores)
    lut = _colormap()
    lo, hi = np.percentile(maps, [1, 99]) if maps is not None and maps.size else (0.0, 1.0)
    by_frame = {int(e["frame"]): e for e in events}
    strip = None
    for i, frame in zip(range(n), frames):
        h, w, _ = frame.shape
        if strip is None:
            strip = _strip(scores, [int(e["frame"]) for e in events], w, threshold)
            sy, sx = (h / source_size[0], w / source_size[1]) if source_size else (1.0, 1.0)
            y0, x0, y1, x1 = picture_box or (0, 0, h / sy, w / sx)
            y0, x0, y1, x1 = int(round(y0 * sy)), int(round(x0 * sx)), int(round(y1 * sy)), int(round(x1 * sx))
            border, arm = max(2, min(h, w) // 40), max(4, min(h, w) // 16)
        img = frame.astype(np.float32)
        if maps is not None and y1 > y0 and x1 > x0:
            heat = np.clip((_resize(maps[i], y1 - y0, x1 - x0) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
            colour = lut[(heat * 255).astype(np.int32)]
            alpha = (HEAT_ALPHA * heat)[..., None]
            img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + colour * alpha
        for age in range(FLASH_FRAMES):
            e = by_frame.get(i - age)
            if e is None:
                continue
            strength = 1.0 - age / FLASH_FRAMES
            img = img + (255 - img) * 0.35 * strength
            for sl in (np.s_[:border], np.s_[-border:]):
                img[sl] = img[sl] * (1 - strength) + YELLOW * strength
                img[:, sl] = img[:, sl] * (1 - strength) + YELLOW * strength
            cx, cy = int(round(e["x"] * sx)), int(round(e["y"] * sy))
            img[max(cy - 1, 0) : cy + 2, max(cx - arm, 0) : cx + arm + 1] = YELLOW
            img[max(cy - arm, 0) : cy + arm + 1, max(cx - 1, 0) : cx + 2] = YELLOW
            break
        row = strip.copy()
        cursor = int(round(i / max(n - 1, 1) * (w - 1)))
        row[:, max(cursor - 1, 0) : cursor + 1] = 255
        out = np.empty((h + STRIP_HEIGHT, w, 3), np.uint8)
        out[:h] = np.clip(img, 0, 255).astype(np.uint8)
        out[h:] = row.astype(np.uint8)
        yield out


def _gif_durations_ms(num_frames: int, fps: float, times_s: np.ndarray | None):
    """A GIF's frame durations in ms: ``1000 / fps`` each, or each frame's interval to the next (the last
    ``1000 / fps``); at least 20 ms, below which browsers slow a GIF down."""
    if times_s is None:
        return max(int(round(1000 / fps)), 20)
    intervals = np.r_[np.diff(np.asarray(times_s, np.float64)), 1.0 / fps][:num_frames]
    return [max(int(round(1000 * t)), 20) for t in intervals]


def render_overlay(frames: np.ndarray, maps: np.ndarray | None, scores: np.ndarray, events: list[dict], **kwargs):
    """The whole overlay as one array [N, H + STRIP_HEIGHT, W, 3] uint8 (`overlay_frames`' frames, stacked)."""
    return np.stack(list(overlay_frames(frames, maps, scores, events, **kwargs)))


def write_overlay(
    path: str,
    frames: Iterable[np.ndarray],
    maps: np.ndarray | None,
    scores: np.ndarray,
    events: list[dict],
    *,
    fps: float,
    threshold: float | None = None,
    source_size: tuple[int, int] | None = None,
    picture_box: tuple[int, int, int, int] | None = None,
    times_s: np.ndarray | None = None,
) -> None:
    """Renders the overlay (overlay_frames) and writes it as a GIF (by suffix) or a video file, frame by frame
    (a GIF keeps its 64-colour frames until the end, a video file nothing). ``times_s`` ([N] the frames'
    timestamps of a variable-rate video, input_pipeline/frame_times.py) gives a GIF's frames their own
    durations and a video file's frames their own presentation times (``fps`` its average rate)."""
    from input_pipeline import progress

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with progress.bar(len(scores), "overlay") as bar:
        video = overlay_frames(
            frames, maps, scores, events, threshold=threshold, source_size=source_size, picture_box=picture_box
        )

        def counted(items):
            for item in items:
                yield item
                bar.update()

        if path.lower().endswith(".gif"):
            from PIL import Image

            images = (Image.fromarray(f).quantize(colors=64, method=Image.Quantize.FASTOCTREE) for f in counted(video))
            first = next(images)
            first.save(
                path,
                save_all=True,
                append_images=images,
                duration=_gif_durations_ms(len(scores), fps, times_s),
                loop=0,
                optimize=False,
            )
        else:
            from input_pipeline.video import write_video

            even = (np.ascontiguousarray(f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2]) for f in counted(video))
            write_video(path, even, fps, crf=18, pix_fmt="yuv420p", times_s=times_s)
