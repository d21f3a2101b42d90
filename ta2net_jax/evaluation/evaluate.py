"""`ta2net eval`: score a checkpoint and the training-free `inflection` detector on a split; write eval.json,
detector.json and report.md.

1. Every video of the tuning split (validation) and of the reported split (test) is scored by sliding
   windows (inference.py) and by the training-free inflection-energy detector (input_pipeline/inflection_energy.py).
2. Each detector's picking is tuned on the tuning split only, never on the reported split
   (`tune_eval_picking`): the threshold with the best pooled one-to-one F1 at ±`eval.tolerance` frames
   (events.tune_picking), for each candidate minimum separation (`eval.min_separation_s` seconds at each
   video's fps, one value or a tuple; else `eval.min_separation` frames) and running-median prominence
   window (`eval.prominence_windows_s`); the best candidate is kept (`eval_pickings`). The tuned picking,
   seconds and window included, is what detector.json stores for detect. So is the polarity of the
   sound-source map (its highest or its lowest cell; CCAM is unsupervised): the one with the higher pointing
   accuracy on the tuning split (ties: "peak"), recorded in detector.json for `ta2net detect`. With
   `--locator RUN2` (the run `export --locator` will pair with this one), the locator's P(audible) is blended
   into the timing curve, (1 − w)·P_model + w·P_locator, w from `eval.locator_timing_weights` chosen on the
   tuning split with the picking (`locator_timing` in detector.json; detect blends the same way).
3. On the reported split (protocols.py, metrics_spatial.py):
   * temporal: the original ±3 metric (mean over videos), one-to-one F1 at ±1/2/3 (pooled; video means),
     AP@δ over score thresholds (local peaks of the score curve ranked by score);
   * counting: GT = number of run-clustered events per video, predicted = #events (and #events − 1),
     normalised MAE, OBO, OBZ, RMSE;
   * spatial: pointing accuracy of the map's chosen cell against the exact contact points, and cIoU / AUC
     (LVS protocol) against the boxes of the colliding objects (from the synthetic raw JSON, when present);
   * which contacts each detector finds, by contact kind and impact speed (contacts.py; synthetic only).

Outputs in the workdir: eval.json, detector.json, eval_per_video.json, report.md, eval_plots/ (timelines
of the first few videos), eval_report/ (PR curves, counts, cIoU success curves, map examples).
"""

from __future__ import annotations

import json
import os
import tempfile

import jax
import numpy as np

from input_pipeline import inflection_energy, paths
from ta2net_jax import mesh as mesh_lib
from ta2net_jax.detection import events as events_lib
from ta2net_jax.detection.detectors import blend_timing
from ta2net_jax.evaluation import contacts, protocols, rate_tuning
from ta2net_jax.evaluation.metrics import timing as metrics
from ta2net_jax.inference import Predictor, local_predictor, predict_videos


def score_split(
    config,
    predictor: Predictor,
    split: str,
    *,
    max_videos: int | None = None,
    progress: bool = True,
    with_inflection: bool = True,
) -> list[dict]:
    """Per video of this process's share of `split`: scores [N], maps [N,h,w], ground truth, and (unless
    `with_inflection` is False) the inflection detector's scores `inflection` [N] and its inflection-magnitude
    map at each ground-truth event frame, summed over the frame's neighbours as detect locates events
    (`inflection_event_maps` [E,H,W]; `inflection_event_maps_pm1` [E,2,H,W] at one frame before and after)."""
    from input_pipeline import pipeline
    from input_pipeline.progress import tqdm

    source = pipeline.data_source(config.data, split)
    videos = pipeline.eval_videos(
        config, source, process_index=jax.process_index(), process_count=jax.process_count(), max_videos=max_videos
    )
    total = len(videos)
    results = []
    for video in tqdm(
        predict_videos(predictor, iter(videos)), total=total, desc=f"eval {split}", unit="video", disable=not progress
    ):
        fwd, bwd = video.pop("video_flow_fwd"), video.pop("video_flow_bwd")
        if not with_inflection:
            results.append(video)
            continue
        per_frame = inflection_energy.inflection_magnitude_maps(fwd, bwd)
        video["inflection"] = inflection_energy.scores_of_maps(per_frame)
        n = video["num_frames"]
        frames = np.clip(np.asarray(video["event_frames"], np.int64), 2, max(n - 3, 2))
        # Summed over each frame's neighbours, as detect locates an event (inflection_energy.location_magnitude).
        maps = inflection_energy.windowed_maps(per_frame) if len(frames) else None
        video["inflection_event_maps"] = maps[frames] if maps is not None else np.zeros((0,) + fwd.shape[1:3])
        # The frames one before and one after each event (localisation.py: a detection one frame off).
        around = np.stack([np.clip(frames - 1, 0, n - 1), np.clip(frames + 1, 0, n - 1)], axis=1)
        video["inflection_event_maps_pm1"] = maps[around] if maps is not None else np.zeros((0, 2) + fwd.shape[1:3])
        results.append(video)
    return results


