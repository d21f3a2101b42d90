"""The `ta2net` command line.

    ta2net build  --config CONFIG [--workers N] [--config.key=value ...]
    ta2net train  --config CONFIG --workdir DIR [--config.key=value ...]
    ta2net eval   --config CONFIG --workdir DIR [--step N] [--config.key=value ...]
    ta2net detect VIDEO|FOLDER [--workdir DIR | --method inflection] [--out E.json] [--csv E.csv]
                  [--plot TIMELINE.png] [--overlay O.gif] [--labels SPEC] [--out-dir DIR]
    ta2net eval-videos VIDEO|FOLDER ... --labels FILE --out-dir DIR [--workdir DIR]   # real clips
    ta2net info   --config CONFIG [--config.key=value ...]   # params, FLOPs per clip, input shapes (JSON)
    ta2net export --workdir DIR [--step N] --format safetensors|torch|stablehlo|onnx --out PATH
    ta2net import-torch CKPT.pt --config CONFIG --workdir DIR [--step N]
    ta2net prepare --config CONFIG | VIDEO|FOLDER ... --out DIR  [--workers N --size S --flow M --fps F]

CONFIG is a Python config file, optionally with a variant: `configs/synthetic_small.py:smoke`.
User errors (a bad file, a missing dataset or checkpoint, a wrong config key) print one line naming
the file and the problem and exit with status 1. `python -m ta2net_jax.cli` is the same command.
Each subcommand imports only what it needs: `info` runs without grain, TFDS, OpenCV or PyAV.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ta2net", description="TA²Net in JAX: timing audible actions from video.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p, workdir: bool):
        p.add_argument("--config", required=True, help="config file, e.g. configs/synthetic_small.py[:variant]")
        if workdir:
            p.add_argument("--workdir", required=True, help="run directory (checkpoints, logs, results)")
        return p

    p = with_config(sub.add_parser("build", help="build the config's dataset (render, decode, flow, ArrayRecord)"),
                    workdir=False)
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    p = with_config(sub.add_parser("train", help="train (resumes from the workdir's latest checkpoint)"), workdir=True)
    from ta2net_jax import distributed   # --distributed/--coordinator/--num-processes/--process-id (docs/scaling.md)
    distributed.add_arguments(p)
    p = with_config(sub.add_parser("eval", help="evaluate a checkpoint and the training-free baseline"),
                    workdir=True)
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--max-videos", type=int, default=None, help="evaluate only the first N videos of each split")
    distributed.add_arguments(p)   # several processes: each scores its share of the videos

    from ta2net_jax.cli import commands as cli_commands
    cli_commands.add_detect_arguments(sub.add_parser("detect", help="detect audible events in a video file or a "
                                                                    "folder (JSON, CSV, timeline, overlay)"))
    cli_commands.add_eval_videos_arguments(sub.add_parser(
        "eval-videos", help="evaluate detectors on video files with label files (temporal, counting)"))
    cli_commands.add_prepare_arguments(sub.add_parser(
        "prepare", help="decode, resize and compute flow of videos (JPEG frames + flow; parallel, resumable)"))
    p = sub.add_parser("export", help="export a run's checkpoint: safetensors, torch (original names), stablehlo, "
                                      "onnx (docs/export.md)")
    p.add_argument("--workdir", required=True, help="a training run (or one made by import-torch)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--format", required=True, choices=("safetensors", "torch", "stablehlo", "onnx"))
    p.add_argument("--out", required=True, help="file to write")
    p = with_config(sub.add_parser("import-torch", help="turn a PyTorch checkpoint of the original TA²Net into a "
                                                        "run that eval/detect/export use"), workdir=True)
    p.add_argument("checkpoint", help="a .pt file: the original's {'epoch', 'state_dict'} or a bare state_dict")
    p.add_argument("--step", type=int, default=0, help="step number to give the imported checkpoint")
    with_config(sub.add_parser("info", help="print the model's parameter counts, FLOPs per clip and input "
                                            "shapes as JSON (nothing allocated)"), workdir=False)
    return parser


def _absl_flags_parsed() -> None:
    # grain's worker processes read absl flags; outside absl.app.run they must be marked parsed.
    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def run(argv: list[str]) -> int:
    args, rest = _parser().parse_known_args(argv)
    overrides = [a[len("--config."):] for a in rest if a.startswith("--config.")]
    unknown = [a for a in rest if not a.startswith("--config.")]
    if unknown:
        raise ValueError(f"unrecognised arguments: {' '.join(unknown)}")
    _absl_flags_parsed()

    if args.command == "detect":
        from ta2net_jax.cli.commands import run_detect
        return run_detect(args)
    if args.command == "eval-videos":
        from ta2net_jax.cli.commands import run_eval_videos
        return run_eval_videos(args)
    if args.command == "prepare":
        from input_pipeline.prepare import run_prepare
        return run_prepare(args, overrides)

    if args.command == "export":
        from ta2net_jax.export.exporters import export
        summary = export(args.workdir, args.format, args.out, step=args.step)
        print(f"{summary['format']}: {summary['out']} ({summary['bytes'] / 1e6:.1f} MB, step {summary['step']}); "
              f"inputs video/motion/inflection {summary['inputs']}")
        return 0

    from ta2net_jax.config_utils import load_config
    config = load_config(args.config, overrides)
    if args.command == "import-torch":
        from ta2net_jax.export.exporters import import_torch
        summary = import_torch(args.checkpoint, config, args.workdir, step=args.step)
        print(f"imported {args.checkpoint} into {summary['workdir']} as step {summary['step']}; "
              f"`ta2net eval|detect|export --workdir {args.workdir}` use it")
        return 0
    if args.command == "build":
        from input_pipeline.pipeline import get_builder
        builder = get_builder(config.data, build_if_missing=True, workers=args.workers)
        report_path = os.path.join(builder.data_dir, "build_report.json")
        print(f"dataset: {builder.data_dir}")
        for split, info in builder.info.splits.items():
            print(f"  {split}: {info.num_examples} videos")
        if os.path.exists(report_path):
            with open(report_path) as f:
                skipped = sum(len(v) for v in json.load(f)["skipped"].values())
            print(f"build report: {report_path} ({skipped} files skipped)")
        return 0
    if args.command == "train":
        from ta2net_jax import distributed
        distributed.initialize_from_args(args)   # before anything touches a device
        from ta2net_jax.train import PREEMPTED_EXIT_STATUS, train_and_evaluate
        last = train_and_evaluate(config, args.workdir)
        if last.get("preempted"):
            return PREEMPTED_EXIT_STATUS   # checkpoint saved; the same command resumes
        print(f"trained to step {last.get('step')}: loss {last.get('loss', float('nan')):.4f}; "
              f"checkpoints in {os.path.abspath(os.path.join(args.workdir, 'checkpoints'))}")
        return 0
    if args.command == "info":
        from ta2net_jax.model_info import model_info
        print(json.dumps(model_info(config, args.config), indent=2))
        return 0
    if args.command == "eval":
        from ta2net_jax import distributed
        distributed.initialize_from_args(args)   # before anything touches a device
        from ta2net_jax.evaluation.evaluate import evaluate
        result = evaluate(config, args.workdir, step=args.step, max_videos=args.max_videos)
        print(f"{result['split']} ({result['num_videos']} videos, step {result['checkpoint_step']}): "
              f"event F1 ±1/±2/±3 = {result['event_f1_tol1']:.3f}/{result['event_f1_tol2']:.3f}/"
              f"{result['event_f1_tol3']:.3f}; original ±3 F = {result['orig_f1_tol3']:.3f}")
        b = result["baseline"]
        print(f"inflection-energy baseline: event F1 ±3 = {b['event_f1_tol3']:.3f}; original ±3 F = "
              f"{b['orig_f1_tol3']:.3f}")
        print(f"results: {os.path.abspath(os.path.join(args.workdir, 'eval.json'))}")
        if result.get("report"):
            print(f"report: {os.path.abspath(result['report'])}")
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (FileNotFoundError, ValueError, KeyError, FloatingPointError) as err:  # ValueError includes
        # video.VideoReadError; FloatingPointError: training hit a non-finite loss (train.nan_policy)
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ta2net: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
