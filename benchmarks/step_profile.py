"""Where a TA²Net training step's time goes: the three ResNet trunks against the rest (issue 16).

`stage_times` times jitted pieces of `ta2net_jax.train.make_train_step` on the batch and state the step is
timed on, each piece compiled on its own and timed like the step (median of ``steps`` calls after
``warmup``, each ended by block_until_ready):

* ``inputs``: `model_inputs` alone (uint8 frames → [0, 1], flow → motion and inflection flow).
* ``trunks``: forward and backward of the video, flow and inflection trunks (`video_net`, `flow_net` and
  `d2f_net`, the latter two on both flow directions as the model calls them) under a loss that is the sum of
  their outputs' means, gradients for every parameter: the part of the step that no change outside the
  trunks can speed up. ``B / trunks`` is the *trunk-bound* speed in clips/s.
* ``forward_backward``: the model's loss and gradients as the step computes them, without the optimizer.

From them, with the full step's median: ``heads_ms`` = forward_backward − trunks − inputs (attention,
decoder, disentangler and the losses, forward and backward) and ``optimizer_ms`` = step − forward_backward
(Adam, the finiteness guard, the state copy). Pieces compiled apart fuse differently from the whole step,
so the parts need not add up exactly; a negative remainder is reported as it is, not clipped.

Needs jax and flax only; used by `benchmarks/train_step.py --profile`.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor


def median_ms(compiled, args, warmup: int, steps: int) -> float:
    """ms of the median of ``steps`` calls of ``compiled(*args)`` after ``warmup`` untimed ones (each ended
    by block_until_ready); also benchmarks/tvl1_profile.py's timer."""
    import jax

    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def stage_times(config, graphdef, state, data, step_ms: float, warmup: int, steps: int) -> dict:
    """ms per piece of the step (module docstring) for ``state`` and the device batch ``data``; call it
    inside the mesh the step ran in. ``step_ms``: the full step's median, for the shares."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from ta2net_jax.inflection import model_inputs
    from ta2net_jax.losses import ta2net_loss

    mode, scale = config.inflection.mode, config.inflection.flow_scale
    rng = jax.random.key(0)

    def inputs(batch):
        return model_inputs(batch, mode, scale)

    def trunks(state, batch):
        model, _ = nnx.merge(graphdef, state)
        video, motion, inflection = model_inputs(batch, mode, scale)

        def loss_fn(model):
            outputs = (
                model.video_net(video),
                model._two_halves(model.flow_net, motion),
                model._two_halves(model.d2f_net, inflection),
            )
            return sum(jnp.mean(x.astype(jnp.float32)) for x in outputs)

        return nnx.value_and_grad(loss_fn)(model)

    def forward_backward(state, batch):
        model, _ = nnx.merge(graphdef, state)

        def loss_fn(model):
            outputs = model(*model_inputs(batch, mode, scale))
            return ta2net_loss(outputs, batch["labels"], rng, config.loss, batch.get("contact_xy"))

        return nnx.value_and_grad(loss_fn, has_aux=True)(model)

    pieces = {
        "inputs": (inputs, (data,)),
        "trunks": (trunks, (state, data)),
        "forward_backward": (forward_backward, (state, data)),
    }
    lowered = {name: jax.jit(fn).lower(*args) for name, (fn, args) in pieces.items()}
    # XLA compiles outside the GIL: the pieces compile side by side (a paper-size step takes a minute or more).
    with ThreadPoolExecutor(len(lowered)) as pool:
        compiled = dict(zip(lowered, pool.map(lambda stage: stage.compile(), lowered.values())))
    ms = {f"{name}_ms": median_ms(compiled[name], args, warmup, steps) for name, (_, args) in pieces.items()}
    batch = int(data["frames"].shape[0])
    return {
        **ms,
        "heads_ms": ms["forward_backward_ms"] - ms["trunks_ms"] - ms["inputs_ms"],
        "optimizer_ms": step_ms - ms["forward_backward_ms"],
        "trunks_share": ms["trunks_ms"] / step_ms,
        "trunk_bound_clips_per_s": batch / (1e-3 * ms["trunks_ms"]),
    }
