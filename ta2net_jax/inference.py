"""Whole-video inference: sliding windows → per-frame P(audible) and sound-source maps.

Windows of T kept frames every `eval.stride` frames (plus one ending at the last kept frame) are
batched across videos, run through the model in eval mode (BatchNorm running statistics, no dropout)
in one jit function, and the per-frame softmax P(audible) and maps are averaged wherever windows
overlap (open choice 7). Frames 0, 1, N−2, N−1 cannot be inputs (inflection.py) and get score NaN.

With `hflip_tta` (`eval.hflip_tta`; detector.json `hflip_tta`, what `ta2net eval` tuned the picking with) every
window is also run mirrored left–right, as the training augmentation mirrors clips (input_pipeline.clips.augment:
frames and flows reversed along the width, flow u negated), and the two passes' P(audible) and maps (the
mirrored map reversed back) are averaged: a test-time ensemble of the two views, at twice the model's cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ta2net_jax import mesh as mesh_lib
from ta2net_jax.inflection import model_inputs

WINDOW_KEYS = ("frames", "flow_fwd", "flow_bwd", "num_valid")
_WIDTH_AXIS = 3  # of frames [B, T, H, W, 3] and flows [B, T+1, H, W, 2]


def hflip_windows(batch: dict) -> dict:
    """The same windows mirrored left–right (inside or outside jit): frames and both flows reversed along the
    width, the flows' u (pixels/frame, positive to the right) negated; num_valid unchanged."""
    out = dict(batch)
    out["frames"] = jnp.flip(batch["frames"], _WIDTH_AXIS)
    for key in ("flow_fwd", "flow_bwd"):
        flow = jnp.flip(batch[key], _WIDTH_AXIS)
        out[key] = jnp.concatenate([-flow[..., :1], flow[..., 1:]], axis=-1)
    return out


def mirrored_pass(config, hflip_tta: bool | None) -> bool:
    """Whether a predictor averages in the mirrored pass: as given, else the config's `eval.hflip_tta`."""
    return bool(config.eval.get("hflip_tta", False) if hflip_tta is None else hflip_tta)


def audible_and_maps(model: nnx.Module, batch: dict, mode: str, flow_scale: float, hflip_tta: bool = False):
    """The eval-mode model on a batch of windows, inside jit: P(audible) [B, T] and source maps [B, T, h, w];
    with `hflip_tta` the mean of the plain and the mirrored pass (module docstring)."""

    def run(windows):
        outputs = model(*model_inputs(windows, mode, flow_scale))
        return jax.nn.softmax(outputs["logits"], axis=-1)[..., 1], outputs["source_map"]

    probs, maps = run(batch)
    if hflip_tta:
        mirrored_probs, mirrored_maps = run(hflip_windows(batch))
        probs = 0.5 * (probs + mirrored_probs)
        maps = 0.5 * (maps + jnp.flip(mirrored_maps, -1))
    return probs, maps


def replicated_eval_state(model: nnx.Module, mesh: jax.sharding.Mesh):
    """(graphdef, state): the model in eval mode, split, its state replicated on every device of `mesh`."""
    model.eval()
    graphdef, state = nnx.split(model)
    return graphdef, jax.device_put(state, mesh_lib.replicated(mesh))


