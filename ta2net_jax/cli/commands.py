"""The handlers of `ta2net` subcommands: `handler(args, overrides) -> exit status`.

Each turns the parsed arguments into plain arguments of a library function, runs it and prints what a user
needs (where the outputs went, the headline numbers). Heavy imports happen inside the handlers, so building
the parser (main.py) loads neither JAX nor the video libraries.
"""

from __future__ import annotations

import dataclasses
import json
import os


def _config(args, overrides):
    from ta2net_jax.config_utils import load_config

    return load_config(args.config, overrides)


def _no_overrides(overrides) -> None:
    if overrides:
        raise ValueError(f"--config.* overrides need --config: {' '.join(overrides)}")


def _initialize_distributed(args) -> None:
    """Joins a multi-process job when the flags (or the environment) ask for one; before any device use."""
    from ta2net_jax import distributed

    distributed.initialize(
        args.distributed,
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        local_device_ids=args.local_device_ids,
    )


def build(args, overrides) -> int:
    from input_pipeline import registry

    builder = registry.get_builder(_config(args, overrides).data, build_if_missing=True, workers=args.workers)
    report_path = os.path.join(builder.data_dir, "build_report.json")
    print(f"dataset: {builder.data_dir}")
    for split, info in builder.info.splits.items():
        print(f"  {split}: {info.num_examples} videos")
    if os.path.exists(report_path):
        with open(report_path) as f:
            skipped = sum(len(v) for v in json.load(f)["skipped"].values())
        print(f"build report: {report_path} ({skipped} files skipped)")
    return 0


def train(args, overrides) -> int:
    config = _config(args, overrides)
    _initialize_distributed(args)
    from ta2net_jax.train import PREEMPTED_EXIT_STATUS, train_and_evaluate

    last = train_and_evaluate(config, args.workdir)
    if last.get("preempted"):
        return PREEMPTED_EXIT_STATUS  # checkpoint saved; the same command resumes
    print(
        f"trained to step {last.get('step')}: loss {last.get('loss', float('nan')):.4f}; "
        f"checkpoints in {os.path.abspath(os.path.join(args.workdir, 'checkpoints'))}"
    )
    return 0


def evaluate(args, overrides) -> int:
    config = _config(args, overrides)
    _initialize_distributed(args)
    from ta2net_jax.evaluation.evaluate import evaluate as run_evaluation

    result = run_evaluation(config, args.workdir, step=args.step, max_videos=args.max_videos)
    print(
        f"{result['split']} ({result['num_videos']} videos, step {result['checkpoint_step']}): "
        f"event F1 ±1/±2/±3 = {result['event_f1_tol1']:.3f}/{result['event_f1_tol2']:.3f}/"
        f"{result['event_f1_tol3']:.3f}; original ±3 F = {result['orig_f1_tol3']:.3f}"
    )
    b = result["inflection"]
    print(
        f"inflection (training-free): event F1 ±3 = {b['event_f1_tol3']:.3f}; original ±3 F = {b['orig_f1_tol3']:.3f}"
    )
    print(f"results: {os.path.abspath(os.path.join(args.workdir, 'eval.json'))}")
    if result.get("report"):
        print(f"report: {os.path.abspath(result['report'])}")
    return 0


