"""`ta2net detect`: audible events in any video file, with a trained model or training-free.

    video file (any fps, any size; PyAV/OpenCV)
      → frames resized to the model's input size (aspect not kept, as the original)
      → forward/backward optical flow (the flow estimator the model was trained with)
      → per-frame score: P(audible) from sliding windows (--workdir), or the robust z-score of
        inflection-flow energy (--method inflection, no checkpoint needed)
      → events: runs above the threshold, one event per run at its peak
      → EVENTS.json (+ a timeline PNG with --plot)

Thresholds: `--threshold`, else the one `ta2net eval` tuned on validation (`<workdir>/detector.json`),
else 0.5 for P(audible) and 2 robust z-units (two robust standard deviations above the
video's median) for the inflection energy. Event positions (x, y) are
in pixels of the original video: the peak of the sound-source map (model) or of the inflection
magnitude (inflection method).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ta2net_jax import baseline, events as events_lib, flow as flow_lib
from ta2net_jax.video import read_video

DEFAULT_THRESHOLDS = {"model": 0.5, "inflection": 2.0}


def _workdir_config(workdir: str):
    from ta2net_jax.config_utils import config_from_json
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found; is {workdir} a training workdir (`ta2net train`)?")
    return config_from_json(path)


def _tuned_threshold(workdir: str | None, method: str) -> float | None:
    path = os.path.join(workdir, "detector.json") if workdir else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["model_threshold" if method == "model" else "inflection_threshold"]


def model_scores(config, workdir: str, frames: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray,
                 fps: float) -> tuple[np.ndarray, np.ndarray]:
    """P(audible) [N] and sound-source maps [N, h, w] for one decoded video."""
    from input_pipeline.clips import VideoWindows
    from ta2net_jax import mesh as mesh_lib
    from ta2net_jax.inference import Predictor, predict_videos
    from ta2net_jax.train import load_model_for_inference

    model, _ = load_model_for_inference(config, workdir)
    predictor = Predictor(model, config, mesh_lib.make_mesh(config.mesh))
    example = {"id": "video", "fps": fps, "frames": frames, "flow_fwd": flow_fwd, "flow_bwd": flow_bwd,
               "event_frames": np.zeros(0, np.int64)}
    video = next(predict_videos(predictor, [VideoWindows(config.data.num_frames, config.eval.stride).map(example)]))
    return video["scores"], video["maps"]


def detect(video_path: str, *, workdir: str | None = None, method: str = "model", threshold: float | None = None,
           out: str | None = None, plot: str | None = None, labels=None, flow_method: str | None = None,
           image_size: int | None = None) -> dict:
    """Detects events in one video; writes `out` (JSON) and `plot` (PNG) when given; returns the result."""
    if method not in DEFAULT_THRESHOLDS:
        raise ValueError(f"method {method!r} is not 'model' or 'inflection'")
    if method == "model" and not workdir:
        raise ValueError("the model method needs --workdir (a trained run); use --method inflection without one")
    config = _workdir_config(workdir) if workdir else None
    if config is not None:
        from input_pipeline.synthetic_collisions import config_for
        dataset_cfg = config_for(config.data.builder_config, config.data.get("flow_method"))
        image_size = image_size or dataset_cfg.image_size
        flow_method = flow_method or dataset_cfg.flow_method
    image_size = image_size or 112
    flow_method = flow_method or "dis"

    decoded = read_video(video_path, size=(image_size, image_size))
    frames = decoded.frames
    if frames.shape[0] < 5:
        raise ValueError(f"{video_path}: only {frames.shape[0]} frames; at least 5 are needed")
    flow_fwd, flow_bwd = flow_lib.estimate_flow(frames, flow_method)
    scale_y = decoded.source_size[0] / image_size
    scale_x = decoded.source_size[1] / image_size
    if method == "model":
        scores, maps = model_scores(config, workdir, frames, flow_fwd, flow_bwd, decoded.fps)
    else:
        scores, maps = baseline.inflection_scores(flow_fwd, flow_bwd), None
    if threshold is None:
        threshold = _tuned_threshold(workdir, method)
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[method]
    min_separation = int(config.eval.min_separation) if config is not None else 2
    frames_idx, peaks = events_lib.pick_events(scores, threshold, min_separation=min_separation)

    detected = []
    for frame, peak in zip(frames_idx, peaks):
        if maps is not None:
            from ta2net_jax.inference import map_peak
            x, y = map_peak(maps[frame], (image_size, image_size))
        else:
            x, y = baseline.energy_peak_xy(flow_fwd, flow_bwd, int(frame))
        detected.append({"frame": int(frame), "time_s": float(frame / decoded.fps), "score": float(peak),
                         "x": float(x * scale_x), "y": float(y * scale_y)})
    result = {"video": os.path.abspath(video_path), "fps": decoded.fps, "num_frames": int(frames.shape[0]),
              "source_size": list(decoded.source_size), "method": method, "threshold": float(threshold),
              "flow": flow_method, "model_input_size": image_size, "workdir": workdir,
              "scores": [None if not np.isfinite(s) else float(s) for s in scores], "events": detected}
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    if plot:
        from ta2net_jax.plots import plot_timeline
        name = os.path.basename(video_path)
        what = "P(audible)" if method == "model" else "inflection energy (robust z)"
        plot_timeline(plot, scores, fps=decoded.fps, events=frames_idx, labels=labels, threshold=threshold,
                      title=f"{name}: {what}, {len(detected)} events")
    return result