def eval_pickings(cfg) -> list[events_lib.Picking]:
    """The pickings `eval` tunes a threshold for (`cfg`: config.eval), runs above the threshold: separation
    `min_separation_s` seconds at each video's fps (a number, or a tuple of candidates) when set, else
    `min_separation` frames; times each running-median prominence window of `prominence_windows_s` (seconds;
    default (0,): none)."""
    seconds = cfg.get("min_separation_s")
    candidates = [None] if seconds is None else [float(x) for x in np.atleast_1d(seconds)]
    return [
        events_lib.Picking(
            threshold=0.5,
            min_separation_s=sep,
            min_separation_frames=int(cfg.min_separation),
            prominence_window_s=float(window),
        )
        for sep in candidates
        for window in cfg.get("prominence_windows_s", (0.0,))
    ]


def tune_eval_picking(videos: list[tuple], cfg) -> tuple[events_lib.Picking, float]:
    """The best of `eval_pickings(cfg)` on the tuning split, each with its threshold tuned
    (events.tune_picking): the highest pooled F1 at ±`cfg.tolerance` wins (ties: the earlier candidate).
    `videos`: (scores [N], event frames, fps) of the tuning split."""
    best, best_f1 = None, -1.0
    for base in eval_pickings(cfg):
        picking, f1 = events_lib.tune_picking(videos, base, tol=cfg.tolerance)
        if f1 > best_f1:
            best, best_f1 = picking, f1
    return best, best_f1


def _video_picking(v: dict, key: str, picking: events_lib.Picking) -> events_lib.Picking:
    """The model's picking of a video scored in phases has their threshold (rate_tuning.py)."""
    return rate_tuning.picking_for(v, picking) if key == "scores" else picking


def detector_metrics(videos: list[dict], key: str, picking: events_lib.Picking) -> dict:
    pairs = [(_video_picking(v, key, picking).pick(v[key], v["fps"])[0], v["event_frames"]) for v in videos]
    return metrics.evaluate_videos(pairs)


def _scored(videos: list[dict], key: str, picking: events_lib.Picking) -> list[dict]:
    rows = []
    for v in videos:
        events = _video_picking(v, key, picking).pick(v[key], v["fps"])[0]
        count, kind = protocols.gt_count(v["event_frames"])
        rows.append(
            {
                "id": v["id"],
                "scores": v[key],
                "events": events,
                "min_separation": picking.separation(v["fps"]),  # AP candidates: NMS at the same separation
                "gt_frames": v["event_frames"],
                "gt_count": count,
                "gt_count_kind": kind,
            }
        )
    return rows


def _found_by_contact(data_cfg, split: str, test: list[dict], scored: dict) -> dict | None:
    """Per detector, which exact synthetic contacts its events find (evaluation/contacts.py); None when the
    dataset keeps no raw event records (real clips)."""
    from input_pipeline import registry

    raws = [registry.raw_events_json(data_cfg, split, v["id"]) for v in test]
    if not test or any(r is None for r in raws):
        return None
    records = [contacts.contact_records(raw, tuple(v["frame_size"])) for raw, v in zip(raws, test)]
    return {
        name: contacts.found_by_contact([(r, row["events"]) for r, row in zip(records, rows)])
        for name, rows in scored.items()
    }


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


def _locator_scores(
    config, locator: str, split_videos: dict, max_videos, progress
) -> tuple[dict, int | None, Predictor]:
    """The locator run's P(audible) [N] per video of each split (same videos, same order), its step and predictor."""
    from ta2net_jax.checkpoint import load_model_for_inference
    from ta2net_jax.config_utils import run_config
    from ta2net_jax.export import bundle

    locator_config = run_config(locator)
    bundle.check_locator_input(config, locator_config, f"--locator {locator}")
    model, step = load_model_for_inference(locator_config, locator)
    predictor = _predictor(model, config)  # the main config's windows and data; the locator's network
    out = {}
    for split, videos in split_videos.items():
        # Only its P(audible): the inflection detector was scored with the model's pass.
        scored = score_split(config, predictor, split, max_videos=max_videos, progress=progress, with_inflection=False)
        scored = _all_processes(scored)
        if [v["id"] for v in scored] != [v["id"] for v in videos]:
            raise RuntimeError(f"--locator {locator}: scored other videos of {split} than the model")
        out[split] = [v["scores"] for v in scored]
    return out, step, predictor


