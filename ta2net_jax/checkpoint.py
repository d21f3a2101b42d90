"""Orbax checkpoints of the whole training state: model (params, BatchNorm statistics, dropout RNG),
optimizer (Adam moments, step) and the grain iterator, so a resumed run continues on the same batch.

Layout: `<workdir>/checkpoints/<step>/{state, data}`; orbax writes to a temporary name and renames on
commit, so a step directory that exists is complete.
"""
from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, max_to_keep: int = 2, save_interval_steps: int = 1, *,
            with_data: bool = True) -> ocp.CheckpointManager:
    item_names = ("state", "data") if with_data else ("state",)
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, save_interval_steps=save_interval_steps,
                                             create=True),
        item_names=item_names)


def save(mngr: ocp.CheckpointManager, step: int, state, data_iterator=None, *, force: bool = False) -> bool:
    import grain  # only the trainer needs it; inference restores without grain
    args = {"state": ocp.args.StandardSave(state)}
    if data_iterator is not None:
        args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    return mngr.save(step, args=ocp.args.Composite(**args), force=force)


def abstract(state):
    """ShapeDtypeStructs with the target shardings, so restored arrays land where `state` lives."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def restore(mngr: ocp.CheckpointManager, state_like, data_iterator=None, step: int | None = None):
    """Restores `state` (and the iterator's position, in place) at `step` or the latest step.

    Returns (state, step), or (None, None) when there is no checkpoint.
    """
    step = mngr.latest_step() if step is None else step
    if step is None:
        return None, None
    args = {"state": ocp.args.StandardRestore(abstract(state_like))}
    if data_iterator is not None:
        import grain
        args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = mngr.restore(step, args=ocp.args.Composite(**args))
    return restored["state"], step
