"""Adam with the original's four parameter groups (docs/original.md §7), via optax.

Groups by parameter path: the temporal head (`sim_decoder`) vs everything else, × biases (a leaf named
`bias`) vs weights (kernels, and BatchNorm/LayerNorm scales, which the original also counts as
weights). The paper config uses lr 5e-6 × {weight 1, bias 2, head_weight 10, head_bias 20}, no decay,
no schedule; other configs may add warm-up + cosine decay and gradient clipping.

`optim.ema_decay` > 0 (not in the original; default off) keeps an exponential moving average of the
parameters after every update, inside the optimizer's state (so checkpoints, fsdp sharding and the
non-finite-step guard treat it like Adam's moments): ema ← d·ema + (1 − d)·params with
d = min(ema_decay, (1 + n) / (10 + n)) at its n-th update (the usual warm-up, so that a run from scratch does
not average in its random start for thousands of steps). Validation, `eval`, `detect`, `export` and
`--init-from` then use the averaged parameters (`scored_model`); BatchNorm statistics stay the
model's own running averages.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

GROUPS = ("weight", "bias", "head_weight", "head_bias")
HEAD_MODULE = "sim_decoder"


def param_group(path: tuple) -> str:
    # Only dict keys name modules and parameters; Variables add a trailing `.value` attribute key.
    names = [str(p.key) for p in path if isinstance(p, jax.tree_util.DictKey)]
    head = "head_" if HEAD_MODULE in names else ""
    return head + ("bias" if names[-1] == "bias" else "weight")


def param_groups(params) -> object:
    """A pytree like `params` with each leaf replaced by its group name."""
    return jax.tree_util.tree_map_with_path(lambda path, _: param_group(path), params)


def learning_rate(cfg, multiplier: float, num_steps: int) -> optax.Schedule | float:
    peak = cfg.base_lr * multiplier
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "cosine":
        warmup = max(min(cfg.warmup_steps, num_steps // 2), 1)
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(num_steps, warmup + 1))
    raise ValueError(f"optim.schedule {cfg.schedule!r} is not 'constant' or 'cosine'")


def make_optimizer(model: nnx.Module, cfg, num_steps: int) -> nnx.Optimizer:
    """nnx.Optimizer over the model's Params: clip (optional) → per-group Adam (torch's defaults)."""
    transforms = {
        g: optax.adam(learning_rate(cfg, cfg.multipliers[g], num_steps), b1=0.9, b2=0.999, eps=1e-8) for g in GROUPS
    }
    tx = optax.multi_transform(transforms, param_groups)
    if cfg.get("grad_clip_norm"):
        tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
    if cfg.get("ema_decay"):
        tx = optax.chain(tx, params_ema(float(cfg.ema_decay)))
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


class ParamsEmaState(NamedTuple):
    count: jax.Array  # [] int32, updates so far
    ema: optax.Params  # like the parameters


def params_ema(decay: float) -> optax.GradientTransformationExtraArgs:
    """The last link of the chain: passes the updates on unchanged and averages the parameters they give."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"optim.ema_decay {decay} is not in (0, 1)")

    def init(params):
        # Copies: a leaf sharing the parameter's buffer would be donated twice by the train step.
        return ParamsEmaState(
            jnp.zeros([], jnp.int32), jax.tree.map(lambda p: jnp.array(p, jnp.float32, copy=True), params)
        )

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("params_ema needs the parameters (nnx.Optimizer passes them)")
        d = jnp.minimum(decay, (1.0 + state.count) / (10.0 + state.count))
        new = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p.astype(e.dtype), state.ema, new)
        return updates, ParamsEmaState(state.count + 1, ema)

    return optax.GradientTransformationExtraArgs(init, update)


def _average_state(optimizer: nnx.Optimizer) -> ParamsEmaState | None:
    """The chain's ParamsEmaState, or None when the optimizer keeps no average."""
    is_average = lambda x: isinstance(x, ParamsEmaState)  # noqa: E731
    found = [s for s in jax.tree.leaves(optimizer.opt_state, is_leaf=is_average) if is_average(s)]
    return found[0] if found else None


def _variables(tree) -> list:
    return jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


def averaged_params(optimizer: nnx.Optimizer):
    """The parameters' moving average (an nnx.State like `nnx.state(model, nnx.Param)`), or None without one."""
    state = _average_state(optimizer)
    return None if state is None else state.ema


def scored_model(graphdef, state) -> nnx.Module:
    """The model of a (model, optimizer) train state with the weights that are scored: the optimizer's moving
    average when it keeps one, else the model's own. Merged from a copy of the state's Variables (nnx.merge
    would share them), so the caller's state, e.g. the trainer's at a validation, keeps its parameters."""
    model, optimizer = nnx.merge(graphdef, jax.tree.map(lambda x: x, state))
    ema = averaged_params(optimizer)
    if ema is not None:
        nnx.update(model, jax.tree.map(lambda v: v[...], ema, is_leaf=lambda x: isinstance(x, nnx.Variable)))
    return model


def reset_average(model: nnx.Module, optimizer: nnx.Optimizer) -> None:
    """Restarts the moving average at the model's current parameters (after `--init-from` loaded them)."""
    state = _average_state(optimizer)
    if state is None:
        return
    state.count[...] = jnp.zeros_like(state.count[...])
    for average, param in zip(_variables(state.ema), _variables(nnx.state(model, nnx.Param)), strict=True):
        average[...] = jnp.array(param[...], average[...].dtype, copy=True)


def group_learning_rates(cfg, step: int, num_steps: int) -> dict[str, float]:
    """The learning rate of each group at `step` (for logging)."""
    out = {}
    for g in GROUPS:
        lr = learning_rate(cfg, cfg.multipliers[g], num_steps)
        out[g] = float(lr(step)) if callable(lr) else float(lr)
    return out