def _check_splits(data_cfg, cfg) -> None:
    """Both splits exist, checked before minutes of scoring rather than after. A dataset with no test split
    (e.g. a variant built with train and validation only) is evaluated with `--config.eval.split=validation`:
    the figures are then measured on the split the thresholds were tuned on, and eval.json says so."""
    from input_pipeline import registry

    builder = registry.get_builder(data_cfg)
    have = sorted(builder.info.splits)
    for key in ("tune_split", "split"):
        if cfg[key] not in have:
            raise ValueError(
                f"{builder.data_dir}: no split {cfg[key]!r} for eval.{key} (has {have}); choose one with "
                f"--config.eval.{key}=NAME (eval.split = eval.tune_split reports on the tuning split itself)"
            )


def _tune_locator_weight(tune: list[dict], locator_tune: list, cfg) -> tuple[float, dict]:
    """The weight of `cfg.locator_timing_weights` whose tuned picking scores best on the tuning split (ties:
    the smaller weight), and the validation F1 of each."""
    by_weight = {}
    for w in cfg.locator_timing_weights:
        videos = [(blend_timing(v["scores"], s, w), v["event_frames"], v["fps"]) for v, s in zip(tune, locator_tune)]
        by_weight[float(w)] = tune_eval_picking(videos, cfg)[1]
    best = max(by_weight, key=lambda w: (by_weight[w], -w))
    return best, by_weight


