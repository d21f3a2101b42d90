"""Device mesh from the config: a data axis over every device (of every process), explicit axis types.

`mesh.axis_types` is "auto" (GSPMD propagates shardings; default) or "explicit" (shardings are part of
the types; the contrastive loss then reshards its column operand, see losses.py, and reshapes that merge
or split the batch dimension name their output sharding, `batch_reshape`).

Axes (`mesh.axis_names`): "data" (required) splits the batch; an optional "fsdp" axis splits the batch
too and, in addition, every parameter and optimizer-state array along its largest dimension divisible by
the axis size (ZeRO-3 style; GSPMD gathers them where they are used; Auto axis types only). E.g.
`--config.mesh.shape="(-1, 2)" --config.mesh.axis_names="('data', 'fsdp')"`.
The mesh always spans the devices of every process (`jax.devices()`); `process_batch_rows` tells each
process which rows of a global batch its devices hold, so its input pipeline reads exactly those.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

AXIS_TYPES = {"auto": AxisType.Auto, "explicit": AxisType.Explicit}
DATA_AXIS = "data"
FSDP_AXIS = "fsdp"
AXES = (DATA_AXIS, FSDP_AXIS)  # the batch is split over every one of these the mesh has


def make_mesh(cfg) -> jax.sharding.Mesh:
    """cfg: shape (one entry may be −1: all remaining devices), axis_names, axis_types."""
    if cfg.axis_types not in AXIS_TYPES:
        raise ValueError(f"mesh.axis_types {cfg.axis_types!r} is not one of {sorted(AXIS_TYPES)}")
    names = tuple(cfg.axis_names)
    if DATA_AXIS not in names or not set(names) <= set(AXES) or len(set(names)) != len(names):
        raise ValueError(
            f"mesh.axis_names {names} must name '{DATA_AXIS}' and optionally '{FSDP_AXIS}', "
            "each once (the model has no tensor-parallel annotations)"
        )
    if len(tuple(cfg.shape)) != len(names):
        raise ValueError(f"mesh.shape {tuple(cfg.shape)} and mesh.axis_names {names} differ in length")
    if FSDP_AXIS in names and cfg.axis_types == "explicit":
        raise ValueError(
            "an 'fsdp' mesh axis needs mesh.axis_types='auto' (sharded parameters under Explicit "
            "axes would need resharding annotations in the model)"
        )
    num_devices = jax.device_count()
    shape = list(cfg.shape)
    if shape.count(-1) > 1:
        raise ValueError(f"mesh.shape {tuple(shape)} has more than one -1")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape[shape.index(-1)] = num_devices // known
    if math.prod(shape) != num_devices:
        raise ValueError(f"mesh.shape {tuple(cfg.shape)} does not cover the {num_devices} devices")
    return jax.make_mesh(tuple(shape), tuple(cfg.axis_names), axis_types=(AXIS_TYPES[cfg.axis_types],) * len(shape))


def batch_axes(mesh) -> tuple[str, ...]:
    """The mesh axes the batch is split over ('data', and 'fsdp' when present)."""
    return tuple(a for a in mesh.axis_names if a in AXES)


def batch_parallelism(mesh) -> int:
    """How many ways the batch is split (the global batch size must be a multiple)."""
    return math.prod(mesh.shape[a] for a in batch_axes(mesh))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data (and fsdp) axes; everything else replicated."""
    axes = batch_axes(mesh)
    return NamedSharding(mesh, P(axes if len(axes) > 1 else axes[0]))


def process_batch_rows(sharding: NamedSharding, global_batch: int) -> list[int]:
    """The global batch rows held by this process's devices (sorted), i.e. what its pipeline must read:
    `make_array_from_process_local_data` places the process's rows in this order."""
    index = sharding.addressable_devices_indices_map((global_batch,))
    return sorted({r for idx in index.values() for r in range(*idx[0].indices(global_batch))})


def state_sharding(state, mesh: jax.sharding.Mesh):
    """Shardings for a training state pytree: replicated, except on a mesh with an 'fsdp' axis of size
    f > 1, where every array of rank ≥ 1 with a dimension divisible by f is split along its largest such
    dimension (typed PRNG keys and scalars stay replicated)."""
    rep = replicated(mesh)
    if FSDP_AXIS not in mesh.axis_names or mesh.shape[FSDP_AXIS] == 1:
        return jax.tree.map(lambda _: rep, state)
    f = mesh.shape[FSDP_AXIS]

    def one(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) or not x.shape:
            return rep
        dims = [d for d in range(len(x.shape)) if x.shape[d] % f == 0 and x.shape[d] >= f]
        if not dims:
            return rep
        d = max(dims, key=lambda i: (x.shape[i], -i))
        spec = [None] * len(x.shape)
        spec[d] = FSDP_AXIS
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map(one, state)


def local_mesh() -> jax.sharding.Mesh:
    """A 1-D 'data' mesh over this process's devices only (Auto axes): for work that must not involve the
    other processes, such as the trainer's validation (each process scores its own videos)."""
    devices = jax.local_devices()
    return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def localize(tree, mesh: jax.sharding.Mesh):
    """Global arrays → the same values replicated on `mesh` (a local mesh). Fully replicated arrays are
    read from this process's first shard; sharded ones (fsdp) are all-gathered, which is a collective:
    every process must call this, on the same tree."""
    from jax.experimental import multihost_utils

    rep = replicated(mesh)

    def one(x):
        if not isinstance(x, jax.Array):
            return x
        if x.is_fully_replicated:
            value = x.addressable_data(0)
        elif jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            raise ValueError("sharded PRNG key arrays cannot be localized")
        else:
            value = multihost_utils.process_allgather(x, tiled=True)
        return jax.device_put(value, rep)

    return jax.tree.map(one, tree)


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
    shape = tuple(shape)
    symbolic = [i for i, d in enumerate(shape) if not isinstance(d, int)]
    if len(symbolic) == 1 and -1 not in shape:
        # A symbolic batch size (jax.export, jax2onnx) is inferred rather than spelled as a product
        # of dimension variables, which ONNX Reshape cannot express.
        shape = shape[: symbolic[0]] + (-1,) + shape[symbolic[0] + 1 :]
    if is_explicit():
        spec = jax.typeof(x).sharding.spec
        return jnp.reshape(x, shape, out_sharding=P(spec[0] if len(spec) else None))
    return jnp.reshape(x, shape)
