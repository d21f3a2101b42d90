"""What a config's model is: parameter counts, forward FLOPs per clip and input shapes (`ta2net info`).

Nothing is allocated and nothing is compiled: the model is built under `nnx.eval_shape` and the forward
pass is only lowered (traced to StableHLO) for XLA's cost analysis.

* `params`: the trainable parameters the model uses (every `nnx.Param`; the original's never-called
  ResNet layer4/fc and `out_mlt` pass are not built, and neither is the similarity module's unused value
  projection, which the parameter table of docs/original.md §5.5 counts).
* `flops_per_clip`: forward FLOPs of one clip (batch 1, inference mode) from XLA's cost analysis of the
  lowered forward pass. XLA counts the multiply-adds that touch real data, so taps that fall on a
  convolution's zero padding are not counted; `flops_per_clip_analytic` counts every conv / matmul tap
  (2 × MACs, padding included), the usual back-of-envelope figure. When XLA's analysis is unavailable
  the analytic count is used and `flops_source` says so.

Imports nothing from the data pipeline (no grain, TFDS, OpenCV or PyAV), so it runs where only jax, flax
and ml_collections are installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.extend import core as jex_core

from ta2net_jax.inflection import flow_channels
from ta2net_jax.model import build_model

MODEL_INPUTS = ("video", "motion", "inflection")


def image_size(config) -> int:
    """The model's input height = width: `data.image_size`, else the dataset's frame size (the registry; that
    needs TFDS, so configs meant for machines without it state data.image_size)."""
    size = config.data.get("image_size")
    if size is not None:
        return int(size)
    from input_pipeline import registry

    return registry.input_spec(config.data).image_size


def input_shapes(config, batch: int = 1, size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Shapes of (video, motion, inflection) as TA2Net.__call__ takes them (all float)."""
    size = image_size(config) if size is None else size
    t, c = config.model.num_frames, flow_channels(config.inflection.mode)
    return {
        "video": (batch, t, size, size, 3),
        "motion": (batch, t, size, size, 2 * c),
        "inflection": (batch, t, size, size, 2 * c),
    }


def abstract_model(config) -> nnx.Module:
    """The model with ShapeDtypeStructs for arrays (nothing allocated), in inference mode."""
    model = nnx.eval_shape(lambda: build_model(config))
    model.eval()
    return model


def _size(x) -> int:
    return int(math.prod(x.shape))


def count(model: nnx.Module, variable_type=nnx.Param) -> int:
    """Number of scalars in every variable of `variable_type` (nnx.Param, nnx.BatchStat, …)."""
    return sum(_size(x) for x in jax.tree.leaves(nnx.state(model, variable_type)))


def count_per_module(model: nnx.Module, variable_type=nnx.Param) -> dict[str, int]:
    """`count` per top-level submodule (video_net, flow_net, d2f_net, v2f, v2df, sim_decoder, disent)."""
    out: dict[str, int] = {}
    for path, x in jax.tree_util.tree_leaves_with_path(nnx.state(model, variable_type)):
        name = str(path[0].key)
        out[name] = out.get(name, 0) + _size(x)
    return out


# ---- FLOPs -------------------------------------------------------------------------------------------


def _subjaxprs(params: dict):
    for value in params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, jex_core.ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, jex_core.Jaxpr):
                yield v


def _jaxpr_macs(jaxpr) -> int:
    macs = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            lhs, rhs = (v.aval for v in eqn.invars[:2])
            out = eqn.outvars[0].aval
            dn = eqn.params["dimension_numbers"]
            kernel_spatial = math.prod(rhs.shape[d] for d in dn.rhs_spec[2:])
            in_per_group = rhs.shape[dn.rhs_spec[1]]
            macs += _size(out) * kernel_spatial * in_per_group
        elif name == "dot_general":
            lhs = eqn.invars[0].aval
            (contract_lhs, _), _ = eqn.params["dimension_numbers"]
            macs += _size(eqn.outvars[0].aval) * math.prod(lhs.shape[d] for d in contract_lhs)
        for sub in _subjaxprs(eqn.params):
            macs += _jaxpr_macs(sub)
    return macs


def analytic_flops(fn: Callable, *args) -> float:
    """2 × the multiply-adds of every convolution and matrix product in `fn(*args)` (padding included)."""
    return 2.0 * _jaxpr_macs(jax.make_jaxpr(fn)(*args).jaxpr)


def xla_flops(cost: Any) -> float | None:
    """The 'flops' entry of a (Lowered|Compiled).cost_analysis() result (a dict, or a list of them in
    older jax); None when absent or zero."""
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    return float(flops) if flops else None


def forward_fn(model: nnx.Module) -> tuple[Callable, Any]:
    """(fn(state, video, motion, inflection) → outputs, state) for tracing the model functionally."""
    graphdef, state = nnx.split(model)

    def forward(state, video, motion, inflection):
        return nnx.merge(graphdef, state)(video, motion, inflection)

    return forward, state


def forward_flops(config, model: nnx.Module | None = None, batch: int = 1, size: int | None = None) -> dict[str, Any]:
    """{'flops', 'flops_source', 'flops_analytic'} of one forward pass at `batch` (inference mode)."""
    model = abstract_model(config) if model is None else model
    forward, state = forward_fn(model)
    dtype = jnp.dtype(jnp.float32)
    inputs = [jax.ShapeDtypeStruct(s, dtype) for s in input_shapes(config, batch, size).values()]
    analytic = analytic_flops(forward, state, *inputs)
    flops, source = None, "analytic (2 × conv/matmul MACs, padding included)"
    try:
        flops = xla_flops(jax.jit(forward).lower(state, *inputs).cost_analysis())
    except Exception as err:  # noqa: BLE001 — any failure of the optional analysis → the analytic count
        source += f"; XLA cost analysis failed: {type(err).__name__}: {err}"
    if flops is not None:
        source = "xla_cost_analysis (lowered forward, batch 1)"
    return {"flops": flops if flops is not None else analytic, "flops_source": source, "flops_analytic": analytic}


def model_info(config, config_spec: str | None = None) -> dict[str, Any]:
    """The JSON-able summary `ta2net info` prints."""
    model = abstract_model(config)
    size = image_size(config)
    flops = forward_flops(config, model, batch=1, size=size)
    return {
        "config": config_spec,
        "params": count(model, nnx.Param),
        "params_per_module": count_per_module(model, nnx.Param),
        "batch_stats": count(model, nnx.BatchStat),
        "flops_per_clip": flops["flops"],
        "flops_source": flops["flops_source"],
        "flops_per_clip_analytic": flops["flops_analytic"],
        "input_shapes": {k: list(v) for k, v in input_shapes(config, 1, size).items()},
        "num_frames": int(config.model.num_frames),
        "image_size": size,
        "compute_dtype": config.model.compute_dtype,
        "inflection_mode": config.inflection.mode,
        "jax_version": jax.__version__,
    }


__all__ = [
    "abstract_model",
    "analytic_flops",
    "count",
    "count_per_module",
    "forward_flops",
    "image_size",
    "input_shapes",
    "model_info",
    "xla_flops",
]
