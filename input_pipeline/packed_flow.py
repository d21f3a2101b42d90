"""Flow of many videos on the accelerator: worker processes decode, this process estimates, packed.

`prepare` and `build` run DIS and OpenCV's TV-L1 in a process pool, one whole video per task: on the CPU the
processes are the parallelism. The flow methods in :data:`ON_DEVICE` cannot work that way: every worker
process would open the accelerator for itself (JAX reserves most of a GPU's memory per process, so a second
worker fails or both crawl), and each video's last call would be padded with blank pairs to a full call. So
for them the workers only decode (`worker_pool.ordered_map`), and this process gathers the decoded videos into
groups of about :data:`GROUP_CALLS` full calls of pairs and estimates each group in shared calls
(`flow_jax_batch.estimate_flow_videos`: no pair spans two videos, and each video's flow is what it gets
alone, per-pair stopping), then hands every video on with its flow, in input order (:func:`with_flow`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from input_pipeline import flow as flow_lib

ON_DEVICE = ("tvl1-jax",)  # flow methods whose estimator runs on the JAX devices
GROUP_CALLS = 4  # a group holds about this many full calls of pairs: padding costs at most ~1 / GROUP_CALLS


def with_flow[Item](
    items: Iterable[Item],
    frames_of: Callable[[Item], np.ndarray | None],
    *,
    group_pairs: int | None = None,
    mesh=None,
) -> Iterator[tuple[Item, np.ndarray | None, np.ndarray | None, float]]:
    """Each item with its forward and backward TV-L1 flow (tvl1-jax), several items' pairs per device call.

    Args:
      items: anything; read lazily, so a generator of decoded videos is consumed as the groups fill.
      frames_of: the item's frames, [N, H, W, 3] uint8 RGB with N >= 2, or None for an item with no flow to
        estimate (a video that failed to decode): passed on with None flows, in its place.
      group_pairs: pairs gathered before a group is estimated (default :data:`GROUP_CALLS` full calls at the
        frames' size: `flow_jax_batch.pairs_per_call`); a change of frame size also closes a group.
      mesh: as `flow_jax_batch.estimate_flow_videos` (default: this process's devices).
    Yields:
      (item, fwd, bwd, seconds): fwd / bwd [N-1, H, W, 2] float16 (u, v) px, exactly as
      ``flow.estimate_flow(frames, "tvl1-jax")`` gives them up to the solver's float32 rounding; ``seconds``
      the item's share (by pairs) of its group's flow time.
    """
    from input_pipeline import flow_jax_batch

    group: list[tuple[Item, np.ndarray | None]] = []
    pairs, shape = 0, None

    def flush():
        videos = [flow_lib.to_gray(frames) for _, frames in group if frames is not None]
        t0 = time.perf_counter()
        flows = iter(flow_jax_batch.estimate_flow_videos(videos, mesh=mesh) if videos else [])
        share = (time.perf_counter() - t0) / max(pairs, 1)
        for item, frames in group:
            if frames is None:
                yield item, None, None, 0.0
                continue
            fwd, bwd = next(flows)
            yield item, fwd.astype(np.float16), bwd.astype(np.float16), share * 2 * (len(frames) - 1)

    for item in items:
        frames = frames_of(item)
        if frames is not None and shape is not None and frames.shape[1:3] != shape:
            yield from flush()
            group, pairs = [], 0
        group.append((item, frames))
        if frames is None:
            continue
        shape = frames.shape[1:3]
        pairs += 2 * (len(frames) - 1)
        if pairs >= (group_pairs or GROUP_CALLS * flow_jax_batch.pairs_per_call(*shape, mesh)):
            yield from flush()
            group, pairs = [], 0
    if group:
        yield from flush()
