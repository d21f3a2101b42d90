"""Arguments and handlers of `ta2net detect` and `ta2net eval-videos` (cli.py wires them in).

Light at import (argparse only), so building the parser of `ta2net info` pulls in nothing heavy.

    ta2net detect VIDEO|FOLDER [--workdir DIR | --method inflection] [--out E.json] [--csv E.csv]
                  [--plot T.png] [--overlay O.gif|O.mp4] [--labels SPEC] [--out-dir DIR]
    ta2net eval-videos VIDEO|FOLDER ... --labels FILE --out-dir DIR [--workdir DIR] [--method ...]
"""
from __future__ import annotations

import os

LABELS_HELP = ("ground truth: '12,31,53', a JSON list file, or a JSON file keyed by video name (Audible623 "
               "labels.json, RepCount labels, Greatest Hits audio_onsets.json) or an Audible623 CSV")


def add_detect_arguments(p) -> None:
    p.add_argument("video", help="a video file PyAV/OpenCV can read, or a folder of them (batch mode)")
    p.add_argument("--workdir", help="a trained run (uses its latest checkpoint and tuned threshold)")
    p.add_argument("--method", choices=("model", "inflection"), default=None,
                   help="model (needs --workdir; default when given) or training-free inflection energy")
    p.add_argument("--out", help="events JSON to write (one video)")
    p.add_argument("--csv", help="events CSV to write: frame,time_s,score,x,y (one video)")
    p.add_argument("--plot", help="timeline PNG to write (one video)")
    p.add_argument("--overlay", help="overlay GIF or video (.mp4) with the heatmap and event flashes (one video)")
    p.add_argument("--out-dir", help="folder for every output per video (<stem>.events.json/.events.csv/"
                                     ".timeline.png/.overlay.gif) and summary.json; needed for a folder")
    p.add_argument("--overlay-format", choices=("gif", "mp4", "none"), default="gif",
                   help="overlay format in --out-dir mode (default gif)")
    p.add_argument("--threshold", type=float, help="override the tuned threshold")
    p.add_argument("--labels", help=LABELS_HELP)


def run_detect(args) -> int:
    from ta2net_jax.detection import detect as detect_lib
    method = args.method or ("model" if args.workdir else "inflection")
    single_outputs = [args.out, args.csv, args.plot, args.overlay]
    if os.path.isdir(args.video) or args.out_dir:
        if any(single_outputs):
            raise ValueError("--out/--csv/--plot/--overlay name one video's files; with a folder or --out-dir "
                             "every output goes into --out-dir")
        if not args.out_dir:
            raise ValueError(f"{args.video}: is a folder; give --out-dir for the per-video outputs")
        videos = detect_lib.list_videos(args.video) if os.path.isdir(args.video) else [args.video]
        fmt = None if args.overlay_format == "none" else args.overlay_format
        summary = detect_lib.detect_batch(videos, args.out_dir, workdir=args.workdir, method=method,
                                          threshold=args.threshold, labels=args.labels, overlay_format=fmt)
        for row in summary["videos"]:
            extra = f", event F1 ±3 = {row['event_f1_tol3']:.3f}" if "event_f1_tol3" in row else ""
            print(f"{row['num_events']:3d} events{extra}: {row['video']}")
        for line in summary["failed"]:
            print(f"skipped: {line}")
        print(f"outputs: {os.path.abspath(args.out_dir)} ({len(summary['videos'])} videos, "
              f"{len(summary['failed'])} skipped)")
        return 1 if summary["failed"] else 0
    result = detect_lib.detect(args.video, workdir=args.workdir, method=method, threshold=args.threshold,
                               out=args.out, plot=args.plot, labels=args.labels, csv_path=args.csv,
                               overlay=args.overlay)
    print(f"{len(result['events'])} events ({method}, threshold {result['threshold']:.3g}) in {args.video}")
    if "metrics" in result:
        m = result["metrics"]
        print(f"against {result['labels']['source']}: event F1 ±1/±2/±3 = {m['event_f1_tol1']:.3f}/"
              f"{m['event_f1_tol2']:.3f}/{m['event_f1_tol3']:.3f}; original ±3 F = {m['orig_f1_tol3']:.3f}")
    if not any(single_outputs):
        for e in result["events"]:
            print(f"  frame {e['frame']:5d}  t = {e['time_s']:7.3f} s  score {e['score']:.3f}  "
                  f"(x, y) = ({e['x']:.0f}, {e['y']:.0f})")
    for name, path in zip(("events", "csv", "timeline", "overlay"), single_outputs):
        if path:
            print(f"{name}: {os.path.abspath(path)}")
    return 0


def add_eval_videos_arguments(p) -> None:
    p.add_argument("videos", nargs="+", help="video files and/or folders of them")
    p.add_argument("--labels", required=True, help=LABELS_HELP)
    p.add_argument("--out-dir", required=True, help="folder for results.json, report.md and plots")
    p.add_argument("--workdir", help="a trained run (model method)")
    p.add_argument("--method", choices=("model", "inflection", "both"), default=None,
                   help="detector(s) to evaluate (default: both with --workdir, else inflection)")
    p.add_argument("--name", default=None, help="title of the report (default: the labels file)")


def run_eval_videos(args) -> int:
    from ta2net_jax.evaluation import videos as eval_files
    methods = {"both": ("model", "inflection"), None: ("model", "inflection") if args.workdir else ("inflection",),
               "model": ("model",), "inflection": ("inflection",)}[args.method]
    result = eval_files.evaluate_files(args.videos, args.labels, args.out_dir, workdir=args.workdir,
                                       methods=methods, name=args.name)
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


def add_prepare_arguments(p) -> None:
    """`ta2net prepare` arguments (run by ta2net_jax/prepare.py; the flow method is checked there)."""
    p.add_argument("inputs", nargs="*", help="video files or folders (searched recursively); or use --config")
    p.add_argument("--config", help="prepare the videos of this config's real dataset (data.manual_dir)")
    p.add_argument("--out", help="output folder (with VIDEO/FOLDER inputs)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel worker processes")
    p.add_argument("--size", type=int, default=None, help="output H = W in pixels (default 112)")
    p.add_argument("--flow", default=None, help="flow estimator: dis (default), farneback or tvl1")
    p.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: native)")
    p.add_argument("--max-frames", type=int, default=None, help="keep at most N frames (default 300; 0: all)")
    p.add_argument("--jpeg-quality", type=int, default=None, help="JPEG quality 1-100 (default 95)")
