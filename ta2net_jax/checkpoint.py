"""Orbax checkpoints of the whole training state: model (params, BatchNorm statistics, dropout RNG) and
optimizer (Adam moments, step). The input's position is not saved: global batch n is a pure function of n
(input_pipeline/pipeline.py `train_dataset`) and a run takes one batch per step, so a resumed run starts its
iterator at the restored step. That is what lets a run resume on another number of processes, devices or
input workers (docs/scaling.md §1): the arrays are restored onto whatever mesh the run has now.

Layout: `<workdir>/checkpoints/<step>/{state/, _CHECKPOINT_METADATA, commit_success.txt}` (steps written
before 2026-12-06 also hold `data/`, grain's iterator state per process; it is ignored). Saves are
asynchronous by default (the arrays are copied to host memory in `save`, written in a background thread;
the next save, `wait_until_finished` or `close` waits for it).

Atomicity, checked with orbax-checkpoint 0.12.8 (and the same code in 0.12.4): a step is written into
`<step>.orbax-checkpoint-tmp-<n>/`, `commit_success.txt` is written last inside it, then the directory is
renamed to `<step>/`. On `gs://` (no atomic rename; orbax's CommitFileTemporaryPath) the step is written in
place and `commit_success.txt`, a single object upload, is written last: a step without it is uncommitted.
Orbax's step listing skips the tmp names (gs://: the uncommitted steps), and the trainer's manager removes
leftover tmp directories (gs://: uncommitted steps) when it starts (`cleanup_tmp_directories`). On top of
that, `complete_steps` only accepts a step directory that holds `commit_success.txt` at its top and in its
`state` item (checked through input_pipeline.paths, so on gs:// too); `restore` tries those newest first and
falls back to the previous one when a restore fails. A save torn by a kill (SIGKILL, power, preemption
without notice) is therefore never picked.

Corrupt steps (a truncated data file, a missing `_METADATA` or manifest, an empty step folder): the trainer
(`restore(..., move_corrupt=True)`) moves each step that is incomplete or fails to restore to
`<workdir>/checkpoints_corrupt/<step>-<UTC time>/` (beside `checkpoints/`, so orbax never lists it, and
saving that step again works), with one warning line giving the reason; inference
(`load_model_for_inference`) only skips such steps, says which step it uses, and raises
`NoCheckpointError` / `CheckpointError` (one line from the CLI) when none, or not the asked one, restores.

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
import time

import jax
import orbax.checkpoint as ocp
from flax import nnx

from input_pipeline import paths
from ta2net_jax import mesh as mesh_lib, optim, restore_noise
from ta2net_jax.model import build_model

log = logging.getLogger(__name__)

BEST_METRIC = "val_event_f1_tol3"
FAULT_ENV = "TA2NET_FAULT_KILL_IN_SAVE"
COMMIT_FILE = "commit_success.txt"
STATE = "state"  # the one item of a step: the train state
CORRUPT_DIR = "checkpoints_corrupt"  # <workdir>/checkpoints_corrupt/<step>-<UTC time>/: steps moved aside


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


# Orbax writes a replicated array "replica-parallel": every replica writes a slice of it, cut on the device
# by an eager slice that is compiled once per array shape in every process (≈ 12 s of CPU over the eight short
# runs of tests/test_scaling.py, sampled with py-spy). Below 1 MiB a slice saves no write time worth that, so
# such arrays are written whole by their first replica; large arrays on many replicas still split. The files
# and the restore are the same.
REPLICA_PARALLEL_MIN_SLICE_BYTES = 1 << 20
_array_handler_registered = False


def _write_small_arrays_whole() -> None:
    """Registers (once) orbax's jax.Array handler with REPLICA_PARALLEL_MIN_SLICE_BYTES, keeping the default
    handler's array-metadata store."""
    global _array_handler_registered
    if _array_handler_registered:
        return
    default = ocp.type_handlers.get_type_handler(jax.Array)
    handler = ocp.type_handlers.ArrayHandler(
        min_slice_bytes_for_replica_parallel=REPLICA_PARALLEL_MIN_SLICE_BYTES,
        array_metadata_store=getattr(default, "_array_metadata_store", None),
    )
    # Orbax warns about any override ("Type handler registry type ... overriding jax.Array"): every command
    # that touches a checkpoint would print it, and this replacement is deliberate.
    absl_logger = logging.getLogger("absl")

    def quiet(record: logging.LogRecord) -> bool:
        return "overriding" not in record.getMessage()

    absl_logger.addFilter(quiet)
    try:
        ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)
    finally:
        absl_logger.removeFilter(quiet)
    _array_handler_registered = True


def directory(workdir: str) -> str:
    """`<workdir>/checkpoints`: an absolute local path or a `gs://` URL (orbax writes both; input_pipeline.paths)."""
    return paths.join(paths.resolve(workdir), "checkpoints")


