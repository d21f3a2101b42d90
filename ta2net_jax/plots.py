"""Timeline plot of a per-frame score curve with detected events and ground-truth labels.

Headless: builds a ``matplotlib.figure.Figure`` on an Agg canvas directly (no pyplot, no global backend
switch), so it works without a display and does not disturb a caller's own matplotlib state.
Units: the x axis is frames (bottom) with seconds = frames / fps on a secondary top axis.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

__all__ = ["plot_timeline"]

_WIDTH_IN, _HEIGHT_IN, _DPI = 14.0, 4.0, 100  # 1400 x 400 px


def plot_timeline(path, scores, *, fps: float, events=None, labels=None, threshold=None, title: str = "",
                  extra_curves: Mapping[str, np.ndarray] | None = None) -> None:
    """Write a PNG timeline to ``path`` (1400x400 px).

    ``scores``: [N] per-frame score (NaN = unscored, drawn as a gap). ``fps``: frames per second for the
    seconds axis. ``events``: detected event frames (red vertical lines, annotated with the frame number).
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
        ax.vlines(lab, 0.0, 0.08, transform=ax.get_xaxis_transform(), color="green", lw=2.2,
                  label=f"ground truth ({lab.size})", zorder=4)

    if events is not None and np.asarray(events).size:
        ev = np.asarray(events, dtype=np.float64).reshape(-1)
        ax.vlines(ev, 0.1, 0.9, transform=ax.get_xaxis_transform(), color="tab:red", lw=1.0, ls="-",
                  alpha=0.75, label=f"detected ({ev.size})", zorder=1)
        # Alternate two text rows so the frame numbers of nearby events do not overlap.
        for j, e in enumerate(np.sort(ev)):
            ax.text(e, 0.975 if j % 2 == 0 else 0.92, f"{int(round(e))}", transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=7, color="tab:red")

    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    sec = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda t: t * fps))
    sec.set_xlabel(f"time (s) @ {fps:g} fps")
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
