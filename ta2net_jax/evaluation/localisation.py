"""Where the sound comes from, measured against exact contact points (synthetic splits): each locator's
(x, y) at every ground-truth event, beside two priors.

Locators (pixels of the model input, H×W):
  map_cell          centre of the source map's chosen cell (the polarity chosen on validation); also the peak
                    of the map upsampled bilinearly (metrics.spatial `upsample_map`): a bilinear surface
                    peaks at a node, i.e. a cell centre
  attended_centroid centroid of the inflection magnitude weighted by the upsampled map, over its top part
                    (metrics.spatial `attended_centroid_xy`, settings chosen on the tuning split by
                    `tune_centroid`): what `ta2net detect` reports for the model
  attended_peak     the largest such pixel (`attended_peak_xy`; what detect reported before the centroid)
  inflection_peak   largest inflection magnitude anywhere (the training-free method's location)
The inflection magnitude is summed over the frame and its neighbours (inflection_energy.location_magnitude,
`LOCATION_HALF_WINDOW`), as detect does.
  constant_cell     the centre of the one cell that points best on the tuning split, always (a prior)
  uniform_random    a uniformly random pixel (a prior; 64 draws per event, fixed seed)

Per locator: pointing accuracy at the event frame (a hit: within `POINTING_RADIUS_PX` of the contact: one cell
of the paper's stride-16 map, whatever the map's own resolution, so models with finer maps are held to the
same rule), the same with the maps of the frames one before and one after
the event (mean of the two: a detection one frame off), and the median and mean distance in pixels to the
contact, with the median also as a fraction of the frame side max(H, W).
"""

from __future__ import annotations

import itertools

import numpy as np

from ta2net_jax.evaluation.metrics import spatial as spatial_metrics

LOCATORS = ("map_cell", "attended_centroid", "attended_peak", "inflection_peak", "constant_cell", "uniform_random")
RANDOM_DRAWS = 64
POINTING_RADIUS_PX = 16.0


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


def _locations(
    video, i, frame, offset, polarity, constant_xy, size, rng, centroid
) -> dict[str, list[tuple[float, float]]]:
    """Each locator's (x, y) candidates for event i, using the maps of `frame + offset`."""
    t = frame + offset
    magnitude = (
        video["inflection_event_maps"][i] if offset == 0 else video["inflection_event_maps_pm1"][i][int(offset > 0)]
    )
    m = _map(video, t, polarity)
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return {
        "map_cell": [spatial_metrics.map_cell_peak(m, size)],
        "attended_centroid": [spatial_metrics.attended_centroid_xy(m, magnitude, **centroid)],
        "attended_peak": [spatial_metrics.attended_peak_xy(m, magnitude)],
        "inflection_peak": [(col + 0.5, row + 0.5)],
        "constant_cell": [constant_xy],
        "uniform_random": list(zip(rng.uniform(0, size[1], RANDOM_DRAWS), rng.uniform(0, size[0], RANDOM_DRAWS))),
    }


def tune_centroid(tune: list[dict], polarity: str) -> dict | None:
    """The `attended_centroid_xy` settings of metrics.spatial.CENTROID_GRID that point best on the tuning
    split's events (ties: the smaller median distance, then the earlier in the grid); None without events."""
    events = [
        (_map(v, frame, polarity), v["inflection_event_maps"][i], xy)
        for v in tune
        if "inflection_event_maps" in v
        for i, frame, xy in _events(v)
    ]
    if not events:
        return None
    grid = spatial_metrics.CENTROID_GRID
    best, best_key = None, None
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values))
        located = [spatial_metrics.attended_centroid_xy(m, mag, **settings) for m, mag, _ in events]
        d = np.array([np.hypot(px - x, py - y) for (px, py), (_, _, (x, y)) in zip(located, events)])
        key = (-float(np.mean(d <= POINTING_RADIUS_PX)), float(np.median(d)))
        if best_key is None or key < best_key:
            best, best_key = settings, key
    return best


def localisation(
    test: list[dict], polarity: str, constant_cell: tuple[int, int] | None, centroid: dict | None = None
) -> dict:
    """The table of the module docstring over `test`'s scored videos (each with maps [N,h,w], event_xy,
    inflection_event_maps [E,H,W] and inflection_event_maps_pm1 [E,2,H,W]); {} without events. `centroid`:
    the attended centroid's settings (default metrics.spatial.DEFAULT_CENTROID)."""
    if not test:
        return {}
    centroid = dict(centroid or spatial_metrics.DEFAULT_CENTROID)
    size = tuple(test[0]["frame_size"])
    h, w = test[0]["maps"].shape[1:]
    radius = POINTING_RADIUS_PX
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
                for name, candidates in _locations(
                    video, i, frame, offset, polarity, constant_xy, size, rng, centroid
                ).items():
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
        "attended_centroid": centroid,
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
