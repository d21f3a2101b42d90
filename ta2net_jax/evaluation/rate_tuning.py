"""`ta2net eval`: the analysis rate (detection/analysis_rate.py) chosen on the tuning split.

For each bound of ``eval.analysis_max_fps`` (frames per second; the native rate is always a candidate), every
video of both splits whose stride at that bound is > 1 is scored again as interleaved phases, as
``ta2net detect`` would score it: by the model and, with ``--locator``, by the locator too, blended with the
weight already chosen at the native rate; the phases' flow is estimated from the stored frames with the
dataset's estimator. The model's picking stays the one tuned at the native rate on every video (so a video
below the bound, e.g. every real clip of ``../shared/realdata`` at 15–30 fps, is picked exactly as without
this step); the re-scored videos get their own threshold, tuned on them alone (interleaved phase curves have
more high isolated peaks than a native curve: on generator v2 0.64 against 0.51). The candidate with the
best pooled F1 over the whole tuning split wins (ties: the native rate, then the higher bound); its scores,
maps and threshold replace the native ones for the re-scored videos in everything eval reports.
detector.json records the bound, the phase threshold (``analysis_rate``) and the validation F1 of each
candidate.

Cost: the re-scored videos (45–60 fps ones at a 30 fps bound: about 40 % of generator v2) take as long again
as at the native rate, plus their flow. With several processes each process re-scores them all itself.
"""

from __future__ import annotations

import numpy as np

from input_pipeline import pipeline, registry
from ta2net_jax.detection import analysis_rate, events as events_lib
from ta2net_jax.detection.detectors import blend_timing
from ta2net_jax.evaluation.metrics import timing as metrics
from ta2net_jax.inference import Predictor, predict_video

__all__ = ["choose_analysis_rate", "picking_for"]


def _stored_frames(config, split: str, ids: set[str]) -> dict[str, np.ndarray]:
    """Frames [N, H, W, 3] of the videos `ids` of `split`, read from the dataset."""
    source = pipeline.data_source(config.data, split)
    found: dict[str, np.ndarray] = {}
    for i in range(len(source)):
        if len(found) == len(ids):
            break
        example = source[i]
        video_id = example["id"].decode() if isinstance(example["id"], bytes) else str(example["id"])
        if video_id in ids:
            found[video_id] = example["frames"]
    missing = ids - set(found)
    if missing:
        raise RuntimeError(f"{split}: videos {sorted(missing)[:3]} scored by eval are not in the dataset")
    return found


def _phase_scorer(config, predictor: Predictor, locator: Predictor | None, weight: float, flow_method: str):
    """score_phase for analysis_rate.score_phases: the model's (blended) P(audible) and its maps, the phase's
    flow estimated from its frames with `flow_method` (the dataset's estimator)."""
    from input_pipeline import flow as flow_lib

    def predict(p, frames, flow_fwd, flow_bwd, fps):
        example = {
            "id": "phase",
            "fps": fps,
            "frames": frames,
            "flow_fwd": flow_fwd,
            "flow_bwd": flow_bwd,
            "event_frames": np.zeros(0, np.int64),
        }
        return predict_video(p, example, config.data.num_frames, config.eval.stride)

    def score_phase(frames, fps):
        flow_fwd, flow_bwd = flow_lib.estimate_flow(frames, flow_method, workers=None)
        video = predict(predictor, frames, flow_fwd, flow_bwd, fps)
        values = video["scores"]
        if locator is not None and weight > 0:
            values = blend_timing(values, predict(locator, frames, flow_fwd, flow_bwd, fps)["scores"], weight)
        return values, video["maps"]

    return score_phase


def _strided(config, score_phase, split: str, videos: list[dict], max_fps: float, progress: bool) -> dict[int, tuple]:
    """{index in `videos`: (scores [N], maps [N, h, w])} for the videos whose stride at `max_fps` is > 1."""
    from input_pipeline.progress import tqdm

    strides = {
        i: analysis_rate.stride_for(v["fps"], max_fps, v["num_frames"], config.data.num_frames)
        for i, v in enumerate(videos)
    }
    todo = [i for i, s in strides.items() if s > 1]
    if not todo:
        return {}
    frames = _stored_frames(config, split, {videos[i]["id"] for i in todo})
    out = {}
    for i in tqdm(todo, desc=f"{split} at ≤ {max_fps:g} fps", unit="video", disable=not progress):
        v = videos[i]
        out[i] = analysis_rate.score_phases(score_phase, frames[v["id"]], v["fps"], strides[i])
    return out


