"""Detectors, each behind one name: the word used by `--method`, in detector.json (`<name>_threshold`), in
eval.json and in the docs.

A detector turns a decoded video and its optical flow into a per-frame score and a per-frame "where" map:

    scores(frames [N,S,S,3] uint8, flow_fwd / flow_bwd [N−1,S,S,2] float (u, v) pixels, fps)
        -> Scores(values [N] float, NaN on unscored frames; maps [N,h,w] float, larger = more likely the source)
    locate(scores, frame) -> (x, y)   pixels of the S×S model input

Registered here: `model` (a trained run's P(audible) and sound-source map; needs a workdir), `inflection`
(training-free robust z-score of inflection-flow energy) and `reference` (the plain yardstick of issue 12:
mean |F⁺_{t+1} − F⁺_t| of grey DIS flow at 112², smoothed, peaks above median + 1·std).

Each detector has a default `picking` (events.Picking: threshold, separation in seconds or frames, prominence
window, "runs"/"peaks"); `ta2net eval` stores tuned ones in detector.json as `<name>_picking`. A detector
may fix its own input (`input_size`, `flow_method`): detect then decodes and estimates flow that way
whatever the run was trained on. Adding one = a class with `register` (see
tests/test_registry.py, which adds a toy detector and runs it through `ta2net detect`).
Light at import (NumPy only): the command line lists the names without loading JAX.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ta2net_jax.detection import analysis_rate
from ta2net_jax.detection.events import Picking


@dataclasses.dataclass
class Scores:
    values: np.ndarray  # [N] per-frame score, NaN where the detector cannot score
    maps: np.ndarray  # [N, h, w] "where" map per frame (any resolution), higher = source
    flow_fwd: np.ndarray | None = None  # kept for locate() of flow-based detectors
    flow_bwd: np.ndarray | None = None


@dataclasses.dataclass
class Run:
    """A trained run as detection sees it: its workdir, config and the detector.json that `ta2net eval` wrote
    (tuned thresholds, map polarity; {} when absent)."""

    workdir: str
    config: object
    tuned: dict


class UnknownDetectorError(ValueError):
    """`--method` names no registered detector."""


class Detector:
    """Base class. `needs_run`: the detector reads a trained run (`--workdir`)."""

    name: ClassVar[str]
    default_threshold: ClassVar[float]
    score_label: ClassVar[str]  # y-axis label of timelines
    needs_run: ClassVar[bool] = False
    input_size: ClassVar[int | None] = None  # None: the run's input size (112 without a run)
    flow_method: ClassVar[str | None] = None  # None: the run's flow estimator ("dis" without a run)
    fixed_picking: ClassVar[bool] = False  # True: a run's eval.min_separation does not apply
    # False: the detector always scores every decoded frame (input_pipeline/frame_repeats.py) and the whole
    # frame, black borders included (input_pipeline/borders.py); the reference is issue 12's fixed
    # definition, so its input is never changed.
    drops_repeats: ClassVar[bool] = True
    crops_borders: ClassVar[bool] = True
    # False: a variable-rate file's flow is taken as estimated, not put per unit interval (frame_times.py).
    normalises_intervals: ClassVar[bool] = True
    # False: `scores` and `locate` read only the forward flow; detect then passes flow_bwd=None and does not
    # estimate it.
    uses_backward_flow: ClassVar[bool] = True
    # True: default_threshold was chosen on the labelled real clips of ../shared/realdata (real_benchmark.py
    # marks its default rows as in-sample; its held-out figure is the leave-one-clip-out row).
    default_fitted_on_real_clips: ClassVar[bool] = False

    @classmethod
    def default_picking(cls) -> Picking:
        return Picking(threshold=cls.default_threshold, min_separation_frames=2)

    def __init__(self, run: Run | None):
        if self.needs_run and run is None:
            raise ValueError(
                f"the {self.name} detector needs --workdir (a trained run); use --method inflection without one"
            )
        self.run = run

    def scores(self, frames: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray, fps: float) -> Scores:
        """Per-frame scores and maps of `frames` (module docstring for the shapes); the flows passed in are
        already per unit interval for a variable-rate file (input_pipeline/frame_times.py)."""
        raise NotImplementedError

    # Scoring a fast video as interleaved phases (analysis_rate.py): the model detector's, from detector.json.
    phase_threshold: float | None = None  # the picking threshold of a phase-scored video (None: the picking's)
    phase_flow_method: str | None = None  # the flow estimator of the phases (detect sets the one it uses)
    tvl1_options: dict | None = None  # TV-L1 settings of "tvl1-jax" flow (detect sets the run's, detector.json)
    # The scored frames' timestamps of a variable-rate file, for the phases' flow (frame_times.per_unit_interval);
    # detect sets them for every video (None: uniform time).
    phase_times_s: np.ndarray | None = None

    def stride(self, num_frames: int, fps: float) -> int:
        """Phases a video of `num_frames` at `fps` is scored as (1: the native rate)."""
        return 1

    def locate(self, scores: Scores, frame: int) -> tuple[float, float]:
        """(x, y) of the event at `frame`, in pixels of the model input: the centre of the map's peak cell."""
        from ta2net_jax.evaluation.metrics.spatial import map_cell_peak

        size = scores.flow_fwd.shape[1:3] if scores.flow_fwd is not None else scores.maps.shape[1:]
        return map_cell_peak(scores.maps[frame], tuple(size))

    def describe(self) -> dict:
        """What detect's JSON records about this detector besides its name and threshold."""
        return {}


