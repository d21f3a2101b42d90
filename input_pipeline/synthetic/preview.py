"""PNG contact sheet of a synthetic clip with its collision events marked (for docs and eyeballing)."""

from __future__ import annotations

import os

import numpy as np

from input_pipeline.synthetic.v2 import PRESETS, generate_v2

__all__ = ["save_preview", "pick_preview_frames", "save_contact_sheet", "SHEET_VARIANTS"]


def pick_preview_frames(video, num: int = 8) -> list[int]:
    """Up to ``num`` frame indices: about half on event frames (spread over the clip), the rest evenly."""
    n = video.frames.shape[0]
    ev = sorted({e.frame for e in video.events})
    chosen: set[int] = set()
    if ev:
        k = min(len(ev), num // 2)
        chosen |= {ev[i] for i in np.linspace(0, len(ev) - 1, k).round().astype(int)}
    for f in np.linspace(0, n - 1, num).round().astype(int):
        if len(chosen) >= num:
            break
        if all(abs(int(f) - c) > 1 for c in chosen):
            chosen.add(int(f))
    return sorted(chosen)[:num]


def save_preview(
    video, path: str | os.PathLike, frames: list[int] | None = None, cols: int = 4, scale: float = 2.2
) -> str:
    """Write a contact sheet of ``frames`` (default :func:`pick_preview_frames`) to ``path`` (PNG).

    Events at the shown frame are drawn as red crosses at their image position, events within 2 frames as
    hollow orange circles; a timeline underneath marks every event (red) and the shown frames (grey).
    Image pixel (i, j) is drawn over [j, j+1] x [i, i+1], matching the event coordinates. Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n, h, w = video.frames.shape[:3]
    frames = pick_preview_frames(video) if frames is None else [int(f) for f in frames]
    rows = max(1, -(-len(frames) // cols))
    fig = plt.figure(figsize=(cols * scale, rows * scale * h / w + 0.9))
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[scale * h / w] * rows + [0.55])
    for i, f in enumerate(frames):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.imshow(video.frames[f], extent=(0, w, h, 0), interpolation="nearest")
        for e in video.events:
            if e.frame == f:
                ax.plot(e.x, e.y, "x", color="red", ms=9, mew=2.2)
            elif abs(e.time_frames - f) <= 2:
                ax.plot(e.x, e.y, "o", mfc="none", mec="orange", ms=8, mew=1.2)
        here = [e for e in video.events if e.frame == f]
        label = f"frame {f}" + (f"  {here[0].objects[0]}|{here[0].objects[1]}" if here else "")
        ax.set_title(label, fontsize=7)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.axis("off")
    tl = fig.add_subplot(grid[rows, :])
    tl.set_xlim(-0.5, n - 0.5)
    tl.set_ylim(0, 1)
    tl.vlines([e.time_frames for e in video.events], 0.1, 0.9, color="red", lw=1.5)
    tl.vlines(frames, 0, 1, color="grey", lw=0.8, linestyles="dotted")
    tl.set_yticks([])
    tl.set_xlabel(f"frame  ({len(video.events)} events, seed {video.seed}, {video.fps:g} fps)", fontsize=8)
    tl.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


# Contact-sheet variants: v1 (the default 64x64 scene), v2 (its default preset) and v2_<preset> for the others.
SHEET_VARIANTS = ("v1", "v2", *(f"v2_{name}" for name in PRESETS if name != "default"))


def _sheet_sample(variant: str, seed: int, negative: bool):
    from input_pipeline.synthetic.generate import generate_video

    if variant == "v1":
        return generate_video(seed)  # v1 has no hard-negative videos
    preset = variant.removeprefix("v2_") if variant != "v2" else "default"
    return generate_v2(seed, PRESETS[preset], negative=negative or None)


def save_contact_sheet(
    path: str | os.PathLike, *, variant: str = "v2", num: int = 16, seed: int = 0, per_row: int = 4
) -> str:
    """PNG contact sheet of ``num`` random samples of a generator variant (``SHEET_VARIANTS``), seeds
    ``seed .. seed + num - 1``: per sample three frames around its strongest event (k - d, k, k + d with
    d ~ 1/15 s at the video's fps), the contact point marked (red cross on the event frame, orange circles
    on the others), titled with the seed, fps, native size (H x W) and the event's objects. For v2 the last
    sample is a forced hard negative (no contact, shaky camera), shown at mid-clip. Returns the path."""
    if variant not in SHEET_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {SHEET_VARIANTS}")
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = -(-num // per_row)
    fig, axes = plt.subplots(rows, 3 * per_row, figsize=(3 * per_row * 1.25, rows * 1.25 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(num):
        negative = variant != "v1" and i == num - 1
        video = _sheet_sample(variant, seed + i, negative)
        n, h, w = video.frames.shape[:3]
        d = max(1, int(round(video.fps / 15)))
        event = max(video.events, key=lambda e: e.impact_speed) if video.events else None
        centre = event.frame if event is not None else n // 2
        shown = [min(max(centre + o, 0), n - 1) for o in (-d, 0, d)]
        what = f"{event.objects[0]}|{event.objects[1]}" if event is not None else "no event"
        if negative:
            what = "hard negative (shake)"
        for j, f in enumerate(shown):
            ax = axes[i // per_row, 3 * (i % per_row) + j]
            ax.imshow(video.frames[f], extent=(0, w, h, 0), interpolation="nearest")
            if event is not None:
                style = dict(marker="x", color="red", ms=7, mew=2) if f == event.frame else {}
                style = style or dict(marker="o", mfc="none", mec="orange", ms=7, mew=1.2)
                ax.plot(event.x, event.y, linestyle="none", **style)
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.axis("off")
            title = f"f{f}" if j != 1 else f"s{video.seed} {video.fps:g}fps {h}x{w}\n{what} f{f}"
            ax.set_title(title, fontsize=5.5)
    fig.suptitle(f"synthetic {variant}: {num} samples from seed {seed} (red x: contact at its frame)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