class Predictor:
    """A jit-compiled eval-mode forward pass over fixed-size batches of windows on a mesh; `hflip_tta` (default
    the config's `eval.hflip_tta`) averages it with the mirrored pass (module docstring)."""

    def __init__(
        self,
        model: nnx.Module,
        config,
        mesh: jax.sharding.Mesh,
        batch_size: int | None = None,
        hflip_tta: bool | None = None,
    ):
        self.batch_size = batch_size or config.eval.batch_size
        self.hflip_tta = mirrored_pass(config, hflip_tta)
        if self.batch_size % mesh.size:
            raise ValueError(f"eval.batch_size {self.batch_size} is not divisible by {mesh.size} devices")
        graphdef, self.state = replicated_eval_state(model, mesh)
        self.mesh = mesh
        self.sharding = mesh_lib.batch_sharding(mesh)
        mode, flow_scale = config.inflection.mode, config.inflection.flow_scale

        hflip_tta = self.hflip_tta  # fixed at construction: the jitted function is traced with it

        def forward(state, batch):
            return audible_and_maps(nnx.merge(graphdef, state), batch, mode, flow_scale, hflip_tta)

        self._forward = jax.jit(forward)

    def __call__(self, windows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """windows: [W, ...] arrays (W ≤ batch_size) → (P(audible) [W, T], maps [W, T, h, w]) as NumPy."""
        w = windows["num_valid"].shape[0]
        pad = self.batch_size - w
        batch = {
            k: np.concatenate([windows[k], np.repeat(windows[k][-1:], pad, axis=0)]) if pad else windows[k]
            for k in WINDOW_KEYS
        }
        with jax.set_mesh(self.mesh):
            probs, maps = self._forward(self.state, mesh_lib.to_global(batch, self.sharding))
        return np.asarray(probs)[:w], np.asarray(maps)[:w]


def local_predictor(model: nnx.Module, config) -> Predictor:
    """A Predictor on this process's devices only (`mesh.local_mesh`), the model's arrays copied there, so
    that each process scores its own videos with no cross-process collective (several processes may run
    different numbers of windows): `ta2net eval` on several processes and the trainer's validation. Its
    batch is this process's share of `eval.batch_size`, rounded up to a multiple of its devices.
    Copying a state split along 'fsdp' is itself a collective: every process must call this."""
    mesh = mesh_lib.local_mesh()
    graphdef, state = nnx.split(model)
    per_process = max(config.eval.batch_size // jax.process_count(), 1)
    return Predictor(
        nnx.merge(graphdef, mesh_lib.localize(state, mesh)),
        config,
        mesh,
        batch_size=-(-per_process // mesh.size) * mesh.size,
    )


def merge_windows(
    starts: np.ndarray, num_valid: np.ndarray, probs: np.ndarray, maps: np.ndarray, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Averages window outputs onto the video's frames.

    Args:
      starts, num_valid: [W] first video frame and number of real positions of each window.
      probs: [W, T]; maps: [W, T, h, w].
    Returns:
      scores [N] (NaN where no window reached) and maps [N, h, w] (zeros there).
    """
    total = np.zeros(num_frames)
    count = np.zeros(num_frames)
    map_total = np.zeros((num_frames,) + maps.shape[2:])
    for s, n, p, m in zip(starts, num_valid, probs, maps):
        total[s : s + n] += p[:n]
        map_total[s : s + n] += m[:n]
        count[s : s + n] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return scores, map_total / np.maximum(count, 1)[:, None, None]


def predict_videos(predictor: Predictor, videos: Iterable[dict]) -> Iterator[dict]:
    """Runs every window of every video, batching across videos; yields each video (in order) with
    `scores` [N] and `maps` [N, h, w] added and its `windows` removed."""
    pending: list[dict] = []
    queue: list[tuple[int, int]] = []  # (index into pending, window index)

    def run(n: int) -> None:
        items, queue[:] = queue[:n], queue[n:]
        batch = {k: np.stack([pending[v]["windows"][k][i] for v, i in items]) for k in WINDOW_KEYS}
        probs, maps = predictor(batch)
        for (v, i), p, m in zip(items, probs, maps):
            pending[v]["_probs"][i], pending[v]["_maps"][i] = p, m

    def finish(video: dict) -> dict:
        w = video.pop("windows")
        video["scores"], video["maps"] = merge_windows(
            w["start"], w["num_valid"], np.stack(video.pop("_probs")), np.stack(video.pop("_maps")), video["num_frames"]
        )
        return video

    done = 0
    for video in videos:
        num_windows = video["windows"]["num_valid"].shape[0]
        video["_probs"], video["_maps"] = [None] * num_windows, [None] * num_windows
        pending.append(video)
        queue.extend((len(pending) - 1, i) for i in range(num_windows))
        while len(queue) >= predictor.batch_size:
            run(predictor.batch_size)
        while done < len(pending) and all(p is not None for p in pending[done]["_probs"]):
            yield finish(pending[done])
            pending[done] = None
            done += 1
    if queue:
        run(len(queue))
    for video in pending[done:]:
        yield finish(video)


def predict_video(predictor: Predictor, example: dict, clip_len: int, stride: int, desc: str = "model") -> dict:
    """Every window of one video, cut from it one batch at a time: what `predict_videos` gives for
    `input_pipeline.pipeline.VideoWindows(clip_len, stride).map(example)` (the same windows in the same
    batches, so the same numbers), holding one batch of windows instead of all of them. A window copies T
    frames and 2(T+1) flow fields, so stacking every window of a ten-minute video at once costs gigabytes
    (`ta2net detect`).

    Args:
      example: frames [N, S, S, 3] uint8, flow_fwd / flow_bwd [N−1, S, S, 2], event_frames [E] (may be empty).
      desc: the stage bar's label (input_pipeline/progress.py).
    Returns:
      scores [N] (NaN where no window reached) and maps [N, h, w] (merge_windows).
    """
    from input_pipeline import clips, progress

    n = example["frames"].shape[0]
    starts = clips.window_starts(n, clip_len, stride)
    probs, maps, num_valid = [], [], []
    with progress.bar(len(starts), desc, unit="window") as bar:
        for i in range(0, len(starts), predictor.batch_size):
            batch = [clips.make_clip(example, s, clip_len) for s in starts[i : i + predictor.batch_size]]
            windows = {k: np.stack([c[k] for c in batch]) for k in WINDOW_KEYS}
            p, m = predictor(windows)
            probs.append(p)
            maps.append(m)
            num_valid.append(windows["num_valid"])
            bar.update(len(batch))
    scores, merged = merge_windows(
        np.asarray(starts), np.concatenate(num_valid), np.concatenate(probs), np.concatenate(maps), n
    )
    return {"scores": scores, "maps": merged}