_DETECTORS: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: makes `cls` available as `--method cls.name`."""
    _DETECTORS[cls.name] = cls
    return cls


def names() -> tuple[str, ...]:
    return tuple(_DETECTORS)


def get(name: str) -> type[Detector]:
    if name not in _DETECTORS:
        raise UnknownDetectorError(f"unknown detector {name!r}; known: {', '.join(_DETECTORS)}")
    return _DETECTORS[name]


@register
class ModelDetector(Detector):
    """P(audible) of a trained run from sliding windows (inference.py); the map is the CCAM sound-source map
    with the polarity `ta2net eval` chose on validation (docs/evaluation_choices.md); an event is located at
    the centroid of the inflection magnitude weighted by that map (`locate`), with the settings `ta2net eval`
    chose on validation. A bundle with a locator (export/bundle.py `locator/`) takes the maps, and with them
    the locations, from the locator's model (same input size and flow) and the timing from its own, blended
    with the locator's P(audible) when detector.json says so (`locator_timing`, from `ta2net eval --locator`)."""

    name = "model"
    default_threshold = 0.5
    score_label = "P(audible)"
    needs_run = True

    def __init__(self, run: Run | None):
        from ta2net_jax.evaluation.metrics.spatial import DEFAULT_CENTROID

        super().__init__(run)
        self.map_polarity = run.tuned.get("map_polarity", "peak")
        # How `locate` weighs the map against the inflection magnitude, chosen on validation by `ta2net eval`.
        self.centroid = dict(run.tuned.get("attended_centroid") or DEFAULT_CENTROID)
        self._predictor = self._fused = self._model_and_mesh = None
        self.stage = "model"  # the label of its window bar (input_pipeline/progress.py)
        self.step = None  # the checkpoint step used (the newest that restores), once loaded
        # `ta2net eval --locator` tuned the picking on (1 − w)·P_model + w·P_locator: detect blends the same way.
        self.locator_timing = dict(run.tuned.get("locator_timing") or {})
        self.locator = _locator(run)
        if self.locator is not None:
            self.centroid = self.locator.centroid
        # A high-fps video is scored as interleaved phases at no more than max_fps (analysis_rate.py), chosen
        # on validation by `ta2net eval`; their flow comes from the estimator detect uses (VideoDetector sets
        # phase_flow_method; else the run's own, looked up when a phase is first scored).
        rate = run.tuned.get("analysis_rate") or {}
        self.max_fps, self.phase_threshold = rate.get("max_fps"), rate.get("threshold")
        # The picking was tuned on the mean of each window's plain and mirrored pass (inference.py): the same here,
        # for the locator too (its P(audible) is part of the tuned timing curve).
        self.hflip_tta = bool(run.tuned.get("hflip_tta", False))
        if self.locator is not None:
            self.locator.hflip_tta = self.hflip_tta

    def _model(self):
        """The run's model (the newest checkpoint that restores) and mesh, loaded once."""
        if self._model_and_mesh is None:
            from ta2net_jax import mesh as mesh_lib
            from ta2net_jax.checkpoint import load_model_for_inference

            model, self.step = load_model_for_inference(self.run.config, self.run.workdir)
            self._model_and_mesh = model, mesh_lib.make_mesh(self.run.config.mesh)
        return self._model_and_mesh

    def scores(self, frames, flow_fwd, flow_bwd, fps) -> Scores:
        """Per-frame P(audible) and maps; a video above the analysis rate is scored as phases (analysis_rate.py)
        whose flow is estimated here (per unit interval with `phase_times_s`, a variable-rate file's timestamps:
        frame_times.interval_gains), and `flow_fwd`/`flow_bwd` (native rate) are only kept for `locate` (so
        detect passes them as flow.FlowOnDemand)."""
        stride = self.stride(frames.shape[0], fps)
        if stride == 1:
            return self._native_scores(frames, flow_fwd, flow_bwd, fps)
        values, maps = analysis_rate.score_phases(self._phase_scores, frames, fps, stride, self.phase_times_s)
        return Scores(values, maps, flow_fwd, flow_bwd)

    def stride(self, num_frames: int, fps: float) -> int:
        """The phase stride detect uses for a video of `num_frames` at `fps` (1 = native rate)."""
        return analysis_rate.stride_for(fps, self.max_fps, num_frames, self.run.config.data.num_frames)

    def _phase_scores(self, frames, fps, times_s=None) -> tuple[np.ndarray, np.ndarray]:
        from input_pipeline import flow as flow_lib, frame_times, registry

        if self.phase_flow_method is None:
            self.phase_flow_method = registry.input_spec(self.run.config.data).flow_method
        flows = flow_lib.estimate_flow(frames, self.phase_flow_method, workers=None, tvl1_options=self.tvl1_options)
        scored = self._native_scores(frames, *frame_times.per_unit_interval(*flows, times_s, fps), fps)
        return scored.values, scored.maps

    def _native_scores(self, frames, flow_fwd, flow_bwd, fps) -> Scores:
        from ta2net_jax.inference import predict_video

        config = self.run.config
        if self._predictor is None:
            from ta2net_jax.inference import Predictor

            model, mesh = self._model()
            self._predictor = Predictor(model, config, mesh, hflip_tta=self.hflip_tta)
        example = {
            "id": "video",
            "fps": fps,
            "frames": frames,
            "flow_fwd": flow_fwd,
            "flow_bwd": flow_bwd,
            "event_frames": np.zeros(0, np.int64),
        }
        video = predict_video(self._predictor, example, config.data.num_frames, config.eval.stride, self.stage)
        maps = 1.0 - video["maps"] if self.map_polarity == "inverted" else video["maps"]
        return self._located(Scores(video["scores"], maps, flow_fwd, flow_bwd), frames, fps)

    def _located(self, scores: Scores, frames, fps) -> Scores:
        """`scores` with the locator's maps in place of this model's (when the bundle has a locator), and its
        P(audible) blended into the timing with the weight `ta2net eval --locator` chose (0 without one)."""
        if self.locator is None:
            return scores
        where = self.locator.scores(frames, scores.flow_fwd, scores.flow_bwd, fps)
        weight = float(self.locator_timing.get("weight", 0.0))
        values = scores.values
        if weight > 0:
            values = blend_timing(scores.values, where.values, weight)
        return dataclasses.replace(scores, values=values, maps=where.maps)

    def fused_scores(self, frames, fps) -> Scores:
        """`scores` with TV-L1 flow ("tvl1-jax") computed inside the model's jitted program (fused.py): the
        same Scores, flows included (per unit interval with `phase_times_s`), with no host round trip between
        the flow and the model. A video above the analysis rate is scored phase by phase the same way; its
        native-rate flow (for `locate`) is then estimated where `locate` reads it (flow.flow_on_demand)."""
        stride = self.stride(frames.shape[0], fps)
        if stride == 1:
            return self._fused_phase(frames, fps, self.phase_times_s)
        from input_pipeline import flow as flow_lib

        def score_phase(part, phase_fps, times_s=None):
            scored = self._fused_phase(part, phase_fps, times_s)
            return scored.values, scored.maps

        values, maps = analysis_rate.score_phases(score_phase, frames, fps, stride, self.phase_times_s)
        return Scores(values, maps, *flow_lib.flow_on_demand(frames, "tvl1-jax", tvl1_options=self.tvl1_options))

    def _fused_phase(self, frames, fps, times_s=None) -> Scores:
        """One video (or phase) at `fps`; its flow per unit interval with `times_s` ([N] timestamps) as unfused."""
        from input_pipeline import frame_times

        if self._fused is None:
            from ta2net_jax.detection.fused import FusedPredictor

            model, mesh = self._model()
            self._fused = FusedPredictor(
                model, self.run.config, mesh, flow_params=self.tvl1_options, hflip_tta=self.hflip_tta
            )
        video = self._fused.predict_video(frames, frame_times.interval_gains(times_s, fps))
        maps = 1.0 - video["maps"] if self.map_polarity == "inverted" else video["maps"]
        return self._located(Scores(video["scores"], maps, video["flow_fwd"], video["flow_bwd"]), frames, fps)

    def locate(self, scores: Scores, frame: int) -> tuple[float, float]:
        """The centroid of the inflection magnitude inside the region the source map points at (metrics.spatial
        `attended_centroid_xy`; evaluation/localisation.py measures it beside the map's cell centre)."""
        from input_pipeline import inflection_energy
        from ta2net_jax.evaluation.metrics.spatial import attended_centroid_xy

        n = scores.flow_fwd.shape[0] + 1
        t = min(max(int(frame), 2), n - 3)
        return attended_centroid_xy(
            scores.maps[frame],
            inflection_energy.location_magnitude(scores.flow_fwd, scores.flow_bwd, t),
            **self.centroid,
        )

    def describe(self) -> dict:
        return {
            "workdir": self.run.workdir,
            "map_polarity": self.map_polarity,
            "attended_centroid": self.centroid,
            "checkpoint_step": self.step,
            **({"locator": self.locator.describe()} if self.locator is not None else {}),
            **({"locator_timing_weight": self.locator_timing["weight"]} if self.locator_timing else {}),
            **({"analysis_max_fps": self.max_fps} if self.max_fps else {}),
            **({"hflip_tta": True} if self.hflip_tta else {}),
        }


