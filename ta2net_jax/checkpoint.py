"""Orbax checkpoints of the whole training state: model (params, BatchNorm statistics, dropout RNG),
optimizer (Adam moments, step) and the grain iterator, so a resumed run continues on the same batch.

Layout: `<workdir>/checkpoints/<step>/{state/, data/process_<i>-of-<n>.json, _CHECKPOINT_METADATA,
commit_success.txt}`. Saves are asynchronous by default (the arrays are copied to host memory in `save`,
written in a background thread; the next save, `wait_until_finished` or `close` waits for it).

Atomicity, checked with orbax-checkpoint 0.12.8 (and the same code in 0.12.4): a step is written into
`<step>.orbax-checkpoint-tmp-<n>/`, `commit_success.txt` is written last inside it, then the directory is
renamed to `<step>/`. On `gs://` (no atomic rename; orbax's CommitFileTemporaryPath) the step is written in
place and `commit_success.txt`, a single object upload, is written last: a step without it is uncommitted.
Orbax's step listing skips the tmp names (gs://: the uncommitted steps), and the trainer's manager removes
leftover tmp directories (gs://: uncommitted steps) when it starts (`cleanup_tmp_directories`). On top of
that, `complete_steps` only accepts a step directory that holds `commit_success.txt` (top level and every
item) and, for training checkpoints, the grain state file of every process (checked through
input_pipeline.paths, so on gs:// too); `restore` tries those newest first and falls back to the previous
one when a restore fails. A save torn by a kill (SIGKILL, power, preemption without notice) is therefore
never picked.

Retention: the newest `max_to_keep` steps, plus (`keep_best > 0`) the `keep_best` steps with the highest
validation metric (`best_metric`, saved with the step by `save(..., metrics=...)`).

Fault injection for tests (`FAULT_ENV`): `TA2NET_FAULT_KILL_IN_SAVE=<step>` makes the process SIGKILL
itself while committing that step: after every file is written, before the rename (gs://: the commit file)
that commits it.
"""

from __future__ import annotations

import logging
import os
import signal

import jax
import orbax.checkpoint as ocp
from flax import nnx

from input_pipeline import paths
from ta2net_jax import mesh as mesh_lib, optim
from ta2net_jax.model import build_model

log = logging.getLogger(__name__)

BEST_METRIC = "val_event_f1_tol3"
FAULT_ENV = "TA2NET_FAULT_KILL_IN_SAVE"
COMMIT_FILE = "commit_success.txt"


def _kill_in_save_class(step: int, remote: bool = False):
    """Orbax's temporary-path class for the checkpoint directory (AtomicRenameTemporaryPath locally,
    CommitFileTemporaryPath on gs://), SIGKILLing the process instead of committing `step`."""
    atomicity = ocp.path.atomicity
    base = atomicity.CommitFileTemporaryPath if remote else atomicity.AtomicRenameTemporaryPath

    class KillInSave(base):
        async def finalize(self, *args, **kwargs):
            if self.get_final().name == str(step):
                log.warning("fault injection: SIGKILL while committing step %d", step)
                os.kill(os.getpid(), signal.SIGKILL)
            return await super().finalize(*args, **kwargs)

    return KillInSave


def directory(workdir: str) -> str:
    """`<workdir>/checkpoints`: an absolute local path or a `gs://` URL (orbax writes both; input_pipeline.paths)."""
    return paths.join(paths.resolve(workdir), "checkpoints")


def manager(
    workdir: str,
    max_to_keep: int = 2,
    save_interval_steps: int = 1,
    *,
    with_data: bool = True,
    keep_best: int = 0,
    best_metric: str = BEST_METRIC,
    async_save: bool = True,
) -> ocp.CheckpointManager:
    """The checkpoint manager of a workdir. `with_data=False` (inference) reads and never cleans up."""
    item_names = ("state", "data") if with_data else ("state",)
    policies = [ocp.checkpoint_managers.LatestN(n=max_to_keep)]
    kwargs = {}
    if keep_best:
        metric = lambda metrics: metrics[best_metric]  # noqa: E731
        policies.append(
            ocp.checkpoint_managers.BestN(
                get_metric_fn=metric, reverse=False, n=keep_best, keep_checkpoints_without_metrics=False
            )
        )
        # best_fn also makes orbax write each step's metrics (`<step>/metrics/`), so that the ranking
        # survives a restart; retention itself is the preservation policy's.
        kwargs.update(best_fn=metric, best_mode="max")
    fault = os.environ.get(FAULT_ENV)
    if fault and with_data:
        kwargs["temporary_path_class"] = _kill_in_save_class(int(fault), paths.is_remote(workdir))
    return ocp.CheckpointManager(
        directory(workdir),
        options=ocp.CheckpointManagerOptions(
            save_interval_steps=save_interval_steps,
            create=True,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            cleanup_tmp_directories=with_data,
            enable_async_checkpointing=async_save,
            **kwargs,
        ),
        item_names=item_names,
    )


