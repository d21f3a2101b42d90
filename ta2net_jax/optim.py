"""Adam with the original's four parameter groups (docs/original.md §7), via optax.

Groups by parameter path: the temporal head (`sim_decoder`) vs everything else, × biases (a leaf named
`bias`) vs weights (kernels, and BatchNorm/LayerNorm scales, which the original also counts as
weights). The paper config uses lr 5e-6 × {weight 1, bias 2, head_weight 10, head_bias 20}, no decay,
no schedule; other configs may add warm-up + cosine decay and gradient clipping.
"""

from __future__ import annotations

import jax
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
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def group_learning_rates(cfg, step: int, num_steps: int) -> dict[str, float]:
    """The learning rate of each group at `step` (for logging)."""
    out = {}
    for g in GROUPS:
        lr = learning_rate(cfg, cfg.multipliers[g], num_steps)
        out[g] = float(lr(step)) if callable(lr) else float(lr)
    return out