def picking_for(video: dict, picking: events_lib.Picking) -> events_lib.Picking:
    """The model's picking for one scored video: a video scored in phases has its own threshold."""
    threshold = video.get("phase_threshold")
    return picking if threshold is None else picking.replace(threshold=threshold)


def _pooled_f1(videos: list[dict], scores: list, thresholds: list, picking: events_lib.Picking, tol: int) -> float:
    """Pooled one-to-one F1 ±`tol` of `picking` with a threshold per video."""
    pairs = [
        (picking.replace(threshold=t).pick(s, v["fps"])[0], v["event_frames"])
        for v, s, t in zip(videos, scores, thresholds)
    ]
    return metrics.evaluate_videos(pairs, tolerances=(tol,))[f"event_f1_tol{tol}"]


def choose_analysis_rate(
    config,
    predictor: Predictor,
    locator: Predictor | None,
    weight: float,
    splits: dict[str, list[dict]],
    tune_split: str,
    picking: events_lib.Picking,
    progress: bool = True,
) -> dict | None:
    """Chooses the bound on `tune_split` (module doc) given the model's `picking` tuned at the native rate,
    and for the winner replaces `scores`/`maps` of the re-scored videos of every split in `splits` in place
    (with `analysis_stride` and `phase_threshold` set on them). Returns detector.json's ``analysis_rate``
    record, or None when ``eval.analysis_max_fps`` names no bound."""
    bounds = [float(b) for b in config.eval.get("analysis_max_fps", ()) if b]
    if not bounds:
        return None
    tol = config.eval.tolerance
    score_phase = _phase_scorer(config, predictor, locator, weight, registry.input_spec(config.data).flow_method)
    tune = splits[tune_split]
    native = picking.threshold
    f1_by_bound = {"native": _pooled_f1(tune, [v["scores"] for v in tune], [native] * len(tune), picking, tol)}
    candidates = {}
    for bound in sorted(bounds, reverse=True):
        rescored = _strided(config, score_phase, tune_split, tune, bound, progress)
        if not rescored:
            f1_by_bound[f"{bound:g}"] = f1_by_bound["native"]
            continue
        # The phase-scored videos' own threshold, tuned on them alone; the others keep the native picking.
        phase_picking, _ = events_lib.tune_picking(
            [(s, tune[i]["event_frames"], tune[i]["fps"]) for i, (s, _) in rescored.items()], picking, tol=tol
        )
        scores = [rescored[i][0] if i in rescored else v["scores"] for i, v in enumerate(tune)]
        thresholds = [phase_picking.threshold if i in rescored else native for i in range(len(tune))]
        f1_by_bound[f"{bound:g}"] = _pooled_f1(tune, scores, thresholds, picking, tol)
        candidates[bound] = (rescored, phase_picking.threshold)
    best = max(candidates, key=lambda b: (f1_by_bound[f"{b:g}"], b), default=None)
    record = {"max_fps": None, "threshold": None, f"{tune_split}_f1_by_max_fps": f1_by_bound}
    if best is None or f1_by_bound[f"{best:g}"] <= f1_by_bound["native"]:
        return record
    rescored, threshold = candidates[best]
    for split, videos in splits.items():
        replaced = rescored if split == tune_split else _strided(config, score_phase, split, videos, best, progress)
        for i, (values, maps) in replaced.items():
            videos[i].update(scores=values, maps=maps, phase_threshold=threshold)
            videos[i]["analysis_stride"] = analysis_rate.stride_for(
                videos[i]["fps"], best, videos[i]["num_frames"], config.data.num_frames
            )
    return {**record, "max_fps": best, "threshold": threshold}
