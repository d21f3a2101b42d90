"""Clips from whole videos: training sampling, augmentation and evaluation windows (host side, NumPy; the
grain transforms that apply them to a dataset are input_pipeline/pipeline.py's, so `ta2net detect` needs no grain).

Frame coordinates. A video of N frames has N−1 forward and N−1 backward flow fields. Inflection flow
needs two flows on each side of a frame (ta2net_jax/inflection.py), so only frames 2 … N−3 can be
inputs ("kept frames", N' = N − 4 of them), exactly as the original drops `[2:-2]`.

A clip starting at video frame s with `num_valid` real positions carries (T = clip length):
    frames[j]   = frame   s + min(j, num_valid − 1)          j < T   (end padding repeats the last)
    labels[j]   = label   s + min(j, num_valid − 1)
    contact_xy[j] = contact point of frame s + min(j, num_valid − 1)   (datasets with `event_xy` only)
    flow_fwd[j] = F⁺      s + min(j, num_valid)              j ≤ T
    flow_bwd[j] = F⁻      s − 2 + min(j, num_valid)          j ≤ T
The flow arrays are padded in the same way; inflection.py re-pads its outputs from `num_valid`.
"""

from __future__ import annotations

import cv2
import numpy as np

FIRST_KEPT = 2  # frames 0, 1 and N−2, N−1 cannot be inputs


def frame_labels(num_frames: int, event_frames: np.ndarray) -> np.ndarray:
    """[N] int32 binary labels from event frame indices (out-of-range indices are dropped)."""
    labels = np.zeros(num_frames, np.int32)
    events = np.asarray(event_frames, np.int64)
    labels[events[(events >= 0) & (events < num_frames)]] = 1
    return labels


def frame_contacts(num_frames: int, event_frames, event_xy, frame_size: tuple[int, int]) -> np.ndarray:
    """[N, 2] float32 contact point (x / W, y / H) of each frame's event, −1 where a frame has none (of
    several events in one frame, the first). event_xy [E, 2] in pixels of a frame of `frame_size` (H, W)."""
    contacts = np.full((num_frames, 2), -1.0, np.float32)
    xy = np.asarray(event_xy, np.float32).reshape(-1, 2)
    for frame, (x, y) in reversed(list(zip(np.asarray(event_frames, np.int64).reshape(-1), xy))):
        if 0 <= frame < num_frames:
            contacts[frame] = (np.clip(x / frame_size[1], 0.0, 1.0), np.clip(y / frame_size[0], 0.0, 1.0))
    return contacts


def num_kept_frames(num_frames: int) -> int:
    return max(num_frames - 2 * FIRST_KEPT, 0)


def make_clip(example: dict, start: int, clip_len: int) -> dict:
    """The clip of `clip_len` kept frames starting at video frame `start` (≥ 2), end-padded.

    Returns frames [T,H,W,3] uint8, flow_fwd/flow_bwd [T+1,H,W,2] float16, labels [T] int32,
    num_valid () int32, start () int32, and contact_xy [T, 2] float32 (frame_contacts) when the example
    has `event_xy` (the synthetic datasets: exact contact points).
    """
    n = example["frames"].shape[0]
    last_kept = n - 1 - FIRST_KEPT
    num_valid = min(clip_len, last_kept - start + 1)
    if start < FIRST_KEPT or num_valid < 1:
        raise ValueError(f"clip start {start} is outside the kept frames {FIRST_KEPT}…{last_kept} of a {n}-frame video")
    j = np.arange(clip_len)
    frame_index = start + np.minimum(j, num_valid - 1)
    flow_index = np.minimum(np.arange(clip_len + 1), num_valid)
    labels = frame_labels(n, example["event_frames"])
    clip = {
        "frames": example["frames"][frame_index],
        "flow_fwd": example["flow_fwd"][start + flow_index],
        "flow_bwd": example["flow_bwd"][start - 2 + flow_index],
        "labels": labels[frame_index],
        "num_valid": np.int32(num_valid),
        "start": np.int32(start),
    }
    if "event_xy" in example:
        contacts = frame_contacts(n, example["event_frames"], example["event_xy"], example["frames"].shape[1:3])
        clip["contact_xy"] = contacts[frame_index]
    return clip


