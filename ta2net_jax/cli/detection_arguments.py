"""The arguments of the detection subcommands (`detect`, `eval-videos`) and the help they share with the
others (`--labels`, `--flow`, `--keep-repeats`, `--keep-borders`); main.py builds the parser from them."""

from __future__ import annotations

from ta2net_jax.detection import detectors

LABELS_HELP = (
    "ground truth: '12,31,53', a JSON list file, or a JSON file keyed by video name (Audible623 "
    "labels.json, RepCount labels, Greatest Hits audio_onsets.json) or an Audible623 CSV"
)

FLOW_HELP = (
    "optical-flow estimator: dis (default; a run's own by default with --workdir), farneback, tvl1 (OpenCV) "
    "or tvl1-jax (the same TV-L1 in JAX, on the accelerator when there is one)"
)
KEEP_REPEATS_HELP = (
    "score every decoded frame; by default frames that repeat the one before them in a regular cadence "
    "(frame-rate conversions, e.g. 25 → 29.97 fps) are dropped before flow, since each would look like an "
    "abrupt stop (events stay in native frames; the reference method never drops them)"
)
KEEP_BORDERS_HELP = (
    "resize the whole frame; by default static black borders (letterbox, pillarbox) are cropped first, so "
    "the picture gets all of the model's input pixels (event x, y stay in source pixels; the reference "
    "method never crops)"
)


def _add_video_input(p) -> None:
    """How a video becomes the detectors' input (detect.VideoDetector): its flow, repeated frames, borders."""
    p.add_argument("--flow", default=None, help=FLOW_HELP)
    p.add_argument("--keep-repeats", action="store_true", help=KEEP_REPEATS_HELP)
    p.add_argument("--keep-borders", action="store_true", help=KEEP_BORDERS_HELP)


def add_detect(p) -> None:
    """`ta2net detect VIDEO|FOLDER` (detection/detect.py)."""
    p.add_argument("video", help="a video file PyAV/OpenCV can read, or a folder of them (batch mode); local or gs://")
    p.add_argument(
        "--workdir",
        help="a trained run or model bundle (its latest checkpoint, input size, flow and tuned thresholds; "
        "default: the default model shipped with the package)",
    )
    p.add_argument(
        "--method",
        choices=detectors.names(),
        default=None,
        help="detector (default: model, the shipped default model or --workdir's; inflection is the training-free one)",
    )
    p.add_argument("--out", help="events JSON to write (one video); '-': standard output, messages on stderr")
    p.add_argument(
        "--csv", help="events CSV to write: frame,time_s,score,x,y (one video); '-': standard output, as --out"
    )
    p.add_argument("--plot", help="timeline PNG to write (one video)")
    p.add_argument("--overlay", help="overlay GIF or video (.mp4) with the heatmap and event flashes (one video)")
    p.add_argument(
        "--out-dir",
        help="folder for every output per video (<stem>.events.json/.events.csv/"
        ".timeline.png/.overlay.gif) and summary.json; needed for a folder",
    )
    p.add_argument(
        "--overlay-format",
        choices=("gif", "mp4", "none"),
        default="gif",
        help="overlay format in --out-dir mode (default gif)",
    )
    p.add_argument("--threshold", type=float, help="override the tuned threshold")
    p.add_argument("--labels", help=LABELS_HELP)
    _add_video_input(p)
    g = p.add_argument_group("dubbing and cue lists (one video; docs/audio.md)")
    g.add_argument(
        "--dub",
        help="write the video with an impact sound at each event (.mp4/.mov/.mkv/.avi/.webm; "
        "the video stream is copied, not re-encoded, where the container allows)",
    )
    g.add_argument("--sound", help="a sound file to use as the impact (default: a synthesised thump)")
    g.add_argument(
        "--mix",
        choices=("original", "replace"),
        default="original",
        help="add the impacts to the video's own soundtrack (original) or replace it",
    )
    g.add_argument(
        "--cues",
        help="cue list for editors: .srt subtitles, .csv (frame, time, timecode, score) or "
        ".edl (CMX 3600 with SMPTE timecodes)",
    )


def add_eval_videos(p) -> None:
    """`ta2net eval-videos VIDEO|FOLDER ... --labels FILE` (evaluation/videos.py)."""
    p.add_argument("videos", nargs="+", help="video files and/or folders of them (local or gs://)")
    p.add_argument("--labels", required=True, help=LABELS_HELP)
    p.add_argument("--out-dir", required=True, help="folder for results.json, report.md and plots")
    p.add_argument("--workdir", help="a trained run or model bundle (model method; default: the shipped model)")
    p.add_argument(
        "--method",
        choices=(*detectors.names(), "all", "both"),
        default=None,
        help="detector(s) to evaluate: one name, or all ('both' is the same) (default: all)",
    )
    p.add_argument("--name", default=None, help="title of the report (default: the labels file)")
    _add_video_input(p)
