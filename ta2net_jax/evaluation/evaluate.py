"""`ta2net eval`: score a checkpoint and the training-free baseline on a split; write eval.json and report.md.

1. Every video of the tuning split (validation) and of the reported split (test) is scored by sliding
   windows (inference.py) and by the inflection-energy baseline (baseline.py).
2. Each detector's threshold is tuned on the tuning split only (events.tune_threshold: best pooled
   one-to-one F1 at ±`eval.tolerance` frames), never on the reported split. So is the polarity of the
   sound-source map (its highest or its lowest cell; CCAM is unsupervised): the one with the higher pointing
   accuracy on the tuning split (ties: "peak"), recorded in detector.json for `ta2net detect`.
3. On the reported split (protocols.py, metrics_spatial.py):
   * temporal: the original ±3 metric (mean over videos), one-to-one F1 at ±1/2/3 (pooled; video means),
     AP@δ over score thresholds (local peaks of the score curve ranked by score);
   * counting: GT = number of run-clustered events per video, predicted = #events (and #events − 1),
     normalised MAE, OBO, OBZ, RMSE;
   * spatial: pointing accuracy of the map's chosen cell against the exact contact points, and cIoU / AUC
     (LVS protocol) against the boxes of the colliding objects (from the synthetic raw JSON, when present).

Outputs in the workdir: eval.json, detector.json, eval_per_video.json, report.md, eval_plots/ (timelines
of the first few videos), eval_report/ (PR curves, counts, cIoU success curves, map examples).
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np

from ta2net_jax.detection import inflection_energy as baseline, events as events_lib
from ta2net_jax.evaluation.metrics import timing as metrics
from ta2net_jax import mesh as mesh_lib
from ta2net_jax.evaluation import protocols
from ta2net_jax.evaluation.metrics import spatial
from ta2net_jax.inference import Predictor, local_predictor, predict_videos

NUM_PLOTS = 4
NUM_MAP_EXAMPLES = 6


def score_split(config, predictor: Predictor, split: str, *, max_videos: int | None = None,
                progress: bool = True) -> list[dict]:
    """Per video of this process's share of `split`: scores [N], maps [N,h,w], baseline [N], ground truth,
    and the baseline's inflection-magnitude map at each ground-truth event frame (`baseline_event_maps`)."""
    from tqdm import tqdm
    from input_pipeline import pipeline

    source = pipeline.data_source(config.data, split)
    videos = pipeline.eval_videos(config, source, process_index=jax.process_index(),
                                  process_count=jax.process_count(), max_videos=max_videos)
    total = len(videos)
    results = []
    for video in tqdm(predict_videos(predictor, iter(videos)), total=total, desc=f"eval {split}", unit="video",
                      disable=not progress):
        fwd, bwd = video.pop("video_flow_fwd"), video.pop("video_flow_bwd")
        video["baseline"] = baseline.inflection_scores(fwd, bwd)
        n = video["num_frames"]
        frames = np.clip(np.asarray(video["event_frames"], np.int64), 2, max(n - 3, 2))
        maps = baseline.inflection_magnitude_maps(fwd, bwd) if len(frames) else None
        video["baseline_event_maps"] = maps[frames] if maps is not None else np.zeros((0,) + fwd.shape[1:3])
        results.append(video)
    return results


def pointing_accuracy(videos: list[dict], image_size: tuple[int, int], polarity: str = "peak") -> float | None:
    """Fraction of ground-truth events (on scored frames) whose contact point lies within one map cell
    of the centre of the sound-source map's highest (``polarity="peak"``) or lowest cell at the event frame."""
    hits = total = 0
    for v in videos:
        h, t = spatial.pointing_hits(v["maps"], v["scores"], v["event_frames"], v["event_xy"], image_size, polarity)
        hits, total = hits + h, total + t
    return hits / total if total else None


def detector_metrics(videos: list[dict], key: str, threshold: float, min_separation: int) -> dict:
    pairs = [(events_lib.pick_events(v[key], threshold, min_separation=min_separation)[0], v["event_frames"])
             for v in videos]
    return metrics.evaluate_videos(pairs)


def _baseline_pointing(videos: list[dict], radius: float) -> float | None:
    """Pointing accuracy of the inflection-magnitude peak pixel, within the model's cell radius (pixels)."""
    hits = total = 0
    for v in videos:
        for i, (frame, (x, y)) in enumerate(zip(v["event_frames"], v["event_xy"])):
            if 0 <= frame < len(v["baseline"]) and np.isfinite(v["baseline"][frame]):
                m = v["baseline_event_maps"][i]
                row, col = np.unravel_index(int(np.argmax(m)), m.shape)
                hits += int(np.hypot(col + 0.5 - x, row + 0.5 - y) <= radius)
                total += 1
    return hits / total if total else None