def blend_timing(scores, locator_scores, weight: float) -> np.ndarray:
    """The timing curve of a model with a locator: (1 − weight)·P_model + weight·P_locator, per frame [N]
    (NaN where either is unscored)."""
    return (1.0 - weight) * np.asarray(scores) + weight * np.asarray(locator_scores)


def _locator(run: Run) -> ModelDetector | None:
    """The `model` detector of the run's locator (export/bundle.py `timing_locator_dir`), or None. Its input
    must be the run's (frames are decoded and flow estimated once, at the run's size)."""
    from ta2net_jax.config_utils import run_config
    from ta2net_jax.export import bundle

    folder = bundle.timing_locator_dir(run.workdir, run.tuned)
    if folder is None:
        return None
    config = run_config(folder)
    bundle.check_locator_input(run.config, config, folder)
    locator = ModelDetector(Run(folder, config, bundle.read_tuned(folder)))
    locator.stage = "locator"
    return locator


@register
class InflectionDetector(Detector):
    """Training-free: robust z-score of inflection-flow energy (inflection_energy.py); located at the pixel of
    largest inflection magnitude summed over the event frame and its neighbours (`location_magnitude`)."""

    name = "inflection"
    # Robust z above the 1 s running-median baseline, chosen on the labelled real clips of ../shared/realdata:
    # the pooled F1 ±3 optimum over all of them (`ta2net real-benchmark`: all_clips_picking, 0.5889 since black
    # borders are cropped, 0.4563 after repeated frames were dropped, 0.4706 before; the optimum is a plateau
    # starting there). Its held-out figure is the benchmark's leave-one-clip-out row (docs/RESULTS.md §2). The
    # earlier 2.0 (two robust σ) found 5 of 16 Greatest Hits hits: real footage has a higher floor of ordinary
    # motion change than the synthetic videos the 2.0 was set on.
    default_threshold = 0.59
    default_fitted_on_real_clips = True
    score_label = "inflection energy (robust z)"

    # Default picking when no detector.json says otherwise (docs/evaluation_choices.md): robust z-units above
    # a 1 s running-median baseline, events at least 0.2 s apart whatever the fps.
    MIN_SEPARATION_S = 0.2
    PROMINENCE_WINDOW_S = 1.0

    @classmethod
    def default_picking(cls) -> Picking:
        return Picking(
            threshold=cls.default_threshold,
            min_separation_s=cls.MIN_SEPARATION_S,
            prominence_window_s=cls.PROMINENCE_WINDOW_S,
        )

    def scores(self, frames, flow_fwd, flow_bwd, fps) -> Scores:
        from input_pipeline import inflection_energy

        maps = inflection_energy.inflection_magnitude_maps(flow_fwd, flow_bwd)
        return Scores(inflection_energy.scores_of_maps(maps), maps, flow_fwd, flow_bwd)

    def locate(self, scores: Scores, frame: int) -> tuple[float, float]:
        from input_pipeline import inflection_energy

        return inflection_energy.energy_peak_xy(scores.flow_fwd, scores.flow_bwd, int(frame))