def save(
    mngr: ocp.CheckpointManager,
    step: int,
    state,
    data_iterator=None,
    *,
    force: bool = False,
    metrics: dict | None = None,
) -> bool:
    import grain  # only the trainer needs it; inference restores without grain

    args = {"state": ocp.args.StandardSave(state)}
    if data_iterator is not None:
        args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    return mngr.save(step, args=ocp.args.Composite(**args), force=force, metrics=metrics)


def abstract(state):
    """ShapeDtypeStructs with the target shardings, so restored arrays land where `state` lives."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def is_complete(step_dir: str, *, with_data: bool = False, process_count: int | None = None) -> bool:
    """Whether a step directory was committed: commit_success.txt at the top and in each item, and (with
    data) the grain state of every process."""
    if not paths.isfile(paths.join(step_dir, COMMIT_FILE)):
        return False
    if not paths.isfile(paths.join(step_dir, "_CHECKPOINT_METADATA")):
        return False
    items = ("state", "data") if with_data else ("state",)
    for item in items:
        if not paths.isfile(paths.join(step_dir, item, COMMIT_FILE)):
            return False
    if with_data:
        n = jax.process_count() if process_count is None else process_count
        for i in range(n):
            if not paths.isfile(paths.join(step_dir, "data", f"process_{i}-of-{n}.json")):
                return False
    return True


def complete_steps(mngr: ocp.CheckpointManager, *, with_data: bool = False) -> list[int]:
    """The manager's steps that pass `is_complete`, oldest first."""
    root = str(mngr.directory)
    return [s for s in sorted(mngr.all_steps()) if is_complete(paths.join(root, str(s)), with_data=with_data)]


def latest_complete_step(mngr: ocp.CheckpointManager, *, with_data: bool = False) -> int | None:
    steps = complete_steps(mngr, with_data=with_data)
    return steps[-1] if steps else None


def restore(mngr: ocp.CheckpointManager, state_like, data_iterator=None, step: int | None = None):
    """Restores `state` (and the iterator's position, in place) at `step`, or at the newest complete step,
    falling back to older complete steps when a restore fails.

    Returns (state, step), or (None, None) when there is no checkpoint.
    """

    def one(s):
        args = {"state": ocp.args.StandardRestore(abstract(state_like))}
        if data_iterator is not None:
            import grain

            args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        return mngr.restore(s, args=ocp.args.Composite(**args))["state"]

    if step is not None:
        return one(step), step
    candidates = complete_steps(mngr, with_data=data_iterator is not None)
    skipped = sorted(set(mngr.all_steps()) - set(candidates))
    if skipped:
        log.warning("checkpoints %s are incomplete (a save was interrupted): not restored", skipped)
    for s in reversed(candidates):
        try:
            return one(s), s
        except Exception as err:  # noqa: BLE001 — a damaged step: fall back to the previous one
            log.warning(
                "checkpoint %d could not be restored (%s: %s); trying the previous one", s, type(err).__name__, err
            )
    return None, None


# ---- The state's layout, and restoring a model for inference ------------------------------------------


def load_model_for_inference(config, workdir: str, step: int | None = None):
    """(model in eval mode, step) from the latest complete (or given) checkpoint of a training workdir."""
    mesh = mesh_lib.make_mesh(config.mesh)
    # Outside `set_mesh`: flax's eval_shape cannot attach an abstract mesh to unannotated variables.
    graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: model_and_optimizer(config)))
    replicated = mesh_lib.replicated(mesh)
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract_state)
    mngr = manager(workdir, with_data=False)
    step = latest_complete_step(mngr) if step is None else step
    if step is None:
        raise FileNotFoundError(
            f"{paths.join(workdir, 'checkpoints')}: no checkpoint; train first (`ta2net train --workdir {workdir}`)"
        )
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    model, _ = nnx.merge(graphdef, restored["state"])
    model.eval()
    mngr.close()
    return model, step


def model_and_optimizer(config):
    """The training pair (model in train mode, optimizer): the layout of every checkpoint's state."""
    model = build_model(config)
    model.train()
    return model, optim.make_optimizer(model, config.optim, config.train.num_steps)
