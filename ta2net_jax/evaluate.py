"""`ta2net eval`: score a checkpoint and the training-free baseline on a split, write `eval.json`.

1. Every video of the tuning split (validation) and of the reported split (test) is scored by sliding
   windows (inference.py) and by the inflection-energy baseline (baseline.py).
2. Each detector's threshold is tuned on the tuning split only (events.tune_threshold: best pooled
   one-to-one F1 at ±`eval.tolerance` frames), never on the reported split.
3. Events (events.pick_events) are scored on the reported split by metrics.evaluate_videos: the
   original ±3 metric (mean over videos) and one-to-one F1 at ±1/2/3 frames (pooled; video means too).

Outputs in the workdir: eval.json, detector.json (thresholds `ta2net detect` uses) and timeline PNGs of
the first few reported videos under eval_plots/.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np

from ta2net_jax import baseline, events as events_lib, metrics, mesh as mesh_lib
from ta2net_jax.inference import Predictor, map_peak, predict_videos

NUM_PLOTS = 4


def score_split(config, predictor: Predictor, split: str, *, max_videos: int | None = None,
                progress: bool = True) -> list[dict]:
    """Per video of this process's share of `split`: scores [N], maps [N,h,w], baseline [N], ground truth."""
    from tqdm import tqdm
    from input_pipeline import pipeline

    source = pipeline.data_source(config.data, split)
    videos = pipeline.eval_videos(config, source, process_index=jax.process_index(),
                                  process_count=jax.process_count(), max_videos=max_videos)
    total = len(videos)
    results = []
    for video in tqdm(predict_videos(predictor, iter(videos)), total=total, desc=f"eval {split}", unit="video",
                      disable=not progress):
        video["baseline"] = baseline.inflection_scores(video.pop("video_flow_fwd"), video.pop("video_flow_bwd"))
        results.append(video)
    return results


def pointing_accuracy(videos: list[dict], image_size: tuple[int, int]) -> float | None:
    """Fraction of ground-truth events (on scored frames) whose contact point lies within one map cell
    of the centre of the sound-source map's highest cell at the event frame."""
    hits = total = 0
    for v in videos:
        h, w = v["maps"].shape[1:]
        cell = max(image_size[0] / h, image_size[1] / w)
        for frame, (x, y) in zip(v["event_frames"], v["event_xy"]):
            if 0 <= frame < len(v["scores"]) and np.isfinite(v["scores"][frame]):
                px, py = map_peak(v["maps"][frame], image_size)
                hits += int(np.hypot(px - x, py - y) <= cell)
                total += 1
    return hits / total if total else None


def detector_metrics(videos: list[dict], key: str, threshold: float, min_separation: int) -> dict:
    pairs = [(events_lib.pick_events(v[key], threshold, min_separation=min_separation)[0], v["event_frames"])
             for v in videos]
    return metrics.evaluate_videos(pairs)


def evaluate(config, workdir: str, *, step: int | None = None, max_videos: int | None = None,
             progress: bool = True) -> dict:
    from ta2net_jax.plots import plot_timeline
    from ta2net_jax.train import load_model_for_inference

    model, step = load_model_for_inference(config, workdir, step)
    mesh = mesh_lib.make_mesh(config.mesh)
    predictor = Predictor(model, config, mesh)
    cfg = config.eval
    tune = score_split(config, predictor, cfg.tune_split, max_videos=max_videos, progress=progress)
    report = score_split(config, predictor, cfg.split, max_videos=max_videos, progress=progress)

    thresholds = {}
    for key in ("scores", "baseline"):
        thresholds[key], _ = events_lib.tune_threshold([(v[key], v["event_frames"]) for v in tune],
                                                       tol=cfg.tolerance, min_separation=cfg.min_separation)
    model_metrics = detector_metrics(report, "scores", thresholds["scores"], cfg.min_separation)
    baseline_metrics = detector_metrics(report, "baseline", thresholds["baseline"], cfg.min_separation)
    validation = detector_metrics(tune, "scores", thresholds["scores"], cfg.min_separation)
    frame_size = tuple(report[0]["frame_size"]) if report else (0, 0)
    result = {
        "split": cfg.split,
        "checkpoint_step": int(step),
        "threshold": thresholds["scores"],
        "tuned_on": cfg.tune_split,
        "validation_event_f1_tol3": validation["event_f1_tol3"],
        **model_metrics,
        "spatial_pointing_accuracy": pointing_accuracy(report, frame_size),
        "baseline": {"method": "inflection_energy", "threshold": thresholds["baseline"], **baseline_metrics},
        "inference": {"window": config.data.num_frames, "stride": cfg.stride, "overlap": "mean of softmax",
                      "events": "runs above threshold -> one event at the run's peak",
                      "min_separation": cfg.min_separation, "unscored_frames": "first 2 and last 2 of each video",
                      "inflection_mode": config.inflection.mode},
    }
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(workdir, "detector.json"), "w") as f:
            json.dump({"model_threshold": thresholds["scores"], "inflection_threshold": thresholds["baseline"],
                       "min_separation": cfg.min_separation, "checkpoint_step": int(step)}, f, indent=2)
        plot_dir = os.path.join(workdir, "eval_plots")
        os.makedirs(plot_dir, exist_ok=True)
        for v in report[:NUM_PLOTS]:
            detected = events_lib.pick_events(v["scores"], thresholds["scores"], min_separation=cfg.min_separation)[0]
            plot_timeline(os.path.join(plot_dir, f"{v['id']}.png"), v["scores"], fps=v["fps"], events=detected,
                          labels=v["event_frames"], threshold=thresholds["scores"],
                          title=f"{v['id']}: P(audible), step {step}",
                          extra_curves={"inflection energy (z / max)": _unit(v["baseline"])})
    return result


def _unit(x: np.ndarray) -> np.ndarray:
    peak = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 1.0
    return x / max(peak, 1e-12)