def _chosen_cells(videos: list[dict], polarity: str) -> np.ndarray:
    """Fraction of GT events (scored frames) at which each map cell is the chosen one ([h, w])."""
    counts = None
    for v in videos:
        counts = np.zeros(v["maps"].shape[1:]) if counts is None else counts
        for frame in v["event_frames"]:
            if 0 <= frame < len(v["scores"]) and np.isfinite(v["scores"][frame]):
                m = v["maps"][frame]
                counts[np.unravel_index(int(np.argmax(m) if polarity == "peak" else np.argmin(m)), m.shape)] += 1
    return counts / max(counts.sum(), 1) if counts is not None else np.zeros((0, 0))


def _constant_cell_pointing(tune: list[dict], test: list[dict], image_size) -> dict:
    """The prior: the one cell that points best on the tuning split, always; its accuracy on the test split."""
    def accuracy(videos, cell):
        const = [dict(v, maps=np.broadcast_to(cell, v["maps"].shape)) for v in videos]
        return pointing_accuracy(const, image_size, "peak")
    h, w = tune[0]["maps"].shape[1:]
    onehots = [np.eye(h * w)[i].reshape(h, w) for i in range(h * w)]
    best = max(range(h * w), key=lambda i: (accuracy(tune, onehots[i]) or 0, -i))
    return {"cell_row_col": [best // w, best % w], "pointing_accuracy": accuracy(test, onehots[best])}


def _ciou_samples(config, split: str, videos: list[dict], polarity: str) -> dict:
    """cIoU per GT event with boxes (synthetic raw JSON), for the model map and the baseline map."""
    out = {"model": [], "baseline": [], "examples": []}
    for v in videos:
        raw = spatial.synthetic_raw_json(config.data, split, v["id"])
        if raw is None:
            continue
        event_index = {int(f): i for i, f in reversed(list(enumerate(v["event_frames"])))}
        for frame, boxes in spatial.synthetic_event_boxes(raw):
            if not (0 <= frame < len(v["scores"]) and np.isfinite(v["scores"][frame])):
                continue
            gt = spatial.box_mask(boxes, v["frame_size"])
            m = v["maps"][frame] if polarity == "peak" else 1.0 - v["maps"][frame]
            out["model"].append(spatial.ciou(spatial.binarize_heatmap(m), gt))
            if frame in event_index:
                out["baseline"].append(spatial.ciou(spatial.binarize_heatmap(v["baseline_event_maps"][event_index[frame]]),
                                                    gt))
            if len(out["examples"]) < NUM_MAP_EXAMPLES and (not out["examples"] or out["examples"][-1]["id"] != v["id"]):
                out["examples"].append({"id": v["id"], "frame_index": frame, "map": m, "boxes": boxes,
                                        "raw": raw, "ciou": out["model"][-1]})
    return out


def _scored(videos: list[dict], key: str, threshold: float, min_separation: int) -> list[dict]:
    rows = []
    for v in videos:
        events = events_lib.pick_events(v[key], threshold, min_separation=min_separation)[0]
        count, kind = protocols.gt_count(v["event_frames"])
        rows.append({"id": v["id"], "scores": v[key], "events": events, "gt_frames": v["event_frames"],
                     "gt_count": count, "gt_count_kind": kind})
    return rows


def _predictor(model, config) -> Predictor:
    """One process: the config's mesh. Several: each process scores its own videos on its own devices
    (a local mesh, so the processes need not run the same number of windows), as the trainer's validation."""
    if jax.process_count() == 1:
        return Predictor(model, config, mesh_lib.make_mesh(config.mesh))
    return local_predictor(model, config)


def _all_processes(videos: list[dict]) -> list[dict]:
    """Every process's scored videos on every process (sorted by id when there are several processes)."""
    if jax.process_count() == 1:
        return videos
    from ta2net_jax import distributed
    return sorted((v for part in distributed.allgather_objects(videos) for v in part), key=lambda v: str(v["id"]))


def evaluate(config, workdir: str, *, step: int | None = None, max_videos: int | None = None,
             progress: bool = True, report: bool = True) -> dict:
    from ta2net_jax.train import load_model_for_inference

    model, step = load_model_for_inference(config, workdir, step)
    predictor = _predictor(model, config)
    cfg = config.eval
    tune = _all_processes(score_split(config, predictor, cfg.tune_split, max_videos=max_videos, progress=progress))
    test = _all_processes(score_split(config, predictor, cfg.split, max_videos=max_videos, progress=progress))

    thresholds = {}
    for key in ("scores", "baseline"):
        thresholds[key], _ = events_lib.tune_threshold([(v[key], v["event_frames"]) for v in tune],
                                                       tol=cfg.tolerance, min_separation=cfg.min_separation)
    model_metrics = detector_metrics(test, "scores", thresholds["scores"], cfg.min_separation)
    baseline_metrics = detector_metrics(test, "baseline", thresholds["baseline"], cfg.min_separation)
    validation = detector_metrics(tune, "scores", thresholds["scores"], cfg.min_separation)
    frame_size = tuple(test[0]["frame_size"]) if test else (0, 0)
    scored = {"model": _scored(test, "scores", thresholds["scores"], cfg.min_separation),
              "baseline": _scored(test, "baseline", thresholds["baseline"], cfg.min_separation)}
    temporal = {k: protocols.temporal(rows, cfg.min_separation) for k, rows in scored.items()}
    counting = {k: protocols.counting(rows) for k, rows in scored.items()}
    ap_keys = [k for k in temporal["model"][0] if k.startswith("ap_")]

    pointing_tune = {p: pointing_accuracy(tune, frame_size, p) for p in ("peak", "inverted")}
    polarity = "inverted" if (pointing_tune["inverted"] or 0) > (pointing_tune["peak"] or 0) else "peak"
    cell = max(frame_size[0] / test[0]["maps"].shape[1], frame_size[1] / test[0]["maps"].shape[2]) if test else 0
    cious = {p: _ciou_samples(config, cfg.split, test, p) for p in ("peak", "inverted")}
    spatial_result = {
        "map_polarity": polarity, "map_polarity_chosen_on": cfg.tune_split,
        "validation_pointing_accuracy": pointing_tune,
        "pointing_accuracy": {p: pointing_accuracy(test, frame_size, p) for p in ("peak", "inverted")},
        "pointing_radius_px": cell,
        "ciou": {p: spatial.ciou_summary(cious[p]["model"]) for p in ("peak", "inverted")},
        "ciou_boxes": "union of the colliding objects' boxes (synthetic raw JSON); map resized to 224, median-binarised",
        "chosen_cell_histogram": _chosen_cells(test, polarity).round(3).tolist(),
        "constant_cell_prior": _constant_cell_pointing(tune, test, frame_size) if test and tune else None,
        "baseline_pointing_accuracy": _baseline_pointing(test, cell),
        "baseline_ciou": spatial.ciou_summary(cious["peak"]["baseline"]),
    }
    result = {
        "split": cfg.split,
        "checkpoint_step": int(step),
        "threshold": thresholds["scores"],
        "tuned_on": cfg.tune_split,
        "validation_event_f1_tol3": validation["event_f1_tol3"],
        **model_metrics,
        **{k: temporal["model"][0][k] for k in ap_keys},
        "spatial_pointing_accuracy": spatial_result["pointing_accuracy"]["peak"],
        "spatial_pointing_accuracy_tuned_polarity": spatial_result["pointing_accuracy"][polarity],
        "counting": counting["model"][0],
        "spatial": spatial_result,
        "baseline": {"method": "inflection_energy", "threshold": thresholds["baseline"], **baseline_metrics,
                     **{k: temporal["baseline"][0][k] for k in ap_keys}, "counting": counting["baseline"][0]},
        "inference": {"window": config.data.num_frames, "stride": cfg.stride, "overlap": "mean of softmax",
                      "events": "runs above threshold -> one event at the run's peak",
                      "ap_candidates": "local peaks of the score curve, NMS at min_separation",
                      "min_separation": cfg.min_separation, "unscored_frames": "first 2 and last 2 of each video",
                      "inflection_mode": config.inflection.mode, "processes": jax.process_count()},
    }
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(workdir, "detector.json"), "w") as f:
            json.dump({"model_threshold": thresholds["scores"], "inflection_threshold": thresholds["baseline"],
                       "min_separation": cfg.min_separation, "checkpoint_step": int(step),
                       "map_polarity": polarity}, f, indent=2)
        per_video = {k: {"temporal": temporal[k][1], "counting": counting[k][1]} for k in scored}
        with open(os.path.join(workdir, "eval_per_video.json"), "w") as f:
            json.dump(per_video, f, indent=2, default=lambda x: x.item() if isinstance(x, np.generic) else str(x))
        if report:
            from ta2net_jax.evaluation.eval_report import write_eval_report
            result["report"] = write_eval_report(config, workdir, result, test, scored, temporal, counting, cious,
                                                 thresholds)
    return result