def manager(
    workdir: str,
    max_to_keep: int = 2,
    save_interval_steps: int = 1,
    *,
    for_training: bool = True,
    keep_best: int = 0,
    best_metric: str = BEST_METRIC,
    async_save: bool = True,
) -> ocp.CheckpointManager:
    """The checkpoint manager of a workdir. `for_training`: the trainer's, which removes leftover tmp
    directories when it starts and honours FAULT_ENV; any other (inference, export, tests) leaves them."""
    _write_small_arrays_whole()
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
    if fault and for_training:
        kwargs["temporary_path_class"] = _kill_in_save_class(int(fault), paths.is_remote(workdir))
    return ocp.CheckpointManager(
        directory(workdir),
        options=ocp.CheckpointManagerOptions(
            save_interval_steps=save_interval_steps,
            create=True,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            cleanup_tmp_directories=for_training,
            enable_async_checkpointing=async_save,
            **kwargs,
        ),
        item_names=(STATE,),
    )


def save(mngr: ocp.CheckpointManager, step: int, state, *, force: bool = False, metrics: dict | None = None) -> bool:
    return mngr.save(
        step, args=ocp.args.Composite(**{STATE: ocp.args.StandardSave(state)}), force=force, metrics=metrics
    )


def abstract(state):
    """ShapeDtypeStructs with the target shardings, so restored arrays land where `state` lives."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def is_complete(step_dir: str) -> bool:
    """Whether a step directory was committed: commit_success.txt at its top and in its state item, and
    orbax's step metadata."""
    return all(
        paths.isfile(paths.join(step_dir, *parts))
        for parts in ((COMMIT_FILE,), ("_CHECKPOINT_METADATA",), (STATE, COMMIT_FILE))
    )


def _step_dir(mngr: ocp.CheckpointManager, step: int) -> str:
    """`<checkpoints>/<step>`: the folder orbax keeps a step in (local or gs://)."""
    return paths.join(str(mngr.directory), str(step))


def complete_steps(mngr: ocp.CheckpointManager) -> list[int]:
    """The manager's steps that pass `is_complete`, oldest first."""
    return [s for s in sorted(mngr.all_steps()) if is_complete(_step_dir(mngr, s))]


def latest_complete_step(mngr: ocp.CheckpointManager) -> int | None:
    steps = complete_steps(mngr)
    return steps[-1] if steps else None


class CheckpointError(ValueError):
    """A checkpoint that exists but cannot be restored (named in the message)."""


class NoCheckpointError(FileNotFoundError):
    """A workdir without any restorable checkpoint."""


def corrupt_directory(workdir: str) -> str:
    """Where the trainer moves steps that cannot be restored: beside `checkpoints/`, so that orbax never
    lists them as steps and the trainer can save that step again."""
    return os.path.join(os.path.abspath(workdir), CORRUPT_DIR)


def _restore_step(mngr: ocp.CheckpointManager, step: int, target):
    """The state item of one step, as `target` (ShapeDtypeStructs with shardings); a step that fails is
    named to restore_noise, so that the late read errors of its abandoned reads are dropped (the failure
    itself is reported by the caller)."""
    try:
        return mngr.restore(step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(target)}))[STATE]
    except Exception:
        restore_noise.remember_unusable(_step_dir(mngr, step))
        raise


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()).split(" See full TensorStore details")[0] or "no message"
    return f"{type(err).__name__}: {text[:200]}"


def _move_aside(mngr: ocp.CheckpointManager, step: int, reason: str) -> None:
    """Moves `<checkpoints>/<step>/` to `<workdir>/checkpoints_corrupt/<step>-<UTC time>/` (process 0;
    the others wait) and says so in one warning line."""
    root = str(mngr.directory)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = os.path.join(os.path.dirname(root), CORRUPT_DIR, f"{step}-{stamp}")
    if jax.process_index() == 0:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        n = 1
        while os.path.exists(dest):
            n += 1
            dest = os.path.join(os.path.dirname(root), CORRUPT_DIR, f"{step}-{stamp}-{n}")
        os.replace(_step_dir(mngr, step), dest)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"ta2net_move_corrupt_{step}")
    log.warning("checkpoint step %d is unusable (%s): moved to %s", step, reason, dest)


