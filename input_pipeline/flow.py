"""Dense optical flow between consecutive frames (the input of the inflection flow).

``estimate_flow(frames)`` returns raw forward and backward flow in pixels, stored as float16:

* ``fwd[k]``: displacement from frame k to frame k+1, at the pixels of frame k;
* ``bwd[k]``: displacement from frame k+1 to frame k, at the pixels of frame k+1;

with ``u = flow[..., 0]`` along +x (right) and ``v = flow[..., 1]`` along +y (down): the pixel (x, y) of
the source frame moves to (x + u, y + v). This matches the original's forward ``k -> k+1`` and backward
``k+1 -> k`` files (docs/original.md §4.1), but keeps raw (u, v) instead of colour-wheel images.

Estimators (OpenCV on the CPU, and one in JAX):

* ``"dis"`` (default): ``cv2.DISOpticalFlow``; settings in :data:`DIS_OPTIONS` and the note there.
* ``"farneback"``: ``cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)``.
* ``"tvl1"``: ``cv2.optflow.DualTVL1OpticalFlow_create()`` with OpenCV's defaults (0.4-0.9 s per 112×112
  pair on one core); needs ``opencv-contrib-python-headless``.
* ``"tvl1-jax"``: the same TV-L1 (OpenCV's algorithm and defaults) written in JAX (flow_jax.py), batches of
  pairs sharded over the local devices; EPE within 0.1 % of OpenCV's (benchmarks/RESULTS.md). `ta2net detect
  --flow tvl1-jax` with a model does not call this: it computes the flow inside the model's jitted program
  (ta2net_jax/detection/fused.py).

float16 storage: the rounding error is at most 2^-11 of the magnitude (0.05 %), i.e. <= 0.0005 px below
1 px, <= 0.004 px up to 16 px and <= 0.016 px up to 64 px — far below the estimators' own errors (tenths
of a pixel, benchmarks/RESULTS.md). Flow is estimated on grayscale frames (BT.601 luma, converted once
per frame).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from input_pipeline import progress

__all__ = [
    "FLOW_METHODS",
    "DIS_OPTIONS",
    "FlowOnDemand",
    "estimate_flow",
    "endpoint_error",
    "flow_on_demand",
    "to_gray",
]

FLOW_METHODS = ("dis", "farneback", "tvl1", "tvl1-jax")

# DIS settings: preset FAST, but estimated at full resolution (finest_scale 0). The presets stop at 1/4
# (FAST, ULTRAFAST) or 1/2 (MEDIUM) resolution and upsample: at 112x112 that is a 28x28 or 56x56 flow
# field with blurred object boundaries. OpenCV already drops to full resolution by itself below ~90 px
# (its pyramid is too short there), so at 48-64 px this equals plain FAST. Measured on synthetic clips
# (benchmarks/flow_estimators.py: 8 videos x 31 pairs; EPE on moving pixels / ms per flow field, one core):
#   112 px: FAST 1.57 px / 0.5 ms, MEDIUM 0.93 / 1.9, FAST + finest_scale 1 0.95 / 1.6,
#           FAST + finest_scale 0 0.81 / 6.1 (chosen; also lowest all-pixel EPE among DIS, 0.57);
#    64 px: FAST (= finest_scale 0) 0.54 / 1.8, MEDIUM 0.81 / 0.6.
# Where speed matters more (fwd + bwd of a 64-frame 112x112 clip take 0.77 s), {"finest_scale": 1} is
# 3-4x faster for +16 % moving EPE at 112 px. A smoother variational refinement (alpha 40 or 80) cut
# the EPE of static pixels by 5-8 % but raised that of moving pixels by 12-42 %, and a Gaussian pre-blur
# (sigma 1) changed both by < 10 %, so those stay at OpenCV's values.
DIS_OPTIONS: dict = {"preset": cv2.DISOPTICAL_FLOW_PRESET_FAST, "finest_scale": 0}

_DIS_SETTERS = {
    "finest_scale": "setFinestScale",
    "patch_size": "setPatchSize",
    "patch_stride": "setPatchStride",
    "gradient_descent_iterations": "setGradientDescentIterations",
    "variational_refinement_iterations": "setVariationalRefinementIterations",
    "variational_refinement_alpha": "setVariationalRefinementAlpha",
    "variational_refinement_delta": "setVariationalRefinementDelta",
    "variational_refinement_gamma": "setVariationalRefinementGamma",
    "use_mean_normalization": "setUseMeanNormalization",
    "use_spatial_propagation": "setUseSpatialPropagation",
}


def _usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one: Linux; else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def to_gray(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 RGB -> ``[N, H, W]`` uint8 luma (one conversion per frame)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [N, H, W, 3] uint8 RGB, got {frames.dtype} {frames.shape}")
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def _dis(options: Mapping):
    unknown = set(options) - set(_DIS_SETTERS) - {"preset"}
    if unknown:
        raise ValueError(f"unknown DIS options {sorted(unknown)}; known: preset, {', '.join(_DIS_SETTERS)}")
    dis = cv2.DISOpticalFlow_create(int(options.get("preset", cv2.DISOPTICAL_FLOW_PRESET_FAST)))
    for key, setter in _DIS_SETTERS.items():
        if key in options:
            getattr(dis, setter)(options[key])
    return lambda a, b: dis.calc(a, b, None)


def _farneback():
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _tvl1():
    if not hasattr(cv2, "optflow"):
        raise RuntimeError(
            "TV-L1 flow needs cv2.optflow, which only opencv-contrib-python-headless "
            "provides (pip uninstall opencv-python-headless; "
            "pip install opencv-contrib-python-headless)"
        )
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda a, b: tvl1.calc(a, b, None)


def _factory(method: str, dis_options: Mapping | None):
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")
    if method == "dis":
        return lambda: _dis({**DIS_OPTIONS, **(dis_options or {})})
    if dis_options:
        raise ValueError(f"dis_options only apply to method 'dis', not {method!r}")
    return _farneback if method == "farneback" else _tvl1


def estimate_flow(
    frames: np.ndarray,
    method: str = "dis",
    *,
    workers: int | None = 1,
    dis_options: Mapping | None = None,
    tvl1_options: Mapping | None = None,
    backward: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Forward and backward optical flow between consecutive frames.

    Args:
      frames: ``[N, H, W, 3]`` uint8 RGB, N >= 2.
      method: one of :data:`FLOW_METHODS`.
      workers: threads over frame pairs (OpenCV releases the GIL). Each thread has its own estimator and
        writes fixed output slots, so the result does not depend on ``workers``. None: one per core this
        process may run on (for callers outside a worker pool: `detect`, `eval`; DIS at 64 px on 2 cores
        runs 2-3x faster with 2 threads than with 1).
      dis_options: overrides of :data:`DIS_OPTIONS` (method "dis" only), e.g. ``{"preset": 1}``.
      tvl1_options: overrides of flow_jax.SETTINGS (method "tvl1-jax" only), e.g. ``{"lambda_": 0.6}``.
      backward: False: ``bwd`` is None and, with OpenCV's estimators, never estimated (the forward fields are the
        same): for a detector that reads only the forward flow (the reference), half the work and the memory.

    Returns:
      ``(fwd, bwd)``, each ``[N-1, H, W, 2]`` float16 (u, v) in pixels: ``fwd[k]`` maps frame k to k+1 at
      the pixels of frame k, ``bwd[k]`` maps frame k+1 to k at the pixels of frame k+1.
    """
    _check_tvl1_options(method, tvl1_options)
    if method == "tvl1-jax":  # the same TV-L1 on the JAX devices (flow_jax.py), a batch of pairs per call
        from input_pipeline import flow_jax_batch

        if len(frames) < 2:
            raise ValueError(f"need at least 2 frames for optical flow, got {len(frames)}")
        fwd, bwd = flow_jax_batch.estimate_flow_batch(to_gray(frames), **(tvl1_options or {}))
        return fwd.astype(np.float16), bwd.astype(np.float16) if backward else None
    make = _factory(method, dis_options)
    make()  # fail fast (unknown option, missing cv2.optflow) before any work
    gray = to_gray(frames)
    n, h, w = gray.shape
    if n < 2:
        raise ValueError(f"need at least 2 frames for optical flow, got {n}")
    fwd = np.empty((n - 1, h, w, 2), np.float16)
    bwd = np.empty((n - 1, h, w, 2), np.float16) if backward else None
    local = threading.local()
    lock = threading.Lock()
    stop = threading.Event()

    with progress.bar(n - 1, f"flow ({method})", unit="pair") as bar:

        def run(ks):
            if not hasattr(local, "calc"):
                local.calc = make()
            try:
                for k in ks:
                    if stop.is_set():
                        return
                    fwd[k] = local.calc(gray[k], gray[k + 1])
                    if backward:
                        bwd[k] = local.calc(gray[k + 1], gray[k])
                    with lock:
                        bar.update()
            except BaseException:  # the other threads stop after their current pair (the main one may be
                stop.set()  # waiting on another chunk's result, pool.map's order)
                raise

        workers = _usable_cores() if workers is None else int(workers)
        workers = max(1, min(workers, n - 1))
        if workers == 1:
            run(range(n - 1))
        else:
            chunks = np.array_split(np.arange(n - 1), workers)
            with ThreadPoolExecutor(workers) as pool:
                try:
                    list(pool.map(run, chunks))  # list() re-raises a worker's exception
                except BaseException:  # Ctrl-C (a worker's error has set it): the pool's exit waits one pair
                    stop.set()
                    raise
    return fwd, bwd