def training_clip_start(
    num_frames: int, event_frames: np.ndarray, clip_len: int, rng: np.random.Generator, *, anywhere: float = 0.0
) -> int:
    """The original's `batch_select`: a random audible kept frame g, then a start uniform in
    [max(first, g − T + 1), g] so that the clip contains g. Videos without a kept event get a uniform start,
    and so does a fraction ``anywhere`` of the others (clips as detect's sliding windows meet them, with or
    without an event; 0, the original's rule, draws nothing more from ``rng``)."""
    kept = num_kept_frames(num_frames)
    events = np.asarray(event_frames, np.int64)
    events = events[(events >= FIRST_KEPT) & (events < FIRST_KEPT + kept)]
    if events.size == 0 or (anywhere and rng.random() < anywhere):
        return FIRST_KEPT + int(rng.integers(0, max(kept - clip_len, 0) + 1))
    g = int(rng.choice(events))
    return int(rng.integers(max(FIRST_KEPT, g - clip_len + 1), g + 1))


def window_starts(num_frames: int, clip_len: int, stride: int) -> list[int]:
    """Evaluation windows over all kept frames: every `stride` frames, plus one ending at the last kept frame."""
    kept = num_kept_frames(num_frames)
    if kept <= clip_len:
        return [FIRST_KEPT]
    starts = list(range(FIRST_KEPT, FIRST_KEPT + kept - clip_len + 1, stride))
    if starts[-1] != FIRST_KEPT + kept - clip_len:
        starts.append(FIRST_KEPT + kept - clip_len)
    return starts


def quarter_turns(clip: dict, k: int) -> dict:
    """``clip`` turned by ``k`` quarter turns counter-clockwise as shown (np.rot90 over H, W; k = 2: upside
    down), its flows turned with it: a pixel (x, y) goes to (y, W − 1 − x), so a displacement (u, v) becomes
    (v, −u), per turn; contact points (fractions of the frame) likewise, −1 (none) kept. Odd k needs square
    frames."""
    k = int(k) % 4
    if k == 0:
        return clip
    if k % 2 and clip["frames"].shape[1] != clip["frames"].shape[2]:
        raise ValueError(f"a quarter turn needs square frames, got {clip['frames'].shape[1:3]}")
    clip = dict(clip)
    clip["frames"] = np.rot90(clip["frames"], k, axes=(1, 2))
    for key in ("flow_fwd", "flow_bwd"):
        flow = np.rot90(clip[key], k, axes=(1, 2))
        u, v = flow[..., 0], flow[..., 1]
        clip[key] = np.stack({1: (v, -u), 2: (-u, -v), 3: (-v, u)}[k], axis=-1).astype(flow.dtype)
    if "contact_xy" in clip:
        xy = clip["contact_xy"]
        x, y = xy[:, 0], xy[:, 1]
        turned = np.stack({1: (y, 1.0 - x), 2: (1.0 - x, 1.0 - y), 3: (1.0 - y, x)}[k], axis=-1)
        clip["contact_xy"] = np.where(xy >= 0, turned, xy).astype(xy.dtype)
    return clip


def time_reversed(clip: dict) -> dict:
    """``clip`` played backwards: the clip a `make_clip` of the reversed video would give, with the same
    ``num_valid`` and end padding.

    Reversing time turns a forward flow into a backward one: in the reversed video F⁺'_k = F⁻ and F⁻'_k = F⁺
    of the mirrored frame, so with valid positions j = 0 … V−1 (V = num_valid)

        frames'[j] = frames[V−1−j],  labels' and contact_xy' likewise,
        flow_fwd'[j] = flow_bwd[V−j],  flow_bwd'[j] = flow_fwd[V−j]      j = 0 … V,

    and every later position repeats the last valid one. A synthetic event at time τ sits at frame round(τ),
    which reverses to round(N−1−τ) = N−1−round(τ): the labels move with their frames, exactly. ``start``
    keeps the original's (it only places windows in their video at evaluation).
    """
    num_valid = int(clip["num_valid"])
    length = clip["frames"].shape[0]
    frame_index = np.maximum(num_valid - 1 - np.arange(length), 0)
    flow_index = num_valid - np.minimum(np.arange(length + 1), num_valid)
    clip = dict(clip)
    for key in ("frames", "labels", "contact_xy"):
        if key in clip:
            clip[key] = clip[key][frame_index]
    clip["flow_fwd"], clip["flow_bwd"] = clip["flow_bwd"][flow_index], clip["flow_fwd"][flow_index]
    return clip