def detect(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.detection import detect as detect_lib

    method = args.method or ("model" if args.workdir else "inflection")
    single_outputs = [args.out, args.csv, args.plot, args.overlay]
    if os.path.isdir(args.video) or args.out_dir:
        if any(single_outputs):
            raise ValueError(
                "--out/--csv/--plot/--overlay name one video's files; with a folder or --out-dir "
                "every output goes into --out-dir"
            )
        if not args.out_dir:
            raise ValueError(f"{args.video}: is a folder; give --out-dir for the per-video outputs")
        videos = detect_lib.list_videos(args.video) if os.path.isdir(args.video) else [args.video]
        fmt = None if args.overlay_format == "none" else args.overlay_format
        summary = detect_lib.detect_batch(
            videos,
            args.out_dir,
            workdir=args.workdir,
            method=method,
            threshold=args.threshold,
            labels=args.labels,
            overlay_format=fmt,
        )
        for row in summary["videos"]:
            extra = f", event F1 ±3 = {row['event_f1_tol3']:.3f}" if "event_f1_tol3" in row else ""
            print(f"{row['num_events']:3d} events{extra}: {row['video']}")
        for line in summary["failed"]:
            print(f"skipped: {line}")
        print(
            f"outputs: {os.path.abspath(args.out_dir)} ({len(summary['videos'])} videos, "
            f"{len(summary['failed'])} skipped)"
        )
        return 1 if summary["failed"] else 0
    result = detect_lib.detect(
        args.video,
        workdir=args.workdir,
        method=method,
        threshold=args.threshold,
        out=args.out,
        plot=args.plot,
        labels=args.labels,
        csv_path=args.csv,
        overlay=args.overlay,
    )
    print(f"{len(result['events'])} events ({method}, threshold {result['threshold']:.3g}) in {args.video}")
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
        if path:
            print(f"{name}: {os.path.abspath(path)}")
    return 0


def real_benchmark(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.evaluation.real_benchmark import benchmark

    print(benchmark(args.realdata, args.out, workdir=args.workdir, results_md=args.results_md))
    return 0


def eval_videos(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.detection import detectors
    from ta2net_jax.evaluation import videos

    if args.method in ("all", "both") or (args.method is None and args.workdir):
        methods = tuple(n for n in detectors.names() if args.workdir or not detectors.get(n).needs_run)
    else:
        methods = (args.method or "inflection",)
    result = videos.evaluate_files(
        args.videos, args.labels, args.out_dir, workdir=args.workdir, methods=methods, name=args.name
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
    print(f"report: {os.path.abspath(os.path.join(args.out_dir, 'report.md'))}")
    return 0


def prepare(args, overrides) -> int:
    """`ta2net prepare`: a config's real dataset (its builder finds and prepares the videos), or video files and
    folders into --out; prints the summary; exit status 1 if any video failed."""
    from input_pipeline import prepare as prepare_lib, registry

    given = {
        "size": args.size,
        "flow_method": args.flow,
        "fps": args.fps,
        "max_frames": None if args.max_frames is None else (args.max_frames or None),
        "jpeg_quality": args.jpeg_quality,
    }
    if args.config:
        if args.inputs or args.out:
            raise ValueError("give either --config or VIDEO/FOLDER inputs with --out, not both")
        config = _config(
            args, overrides + [f"data.{k.replace('size', 'image_size')}={v}" for k, v in given.items() if v is not None]
        )
        if not registry.get(config.data.name).from_videos:
            raise ValueError(
                f"{config.data.name} is not made from video files (`ta2net build` makes it); "
                "`prepare --config` is for " + ", ".join(n for n in registry.names() if registry.get(n).from_videos)
            )
        builder = registry.make_builder(config.data, workers=args.workers)
        found, summary = builder.prepare_videos()
        missing = sum(len(v) for v in builder.report["missing"].values())
        print(summary.text())
        print(
            f"{builder.name}: {sum(len(v) for v in found.values())} annotated examples have a video, {missing} "
            f"have none in {builder.manual_dir}; prepared videos in {builder.prepared_dir}"
        )
        print(f"next: ta2net build --config {args.config}")
        return 1 if summary.failed else 0
    _no_overrides(overrides)
    if not args.inputs or not args.out:
        raise ValueError("give VIDEO/FOLDER inputs and --out DIR, or --config CONFIG")
    options = prepare_lib.PrepareOptions(**{k: v for k, v in given.items() if v is not None})
    if args.max_frames == 0:
        options = dataclasses.replace(options, max_frames=None)
    jobs = prepare_lib.list_videos(args.inputs)
    if not jobs:
        raise FileNotFoundError(f"{', '.join(args.inputs)}: no video files found")
    out = os.path.join(args.out, options.tag())
    summary = prepare_lib.prepare_all(jobs, out, options, workers=args.workers)
    print(summary.text())
    print(f"prepared videos in {out}")
    return 1 if summary.failed else 0


def export(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.export.exporters import export as run_export

    summary = run_export(args.workdir, args.format, args.out, step=args.step)
    print(
        f"{summary['format']}: {summary['out']} ({summary['bytes'] / 1e6:.1f} MB, step {summary['step']}); "
        f"inputs video/motion/inflection {summary['inputs']}"
    )
    return 0


def import_torch(args, overrides) -> int:
    from ta2net_jax.export.exporters import import_torch as run_import

    summary = run_import(args.checkpoint, _config(args, overrides), args.workdir, step=args.step)
    print(
        f"imported {args.checkpoint} into {summary['workdir']} as step {summary['step']}; "
        f"`ta2net eval|detect|export --workdir {args.workdir}` use it"
    )
    return 0


def info(args, overrides) -> int:
    from ta2net_jax.model_info import model_info

    print(json.dumps(model_info(_config(args, overrides), args.config), indent=2))
    return 0
