"""`ta2net detect`: audible events in a video file or a folder of them, with a trained model or training-free.

    video file (any fps, any size; PyAV/OpenCV; a gs:// URL is decoded from its cached local copy)
      → static black borders (letterbox, pillarbox) cropped (input_pipeline/borders.py; off with --keep-borders)
      → frames resized to the model's input size (aspect not kept, as the original)
      → frames that repeat their predecessor in a regular cadence (frame-rate conversions) dropped, the rest
        scored at the rate they really have (input_pipeline/frame_repeats.py; off with --keep-repeats)
      → forward/backward optical flow (the flow estimator the model was trained with; with "tvl1-jax" the
        model detector computes it inside its jitted program, per batch of windows: detection/fused.py)
      → per-frame score: P(audible) from sliding windows (--workdir), or the robust z-score of
        inflection-flow energy (--method inflection, no checkpoint needed)
      → events: runs above the threshold, one event per run at its peak
      → events JSON / CSV (frame, time_s, score, x, y; time_s = frame / fps, or for a variable-rate file the
        frame's own timestamp: input_pipeline/frame_times.py), a timeline PNG (score curve, events and, with
        --labels, the ground truth), an overlay GIF/MP4 (heatmap, a flash on each event, score strip)

Picking (events.Picking): `--threshold`, else the one `ta2net eval` tuned on validation
(`<workdir>/detector.json`: `<name>_picking`, or the older `<name>_threshold`), else the detector's default:
0.5 for P(audible), 0.59 robust z-units above a 1 s running median for the inflection energy (chosen on the
labelled real clips, detectors.py), median + 1·std for the reference. The minimum separation between events
is in seconds where the detector or the run's `eval.min_separation_s` says so (frames = max(1, round(s·fps))
per video), else in frames.
Event positions (x, y) are in pixels of the original video: the pixel of largest inflection magnitude summed
over the event frame and its neighbours (inflection_energy.location_magnitude), weighted by the upsampled
sound-source map for the model (its polarity `ta2net eval` chose on validation, docs/evaluation_choices.md).

Folders (batch mode): every video file directly inside the folder (by suffix, sorted), with a progress bar;
per video `<stem>.events.json`, `<stem>.events.csv`, `<stem>.timeline.png` and `<stem>.overlay.gif` (or
.mp4) in the output folder, plus `summary.json`. A file that cannot be read is reported and skipped.
Videos sharing a stem (`a.mp4`, `a.avi`) get their file name as the stem instead (`a.mp4.events.json`),
so no output is overwritten (`output_stems`). Every output path is checked before any work
(`check_outputs`: writable, a file not a folder, a known plot/overlay format) and written atomically.
"""

from __future__ import annotations

import json
import os

import numpy as np

from input_pipeline import flow as flow_lib, frame_repeats, frame_times, paths, video as video_lib
from input_pipeline.labels import NoLabelsForVideoError, VideoLabels, parse_labels, within_video
from input_pipeline.video import VideoReadError, read_video
from ta2net_jax.detection import detectors, events as events_lib
from ta2net_jax.detection.outputs import check_outputs, output_stems, write_events_csv, write_video_overlay

# What a detect result reports against --labels (evaluation/metrics/timing.py `evaluate_videos`).
LABEL_METRICS = (
    "event_f1_tol1",
    "event_f1_tol2",
    "event_f1_tol3",
    "orig_f1_tol3",
    "num_labels_clustered",
    "num_predictions",
)
# What `analyse` says of the analysis, copied into the result (JSON) in this order.
ANALYSIS_KEYS = (
    "min_separation_frames",
    "prominence_window_frames",
    "analysis_stride",
    "repeated_frames",
    "analysis_fps",
    "borders",
    "fused",
    "flow_per_unit_interval",
)
# detector.json: {flow estimator: {"native": t, "phase": t, "calibration": record}}, the model's thresholds for
# scores computed on a flow other than the run's own (`ta2net calibrate --flow`); used by `--flow` that name.
THRESHOLDS_BY_FLOW = "thresholds_by_flow"
# Its entry for "tvl1-jax" may name the TV-L1 settings those thresholds were chosen with (flow_jax.SETTINGS
# overrides); detect then estimates the flow with them.
TVL1_OPTIONS = "tvl1_options"


