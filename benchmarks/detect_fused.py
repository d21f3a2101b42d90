"""Times `detect` with the model on one real clip: DIS flow (OpenCV, host) + model, TV-L1 in JAX computed for the
whole video then windowed on the host (unfused), and TV-L1 inside the model's jitted program (fused,
ta2net_jax/detection/fused.py).

The model is configs/default_detector.py's (64×64 input, 16-frame windows every 8) with random weights: the
cost does not depend on the weights, and no trained model is needed. The clip is decoded once at the model's
input size; each variant is timed from decoded frames to per-frame scores and maps (what differs between
them), first call (compilation included) and then `--repeats` warm calls (the best is reported). Wall and
process CPU time (all threads) are both printed: on a shared machine the wall time depends on the load.

    python benchmarks/detect_fused.py                       # the shared hitting_metal.mp4 clip
    python benchmarks/detect_fused.py --max-frames 40 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_common, also when loaded by path
import jax  # noqa: E402
import numpy as np  # noqa: E402
from bench_common import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from input_pipeline import flow as flow_lib  # noqa: E402
from input_pipeline.video import read_video  # noqa: E402
from ta2net_jax.config_utils import load_config  # noqa: E402
from ta2net_jax.detection import detectors  # noqa: E402
from ta2net_jax.export.bundle import write_bundle  # noqa: E402
from ta2net_jax.model import build_model  # noqa: E402

CLIP = ROOT.parent / "shared" / "realdata" / "greatest_hits_condfoleygen" / "hitting_metal.mp4"


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(CLIP))
    parser.add_argument("--config", default=str(ROOT / "configs" / "default_detector.py"))
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first N frames")
    parser.add_argument("--repeats", type=int, default=1, help="warm calls per variant (best reported)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.jsonl"), help="JSONL to append to")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    size = int(config.data.image_size)
    decoded = read_video(args.video, size=(size, size))
    frames = decoded.frames[: args.max_frames] if args.max_frames else decoded.frames
    n = len(frames)
    with tempfile.TemporaryDirectory() as tmp:
        write_bundle(build_model(config, seed=0), config, 0, tmp, tmp)
        detector = detectors.ModelDetector(detectors.Run(tmp, config, {}))

        def unfused(method):
            fwd, bwd = flow_lib.estimate_flow(frames, method)
            return detector.scores(frames, fwd, bwd, decoded.fps)

        variants = {
            "dis + model": lambda: unfused("dis"),
            "tvl1-jax, unfused": lambda: unfused("tvl1-jax"),
            "tvl1-jax, fused": lambda: detector.fused_scores(frames, decoded.fps),
        }
        rows, scores = [], {}
        for name, fn in variants.items():
            scored, first_wall, first_cpu = _timed(fn)
            warm = [_timed(fn)[1:] for _ in range(args.repeats)]
            wall, cpu = min(w for w, _ in warm), min(c for _, c in warm)
            scores[name] = scored.values
            rows.append(
                {"variant": name, "first_s": first_wall, "wall_s": wall, "cpu_s": cpu, "ms_per_frame": 1e3 * wall / n}
            )
    gap = float(np.nanmax(np.abs(scores["tvl1-jax, fused"] - scores["tvl1-jax, unfused"])))
    device = (
        f"{jax.devices()[0].platform}: {cpu_name()}" if jax.devices()[0].platform == "cpu" else str(jax.devices()[0])
    )
    print(
        f"{Path(args.video).name}: {n} frames at {size}×{size}, {config.data.num_frames}-frame windows every "
        f"{config.eval.stride}, {config.eval.batch_size} per batch; {jax.device_count()} x {device}; "
        f"JAX {jax.__version__}"
    )
    print("| variant | first call s (compile incl.) | warm wall s | warm CPU s | ms/frame (wall) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['first_s']:.1f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['ms_per_frame']:.0f} |"
        )
    print(f"max |P(audible) fused − unfused| = {gap:.2e}")
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with open(args.out, "a") as f:
        for r in rows:
            line = {"bench": "detect_fused", **r, "video": Path(args.video).name, "frames": n, "size": size}
            f.write(json.dumps({**line, "max_score_gap": gap, "device": device, "date": date}) + "\n")


if __name__ == "__main__":
    main()