def restore(mngr: ocp.CheckpointManager, state_like, step: int | None = None, *, move_corrupt=False):
    """Restores `state` at `step`, or at the newest complete step, falling back to older complete steps when
    a restore fails. The arrays land with `state_like`'s shardings, whatever mesh or number of processes
    saved them.

    `move_corrupt` (the trainer): steps that are incomplete or fail to restore are moved aside
    (`_move_aside`), so that saving that step again later works; otherwise (read-only use) they are only
    skipped, with a warning. Returns (state, step), or (None, None) when nothing is restorable.
    """

    restore_noise.quiet_failed_restores()

    def one(s):
        return _restore_step(mngr, s, abstract(state_like))

    if step is not None:
        try:
            return one(step), step
        except Exception as err:  # noqa: BLE001 — reported as one typed error naming the step
            raise CheckpointError(
                f"{_step_dir(mngr, step)}: checkpoint step {step} cannot be restored ({_reason(err)})"
            ) from err
    candidates = complete_steps(mngr)
    skipped = sorted(set(mngr.all_steps()) - set(candidates))
    moved = False
    if skipped and move_corrupt:
        for s in skipped:
            _move_aside(mngr, s, "incomplete: a save was interrupted or files are missing")
        moved = True
    elif skipped:
        log.warning("checkpoints %s are incomplete (a save was interrupted): not restored", skipped)
    result = (None, None)
    failed = []
    for s in reversed(candidates):
        try:
            result = one(s), s
            break
        except Exception as err:  # noqa: BLE001 — a damaged step: fall back to the previous one
            failed.append(s)
            if move_corrupt:
                _move_aside(mngr, s, f"restore failed: {_reason(err)}")
                moved = True
            else:
                log.warning("checkpoint step %d cannot be restored (%s); trying the previous one", s, _reason(err))
    if moved:
        mngr.reload()
    if failed and result[0] is not None:
        log.warning("using checkpoint step %d (newer steps %s unusable)", result[1], sorted(failed))
    return result


# ---- The state's layout, and restoring a model for inference ------------------------------------------


def load_model_for_inference(config, workdir: str, step: int | None = None):
    """(model in eval mode, step) from the latest complete (or given) checkpoint of a training workdir, or
    from a model bundle folder (export/bundle.py: `ta2net export --format bundle`; `step` does not apply)."""
    from ta2net_jax.export import bundle

    if bundle.is_bundle(workdir):
        return bundle.load_model(config, workdir)
    mesh = mesh_lib.make_mesh(config.mesh)
    # Outside `set_mesh`: flax's eval_shape cannot attach an abstract mesh to unannotated variables.
    graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: model_and_optimizer(config)))
    replicated = mesh_lib.replicated(mesh)
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract_state)
    root = directory(workdir)
    if not paths.isdir(root):
        raise NoCheckpointError(f"{root}: no checkpoint; train first (`ta2net train --workdir {workdir}`)")
    mngr = manager(workdir, for_training=False)
    try:
        restored, step = _restore_for_inference(mngr, target, step)
    finally:
        mngr.close()
    model = optim.scored_model(graphdef, restored)
    model.eval()
    return model, step


def _restore_for_inference(mngr: ocp.CheckpointManager, target, step: int | None):
    """(state, step): the given step, or the newest step that restores. Read-only: damaged steps are
    skipped with a warning, never moved."""

    restore_noise.quiet_failed_restores()

    def one(s):
        return _restore_step(mngr, s, target)

    root = str(mngr.directory)
    if step is not None:
        if step not in mngr.all_steps():
            raise NoCheckpointError(f"{_step_dir(mngr, step)}: no checkpoint step {step}")
        try:
            return one(step), step
        except Exception as err:  # noqa: BLE001 — one typed error naming the step
            raise CheckpointError(
                f"{_step_dir(mngr, step)}: checkpoint step {step} cannot be restored ({_reason(err)})"
            ) from err
    candidates = complete_steps(mngr)
    unusable = sorted(set(mngr.all_steps()) - set(candidates))
    if unusable:
        log.warning("checkpoints %s in %s are incomplete: skipped", unusable, root)
    for s in reversed(candidates):
        try:
            state = one(s)
        except Exception as err:  # noqa: BLE001 — a damaged step: the previous one
            log.warning("checkpoint step %d cannot be restored (%s): skipped", s, _reason(err))
            unusable.append(s)
            continue
        if unusable:
            log.warning("using checkpoint step %d (newer steps %s unusable)", s, sorted(unusable))
        return state, s
    if unusable:
        raise NoCheckpointError(f"{root}: no restorable checkpoint (steps {sorted(unusable)} are damaged)")
    raise NoCheckpointError(f"{root}: no checkpoint; train first (`ta2net train --workdir {os.path.dirname(root)}`)")


def model_and_optimizer(config):
    """The training pair (model in train mode, optimizer): the layout of every checkpoint's state."""
    model = build_model(config)
    model.train()
    return model, optim.make_optimizer(model, config.optim, config.train.num_steps)


def flat_weights_of(source: str) -> dict:
    """The parameters and BatchNorm statistics of a trained run (its newest checkpoint), a model bundle or a
    safetensors export: what `ta2net train --init-from` starts from."""
    from ta2net_jax.config_utils import run_config
    from ta2net_jax.export import weights

    if os.path.isdir(source):
        model, _ = load_model_for_inference(run_config(source), source)
        return weights.flat_state(model)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source}: no such run folder or weights file (--init-from)")
    return weights.read_safetensors(source)[1]
