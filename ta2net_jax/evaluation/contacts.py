"""Which contacts a detector finds: the exact synthetic events broken down by contact kind and impact speed.

F1 says how many events a detector misses, not which. On the synthetic sets every ground-truth event has a
record in the video's raw JSON (the objects in contact and the impact speed); this module joins those records
with a detector's events so `ta2net eval` can say, e.g., "rods striking the floor are found half as often as
bouncing discs" or "contacts slower than 1 px/frame at the model input are the misses".

Definitions (eval.json ``found_by_contact``; report.md "Which contacts are found"):

* **Found**: a raw GT event (one row of the JSON's ``events``, before run clustering) with a detected event
  within ±``tol`` frames (3, the F1 tolerance). This is a hit rate, not the one-to-one recall of the F1: two
  contacts one frame apart are both found by one detection between them.
* **Contact kind** (``contact_kind``): ``rod`` when a thin rod of generator v2 takes part
  (``metadata.v2.rods``), ``object–object`` for two moving bodies, ``object–floor``, ``object–wall``
  (walls and ceiling).
* **Impact speed at the model input** (``speed_px``, px/frame): the generator's ``impact_speed`` (world px per
  frame at the native rate) times the camera zoom at the event (v2) times the resize to the model's frame,
  ``sqrt(scale_x · scale_y)`` (a non-square source is resized anisotropically; the geometric mean is the
  scale of an area). Binned at ``SPEED_EDGES_PX`` so runs at different input sizes compare bin by bin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["SPEED_EDGES_PX", "KINDS", "contact_kind", "contact_records", "found_by_contact", "table_rows"]

SPEED_EDGES_PX = (0.0, 1.0, 2.0, 4.0, math.inf)  # px/frame at the model input
KINDS = ("object–floor", "object–wall", "object–object", "rod")
_WALLS = ("wall", "ceiling")


def contact_kind(objects: Sequence[str], rods: Sequence[str] = ()) -> str:
    """The kind of one contact from the names of the two things touching (module doc)."""
    if any(name in rods for name in objects):
        return "rod"
    if "floor" in objects:
        return "object–floor"
    if any(name.startswith(_WALLS) for name in objects):
        return "object–wall"
    return "object–object"


def contact_records(raw_json: str, frame_size: tuple[int, int]) -> list[dict]:
    """[{"frame", "kind", "speed_px"}] for every exact event of a synthetic video's raw JSON, the speed in
    pixels per frame of a ``frame_size`` (H, W) frame (module doc)."""
    with open(raw_json) as f:
        record = json.load(f)
    try:
        events = record["events"]
        metadata = record["metadata"]
    except KeyError as err:
        raise ValueError(f"{raw_json}: not a synthetic_collisions record (missing {err})") from None
    v2 = metadata.get("v2", {})
    rods = tuple(v2.get("rods", ()))
    zoom = v2.get("camera", {}).get("zoom")
    native_h, native_w = record.get("frame_size", frame_size)
    scale = math.sqrt((frame_size[0] / native_h) * (frame_size[1] / native_w))
    out = []
    for e in events:
        frame = int(e["frame"])
        z = float(zoom[min(max(frame, 0), len(zoom) - 1)]) if zoom else 1.0
        out.append(
            {"frame": frame, "kind": contact_kind(e["objects"], rods), "speed_px": float(e["impact_speed"]) * z * scale}
        )
    return out


def _bin_label(lo: float, hi: float) -> str:
    return f"≥ {lo:g}" if math.isinf(hi) else f"{lo:g}–{hi:g}"


def found_by_contact(records: Sequence[tuple[list[dict], np.ndarray]], tol: int = 3) -> dict:
    """Hit rates of one detector over videos given as (contact_records, detected event frames) pairs:
    {"tol", "all": {"events", "found", "rate"}, "by_kind": {kind: ...}, "by_speed_px": {bin: ...}}; a group
    without events has rate None."""
    kinds, speeds, found = [], [], []
    for contacts, detected in records:
        det = np.asarray(detected, np.int64)
        for c in contacts:
            kinds.append(c["kind"])
            speeds.append(c["speed_px"])
            found.append(bool(det.size) and bool(np.any(np.abs(det - c["frame"]) <= tol)))
    kinds, speeds, found = np.asarray(kinds), np.asarray(speeds, np.float64), np.asarray(found, bool)

    def group(mask) -> dict:
        n = int(mask.sum())
        return {"events": n, "found": int(found[mask].sum()), "rate": float(found[mask].mean()) if n else None}

    edges = SPEED_EDGES_PX
    return {
        "tol": tol,
        "all": group(np.ones(found.shape, bool)),
        "by_kind": {k: group(kinds == k) for k in KINDS},
        "by_speed_px": {
            _bin_label(lo, hi): group((speeds >= lo) & (speeds < hi)) for lo, hi in zip(edges[:-1], edges[1:])
        },
    }


def table_rows(by_detector: dict) -> list[dict]:
    """One row per group (all, each kind, each speed bin) with a "found / events (rate)" cell per detector."""
    first = next(iter(by_detector.values()))
    groups = [("all contacts", "all", None)]
    groups += [(f"kind: {k}", "by_kind", k) for k in first["by_kind"]]
    groups += [(f"speed {b} px/frame", "by_speed_px", b) for b in first["by_speed_px"]]
    rows = []
    for label, section, key in groups:
        row = {"group": label}
        for name, result in by_detector.items():
            g = result[section] if key is None else result[section][key]
            row[name] = f"{g['found']} / {g['events']} ({g['rate']:.2f})" if g["rate"] is not None else "–"
        rows.append(row)
    return rows