def _check_tvl1_options(method: str, tvl1_options: Mapping | None) -> None:
    if tvl1_options and method != "tvl1-jax":
        raise ValueError(f"tvl1_options only apply to method 'tvl1-jax', not {method!r}")


class _PairFlows:
    """Forward and backward flow of single frame pairs, estimated when first asked for and kept."""

    def __init__(
        self, frames: np.ndarray, method: str, dis_options: Mapping | None, tvl1_options: Mapping | None = None
    ):
        _check_tvl1_options(method, tvl1_options)
        self.tvl1_options = dict(tvl1_options or {})
        self.frames = np.asarray(frames)
        to_gray(self.frames[:1])  # the same shape and dtype errors as estimate_flow, before any work
        if len(self.frames) < 2:
            raise ValueError(f"need at least 2 frames for optical flow, got {len(self.frames)}")
        self._calc = None if method == "tvl1-jax" else _factory(method, dis_options)()
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._pairs:
            gray = to_gray(self.frames[k : k + 2])
            if self._calc is None:
                from input_pipeline import flow_jax_batch

                fwd, bwd = (f[0] for f in flow_jax_batch.estimate_flow_batch(gray, **self.tvl1_options))
            else:
                fwd, bwd = self._calc(gray[0], gray[1]), self._calc(gray[1], gray[0])
            self._pairs[k] = fwd.astype(np.float16), bwd.astype(np.float16)
        return self._pairs[k]

    def __len__(self) -> int:
        """Pairs estimated so far."""
        return len(self._pairs)


