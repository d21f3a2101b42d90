"""A contact sheet of detected events on real clips, each frame marked where the detector says the sound
comes from, so a reader can see at a glance whether the mark sits on the hit (docs/RESULTS.md §2).

    save_event_sheet(path, panels)   panels: [{"image": [H, W, 3] uint8, "xy": (x, y) pixels, "title": str}]
"""

from __future__ import annotations

import numpy as np

__all__ = ["save_event_sheet", "event_panels"]


def event_panels(video_path: str, events: list[dict], gt_frames, *, per_clip: int = 4, tol: int = 3) -> list[dict]:
    """Up to ``per_clip`` panels of one clip: its detected events (frame, x, y in source pixels), those within
    ``tol`` frames of a ground-truth event first (a true hit, so the mark can be judged), by score."""
    from input_pipeline.video import read_video

    if not events:
        return []
    gt = np.asarray(gt_frames if gt_frames is not None else [], np.int64)

    def is_hit(e):
        return bool(gt.size) and int(np.min(np.abs(gt - e["frame"]))) <= tol

    chosen = sorted(events, key=lambda e: (not is_hit(e), -e["score"]))[:per_clip]
    frames = read_video(video_path).frames
    name = video_path.rsplit("/", 1)[-1]
    return [
        {
            "image": frames[min(e["frame"], len(frames) - 1)],
            "xy": (e["x"], e["y"]),
            "title": f"{name} f{e['frame']} ({'GT ±3' if is_hit(e) else 'no GT'})",
        }
        for e in sorted(chosen, key=lambda e: e["frame"])
    ]


def save_event_sheet(path: str, panels: list[dict], *, cols: int = 4, title: str | None = None) -> str:
    """PNG grid of the panels, a red cross and circle at each (x, y); image pixel (i, j) spans [j, j+1] ×
    [i, i+1], the events' coordinate convention. Returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError(f"{path}: no events to show")
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, panel in zip(axes.ravel(), panels):
        h, w = panel["image"].shape[:2]
        ax.imshow(panel["image"], extent=(0, w, h, 0))
        x, y = panel["xy"]
        ax.plot([x], [y], marker="+", color="red", markersize=14, markeredgewidth=2)
        ax.plot([x], [y], marker="o", color="red", markersize=18, fillstyle="none", markeredgewidth=1.5)
        ax.set_title(panel["title"], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