@register
class ReferenceDetector(Detector):
    """The plain reference of issue 12, computed the same way whatever the run: grey DIS flow at 112×112,
    per frame t the mean over pixels of |F⁺_{t+1} − F⁺_t| (vector norm; assigned to frame t as the model's
    inflection flow is, frames N−2 and N−1 unscored), smoothed with [¼, ½, ¼], then the peaks above
    median + 1·std of the smoothed curve, at least 3 frames apart (reference.py). Its score is the
    standardised curve (s − median) / std, so the rule is `pick_events(mode="peaks")` at threshold 1 with
    a 3-frame NMS; located at the pixel of largest |F⁺_{t+1} − F⁺_t|."""

    name = "reference"
    default_threshold = 1.0  # median + 1·std
    score_label = "|ΔF⁺| mean, (s − median)/std"
    input_size = 112
    flow_method = "dis"
    fixed_picking = True
    drops_repeats = False
    crops_borders = False
    normalises_intervals = False
    uses_backward_flow = False

    @classmethod
    def default_picking(cls) -> Picking:
        return Picking(threshold=cls.default_threshold, min_separation_frames=3, mode="peaks")

    def scores(self, frames, flow_fwd, flow_bwd, fps) -> Scores:
        from ta2net_jax.detection import reference

        maps = reference.change_maps(flow_fwd)
        return Scores(reference.scores_of_maps(maps), maps, flow_fwd, flow_bwd)

    def locate(self, scores: Scores, frame: int) -> tuple[float, float]:
        row, col = np.unravel_index(int(np.argmax(scores.maps[frame])), scores.maps.shape[1:])
        return col + 0.5, row + 0.5