def augment(
    clip: dict,
    rng: np.random.Generator,
    *,
    hflip: bool,
    brightness: float,
    contrast: float,
    rotate: float = 0.0,
    flow_gain: float = 1.0,
    reverse: float = 0.0,
) -> dict:
    """Horizontal flip (u of both flows negated), with probability ``rotate`` one to three quarter turns
    (`quarter_turns`: gravity no longer always points down, so contacts come from every side; with the flip
    every orientation of the square), per-clip brightness/contrast jitter of the frames, and with
    ``flow_gain`` > 1 both flows multiplied by one per-clip gain, log-uniform in [1/flow_gain, flow_gain]
    (motion speed randomised: the model cannot key on one renderer's speeds; the frames are left as they are,
    since the timing comes from the motion, docs/RESULTS.md §4 "Which inputs the timing uses"), and with
    probability ``reverse`` the clip played backwards (`time_reversed`: a contact stays an abrupt change of
    motion when time runs the other way, while a renderer's habits, such as bodies always slower after a
    bounce, do not; docs/RESULTS.md §4 "Time reversal in training").

    The flow was estimated on unjittered frames; flipping frames and flow together keeps them consistent.
    The gain and then the reversal are drawn last, so a run without them sees the random stream it always did.
    """
    clip = dict(clip)
    if rotate and rng.random() < rotate:
        clip = quarter_turns(clip, int(rng.integers(1, 4)))
    if hflip and rng.random() < 0.5:
        clip["frames"] = clip["frames"][:, :, ::-1]
        for key in ("flow_fwd", "flow_bwd"):
            flipped = clip[key][:, :, ::-1].copy()
            flipped[..., 0] = -flipped[..., 0]
            clip[key] = flipped
        if "contact_xy" in clip:
            x = clip["contact_xy"][:, 0]
            clip["contact_xy"] = np.stack([np.where(x >= 0, 1.0 - x, x), clip["contact_xy"][:, 1]], -1)
    if brightness or contrast:
        frames = clip["frames"].astype(np.float32)
        mean = frames.mean()
        gain = 1.0 + rng.uniform(-contrast, contrast)
        shift = 255.0 * rng.uniform(-brightness, brightness)
        clip["frames"] = np.clip((frames - mean) * gain + mean + shift, 0, 255).astype(np.uint8)
    if flow_gain != 1.0:
        if flow_gain < 1.0:
            raise ValueError(f"flow_gain {flow_gain}: the gain's range is [1/flow_gain, flow_gain], give ≥ 1")
        speed = np.float32(np.exp(rng.uniform(-np.log(flow_gain), np.log(flow_gain))))
        for key in ("flow_fwd", "flow_bwd"):
            clip[key] = (clip[key].astype(np.float32) * speed).astype(clip[key].dtype)
    if reverse and rng.random() < reverse:
        clip = time_reversed(clip)
    clip["frames"] = np.ascontiguousarray(clip["frames"])
    return clip


def resize_clip(clip: dict, size: int) -> dict:
    """A clip's frames and flows resized to size×size, as `input_pipeline.video.read_video` resizes decoded
    frames (cv2.INTER_AREA), the flow's u and v scaled by the width and height ratios (pixels of the new
    size). contact_xy is a fraction of the frame and stays. A clip already at that size is returned as is."""
    height, width = clip["frames"].shape[1:3]
    if (height, width) == (size, size):
        return clip

    def resize(images):  # [K, h, w, C] → [K, size, size, C]
        return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])

    clip = dict(clip)
    clip["frames"] = resize(clip["frames"])
    scale = np.array([size / width, size / height], np.float32)
    for key in ("flow_fwd", "flow_bwd"):
        clip[key] = (resize(clip[key].astype(np.float32)) * scale).astype(clip[key].dtype)
    return clip
