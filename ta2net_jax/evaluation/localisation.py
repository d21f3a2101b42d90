"""Where the sound comes from, measured against exact contact points (synthetic splits): each locator's
(x, y) at every ground-truth event, beside two priors.

Locators (pixels of the model input, H×W):
  map_cell          centre of the source map's chosen cell (the polarity chosen on validation)
  attended_peak     largest inflection magnitude weighted by the upsampled map (metrics.spatial
                    `attended_peak_xy`): what `ta2net detect` reports for the model method
  inflection_peak   largest inflection magnitude anywhere (the training-free method's location)
The inflection magnitude is summed over the frame and its neighbours (inflection_energy.location_magnitude,
`LOCATION_HALF_WINDOW`), as detect does.
  constant_cell     the centre of the one cell that points best on the tuning split, always (a prior)
  uniform_random    a uniformly random pixel (a prior; 64 draws per event, fixed seed)

Per locator: pointing accuracy at the event frame (a hit: within one map cell, max(H/h, W/w) px, of the
contact, as pointing_accuracy in protocols.py), the same with the maps of the frames one before and one after
the event (mean of the two: a detection one frame off), and the median and mean distance in pixels to the
contact, with the median also as a fraction of the frame side max(H, W).
"""

from __future__ import annotations

import numpy as np

from ta2net_jax.evaluation.metrics import spatial as spatial_metrics

LOCATORS = ("map_cell", "attended_peak", "inflection_peak", "constant_cell", "uniform_random")
RANDOM_DRAWS = 64


def _events(video: dict):
    """(event index, frame, (x, y)) of every ground-truth event on a scored frame with ±1 frames in range."""
    n = len(video["scores"])
    for i, (frame, xy) in enumerate(zip(np.asarray(video["event_frames"]).reshape(-1), video["event_xy"])):
        frame = int(frame)
        if 1 <= frame < n - 1 and np.isfinite(video["scores"][frame]):
            yield i, frame, (float(xy[0]), float(xy[1]))


def _map(video: dict, frame: int, polarity: str) -> np.ndarray:
    m = video["maps"][frame]
    return m if polarity == "peak" else 1.0 - m


def _locations(video, i, frame, offset, polarity, constant_xy, size, rng) -> dict[str, list[tuple[float, float]]]:
    """Each locator's (x, y) candidates for event i, using the maps of `frame + offset`."""
    t = frame + offset
    magnitude = (
        video["inflection_event_maps"][i] if offset == 0 else video["inflection_event_maps_pm1"][i][int(offset > 0)]
    )
    m = _map(video, t, polarity)
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return {
        "map_cell": [spatial_metrics.map_cell_peak(m, size)],
        "attended_peak": [spatial_metrics.attended_peak_xy(m, magnitude)],
        "inflection_peak": [(col + 0.5, row + 0.5)],
        "constant_cell": [constant_xy],
        "uniform_random": list(zip(rng.uniform(0, size[1], RANDOM_DRAWS), rng.uniform(0, size[0], RANDOM_DRAWS))),
    }


def localisation(test: list[dict], polarity: str, constant_cell: tuple[int, int] | None) -> dict:
    """The table of the module docstring over `test`'s scored videos (each with maps [N,h,w], event_xy,
    inflection_event_maps [E,H,W] and inflection_event_maps_pm1 [E,2,H,W]); {} without events."""
    if not test:
        return {}
    size = tuple(test[0]["frame_size"])
    h, w = test[0]["maps"].shape[1:]
    radius = max(size[0] / h, size[1] / w)
    cell = constant_cell or (h - 1, w // 2)
    constant_xy = ((cell[1] + 0.5) * size[1] / w, (cell[0] + 0.5) * size[0] / h)
    rng = np.random.default_rng(0)
    hits = {name: {0: [], 1: []} for name in LOCATORS}
    distances = {name: [] for name in LOCATORS}
    for video in test:
        if "inflection_event_maps_pm1" not in video:
            return {}
        for i, frame, (x, y) in _events(video):
            for offset in (0, -1, 1):
                for name, candidates in _locations(video, i, frame, offset, polarity, constant_xy, size, rng).items():
                    d = np.array([np.hypot(px - x, py - y) for px, py in candidates])
                    hits[name][abs(offset)].append(float(np.mean(d <= radius)))
                    if offset == 0:
                        distances[name].append(float(np.median(d)))
    if not distances["map_cell"]:
        return {}
    side = max(size)
    return {
        "num_events": len(distances["map_cell"]),
        "pointing_radius_px": radius,
        "frame_side_px": side,
        "map_polarity": polarity,
        "locators": {
            name: {
                "pointing_accuracy": float(np.mean(hits[name][0])),
                "pointing_accuracy_pm1": float(np.mean(hits[name][1])),
                "median_distance_px": float(np.median(distances[name])),
                "mean_distance_px": float(np.mean(distances[name])),
                "median_distance_frac": float(np.median(distances[name]) / side),
            }
            for name in LOCATORS
        },
    }
