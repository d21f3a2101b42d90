"""The `ta2net` command line: the parser and the dispatch. With detection_arguments.py (the arguments of
`detect` and `eval-videos`), the only module that knows argparse.

    ta2net build  --config CONFIG [--workers N | --runner beam [--beam-pipeline-options="..."]] [--config.k=v ...]
    ta2net train  --config CONFIG --workdir DIR [--config.key=value ...] [multi-process flags]
    ta2net eval   --config CONFIG --workdir DIR [--step N] [--locator RUN] [--config.key=value ...]
                  [multi-process flags]
    ta2net detect VIDEO|FOLDER [--workdir DIR] [--method NAME] [--out E.json] [--csv E.csv]
                  [--plot TIMELINE.png] [--overlay O.gif] [--labels SPEC] [--out-dir DIR]
    ta2net eval-videos VIDEO|FOLDER ... --labels FILE --out-dir DIR [--workdir DIR]   # real clips
    ta2net real-benchmark [--realdata DIR] [--workdir DIR] [--out DIR] [--results-md FILE] [--flow NAME]
    ta2net calibrate --workdir DIR --tune-on NAME=FOLDER ... [--check-on NAME=FOLDER ...] [--tune native,phase]
                     [--flow NAME [--tvl1 KEY=VALUE ...]]
    ta2net info   --config CONFIG [--config.key=value ...]   # params, FLOPs per clip, input shapes (JSON)
    ta2net export --workdir DIR [--step N] --format safetensors|torch|stablehlo|onnx|bundle --out PATH
                  [--locator RUN]
    ta2net import-torch CKPT.pt --config CONFIG --workdir DIR [--step N]
    ta2net prepare --config CONFIG | VIDEO|FOLDER ... --out DIR  [--workers N --size S --flow M --fps F]
                   [--runner beam [--beam-pipeline-options="..."]]   # Apache Beam (make beam-env)

CONFIG is a Python config file, optionally with a variant: `configs/synthetic_small.py:smoke`.
User errors (a bad file, a missing dataset or checkpoint, a wrong config key) are typed exceptions that
`main` prints as one line naming the file and the problem, with exit status 1. `python -m ta2net_jax.cli`
is the same command. Building the parser imports nothing heavy (the dataset and detector registries are
light); each subcommand's handler (commands.py, detection_commands.py) imports only what it needs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from input_pipeline import registry
from ta2net_jax import compilation_cache, cpu_kernels, export
from ta2net_jax.cli import commands, detection_arguments, detection_commands
from ta2net_jax.cli.detection_arguments import FLOW_HELP


def _with_config(p, *, workdir: bool):
    p.add_argument(
        "--config",
        required=True,
        help=f"config file, e.g. configs/synthetic_small.py[:variant]; datasets: {', '.join(registry.names())}",
    )
    if workdir:
        p.add_argument("--workdir", required=True, help="run directory (checkpoints, logs, results)")
    return p


def _add_distributed(p) -> None:
    """The flags of ta2net_jax.distributed.initialize (docs/scaling.md)."""
    g = p.add_argument_group("multi-process (multi-host)")
    g.add_argument(
        "--distributed",
        choices=("auto", "on", "off"),
        default="auto",
        help="call jax.distributed.initialize: auto (flags, SLURM with >1 task, Cloud TPU VM, "
        "JAX_COORDINATOR_ADDRESS), on, off",
    )
    g.add_argument("--coordinator", help="HOST:PORT of process 0's coordination service")
    g.add_argument("--num-processes", type=int, help="number of processes (hosts × processes per host)")
    g.add_argument("--process-id", type=int, help="this process's index, 0 … num_processes − 1")
    g.add_argument(
        "--local-device-ids",
        default="auto",
        help="devices this process uses: 'auto' (see ta2net_jax/distributed.py) or e.g. '0,1'",
    )


def _add_runner(p) -> None:
    p.add_argument(
        "--runner",
        choices=("local", "beam"),
        default="local",
        help="run the per-video work (decode, resize, flow, write) in a local process pool (--workers) or as an "
        "Apache Beam pipeline (own environment: make beam-env; docs/scaling.md §6); same outputs",
    )
    p.add_argument(
        "--beam-pipeline-options",
        "--beam_pipeline_options",
        default=None,
        help='Beam pipeline flags in one string, given after "=" (they start with --), e.g. '
        '="--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing" '
        "(default: Beam's DirectRunner)",
    )


def _add_prepare(p) -> None:
    p.add_argument(
        "inputs", nargs="*", help="video files or folders, local or gs:// (searched recursively); or use --config"
    )
    p.add_argument("--config", help="prepare the videos of this config's real dataset (data.manual_dir)")
    p.add_argument("--out", help="output folder (with VIDEO/FOLDER inputs)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel worker processes")
    p.add_argument("--size", type=int, default=None, help="output H = W in pixels (default 112)")
    p.add_argument("--flow", default=None, help=FLOW_HELP)
    p.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: native)")
    p.add_argument("--max-frames", type=int, default=None, help="keep at most N frames (default 300; 0: all)")
    p.add_argument("--jpeg-quality", type=int, default=None, help="JPEG quality 1-100 (default 95)")
    p.add_argument(
        "--keep-borders",
        action="store_const",
        const=False,
        dest="crop_borders",
        default=None,
        help="keep static black borders (by default cropped before the resize, as `ta2net detect` does)",
    )
    p.add_argument(
        "--labels",
        choices=("audio",),
        default=None,
        help="also label the videos from their soundtracks: audio_labels.json (a --labels file) and "
        "audio_labels_report.json (lag, rejected clips) in the output folder (docs/audio.md)",
    )
    _add_runner(p)


def versions() -> str:
    """`ta2net --version`: this package's and the stack's versions, read from the installed distributions'
    metadata (nothing imported), for bug reports and for telling the GPU image's older jax from the pinned one."""
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    stack = ", ".join(f"{d} {version(d)}" for d in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint"))
    return f"ta2net-jax {version('ta2net-jax')} ({stack}; Python {sys.version.split()[0]})"


class _PrintVersion(argparse.Action):
    """argparse's own version action wraps the line at the terminal's width; this prints it whole."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ta2net", description="TA²Net in JAX: timing audible actions from video.")
    parser.add_argument("--debug", action="store_true", help=f"show Python tracebacks (also: {DEBUG_ENV}=1)")
    parser.add_argument("--version", action=_PrintVersion, nargs=0, help="print the versions and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = _with_config(
        sub.add_parser("build", help="build the config's dataset (render, decode, flow, ArrayRecord)"), workdir=False
    )
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    _add_runner(p)
    p = _with_config(sub.add_parser("train", help="train (resumes from the workdir's latest checkpoint)"), workdir=True)
    p.add_argument(
        "--init-from",
        help="start a new run from the weights of a trained run (workdir) or a "
        "safetensors export (fine-tuning; ignored when the workdir resumes)",
    )
    _add_distributed(p)
    p = _with_config(sub.add_parser("eval", help="evaluate a checkpoint and the training-free detector"), workdir=True)
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--max-videos", type=int, default=None, help="evaluate only the first N videos of each split")
    p.add_argument(
        "--locator",
        default=None,
        help="a second run with the same input (as export --locator): its P(audible) is blended into the timing, "
        "the weight chosen on validation",
    )
    _add_distributed(p)  # several processes: each scores its share of the videos
    detection_arguments.add_detect(
        sub.add_parser(
            "detect", help="detect audible events in a video file or a folder (JSON, CSV, timeline, overlay)"
        )
    )
    detection_arguments.add_eval_videos(
        sub.add_parser("eval-videos", help="evaluate detectors on video files with label files (temporal, counting)")
    )
    p = sub.add_parser(
        "real-benchmark",
        help="every labelled clip of the shared real data, every detector, leave-one-clip-out (docs/RESULTS.md §2)",
    )
    p.add_argument("--realdata", default="../shared/realdata", help="the shared real-clip folder")
    p.add_argument(
        "--workdir", default=None, help="a trained run or bundle for the model detector (default: the shipped model)"
    )
    p.add_argument("--out", default="runs/real_benchmark", help="folder for results.json and tables.md")
    p.add_argument("--results-md", default=None, help="also write the tables between the markers of this file")
    p.add_argument("--flow", default=None, help=FLOW_HELP + " (the reference method keeps DIS)")
    p = sub.add_parser(
        "calibrate",
        help="re-choose a model's thresholds on labelled video folders, each counting equally (detector.json)",
    )
    p.add_argument("--workdir", required=True, help="a trained run or model bundle; its detector.json is rewritten")
    p.add_argument(
        "--tune-on",
        action="append",
        required=True,
        help="NAME=FOLDER of videos with FOLDER/labels.json or per-video <stem>.json events (repeat the flag)",
    )
    p.add_argument("--check-on", action="append", default=[], help="NAME=FOLDER scored and reported, not tuned on")
    p.add_argument("--tune", default="phase", help="thresholds to choose: native, phase or native,phase")
    p.add_argument(
        "--flow",
        default=None,
        help=FLOW_HELP + "; another than the run's own stores its thresholds apart, for detect --flow NAME",
    )
    p.add_argument(
        "--tvl1",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --flow tvl1-jax: a TV-L1 setting to score with, e.g. lambda_=0.6, or edge_weight=50 for the "
        "image-driven TV (repeat the flag; default OpenCV's); stored with the thresholds, so detect --flow tvl1-jax "
        "uses it",
    )
    _add_prepare(
        sub.add_parser(
            "prepare", help="decode, resize and compute flow of videos (JPEG frames + flow; parallel, resumable)"
        )
    )
    p = sub.add_parser(
        "export",
        help="export a run's checkpoint: safetensors, torch (original names), stablehlo, onnx, bundle (docs/export.md)",
    )
    p.add_argument("--workdir", required=True, help="a training run (or one made by import-torch)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--format", required=True, choices=export.FORMATS)
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument(
        "--locator",
        default=None,
        help="bundle only: a second run or bundle whose (finer) source map gives the events' (x, y); the timing "
        "stays the exported run's",
    )
    p = _with_config(
        sub.add_parser(
            "import-torch",
            help="turn a PyTorch checkpoint of the original TA²Net into a run that eval/detect/export use",
        ),
        workdir=True,
    )
    p.add_argument("checkpoint", help="a .pt file: the original's {'epoch', 'state_dict'} or a bare state_dict")
    p.add_argument("--step", type=int, default=0, help="step number to give the imported checkpoint")
    p = sub.add_parser(
        "preview-synthetic",
        help="a contact sheet (PNG) of random synthetic training videos: frames around an event with the contact "
        "marked (docs/synthetic.md)",
    )
    p.add_argument(
        "--variant",
        default="v2",
        help="generator variant: v1 (the demo's), v2 (domain-randomised), v2_tiny, v2_thud (bodies that may stop "
        "dead on impact), v2_jabs (shapes that turn abruptly in the air)",
    )
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--num", type=int, default=16, help="number of samples (seeds SEED … SEED+NUM−1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    _with_config(
        sub.add_parser(
            "info",
            help="print the model's parameter counts, FLOPs per clip and input shapes as JSON (nothing allocated)",
        ),
        workdir=False,
    )
    return parser


COMMANDS = {
    "build": commands.build,
    "train": commands.train,
    "eval": commands.evaluate,
    "detect": detection_commands.detect,
    "eval-videos": detection_commands.eval_videos,
    "real-benchmark": detection_commands.real_benchmark,
    "calibrate": detection_commands.calibrate,
    "prepare": commands.prepare,
    "export": commands.export,
    "import-torch": commands.import_torch,
    "info": commands.info,
    "preview-synthetic": commands.preview_synthetic,
}


def _absl_flags_parsed() -> None:
    # grain's worker processes read absl flags; outside absl.app.run they must be marked parsed.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def run(argv: list[str]) -> int:
    args, rest = _parser().parse_known_args(argv)
    overrides = [a[len("--config.") :] for a in rest if a.startswith("--config.")]
    unknown = [a for a in rest if not a.startswith("--config.")]
    if unknown:
        raise ValueError(f"unrecognised arguments: {' '.join(unknown)}")
    _absl_flags_parsed()
    from input_pipeline import progress

    with progress.shown():  # bars inside a long video's stages (decode, flow, windows), after 2 s
        return COMMANDS[args.command](args, overrides)


DEBUG_ENV = "TA2NET_DEBUG"
USER_ERRORS = (OSError, ValueError, KeyError, FloatingPointError)  # OSError: FileNotFoundError, FileExistsError,
# NotADirectoryError, PermissionError …; ValueError includes video.VideoReadError, the config and labels
# errors and the registries' unknown-name errors; FloatingPointError: a non-finite loss (train.nan_policy)
# PyPI names of the imported modules whose distribution is named otherwise (setup.py install_requires).
PYPI_NAMES = {
    "cv2": "opencv-contrib-python-headless",
    "PIL": "pillow",
    "absl": "absl-py",
    "orbax": "orbax-checkpoint",
    "ml_collections": "ml-collections",
    "tensorflow_datasets": "tensorflow-datasets",
}


def missing_module_message(err: ModuleNotFoundError) -> str:
    """One line for a dependency this Python lacks (an install without setup.py's dependencies, or a venv made
    by hand): which package, where, and how to get it."""
    module = (err.name or "").split(".")[0]
    package = PYPI_NAMES.get(module, module)
    return (
        f"this Python ({sys.executable}) has no module {module!r} (PyPI package {package}): install ta2net-jax "
        "with its dependencies (`pip install ta2net-jax`, or `make venv` in a checkout)"
    )


def main(argv: list[str] | None = None) -> int:
    """Runs one command. Errors are printed as one line (`ta2net: error: …`, exit status 1); anything
    else that escapes is an internal error, also one line (exit status 2); Ctrl-C is `ta2net: interrupted`
    (exit status 130). `--debug` (anywhere on the line) or TA2NET_DEBUG=1 re-raises instead, to show the
    traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    compilation_cache.configure()  # before any handler imports jax (ta2net_jax/compilation_cache.py)
    cpu_kernels.configure()  # oneDNN convolutions on the CPU, before any device is used (ta2net_jax/cpu_kernels.py)
    if not debug:
        # gcsfs logs a traceback for every request it gives up on and then raises the same error, which ends
        # here as one line; its other messages are retries and fallbacks. --debug keeps them all.
        logging.getLogger("gcsfs").setLevel(logging.CRITICAL)
    try:
        return run(argv)
    except KeyboardInterrupt:  # Ctrl-C: outputs are written whole or not at all, checkpoints torn by it never used
        if debug:
            raise
        print("ta2net: interrupted", file=sys.stderr)
        return commands.INTERRUPTED_EXIT_STATUS
    except BrokenPipeError:  # the reader went away (`ta2net detect clip.mp4 | head`): nothing left to say
        # Python would complain again when it flushes stdout at exit; point stdout at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except USER_ERRORS as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and err.filename and str(err.filename) not in str(message):
            message = f"{err.filename}: {err.strerror or message}"
        print(f"ta2net: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 1
    except ImportError as err:  # a dependency missing from this Python; also a library's own "please install"
        if debug:
            raise
        message = missing_module_message(err) if isinstance(err, ModuleNotFoundError) and err.name else str(err)
        print(f"ta2net: error: {' '.join(message.split())}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 — no traceback for users; --debug shows it
        if debug:
            raise
        print(
            f"ta2net: internal error: {type(err).__name__}: {' '.join(str(err).split())} "
            f"(rerun with --debug or {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