def list_videos(folder: str) -> list[str]:
    """Video files directly inside ``folder`` (by suffix), sorted by name."""
    paths = video_lib.list_video_files(folder)
    if not paths:
        raise ValueError(f"{folder}: no video files ({', '.join(video_lib.VIDEO_SUFFIXES)}) in this folder")
    return paths


class VideoDetector:
    """Scores and events for video files with one registered detector (detectors.py); loads the run's config,
    thresholds and model once (batch mode)."""

    def __init__(
        self,
        *,
        workdir: str | None = None,
        method: str = "model",
        threshold: float | None = None,
        flow_method: str | None = None,
        image_size: int | None = None,
        fused: bool = True,
        keep_repeats: bool = False,
        keep_borders: bool = False,
        tvl1_options: dict | None = None,
    ):
        """`fused`: with flow "tvl1-jax" and a detector that has `fused_scores` (the model), compute the
        flow inside the model's jitted program (fused.py) rather than for the whole video first.
        `keep_repeats`: score every decoded frame, even frames that repeat their predecessor in a regular
        cadence (frame-rate conversions; by default they are dropped before flow, input_pipeline/frame_repeats.py).
        `keep_borders`: resize the whole frame, black borders included (by default static letterbox / pillarbox
        bars are cropped first, input_pipeline/borders.py). `tvl1_options`: TV-L1 settings (flow_jax.SETTINGS
        overrides) for flow "tvl1-jax"; by default the model's own, stored with its thresholds for that flow
        (`ta2net calibrate --flow tvl1-jax --tvl1 KEY=VALUE`), else OpenCV's. `workdir`: a training run or a
        model bundle; None gives a detector that needs one (the model) the bundle shipped inside the package
        (export/bundle.py `packaged_model_dir`), as `ta2net detect` does."""
        from input_pipeline import registry
        from ta2net_jax.config_utils import run_config
        from ta2net_jax.export import bundle

        detector_cls = detectors.get(method)
        if workdir is None and detector_cls.needs_run:  # the model shipped inside the package, as `ta2net detect`
            workdir = bundle.packaged_model_dir()
        run = None
        if workdir and (detector_cls.needs_run or paths.exists(paths.join(workdir, "config.json"))):
            run = detectors.Run(workdir, run_config(workdir), bundle.read_tuned(workdir))
        self.detector = detector_cls(run)
        self.workdir, self.method = workdir, method
        self.config = run.config if run is not None else None
        run_flow = None
        if self.config is not None:  # the input the run was trained on, from its own dataset
            spec = registry.input_spec(self.config.data)
            run_flow = spec.flow_method
            image_size, flow_method = image_size or spec.image_size, flow_method or spec.flow_method
            keep_borders = keep_borders or not spec.crop_borders  # a run trained on whole frames gets them
        # A detector that fixes its input (the reference: 112 px, DIS) gets it whatever the run.
        self.image_size = detector_cls.input_size or image_size or 112
        self.flow_method = detector_cls.flow_method or flow_method or "dis"
        self.picking = events_lib.picking_for(detector_cls, run, self.config)
        self.run_flow_method = run_flow  # the estimator the run was trained on (None without a run)
        by_flow = (run.tuned.get(THRESHOLDS_BY_FLOW) or {}).get(self.flow_method) if run is not None else None
        if by_flow and self.flow_method != run_flow and detector_cls.name == "model":
            # Thresholds chosen (`ta2net calibrate --flow`) for scores computed on another flow than the run's.
            self.picking = self.picking.replace(threshold=float(by_flow["native"]))
            if self.detector.phase_threshold is not None and by_flow.get("phase") is not None:
                self.detector.phase_threshold = float(by_flow["phase"])
            if tvl1_options is None and by_flow.get(TVL1_OPTIONS):  # the settings those thresholds were chosen with
                tvl1_options = dict(by_flow[TVL1_OPTIONS])
        if tvl1_options and self.flow_method != "tvl1-jax":
            raise ValueError(f"TV-L1 settings {tvl1_options} given for flow {self.flow_method!r}, not tvl1-jax")
        self.tvl1_options = self.detector.tvl1_options = dict(tvl1_options or {}) or None
        if threshold is not None:
            self.picking = self.picking.replace(threshold=float(threshold))
        self.threshold = self.picking.threshold
        self.threshold_given = threshold is not None  # then it applies to phase-scored videos too
        self.fused = fused and self.flow_method == "tvl1-jax" and hasattr(self.detector, "fused_scores")
        self.detector.phase_flow_method = self.flow_method  # a fast video's phases get the flow detect uses
        self.keep_repeats = keep_repeats or not detector_cls.drops_repeats
        self.crop_borders = not keep_borders and detector_cls.crops_borders

    @property
    def min_separation(self) -> dict:
        """The separation rule (seconds or frames), for reports; per video it is `picking.separation(fps)`."""
        p = self.picking
        return (
            {"seconds": p.min_separation_s} if p.min_separation_s is not None else {"frames": p.min_separation_frames}
        )

    def score_frames(self, frames: np.ndarray, fps: float, times_s: np.ndarray | None = None):
        """The detector's scored record (per-frame values [N], maps [N, h, w], the flows it used) of frames
        [N, S, S, 3] uint8 at ``image_size``, repeats dropped, at ``fps``, as :meth:`analyse` scores a video's:
        flow, then the detector (one program with ``--flow tvl1-jax``). ``times_s``: [N] presentation times
        (s) of a variable-rate file, or None for uniform time."""
        stride = self.detector.stride(len(frames), fps)
        self.detector.phase_times_s = times_s  # the fused program and a phase-scored video's phases use them
        if self.fused:  # frames → flow → model on the devices, one program per batch of windows
            return self.detector.fused_scores(frames, fps)
        # Scored as phases, a video gets its phases' own flow (ModelDetector.scores); the native flow then only
        # locates the events, so only the fields around them are estimated.
        if stride > 1:
            flow_fwd, flow_bwd = flow_lib.flow_on_demand(frames, self.flow_method, tvl1_options=self.tvl1_options)
        else:  # on every core: a threaded DIS gives the same fields
            flows = flow_lib.estimate_flow(
                frames,
                self.flow_method,
                workers=None,
                tvl1_options=self.tvl1_options,
                backward=self.detector.uses_backward_flow,
            )
            flow_fwd, flow_bwd = frame_times.per_unit_interval(*flows, times_s, fps)
        return self.detector.scores(frames, flow_fwd, flow_bwd, fps)

    def analyse(self, video_path: str) -> dict:
        """Decoded video, per-frame scores [N], "where" maps [N, h, w] and events; nothing written.

        Frames that repeat their predecessor in a regular cadence (a frame-rate conversion) are dropped before
        flow and scored at the rate the rest really have; scores and maps are put back on all N native frames
        (a repeated frame gets the value of the frame it repeats) and events are picked there, in native frames
        and the native fps, as for any video (`repeated_frames` lists them; none with `keep_repeats`)."""
        size = self.image_size
        decoded = read_video(video_path, size=(size, size), crop_borders=self.crop_borders)
        video_lib.check_frame_count(video_path, decoded.frames.shape[0])
        if self.keep_repeats:
            frames, repeats = decoded.frames, frame_repeats.no_repeats(len(decoded.frames))
        else:
            frames, repeats = frame_repeats.drop_repeats(decoded.frames)
        fps = repeats.fps(decoded.fps)
        # A variable-rate file's flow is put per unit interval (frame_times.per_unit_interval; inside the fused
        # program too); not after repeats are dropped (the kept frames are evenly spaced in content time) nor
        # for the reference (a fixed definition).
        times_s = None if len(repeats.repeated) or not self.detector.normalises_intervals else decoded.times_s
        scored = self.score_frames(frames, fps, times_s)
        stride = self.detector.stride(len(frames), fps)
        picking = self.picking
        if stride > 1 and self.detector.phase_threshold is not None and not self.threshold_given:
            picking = picking.replace(threshold=float(self.detector.phase_threshold))  # tuned on phase-scored videos
        scores = repeats.to_native(scored.values)
        frames_idx, peaks = picking.pick(scores, decoded.fps)
        shown_s = frame_times.frames_to_seconds(np.asarray(frames_idx), decoded.fps, decoded.times_s)
        detected = []
        for frame, peak, time_s in zip(frames_idx, peaks, shown_s):
            x, y = self.detector.locate(scored, repeats.kept_position(int(frame)))
            x, y = decoded.borders.to_source(x, y, (size, size), decoded.source_size)
            detected.append(
                {
                    "frame": int(frame),
                    "time_s": float(time_s),
                    "score": float(peak),
                    "x": float(x),
                    "y": float(y),
                }
            )
        return {
            "decoded": decoded,
            "scores": scores,
            "maps": repeats.to_native(scored.maps),
            "events": detected,
            "min_separation_frames": picking.separation(decoded.fps),
            "prominence_window_frames": picking.window(decoded.fps),
            "picking": picking,
            # > 1: scored as that many interleaved phases at fps / stride (analysis_rate.py)
            "analysis_stride": stride,
            "repeated_frames": repeats.repeated.tolist(),  # native frames dropped as repeats (frame_repeats.py)
            "analysis_fps": fps,  # the rate the scored frames have (the native fps when none repeat)
            "flow_per_unit_interval": times_s is not None,  # a variable-rate file's flow normalised
            "fused": self.fused,  # flow computed inside the model's jitted program (detection/fused.py)
            "borders": decoded.borders.to_dict(),  # black bars cropped before the resize (input_pipeline/borders.py)
        }

    def __call__(
        self,
        video_path: str,
        *,
        out: str | None = None,
        csv_path: str | None = None,
        plot: str | None = None,
        overlay: str | None = None,
        labels=None,
    ) -> dict:
        """Detects events in one video and writes the requested outputs; returns the result (JSON-ready)."""
        check_outputs(out, csv_path, plot, overlay)
        labels = _as_labels(labels, video_path)
        a = self.analyse(video_path)
        decoded, scores, detected = a["decoded"], a["scores"], a["events"]
        labels = within_video(labels, len(scores), video_path)
        result = {
            "video": paths.resolve(video_path),
            "fps": decoded.fps,
            "num_frames": int(len(scores)),
            # "timestamps": a variable-rate file, whose events are timed by its frames' own timestamps
            **frame_times.describe(decoded.times_s, decoded.fps),
            "source_size": list(decoded.source_size),
            "method": self.method,
            "threshold": a["picking"].threshold,
            "picking": a["picking"].to_dict(),
            "flow": self.flow_method,
            **({TVL1_OPTIONS: self.tvl1_options} if self.tvl1_options else {}),
            **{key: a[key] for key in ANALYSIS_KEYS},
            "model_input_size": self.image_size,
            "workdir": self.workdir,
            "map_polarity": None,
            **self.detector.describe(),
            "scores": [None if not np.isfinite(s) else float(s) for s in scores],
            "events": detected,
        }
        if labels is not None and labels.frames is not None:
            from ta2net_jax.evaluation.metrics.timing import evaluate_videos

            result["labels"] = {"frames": labels.frames.tolist(), "source": labels.source}
            m = evaluate_videos([([e["frame"] for e in detected], labels.frames)])
            result["metrics"] = {k: m[k] for k in LABEL_METRICS}
        if out:
            paths.write_text(out, json.dumps(result, indent=2))
        if csv_path:
            write_events_csv(csv_path, detected)
        if plot:
            from ta2net_jax.evaluation.plots import plot_timeline

            name = os.path.basename(video_path)
            title = f"{name}: {self.detector.score_label}, {len(detected)} events"
            if "metrics" in result:
                title += (
                    f"; event F1 ±3 = {result['metrics']['event_f1_tol3']:.2f} vs {os.path.basename(labels.source)}"
                )
            with paths.written_locally(plot) as local_plot:
                plot_timeline(
                    local_plot,
                    scores,
                    fps=decoded.fps,
                    events=[e["frame"] for e in detected],
                    labels=None if labels is None else labels.frames,
                    threshold=a["picking"].threshold,
                    title=title,
                    times_s=decoded.times_s,
                )
        if overlay:
            write_video_overlay(overlay, video_path, decoded, a["maps"], scores, detected, a["picking"].threshold)
        return result


