"""Timeline plot of a per-frame score curve with detected events and ground-truth labels.

Headless: builds a ``matplotlib.figure.Figure`` on an Agg canvas directly (no pyplot, no global backend
switch), so it works without a display and does not disturb a caller's own matplotlib state.
Units: the x axis is frames (bottom) with seconds = frames / fps on a secondary top axis (a variable-rate
video's own frame timestamps when given: input_pipeline/frame_times.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from input_pipeline import frame_times

__all__ = ["plot_timeline", "plot_pr_curves", "plot_counts", "plot_success_curves", "plot_map_examples"]

_WIDTH_IN, _HEIGHT_IN, _DPI = 14.0, 4.0, 100  # 1400 x 400 px


def plot_timeline(
    path,
    scores,
    *,
    fps: float,
    events=None,
    labels=None,
    threshold=None,
    title: str = "",
    extra_curves: Mapping[str, np.ndarray] | None = None,
    times_s: np.ndarray | None = None,
) -> None:
    """Write a PNG timeline to ``path`` (1400x400 px).

    ``scores``: [N] per-frame score (NaN = unscored, drawn as a gap). ``fps``: frames per second for the
    seconds axis (``times_s`` [N], the frames' timestamps of a variable-rate video, in its place).
    ``events``: detected event frames (red vertical lines, annotated with the frame number).
    ``labels``: ground-truth frames (green ticks along the bottom of the plot, below the curve).
    ``threshold``: dashed horizontal line. ``extra_curves``: name -> [N] array drawn as thin lines.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not fps or fps <= 0:
        raise ValueError("fps must be > 0")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    x = np.arange(s.size)

    fig = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, s, color="tab:blue", lw=1.4, label="score", zorder=3)
    curves = [s]
    for i, (name, c) in enumerate((extra_curves or {}).items()):
        c = np.asarray(c, dtype=np.float64).reshape(-1)
        ax.plot(np.arange(c.size), c, lw=0.9, alpha=0.8, color=f"C{(i + 2) % 10}", label=name, zorder=2)
        curves.append(c)

    # y range: a fixed [0, 1] frame for probabilities keeps plots comparable; otherwise autoscale.
    finite = np.concatenate([c[np.isfinite(c)] for c in curves])
    if threshold is not None and np.isfinite(threshold):
        finite = np.r_[finite, float(threshold)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        lo, hi = 0.0, 1.0
    elif finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = 0.0, 1.0
    span = hi - lo
    # Headroom above for the event frame numbers, room below for the label ticks.
    ax.set_ylim(lo - 0.12 * span, hi + 0.16 * span)
    ax.set_xlim(-0.5, max(s.size - 0.5, 0.5))

    if threshold is not None:
        ax.axhline(float(threshold), color="0.3", ls="--", lw=1.0, label=f"threshold {float(threshold):.3g}")

    if labels is not None and np.asarray(labels).size:
        lab = np.asarray(labels, dtype=np.float64).reshape(-1)
        # Ticks in the bottom band (axes coordinates in y), so they never hide behind the curve.
        ax.vlines(
            lab,
            0.0,
            0.08,
            transform=ax.get_xaxis_transform(),
            color="green",
            lw=2.2,
            label=f"ground truth ({lab.size})",
            zorder=4,
        )

    if events is not None and np.asarray(events).size:
        ev = np.asarray(events, dtype=np.float64).reshape(-1)
        ax.vlines(
            ev,
            0.1,
            0.9,
            transform=ax.get_xaxis_transform(),
            color="tab:red",
            lw=1.0,
            ls="-",
            alpha=0.75,
            label=f"detected ({ev.size})",
            zorder=1,
        )
        # Alternate two text rows so the frame numbers of nearby events do not overlap.
        for j, e in enumerate(np.sort(ev)):
            ax.text(
                e,
                0.975 if j % 2 == 0 else 0.92,
                f"{int(round(e))}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=7,
                color="tab:red",
            )

    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    sec = ax.secondary_xaxis(
        "top",
        functions=(
            lambda f: frame_times.frames_to_seconds(f, fps, times_s),
            lambda t: frame_times.seconds_to_frames(t, fps, times_s),
        ),
    )
    sec.set_xlabel(f"time (s) @ {fps:g} fps" if times_s is None else "time (s), variable frame rate")
    ax.grid(True, alpha=0.25)
    # Legend outside the plot area: inside it would cover event numbers or the curve.
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=_DPI)


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> None:
    fig.tight_layout()
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=_DPI)