def evaluate(
    config,
    workdir: str,
    *,
    step: int | None = None,
    max_videos: int | None = None,
    progress: bool = True,
    report: bool = True,
    locator: str | None = None,
) -> dict:
    """`locator`: a second run (or bundle) taking the same input, as `export --locator` pairs them: its
    P(audible) is blended into the model's timing curve with the weight chosen on the tuning split
    (`eval.locator_timing_weights`), and detector.json records it (`locator_timing`) for detect."""
    from ta2net_jax.checkpoint import load_model_for_inference

    cfg = config.eval
    _check_splits(config.data, cfg)
    model, step = load_model_for_inference(config, workdir, step)
    predictor = _predictor(model, config)
    tune = _all_processes(score_split(config, predictor, cfg.tune_split, max_videos=max_videos, progress=progress))
    if cfg.split == cfg.tune_split:
        test = tune
    else:
        test = _all_processes(score_split(config, predictor, cfg.split, max_videos=max_videos, progress=progress))
    locator_timing, locator_predictor, weight = None, None, 0.0
    if locator is not None:
        loc, loc_step, locator_predictor = _locator_scores(
            config, locator, {cfg.tune_split: tune, cfg.split: test}, max_videos, progress
        )
        weight, by_weight = _tune_locator_weight(tune, loc[cfg.tune_split], cfg)
        for split, videos in {cfg.tune_split: tune, cfg.split: test}.items():  # one entry when they are one split
            for v, s in zip(videos, loc[split]):
                v["scores"] = blend_timing(v["scores"], s, weight)
        locator_timing = {
            "weight": weight,
            "locator": paths.resolve(locator),
            "locator_step": loc_step,
            f"{cfg.tune_split}_f1_by_weight": {str(w): f1 for w, f1 in by_weight.items()},
        }

    pickings = {}
    for key in ("scores", "inflection"):
        pickings[key], _ = tune_eval_picking([(v[key], v["event_frames"], v["fps"]) for v in tune], cfg)
    # High-fps videos scored as interleaved phases at a bounded rate, with their own threshold, when validation
    # says so (rate_tuning.py); every other video keeps the picking just tuned.
    rate = rate_tuning.choose_analysis_rate(
        config,
        predictor,
        locator_predictor,
        weight,
        {cfg.tune_split: tune, cfg.split: test},
        cfg.tune_split,
        pickings["scores"],
        progress,
    )
    thresholds = {key: p.threshold for key, p in pickings.items()}
    model_metrics = detector_metrics(test, "scores", pickings["scores"])
    inflection_metrics = detector_metrics(test, "inflection", pickings["inflection"])
    validation = detector_metrics(tune, "scores", pickings["scores"])
    scored = {
        "model": _scored(test, "scores", pickings["scores"]),
        "inflection": _scored(test, "inflection", pickings["inflection"]),
    }
    temporal = {k: protocols.temporal(rows, cfg.min_separation) for k, rows in scored.items()}
    counting = {k: protocols.counting(rows) for k, rows in scored.items()}
    ap_keys = [k for k in temporal["model"][0] if k.startswith("ap_")]

    spatial_result, cious = protocols.spatial(config.data, cfg.split, cfg.tune_split, tune, test)
    polarity = spatial_result["map_polarity"]
    found = _found_by_contact(config.data, cfg.split, test, scored)
    result = {
        "split": cfg.split,
        "checkpoint_step": int(step),
        "threshold": thresholds["scores"],
        "tuned_on": cfg.tune_split,
        **({"reported_on_tuning_split": True} if cfg.split == cfg.tune_split else {}),
        "validation_event_f1_tol3": validation["event_f1_tol3"],
        **model_metrics,
        **{k: temporal["model"][0][k] for k in ap_keys},
        "spatial_pointing_accuracy": spatial_result["pointing_accuracy"]["peak"],
        "spatial_pointing_accuracy_tuned_polarity": spatial_result["pointing_accuracy"][polarity],
        "counting": counting["model"][0],
        **({"locator_timing": locator_timing} if locator_timing else {}),
        **({"analysis_rate": rate} if rate else {}),
        "spatial": spatial_result,
        **({"found_by_contact": found} if found else {}),
        "inflection": {
            "method": "inflection_energy",
            "threshold": thresholds["inflection"],
            **inflection_metrics,
            **{k: temporal["inflection"][0][k] for k in ap_keys},
            "counting": counting["inflection"][0],
        },
        "inference": {
            "window": config.data.num_frames,
            "stride": cfg.stride,
            "overlap": "mean of softmax",
            "hflip_tta": bool(predictor.hflip_tta),
            "events": "runs above threshold -> one event at the run's peak",
            "ap_candidates": "local peaks of the score curve, NMS at min_separation",
            "min_separation": cfg.min_separation,
            "min_separation_s": pickings["scores"].min_separation_s,
            "unscored_frames": "first 2 and last 2 of each video",
            "inflection_mode": config.inflection.mode,
            "processes": jax.process_count(),
        },
    }
    if jax.process_index() == 0:
        # Local paths or gs:// URLs (input_pipeline.paths): each file is written atomically.
        paths.write_text(paths.join(workdir, "eval.json"), json.dumps(result, indent=2))
        detector = {
            "model_threshold": thresholds["scores"],
            "inflection_threshold": thresholds["inflection"],
            "min_separation": cfg.min_separation,
            # The full picking each threshold was tuned with (detect uses these; events.Picking).
            **{
                f"{name}_picking": pickings[key].to_dict()
                for name, key in (("model", "scores"), ("inflection", "inflection"))
            },
            "checkpoint_step": int(step),
            "map_polarity": polarity,
            # How detect locates the model's events (metrics.spatial.attended_centroid_xy), chosen on validation.
            "attended_centroid": spatial_result["attended_centroid"],
            # The model's P(audible) was blended with a locator's before the picking was tuned (detect does the same).
            **({"locator_timing": locator_timing} if locator_timing else {}),
            # High-fps videos are scored as phases at no more than max_fps (detection/analysis_rate.py).
            **({"analysis_rate": rate} if rate else {}),
            # Every window was scored with its mirror image too (inference.py); detect does the same.
            "hflip_tta": bool(predictor.hflip_tta),
        }
        paths.write_text(paths.join(workdir, "detector.json"), json.dumps(detector, indent=2))
        per_video = {k: {"temporal": temporal[k][1], "counting": counting[k][1]} for k in scored}
        paths.write_text(
            paths.join(workdir, "eval_per_video.json"),
            json.dumps(per_video, indent=2, default=lambda x: x.item() if isinstance(x, np.generic) else str(x)),
        )
        if report:
            from ta2net_jax.evaluation.report import write_run_report

            args = (result, test, scored, temporal, counting, cious, pickings)
            if paths.is_remote(workdir):
                # matplotlib and the report write local files: written into a local folder of the run's name,
                # then uploaded beside eval.json.
                with tempfile.TemporaryDirectory() as tmp:
                    local = os.path.join(tmp, os.path.basename(workdir.rstrip("/")))
                    os.makedirs(local)
                    write_run_report(config, local, *args)
                    paths.upload_tree(local, workdir)
                result["report"] = paths.join(workdir, "report.md")
            else:
                result["report"] = write_run_report(config, workdir, *args)
    return result
