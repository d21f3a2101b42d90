"""Why TV-L1 (and so ``--flow tvl1-jax``) trails DIS on the synthetic videos: error by region and by speed.

For OpenCV DIS (our settings, input_pipeline.flow.DIS_OPTIONS) and TV-L1 in JAX (input_pipeline.flow_jax)
at OpenCV's defaults and at each override in ``SETTINGS``, on forward and backward flow of frames 12..16 of
the v1 synthetic videos (seeds 0..``--num-videos``−1, ``--size`` px, 25 fps), it prints:

* mean end-point error (px) over all pixels and over moving pixels (|exact flow| > 0.5 px);
* on moving pixels, split into the objects' interiors (the moving mask eroded by 2 px) and their rims (the
  rest of the mask), and on the 2 px ring just outside them (background the flow bleeds into);
* in the interiors, per exact-speed bin (px/frame), the mean ratio |estimated| / |exact| (1 = no shrinkage)
  and the EPE.

With ``--video FILE`` (a real clip: no exact flow) it prints instead, per frame pair, the 99th percentile of
the flow speed (px/frame) of DIS, of tvl1-jax, and of tvl1-jax's full-size iterations started from DIS's flow
(``initial_flow``, one scale), of tvl1-jax with the image-driven TV (``IMAGE_DRIVEN``) and of tvl1-jax without its
median filter, on the frames resized to ``--size`` as ``ta2net detect`` resizes them: does TV-L1 follow a thin,
fast object (a drumstick's downswing) when it is handed the motion, when the flow may break at the image's edges,
or when no median erases a stick a pixel or two wide?

Nothing is written; the figures are quoted in docs/RESULTS.md §3. About 3 minutes on 2 CPU cores.

    python benchmarks/tvl1_settings.py --num-videos 6 --size 64
    python benchmarks/tvl1_settings.py --video ../shared/realdata/greatest_hits_condfoleygen/hitting_metal.mp4 \
        --plot docs/images/tvl1_drumstick.png   # and the speeds of the pair DIS sees fastest, side by side
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from input_pipeline.flow import estimate_flow, to_gray  # noqa: E402
from input_pipeline.flow_jax_batch import estimate_flow_batch  # noqa: E402
from input_pipeline.synthetic import SceneConfig, generate_video  # noqa: E402

# Overrides of flow_jax.OPENCV_DEFAULTS tried: the data weight, the coupling, warps, the pyramid, iterations.
SETTINGS = (
    {},
    {"lambda_": 0.3},
    {"lambda_": 0.6},
    {"theta": 0.1},
    {"lambda_": 0.3, "theta": 0.1},
    {"warps": 15},
    {"nscales": 8, "scale_step": 0.9},
    {"inner_iterations": 60, "outer_iterations": 20, "epsilon": 0.002},
    {"median_filtering": 1},
    # The image-driven TV (flow_jax.edge_weights, not in OpenCV): g = exp(-w (|grad I0| / 255)^power).
    {"edge_weight": 5.0, "edge_power": 0.5},
    {"edge_weight": 5.0, "edge_power": 1.0},
    {"edge_weight": 50.0, "edge_power": 2.0},
    {"edge_weight": 150.0, "edge_power": 2.0},
)
IMAGE_DRIVEN = {"edge_weight": 50.0, "edge_power": 2.0}  # the best moving-pixel EPE of the rows above
SPEED_EDGES = (1.0, 2.0, 3.0, 4.0)  # px/frame
FIRST_FRAME, NUM_PAIRS = 12, 4


def flow_pairs(videos, settings: dict | None):
    """(estimated, exact) flow fields [H, W, 2] of every scored pair, both directions; DIS when settings is None."""
    for v in videos:
        frames = v.frames[FIRST_FRAME : FIRST_FRAME + NUM_PAIRS + 1]
        if settings is None:
            fwd, bwd = estimate_flow(frames, "dis")
        else:
            fwd, bwd = estimate_flow_batch(to_gray(frames), **settings)
        for est, exact in ((fwd, v.flow_fwd), (bwd, v.flow_bwd)):
            for k in range(NUM_PAIRS):
                yield np.asarray(est[k], np.float32), exact[FIRST_FRAME + k]


def measure(videos, settings: dict | None) -> dict:
    sums: dict[str, list[float]] = {}

    def add(key, values):
        s = sums.setdefault(key, [0.0, 0.0])
        s[0] += float(np.sum(values))
        s[1] += values.size

    for est, exact in flow_pairs(videos, settings):
        err = np.linalg.norm(est - exact, axis=-1)
        speed, est_speed = np.linalg.norm(exact, axis=-1), np.linalg.norm(est, axis=-1)
        moving = speed > 0.5
        interior = ndimage.binary_erosion(moving, iterations=2)
        ring = ndimage.binary_dilation(moving, iterations=2) & ~moving
        add("all", err)
        add("moving", err[moving])
        add("interior", err[interior])
        add("rim", err[moving & ~interior])
        add("ring", err[ring])
        bins = np.digitize(speed[interior], SPEED_EDGES)
        for b in range(len(SPEED_EDGES) + 1):
            sel = bins == b
            add(f"ratio{b}", est_speed[interior][sel] / speed[interior][sel])
            add(f"epe{b}", err[interior][sel])
    return {k: s / max(n, 1) for k, (s, n) in sums.items()}


def fast_motion(path: str, size: int, fast: float, plot: str | None = None) -> dict:
    """Per pair: the 99th-percentile speed of each flow of the module doc (printed, and returned as
    {name: [pairs] px/frame}); with ``plot``, a PNG of the pair where DIS's is largest (:func:`plot_fastest`)."""
    import jax.numpy as jnp

    from input_pipeline.flow_jax import tvl1_flow
    from input_pipeline.video import read_video

    frames = read_video(path, size=(size, size)).frames
    grey = to_gray(frames)
    dis = estimate_flow(frames, "dis")[0].astype(np.float32)
    i0, i1 = jnp.asarray(grey[:-1]), jnp.asarray(grey[1:])
    flows = {
        "DIS": dis,
        "tvl1-jax": np.asarray(tvl1_flow(i0, i1)),
        "tvl1-jax from DIS": np.asarray(tvl1_flow(i0, i1, nscales=1, initial_flow=jnp.asarray(dis))),
        "tvl1-jax image-driven": np.asarray(tvl1_flow(i0, i1, **IMAGE_DRIVEN)),
        # OpenCV's 5×5 median of the flow after every warp could erase a stick 1–2 px wide: without it.
        "tvl1-jax no median": np.asarray(tvl1_flow(i0, i1, median_filtering=1)),
    }
    p99 = {k: np.percentile(np.linalg.norm(f, axis=-1).reshape(len(f), -1), 99, axis=1) for k, f in flows.items()}
    print(f"{path}: {len(frames)} frames at {size} px; 99th-percentile flow speed (px/frame) per pair")
    print("| pair | " + " | ".join(p99) + " |")
    print("|---" * (len(p99) + 1) + "|")
    for t in range(len(dis)):
        print(f"| {t}→{t + 1} | " + " | ".join(f"{v[t]:.2f}" for v in p99.values()) + " |")
    sel = p99["DIS"] >= fast
    print(
        f"pairs where DIS's is ≥ {fast:g} px/frame ({int(sel.sum())}): mean "
        + ", ".join(f"{k} {v[sel].mean():.2f}" for k, v in p99.items())
    )
    if plot:
        t = int(np.argmax(p99["DIS"]))
        title = f"{Path(path).name}, pair {t}→{t + 1}, {size} px"
        plot_fastest(plot, grey[t], {k: f[t] for k, f in flows.items()}, title)
        print(f"wrote {plot}")
    return p99