class FlowOnDemand:
    """One direction of `estimate_flow`'s output, ``[N-1, H, W, 2]`` float16, each field estimated the first
    time it is indexed (both directions of its pair at once) and kept.

    For callers that read a few fields of a long video: `ta2net detect` locates the events of a video it
    scores as phases (those phases have their own flow) from ≈ 6 native fields per event, not all N − 1.
    ``field[k]`` equals ``estimate_flow(frames, method)[i][k]`` exactly (the estimators treat pairs
    independently; tests/test_flow.py). Indexing takes an int, or a slice or int sequence (stacked).
    """

    dtype = np.dtype(np.float16)
    ndim = 4

    def __init__(self, pairs: _PairFlows, direction: int):
        self._pairs, self._direction = pairs, direction
        n, h, w = pairs.frames.shape[:3]
        self.shape = (n - 1, h, w, 2)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            k = int(index) + (len(self) if index < 0 else 0)
            if not 0 <= k < len(self):
                raise IndexError(f"flow field {index} out of range for {len(self)} fields")
            return self._pairs.get(k)[self._direction]
        ks = range(len(self))[index] if isinstance(index, slice) else index
        return np.stack([self[k] for k in ks]) if len(ks) else np.empty((0, *self.shape[1:]), self.dtype)

    @property
    def estimated(self) -> int:
        """Pairs estimated so far."""
        return len(self._pairs)


def flow_on_demand(
    frames: np.ndarray, method: str = "dis", *, dis_options: Mapping | None = None, tvl1_options: Mapping | None = None
) -> tuple[FlowOnDemand, FlowOnDemand]:
    """`estimate_flow`'s ``(fwd, bwd)`` as `FlowOnDemand` fields: nothing is estimated until read."""
    pairs = _PairFlows(frames, method, dis_options, tvl1_options)
    return FlowOnDemand(pairs, 0), FlowOnDemand(pairs, 1)


def endpoint_error(estimated: np.ndarray, exact: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean end-point error in pixels: mean of ``|estimated - exact|_2`` over the pixels where ``mask``.

    Args:
      estimated, exact: ``[..., H, W, 2]`` flow (u, v) in pixels (any float dtype; computed in float32+).
      mask: optional boolean ``[..., H, W]`` selecting the pixels to average; NaN if it selects none.
    """
    estimated = np.asarray(estimated, np.float64)
    exact = np.asarray(exact, np.float64)
    if estimated.shape != exact.shape or estimated.shape[-1] != 2:
        raise ValueError(f"flow shapes differ or lack a trailing (u, v) axis: {estimated.shape} vs {exact.shape}")
    err = np.linalg.norm(estimated - exact, axis=-1)
    if mask is None:
        return float(err.mean())
    mask = np.broadcast_to(np.asarray(mask, bool), err.shape)
    return float(err[mask].mean()) if mask.any() else float("nan")
