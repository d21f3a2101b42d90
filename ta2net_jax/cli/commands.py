"""The handlers of `ta2net` subcommands: `handler(args, overrides) -> exit status`.

Each turns the parsed arguments into plain arguments of a library function, runs it and prints what a user
needs (where the outputs went, the headline numbers). Heavy imports happen inside the handlers, so building
the parser (main.py) loads neither JAX nor the video libraries.
"""

from __future__ import annotations

import dataclasses
import json
import os

from input_pipeline import paths

INTERRUPTED_EXIT_STATUS = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C (main.py's too)


def _config(args, overrides):
    from ta2net_jax.config_utils import load_config

    return load_config(args.config, overrides)


def _model_source(workdir: str | None) -> str | None:
    """The run or bundle that the `model` detector reads: --workdir, else the default model shipped inside the
    package (export/bundle.py; None if this install has none)."""
    if workdir:
        return workdir
    from ta2net_jax.export import bundle

    return bundle.packaged_model_dir()


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


def _runner(args):
    """`--runner local|beam` and `--beam-pipeline-options` as an input_pipeline.prepare.Runner."""
    from input_pipeline import beam_runner, prepare as prepare_lib

    if args.beam_pipeline_options and args.runner != "beam":
        raise ValueError("--beam-pipeline-options goes with --runner beam")
    return prepare_lib.Runner(args.runner, tuple(beam_runner.split_options(args.beam_pipeline_options)))


def build(args, overrides) -> int:
    from input_pipeline import pipeline, registry

    data_cfg = _config(args, overrides).data
    for component, fraction in pipeline.mixture_configs(data_cfg):  # data.mixture: built first, reported briefly
        mixed = registry.get_builder(component, build_if_missing=True, workers=args.workers, runner=_runner(args))
        print(f"mixture component ({fraction:.0%} of training clips): {mixed.data_dir}")
    builder = registry.get_builder(data_cfg, build_if_missing=True, workers=args.workers, runner=_runner(args))
    report_path = os.path.join(builder.data_dir, "build_report.json")
    print(f"dataset: {builder.data_dir}")
    if paths.is_remote(data_cfg.data_dir):
        print(f"  uploaded to {data_cfg.data_dir} (the folder above is this machine's copy)")
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

    last = train_and_evaluate(config, args.workdir, init_from=args.init_from)
    if last.get("preempted"):  # checkpoint saved; the same command resumes
        return INTERRUPTED_EXIT_STATUS if last.get("interrupted") else PREEMPTED_EXIT_STATUS
    if last.get("already_complete"):
        where = os.path.abspath(os.path.join(args.workdir, "checkpoints"))
        print(f"already trained to step {last['step']}; checkpoints in {where}")
        return 0
    print(
        f"trained to step {last.get('step')}: loss {last.get('loss', float('nan')):.4f}; "
        f"checkpoints in {paths.join(paths.resolve(args.workdir), 'checkpoints')}"
    )
    return 0


def evaluate(args, overrides) -> int:
    config = _config(args, overrides)
    _initialize_distributed(args)
    from ta2net_jax.evaluation.evaluate import evaluate as run_evaluation

    result = run_evaluation(config, args.workdir, step=args.step, max_videos=args.max_videos, locator=args.locator)
    print(
        f"{result['split']} ({result['num_videos']} videos, step {result['checkpoint_step']}): "
        f"event F1 ±1/±2/±3 = {result['event_f1_tol1']:.3f}/{result['event_f1_tol2']:.3f}/"
        f"{result['event_f1_tol3']:.3f}; original ±3 F = {result['orig_f1_tol3']:.3f}"
    )
    b = result["inflection"]
    print(
        f"inflection (training-free): event F1 ±3 = {b['event_f1_tol3']:.3f}; original ±3 F = {b['orig_f1_tol3']:.3f}"
    )
    if result.get("locator_timing"):
        t = result["locator_timing"]
        print(f"timing = (1 − w)·model + w·locator, w = {t['weight']} chosen on validation (--locator {args.locator})")
    rate = result.get("analysis_rate")
    if rate:
        f1 = ", ".join(f"{k} {v:.3f}" for k, v in rate[f"{result['tuned_on']}_f1_by_max_fps"].items())
        chosen = "the native rate"
        if rate["max_fps"] is not None:
            chosen = f"≤ {rate['max_fps']:g} fps in phases, threshold {rate['threshold']:.3f}"
        print(f"analysis rate: {chosen} (validation F1 ±3: {f1})")
    print(f"results: {paths.join(paths.resolve(args.workdir), 'eval.json')}")
    if result.get("report"):
        print(f"report: {paths.resolve(result['report'])}")
    return 0


def prepare(args, overrides) -> int:
    """`ta2net prepare`: a config's real dataset (its builder finds and prepares the videos), or video files and
    folders into --out; prints the summary; exit status 1 if any video failed."""
    from input_pipeline import prepare as prepare_lib, registry, video_files

    runner = _runner(args)
    given = {
        "size": args.size,
        "flow_method": args.flow,
        "fps": args.fps,
        "max_frames": None if args.max_frames is None else (args.max_frames or None),
        "jpeg_quality": args.jpeg_quality,
        "crop_borders": args.crop_borders,  # None unless --keep-borders
    }
    if args.config:
        if args.inputs or args.out:
            raise ValueError("give either --config or VIDEO/FOLDER inputs with --out, not both")
        if args.labels:
            raise ValueError(
                "--labels audio labels VIDEO/FOLDER inputs; a config's dataset has its own labels "
                "(configs/audio_onsets.py labels a folder from its soundtracks)"
            )
        config = _config(
            args, overrides + [f"data.{k.replace('size', 'image_size')}={v}" for k, v in given.items() if v is not None]
        )
        if not registry.get(config.data.name).from_videos:
            raise ValueError(
                f"{config.data.name} is not made from video files (`ta2net build` makes it); "
                "`prepare --config` is for " + ", ".join(n for n in registry.names() if registry.get(n).from_videos)
            )
        builder = registry.preparing_builder(config.data, workers=args.workers, runner=runner)
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
    from input_pipeline import paths

    paths.check_output_dir(args.out, "--out folder")
    options = prepare_lib.PrepareOptions(**{k: v for k, v in given.items() if v is not None})
    if args.max_frames == 0:
        options = dataclasses.replace(options, max_frames=None)
    jobs = video_files.keyed_videos(args.inputs)
    if not jobs:
        raise FileNotFoundError(f"{', '.join(args.inputs)}: no video files found")
    out = paths.join(args.out, options.tag())
    # A gs:// --out: the local runner prepares in this machine's cache (resumable there) and uploads it,
    # meta.json files last; Beam's workers upload each video themselves (they share no disk with us).
    direct = runner.name == "beam" and paths.is_remote(out)
    if direct and args.labels:
        raise ValueError("--labels writes its files beside the local folder; with --runner beam give a local --out")
    local_out = registry.local_cache_dir(out) if paths.is_remote(out) and not direct else out
    summary = prepare_lib.prepare_all(jobs, local_out, options, workers=args.workers, runner=runner)
    print(summary.text())
    print(f"prepared videos in {out}")
    if args.labels == "audio":
        _audio_labels([path for _, path in jobs], local_out, options.flow_method, shown=out)
    if paths.is_remote(out) and not direct:
        paths.upload_tree(local_out, out, last=("meta.json",))
    return 1 if summary.failed else 0


def _audio_labels(videos: list[str], out: str, flow_method: str, shown: str) -> None:
    """`prepare --labels audio`: onsets → frames after the folder's lag; writes the labels and the report into
    `out` (where the videos were prepared); `shown`: the folder named to the user (a gs:// --out: the upload's)."""
    from input_pipeline import audio_labels

    labelled = audio_labels.audio_labels_for_videos(videos, flow_method=flow_method)
    for name, content in (
        ("audio_labels.json", labelled.labels_json()),
        ("audio_labels_report.json", labelled.report_json()),
    ):
        with open(os.path.join(out, name), "w") as f:
            json.dump(content, f, indent=2)
    print(
        f"audio labels: {len(labelled.labels)} videos kept, lag {labelled.lag.lag_frames} frames; "
        f"{paths.join(paths.resolve(shown), 'audio_labels.json')} (a --labels file)"
    )
    for path, reason in sorted(labelled.rejected.items()):
        print(f"  left out: {path}: {reason}")


def export(args, overrides) -> int:
    _no_overrides(overrides)
    from ta2net_jax.export.exporters import export as run_export

    summary = run_export(args.workdir, args.format, args.out, step=args.step, locator=args.locator)
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


def preview_synthetic(args, overrides) -> int:
    _no_overrides(overrides)
    from input_pipeline.synthetic.preview import save_contact_sheet

    path = save_contact_sheet(args.out, variant=args.variant, num=args.num, seed=args.seed)
    print(f"contact sheet of {args.num} {args.variant} samples: {os.path.abspath(path)}")
    return 0