def plot_fastest(path: str, frame: np.ndarray, flows: dict, title: str) -> None:
    """A PNG row: the first frame [H, W] (grey), then the speed |flow| (px/frame) of each of ``flows``
    ({name: [H, W, 2]}) on one colour scale, so a thin fast object that a flow loses shows as missing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    speeds = {k: np.linalg.norm(f, axis=-1) for k, f in flows.items()}
    top = max(float(np.percentile(v, 99.5)) for v in speeds.values()) or 1.0
    fig = Figure(figsize=(3.0 * (len(speeds) + 1), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(speeds) + 1)
    axes[0].imshow(frame, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("frame", fontsize=9)
    for ax, (name, speed) in zip(axes[1:], speeds.items()):
        image = ax.imshow(speed, cmap="magma", vmin=0.0, vmax=top)
        ax.set_title(f"{name}\n99th pct {np.percentile(speed, 99):.2f} px/frame", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes[1:]), fraction=0.02, pad=0.01, label="|flow| (px/frame)")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-videos", type=int, default=6)
    parser.add_argument("--size", type=int, default=64, help="square frame size (px)")
    parser.add_argument("--video", default=None, help="a real clip: per-pair speeds instead (module doc)")
    parser.add_argument("--fast", type=float, default=4.0, help="--video: summary over pairs DIS sees this fast")
    parser.add_argument("--plot", help="--video: a PNG of every flow's speed on the pair DIS sees fastest")
    args = parser.parse_args(argv)
    if args.plot and not args.video:
        parser.error("--plot draws a real clip's fastest pair: give --video too")
    if args.video:
        fast_motion(args.video, args.size, args.fast, args.plot)
        return
    cfg = SceneConfig(height=args.size, width=args.size, num_frames=32, fps=25.0)
    videos = [generate_video(seed, cfg) for seed in range(args.num_videos)]
    edges = ("0",) + tuple(f"{e:g}" for e in SPEED_EDGES)
    bins = [f"{lo}–{hi}" for lo, hi in zip(edges, edges[1:])] + [f"≥{edges[-1]}"]
    last = FIRST_FRAME + NUM_PAIRS
    print(f"{args.num_videos} v1 videos at {args.size} px, frames {FIRST_FRAME}..{last}, both directions")
    print(
        "| flow | EPE all | moving | interior | rim | ring outside | interior |est|/|exact| by px/frame "
        f"({', '.join(bins)}) | interior EPE by px/frame |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for settings in (None, *SETTINGS):
        name = (
            "DIS (ours)"
            if settings is None
            else "tvl1-jax " + (", ".join(f"{k.rstrip('_')}={v}" for k, v in settings.items()) or "OpenCV defaults")
        )
        m = measure(videos, settings)
        ratios = " / ".join(f"{m[f'ratio{b}']:.2f}" for b in range(len(bins)))
        epes = " / ".join(f"{m[f'epe{b}']:.2f}" for b in range(len(bins)))
        print(
            f"| {name} | {m['all']:.3f} | {m['moving']:.3f} | {m['interior']:.3f} | {m['rim']:.3f} | "
            f"{m['ring']:.3f} | {ratios} | {epes} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