def _finish(fig, ax, path, xlabel: str, ylabel: str, title: str, legend_loc: str = "best") -> None:
    """Labels, grid, legend and title of a one-panel metric plot, then saves it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc=legend_loc)
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def plot_pr_curves(path, curves: Mapping[str, tuple], *, title: str = "") -> None:
    """Precision-recall curves; ``curves``: label -> (precision [K], recall [K]) after each ranked candidate."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, (precision, recall)) in enumerate(curves.items()):
        if len(precision):
            ax.plot(np.r_[0.0, recall], np.r_[precision[0], precision], lw=1.3, color=f"C{i}", label=name)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    _finish(fig, ax, path, "recall", "precision", title, legend_loc="lower left")


def plot_counts(path, series: Mapping[str, tuple], *, title: str = "") -> None:
    """Predicted vs ground-truth counts; ``series``: label -> (gt [V], pred [V]); the ±1 band shaded."""
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    hi = 1.0
    for i, (name, (gt, pred)) in enumerate(series.items()):
        gt, pred = np.asarray(gt, float), np.asarray(pred, float)
        if gt.size:
            hi = max(hi, gt.max(), pred.max())
            ax.scatter(gt, pred, s=18, alpha=0.7, color=f"C{i}", label=name)
    line = np.array([0.0, hi * 1.05 + 1])
    ax.plot(line, line, color="0.3", lw=1.0)
    ax.fill_between(line, line - 1, line + 1, color="0.85", alpha=0.6, label="off by ≤ 1")
    ax.set_xlim(0, line[1])
    ax.set_ylim(0, line[1])
    _finish(fig, ax, path, "ground-truth count", "predicted count", title, legend_loc="upper left")


def plot_success_curves(path, curves: Mapping[str, np.ndarray], thresholds: np.ndarray, *, title: str = "") -> None:
    """cIoU success curves s(t) = fraction of samples with cIoU ≥ t (their area is the AUC)."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, cious) in enumerate(curves.items()):
        c = np.asarray(cious, float)
        if c.size:
            ax.plot(thresholds, [np.mean(c >= t) for t in thresholds], marker=".", color=f"C{i}", label=name)
    ax.axvline(0.5, color="0.5", ls="--", lw=0.8)
    ax.set_ylim(0, 1.02)
    _finish(fig, ax, path, "cIoU threshold t", "fraction of samples with cIoU ≥ t", title)


def plot_threshold_sweeps(path, sweeps: Mapping[str, dict]) -> None:
    """One panel per set and one for the mean over sets: F1 ±3 against the factor on each detector's default
    threshold; ``sweeps``: method -> real_benchmark.threshold_sweep output."""
    sets = list(next(iter(sweeps.values()))["per_set"])
    panels = [*sets, "mean over sets"]
    fig = _figure(3.6 * len(panels), 3.4)
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for i, (method, sweep) in enumerate(sweeps.items()):
            values = sweep["mean"] if panel == "mean over sets" else sweep["per_set"].get(panel)
            if values:
                ax.plot(sweep["factors"], values, marker=".", color=f"C{i}", label=method)
        ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("threshold × (1 = default)")
        ax.set_ylabel("F1 ±3" if k == 0 else "")
        ax.grid(True, alpha=0.3)
        ax.set_title(panel, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    _save(fig, path)


def plot_map_examples(path, examples: list[dict], *, title: str = "") -> None:
    """Frames with their sound-source map: each example has ``frame`` [H, W, 3] uint8, ``map`` [h, w],
    ``points`` [[x, y], ...] (ground-truth contacts, pixels), ``boxes`` [[x0, y0, x1, y1], ...], ``caption``."""
    from matplotlib.patches import Rectangle

    n = max(len(examples), 1)
    fig = _figure(2.2 * n, 2.6)
    for i, ex in enumerate(examples):
        ax = fig.add_subplot(1, n, i + 1)
        h, w = ex["frame"].shape[:2]
        ax.imshow(ex["frame"], extent=(0, w, h, 0))
        ax.imshow(ex["map"], extent=(0, w, h, 0), cmap="inferno", alpha=0.5, interpolation="bilinear")
        for x0, y0, x1, y1 in ex.get("boxes", []):
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.0))
        for x, y in ex.get("points", []):
            ax.plot([x], [y], marker="x", color="cyan", ms=6)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(ex.get("caption", ""), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)