def _as_labels(labels, video_path: str) -> VideoLabels | None:
    if labels is None or isinstance(labels, VideoLabels):
        return labels
    if isinstance(labels, str):
        return parse_labels(labels, video_path)
    return VideoLabels(np.asarray(labels, dtype=np.int64).reshape(-1), source="labels")


def detect(
    video_path: str,
    *,
    out: str | None = None,
    plot: str | None = None,
    labels=None,
    csv_path: str | None = None,
    overlay: str | None = None,
    **detector_options,
) -> dict:
    """Detects events in one video; writes `out` (JSON), `csv_path`, `plot` (PNG) and `overlay` (GIF/MP4)
    when given; returns the result. ``labels``: frames, a label spec (labels.py) or a VideoLabels.
    ``detector_options``: VideoDetector's (workdir, method, threshold, flow_method, image_size, keep_repeats,
    keep_borders)."""
    check_outputs(out, csv_path, plot, overlay)
    detector = VideoDetector(**detector_options)
    return detector(video_path, out=out, csv_path=csv_path, plot=plot, overlay=overlay, labels=labels)


def detect_batch(
    inputs: list[str],
    out_dir: str,
    *,
    labels: str | None = None,
    overlay_format: str | None = "gif",
    progress: bool = True,
    **detector_options,
) -> dict:
    """Runs one Detector over ``inputs`` (video files), writing per-video outputs into ``out_dir`` (module
    docstring) and ``summary.json``. Unreadable files are skipped and listed under "failed".
    ``detector_options``: VideoDetector's, as for :func:`detect`."""
    from input_pipeline.progress import tqdm, write

    if overlay_format not in (None, "gif", "mp4"):
        raise ValueError(f"overlay format {overlay_format!r} is not 'gif', 'mp4' or none")
    paths.check_output_dir(out_dir, "--out-dir")
    detector = VideoDetector(**detector_options)
    paths.makedirs(out_dir)
    method = detector.method
    summary = {
        "method": method,
        "threshold": detector.threshold,
        "workdir": detector.workdir,
        "videos": [],
        "failed": [],
    }
    stems = dict(zip(inputs, output_stems(inputs)))
    ground_truth = {}  # read before any video: a bad labels file fails at once, naming it
    for path in inputs if labels else ():
        try:
            ground_truth[path] = parse_labels(labels, path)
        except NoLabelsForVideoError:  # a keyed file without this video: no ground truth for it
            pass
    for path in tqdm(inputs, desc=f"detect ({method})", unit="video", disable=not progress):
        stem = paths.join(out_dir, stems[path])
        video_labels = ground_truth.get(path)
        try:
            result = detector(
                path,
                out=f"{stem}.events.json",
                csv_path=f"{stem}.events.csv",
                plot=f"{stem}.timeline.png",
                labels=video_labels,
                overlay=f"{stem}.overlay.{overlay_format}" if overlay_format else None,
            )
        except VideoReadError as err:  # unreadable, or too short: report, go on
            summary["failed"].append(str(err))
            write(f"skipped: {err}")
            continue
        row = {"video": path, "num_events": len(result["events"]), "events_json": f"{stem}.events.json"}
        if "metrics" in result:
            row.update(result["metrics"])
        summary["videos"].append(row)
    paths.write_text(paths.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    return summary
