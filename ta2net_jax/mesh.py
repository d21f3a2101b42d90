"""Device mesh from the config: a data axis over every device (of every process), explicit axis types.

`mesh.axis_types` is "auto" (GSPMD propagates shardings; default) or "explicit" (shardings are part of
the types; the contrastive loss then reshards its column operand, see losses.py, and reshapes that merge
or split the batch dimension name their output sharding, `batch_reshape`).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

AXIS_TYPES = {"auto": AxisType.Auto, "explicit": AxisType.Explicit}
DATA_AXIS = "data"


def make_mesh(cfg) -> jax.sharding.Mesh:
    """cfg: shape (one entry may be −1: all remaining devices), axis_names, axis_types."""
    if cfg.axis_types not in AXIS_TYPES:
        raise ValueError(f"mesh.axis_types {cfg.axis_types!r} is not one of {sorted(AXIS_TYPES)}")
    num_devices = jax.device_count()
    shape = list(cfg.shape)
    if shape.count(-1) > 1:
        raise ValueError(f"mesh.shape {tuple(shape)} has more than one -1")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape[shape.index(-1)] = num_devices // known
    if math.prod(shape) != num_devices:
        raise ValueError(f"mesh.shape {tuple(cfg.shape)} does not cover the {num_devices} devices")
    return jax.make_mesh(tuple(shape), tuple(cfg.axis_names),
                         axis_types=(AXIS_TYPES[cfg.axis_types],) * len(shape))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data axis; everything else replicated."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def is_explicit(mesh=None) -> bool:
    """Whether the given (or the current abstract) mesh has an Explicit axis."""
    mesh = jax.sharding.get_abstract_mesh() if mesh is None else mesh
    return not mesh.empty and any(t == AxisType.Explicit for t in mesh.axis_types)


def to_global(batch: dict, sharding: NamedSharding) -> dict:
    """Per-process NumPy batch → global jax Arrays sharded along the batch axis (multi-host safe: each
    process contributes its own rows, `make_array_from_process_local_data`)."""
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def batch_reshape(x: jax.Array, shape) -> jax.Array:
    """Reshape that merges or splits the leading (batch) dimensions, e.g. [B, T, …] ↔ [B·T, …].

    Batch-major merges keep a `P('data')` batch sharded. Under an Explicit mesh JAX wants the output
    sharding of such a reshape spelled out: the new leading dimension takes the old one's sharding.
    """
    if is_explicit():
        spec = jax.typeof(x).sharding.spec
        return jnp.reshape(x, tuple(shape), out_sharding=P(spec[0] if len(spec) else None))
    return jnp.reshape(x, tuple(shape))
