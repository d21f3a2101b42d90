"""Sound-source localisation metrics (../shared/docs/evaluation.md §6) and pointing accuracy.

cIoU / AUC follow the LVS / EZ-VSL protocol (hche11/Localizing-Visual-Sounds-the-Hard-Way `utils.py`):

1. the predicted heatmap (TA²Net: the h×w CCAM map of one frame) is resized to 224×224 (bilinear,
   OpenCV INTER_LINEAR, as LVS) and min-max normalised;
2. it is binarised at its median: with v the sorted values, P = heatmap > v[⌊224·224/2⌋] (strict, as LVS),
   so about the top half of the pixels is 1;
3. the ground truth G at 224×224 is the union of the boxes (VGG-SS convention; ``mode="flickr"`` gives
   the Flickr-SoundNet soft consensus Σ masks / 2 clipped to 1); a pixel belongs to a box when its centre
   (j + 0.5, i + 0.5) lies inside it;
4. per sample cIoU = Σ(P·G) / (ΣG + Σ P·[G = 0]);
5. reported "cIoU" = fraction of samples with cIoU ≥ 0.5; AUC = trapezoidal area under s(t), the fraction
   of samples with cIoU ≥ t, for t = 0, 0.05, …, 1 (sklearn.metrics.auc on that grid); mean cIoU too.

Pointing accuracy (synthetic data, exact contact points): an event counts as a hit when its contact point
lies within one map cell (max(H/h, W/w) pixels) of the centre of the map's highest cell at the event frame.
``polarity="inverted"`` uses the lowest cell instead: CCAM is unsupervised, and nothing in its loss says
whether m or 1 − m is the sound source (see docs/evaluation_choices.md for the choice we make).

Synthetic boxes (``synthetic_event_boxes``): the sound source of a synthetic collision is the moving
object(s) in contact (walls and floor are not boxes); each object's axis-aligned bounding box at the event
frame comes from the generator's raw JSON (disc: centre ± radius; box of half sizes (a, b) at angle θ:
half extents (|cos θ|a + |sin θ|b, |sin θ|a + |cos θ|b)); generator v2's through its camera at that frame.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

__all__ = [
    "LVS_SIZE",
    "AUC_THRESHOLDS",
    "box_mask",
    "binarize_heatmap",
    "ciou",
    "ciou_summary",
    "pointing_hits",
    "synthetic_event_boxes",
    "map_cell_peak",
    "upsample_map",
    "attended_peak_xy",
    "attended_centroid_xy",
]

LVS_SIZE = 224
AUC_THRESHOLDS = np.round(np.arange(21) * 0.05, 10)  # 0, 0.05, …, 1.0


def box_mask(boxes, image_size: tuple[int, int], size: int = LVS_SIZE, mode: str = "union") -> np.ndarray:
    """Ground-truth map [size, size] from boxes ``[[x0, y0, x1, y1], ...]`` in pixels of an image of
    ``image_size`` (H, W). ``mode``: "union" (binary) or "flickr" (Σ masks / 2, clipped to 1)."""
    if mode not in ("union", "flickr"):
        raise ValueError(f"box_mask: mode {mode!r} is not 'union' or 'flickr'")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
        raise ValueError(f"box_mask: boxes must be [x0, y0, x1, y1] with x1 >= x0, y1 >= y0, got {b.tolist()}")
    h, w = image_size
    sx, sy = size / w, size / h
    centres = np.arange(size) + 0.5
    total = np.zeros((size, size))
    for x0, y0, x1, y1 in b:
        cols = (centres >= x0 * sx) & (centres <= x1 * sx)
        rows = (centres >= y0 * sy) & (centres <= y1 * sy)
        total += rows[:, None] & cols[None, :]
    return np.minimum(total, 1.0) if mode == "union" else np.minimum(total / 2.0, 1.0)


def binarize_heatmap(heatmap: np.ndarray, size: int = LVS_SIZE) -> np.ndarray:
    """LVS binarisation: resize to size×size (bilinear), min-max normalise, 1 where > the median element."""
    import cv2

    m = np.asarray(heatmap, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"binarize_heatmap: expected a 2-D map, got shape {m.shape}")
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)
    m = m.astype(np.float64)
    span = m.max() - m.min()
    m = (m - m.min()) / span if span > 0 else np.zeros_like(m)
    threshold = np.sort(m.reshape(-1))[m.size // 2]
    return (m > threshold).astype(np.float64)


def ciou(pred_binary: np.ndarray, gt: np.ndarray) -> float:
    """cIoU = Σ(P·G) / (ΣG + Σ P·[G = 0]) for a binary prediction P and a (soft) ground truth G."""
    p = np.asarray(pred_binary, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"ciou: prediction {p.shape} and ground truth {g.shape} differ in shape")
    denom = g.sum() + (p * (g == 0)).sum()
    return float((p * g).sum() / denom) if denom > 0 else 0.0


def ciou_summary(cious: Sequence[float]) -> dict:
    """{"num_samples", "ciou_at_0.5" (fraction ≥ 0.5), "auc" (trapezoid over t = 0:0.05:1), "mean_ciou"}."""
    c = np.asarray(cious, dtype=np.float64).reshape(-1)
    if c.size == 0:
        return {"num_samples": 0, "ciou_at_0.5": None, "auc": None, "mean_ciou": None}
    success = np.array([np.mean(c >= t) for t in AUC_THRESHOLDS])
    return {
        "num_samples": int(c.size),
        "ciou_at_0.5": float(np.mean(c >= 0.5)),
        "auc": float(np.trapezoid(success, AUC_THRESHOLDS)),
        "mean_ciou": float(c.mean()),
    }


def map_cell_peak(source_map: np.ndarray, image_size: tuple[int, int], polarity: str = "peak") -> tuple[float, float]:
    """(x, y) in pixels of an image of ``image_size`` (H, W) at the centre of the map's highest cell
    (``polarity="peak"``) or lowest cell (``"inverted"``); ties go to the first cell in row-major order."""
    if polarity not in ("peak", "inverted"):
        raise ValueError(f"polarity {polarity!r} is not 'peak' or 'inverted'")
    m = np.asarray(source_map)
    h, w = m.shape
    index = int(np.argmax(m)) if polarity == "peak" else int(np.argmin(m))
    row, col = np.unravel_index(index, m.shape)
    return (col + 0.5) * image_size[1] / w, (row + 0.5) * image_size[0] / h


def upsample_map(source_map: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[h, w] map → [H, W] by bilinear interpolation between cell centres (edges held), as
    `jax.image.resize(..., "linear")` without antialiasing."""
    m = np.asarray(source_map, np.float32)
    (h, w), (big_h, big_w) = m.shape, image_size
    rows = np.clip((np.arange(big_h) + 0.5) * h / big_h - 0.5, 0, h - 1)
    cols = np.clip((np.arange(big_w) + 0.5) * w / big_w - 0.5, 0, w - 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = m[r0][:, c0] * (1 - fc) + m[r0][:, c1] * fc
    bottom = m[r1][:, c0] * (1 - fc) + m[r1][:, c1] * fc
    return top * (1 - fr) + bottom * fr


def attended_peak_xy(source_map: np.ndarray, magnitude: np.ndarray) -> tuple[float, float]:
    """(x, y) pixel centre of the largest inflection magnitude [H, W] weighted by the source map [h, w]
    upsampled to H×W: where the motion broke, inside the region the model says sounds. Falls back to the
    map's own upsampled peak where the magnitude is zero everywhere."""
    weight = upsample_map(source_map, magnitude.shape)
    score = weight * np.asarray(magnitude, np.float32)
    if not np.any(score > 0):
        score = weight
    row, col = np.unravel_index(int(np.argmax(score)), score.shape)
    return col + 0.5, row + 0.5


# The attended centroid (`attended_centroid_xy`): the attended score is the inflection magnitude times the
# upsampled map to the power `map_power`; the pixels where it is at least `floor` × its maximum are averaged,
# each weighted by (score / max)**`power`. The best settings depend on the map's resolution, so `ta2net eval`
# chooses them per model on the validation split from CENTROID_GRID (evaluation/localisation.py
# `tune_centroid`) and stores them in detector.json; DEFAULT_CENTROID is the shipped model's choice, used for
# a run whose detector.json has none.
CENTROID_GRID = {"map_power": (1, 2, 3), "floor": (0.3, 0.5, 0.7, 0.85), "power": (1, 2)}
DEFAULT_CENTROID = {"map_power": 1, "floor": 0.3, "power": 2}


def attended_centroid_xy(
    source_map: np.ndarray,
    magnitude: np.ndarray,
    floor: float = DEFAULT_CENTROID["floor"],
    power: float = DEFAULT_CENTROID["power"],
    map_power: float = DEFAULT_CENTROID["map_power"],
) -> tuple[float, float]:
    """(x, y) in pixels: the centroid of the attended score, inflection magnitude [H, W] × (source map [h, w]
    upsampled to H×W)**map_power, over the pixels where it is at least `floor` × its maximum, each weighted by
    (score / max)**power. One pixel's argmax (`attended_peak_xy`) jumps between the parts of a moving object
    whose motion broke; their centroid sits on the object, between them. Falls back to `attended_peak_xy`
    where the magnitude is zero everywhere."""
    score = upsample_map(source_map, magnitude.shape) ** map_power * np.asarray(magnitude, np.float32)
    top = float(score.max())
    if not top > 0:
        return attended_peak_xy(source_map, magnitude)
    mass = np.where(score >= floor * top, (score / top) ** power, 0.0)
    rows, cols = np.indices(score.shape)
    total = mass.sum()
    return float((mass * (cols + 0.5)).sum() / total), float((mass * (rows + 0.5)).sum() / total)


def pointing_hits(
    maps: np.ndarray, scores: np.ndarray, event_frames, event_xy, image_size: tuple[int, int], polarity: str = "peak"
) -> tuple[int, int]:
    """(hits, total) over one video's ground-truth events on scored frames (finite score); a hit is a
    contact point within one map cell of the chosen cell's centre (module docstring)."""
    h, w = maps.shape[1:]
    cell = max(image_size[0] / h, image_size[1] / w)
    hits = total = 0
    for frame, (x, y) in zip(np.asarray(event_frames).reshape(-1), np.asarray(event_xy).reshape(-1, 2)):
        frame = int(frame)
        if 0 <= frame < len(scores) and np.isfinite(scores[frame]):
            px, py = map_cell_peak(maps[frame], image_size, polarity)
            hits += int(np.hypot(px - x, py - y) <= cell)
            total += 1
    return hits, total


def synthetic_event_boxes(
    raw_json: str, frame_size: tuple[int, int] | None = None
) -> list[tuple[int, list[list[float]]]]:
    """[(event frame, [[x0, y0, x1, y1], ...] boxes of the moving objects in contact)] from a synthetic
    video's raw JSON (``<data_dir>/raw/synthetic_collisions/<renders>/<split>/<id>.json``).

    Boxes are in the pixels of a frame of ``frame_size`` (H, W) (the prepared dataset's frames); None keeps the
    rendered video's own pixels. Generator v2 records its objects in world pixels and the camera (zoom, offset
    per frame, ``metadata.v2.camera``) separately, and renders at its own native size (``frame_size`` of the
    record): its boxes go through the camera at the event frame, then are scaled to ``frame_size``."""
    with open(raw_json) as f:
        record = json.load(f)
    try:
        objects = {o["name"]: o for o in record["metadata"]["objects"]}
        events = record["events"]
        camera = record["metadata"].get("v2", {}).get("camera")
    except KeyError as err:
        raise ValueError(f"{raw_json}: not a synthetic_collisions record (missing {err})") from None
    native_h, native_w = record.get("frame_size", frame_size or (0, 0))
    if camera is not None:
        from input_pipeline.synthetic.randomize import Camera

        camera = Camera.from_info(camera, native_h, native_w)
    scale_x, scale_y = (frame_size[1] / native_w, frame_size[0] / native_h) if frame_size else (1.0, 1.0)
    out = []
    for e in events:
        frame = int(e["frame"])
        boxes = []
        for name in e["objects"]:
            o = objects.get(name)
            if o is None:  # a wall or the floor
                continue
            t = min(max(frame, 0), len(o["trajectory_px"]) - 1)
            cx, cy = o["trajectory_px"][t]
            if o["kind"] == "disc":
                ex = ey = float(o["radius_px"])
            else:
                a, b = o["half_size_px"]
                theta = float(o["angle_rad"][t])
                c, s = abs(np.cos(theta)), abs(np.sin(theta))
                ex, ey = c * a + s * b, s * a + c * b
            if camera is not None:  # a zoom and a shift: a box stays a box, its extents scaled by the zoom
                cx, cy = camera.to_image(cx, cy, t)
                ex, ey = camera.zoom[t] * ex, camera.zoom[t] * ey
            boxes.append([(cx - ex) * scale_x, (cy - ey) * scale_y, (cx + ex) * scale_x, (cy + ey) * scale_y])
        if boxes:
            out.append((frame, boxes))
    return out
