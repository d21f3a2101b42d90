"""The handlers of the detection subcommands (`detect`, `eval-videos`, `real-benchmark`, `calibrate`), as
commands.py's: `handler(args, overrides) -> exit status`, heavy imports inside the handlers."""

from __future__ import annotations

import contextlib
import json
import sys

from input_pipeline import paths
from ta2net_jax.cli.commands import _model_source, _no_overrides

STDOUT = "-"  # --out - / --csv -: the events go to standard output


def detect(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.detection import detect as detect_lib

    # The model when there is one (--workdir, else the packaged model, which VideoDetector then loads).
    method = args.method or ("model" if _model_source(args.workdir) else "inflection")
    # A gs:// video or folder is read where it is (decoded from this machine's cached copy, video.py).
    if not paths.exists(args.video):
        from input_pipeline.video import missing_reason

        raise FileNotFoundError(f"{args.video}: {missing_reason(args.video)}")
    folder = paths.isdir(args.video)
    stdout_output = _stdout_output(args, folder)  # "--out" or "--csv" given as "-", or None
    single_outputs = [args.out, args.csv, args.plot, args.overlay]
    if (args.dub or args.cues) and (folder or args.out_dir):
        raise ValueError("--dub/--cues write one video's files; they do not go with a folder or --out-dir")
    _check_dub_and_cues(args)
    # What a folder and a single video are detected with alike.
    common = dict(
        workdir=args.workdir,
        method=method,
        threshold=args.threshold,
        flow_method=args.flow,
        labels=args.labels,
        keep_repeats=args.keep_repeats,
        keep_borders=args.keep_borders,
    )
    if folder or args.out_dir:
        if any(single_outputs):
            raise ValueError(
                "--out/--csv/--plot/--overlay name one video's files; with a folder or --out-dir "
                "every output goes into --out-dir"
            )
        if not args.out_dir:
            raise ValueError(f"{args.video}: is a folder; give --out-dir for the per-video outputs")
        videos = detect_lib.list_videos(args.video) if folder else [args.video]
        fmt = None if args.overlay_format == "none" else args.overlay_format
        summary = detect_lib.detect_batch(videos, args.out_dir, overlay_format=fmt, **common)
        for row in summary["videos"]:
            extra = f", event F1 ±3 = {row['event_f1_tol3']:.3f}" if "event_f1_tol3" in row else ""
            print(f"{row['num_events']:3d} events{extra}: {row['video']}")
        for line in summary["failed"]:
            print(f"skipped: {line}")
        print(
            f"outputs: {paths.resolve(args.out_dir)} ({len(summary['videos'])} videos, "
            f"{len(summary['failed'])} skipped)"
        )
        return 1 if summary["failed"] else 0
    result = detect_lib.detect(
        args.video,
        out=None if args.out == STDOUT else args.out,
        plot=args.plot,
        csv_path=None if args.csv == STDOUT else args.csv,
        overlay=args.overlay,
        **common,
    )
    if stdout_output:  # standard output holds only the JSON or CSV (for a pipe); what is said goes to stderr
        from ta2net_jax.detection.outputs import events_csv_text

        sys.stdout.write(
            json.dumps(result, indent=2) + "\n" if stdout_output == "--out" else events_csv_text(result["events"])
        )
        with contextlib.redirect_stdout(sys.stderr):
            _report_detection(args, result, method, single_outputs)
        return 0
    _report_detection(args, result, method, single_outputs)
    return 0


def _stdout_output(args, folder: bool) -> str | None:
    """Which of --out / --csv is "-" (standard output); at most one, and only for one video (`folder`: whether
    args.video is a folder, already asked, which on gs:// is a request to the store)."""
    flags = [flag for flag, value in (("--out", args.out), ("--csv", args.csv)) if value == STDOUT]
    if len(flags) > 1:
        raise ValueError("--out - and --csv - both ask for standard output; give one of them a file")
    if flags and (args.out_dir or folder):
        raise ValueError(f"{flags[0]} - writes one video's events to standard output; not with a folder or --out-dir")
    return flags[0] if flags else None


def _report_detection(args, result: dict, method: str, single_outputs: list) -> None:
    """The lines `ta2net detect` says about one video's result, then its dubbing and cue files."""
    step = f", checkpoint step {result['checkpoint_step']}" if result.get("checkpoint_step") is not None else ""
    print(f"{len(result['events'])} events ({method}{step}, threshold {result['threshold']:.3g}) in {args.video}")
    if result["repeated_frames"]:
        print(
            f"{len(result['repeated_frames'])} of {result['num_frames']} frames repeat the one before them (a "
            f"frame-rate conversion): scored without them at {result['analysis_fps']:.2f} fps (--keep-repeats: with)"
        )
    if result["frame_times"] == "timestamps":
        slow, fast = result["frame_rate_range"]
        print(
            f"variable frame rate ({slow:.1f}–{fast:.1f} fps, average {result['fps']:.2f}): event times are the "
            "frames' own timestamps"
        )
    if any(result["borders"].values()):
        b = result["borders"]
        h, w = result["source_size"]
        print(
            f"black borders cropped before the resize: the picture is rows {b['top']}–{h - b['bottom'] - 1}, "
            f"columns {b['left']}–{w - b['right'] - 1} of {w}×{h} (--keep-borders: the whole frame)"
        )
    if "metrics" in result:
        m = result["metrics"]
        print(
            f"against {result['labels']['source']}: event F1 ±1/±2/±3 = {m['event_f1_tol1']:.3f}/"
            f"{m['event_f1_tol2']:.3f}/{m['event_f1_tol3']:.3f}; original ±3 F = {m['orig_f1_tol3']:.3f}"
        )
    if not any(single_outputs):
        for e in result["events"]:
            print(
                f"  frame {e['frame']:5d}  t = {e['time_s']:7.3f} s  score {e['score']:.3f}  "
                f"(x, y) = ({e['x']:.0f}, {e['y']:.0f})"
            )
    for name, path in zip(("events", "csv", "timeline", "overlay"), single_outputs):
        if path and path != STDOUT:
            print(f"{name}: {paths.resolve(path)}")
    _dub_and_cues(args, result)


def _check_dub_and_cues(args) -> None:
    """Refuses unwritable or unknown --dub/--cues outputs and a missing --sound before any work is done."""
    from input_pipeline import paths
    from input_pipeline.audio_mux import AUDIO_CODECS
    from ta2net_jax.detection.cues import CUE_SUFFIXES

    if args.dub:
        paths.check_output_file(args.dub, "--dub video", tuple(AUDIO_CODECS))
    if args.cues:
        paths.check_output_file(args.cues, "--cues list", CUE_SUFFIXES)
    if args.sound and not args.dub:
        raise ValueError("--sound is the impact sound of --dub; give --dub OUT too")
    if args.sound and not paths.isfile(args.sound):
        raise FileNotFoundError(f"{args.sound}: no such sound file")


def _dub_and_cues(args, result: dict) -> None:
    frames = [e["frame"] for e in result["events"]]
    scores = [e["score"] for e in result["events"]]
    if args.cues:
        from ta2net_jax.detection.cues import write_cue_file

        write_cue_file(args.cues, frames, result["fps"], scores=scores, times_s=[e["time_s"] for e in result["events"]])
        print(f"cues: {paths.resolve(args.cues)}")
    if args.dub:
        from ta2net_jax.detection.dub import dub_video

        dubbed = dub_video(args.video, frames, args.dub, scores=scores, sound=args.sound, mix=args.mix)
        how = "video stream copied" if dubbed.video_remuxed else f"video re-encoded ({dubbed.note})"
        print(f"dubbed: {paths.resolve(dubbed.path)} ({dubbed.num_events} impacts, {args.mix} soundtrack, {how})")


def real_benchmark(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.evaluation.real_benchmark import benchmark

    workdir = _model_source(args.workdir)
    print(benchmark(args.realdata, args.out, workdir=workdir, results_md=args.results_md, flow=args.flow))
    return 0


def eval_videos(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.detection import detectors
    from ta2net_jax.evaluation import videos

    has_model = _model_source(args.workdir) is not None
    if args.method in ("all", "both") or (args.method is None and has_model):
        methods = tuple(n for n in detectors.names() if has_model or not detectors.get(n).needs_run)
    else:
        methods = (args.method or "inflection",)
    # Without --workdir only the model method reads the packaged model; the others keep their own defaults.
    result = videos.evaluate_files(
        args.videos,
        args.labels,
        args.out_dir,
        workdir=args.workdir,
        methods=methods,
        name=args.name,
        flow_method=args.flow,
        keep_repeats=args.keep_repeats,
        keep_borders=args.keep_borders,
    )
    for method, r in result["detectors"].items():
        t = r["temporal"]
        line = f"{method}: {r['num_videos']} videos"
        if t.get("event_f1_tol3") is not None:
            line += f"; event F1 ±3 = {t['event_f1_tol3']:.3f}, AP@±3 = {t['ap_tol3'] or 0:.3f}"
        c = r["counting"]["events"]
        if c["num_videos"]:
            line += f"; counting MAE = {c['mae']:.3f}, OBO = {c['obo']:.3f}"
        print(line)
    print(f"report: {paths.join(paths.resolve(args.out_dir), 'report.md')}")
    return 0


def calibrate(args, overrides) -> int:
    _no_overrides(overrides)
    from input_pipeline import flow_jax
    from ta2net_jax.evaluation import calibration

    kinds = tuple(k.strip() for k in args.tune.split(",") if k.strip())
    record = calibration.calibrate(
        args.workdir,
        [calibration.parse_folder_spec(s) for s in args.tune_on],
        [calibration.parse_folder_spec(s) for s in args.check_on],
        kinds,
        flow=args.flow,
        tvl1_options=flow_jax.parse_overrides(args.tvl1) or None,
    )
    print("\n".join(calibration.summary_lines(record)))
    print(f"written: {paths.join(args.workdir, 'detector.json')} (the previous one: {calibration.BACKUP})")
    return 0
