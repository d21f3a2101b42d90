"""The trainer: `train_and_evaluate(config, workdir)`, readable top to bottom.

    mesh → input pipeline → model & optimizer → shard → jit update step → restore → loop
    (log, validate, checkpoint, preemption) → final checkpoint

One jit-compiled step takes the whole training state (model params, BatchNorm statistics, dropout RNG,
optimizer) donated, and a global batch sharded on the mesh's batch axes; motion and inflection flow are
computed from raw flow inside the step (inflection.py). A step whose loss or gradient norm is not finite
leaves the state unchanged (inside the jit step); the host then stops with an error naming the step
(`train.nan_policy="stop"`) or counts the batch as skipped and goes on ("skip").

Multi-process (docs/scaling.md): every process runs this same function after `distributed.initialize`;
the mesh spans every process's devices, each process's pipeline reads only the rows of each global batch
that its devices hold, every process joins every step, checkpoint save/restore and validation gather,
and only process 0 writes logs, TensorBoard events, config.json and the progress bar.

Preemption safety: checkpoints every `train.checkpoint_every` steps (asynchronous), and at the next step
after a SIGTERM (then the function returns with `preempted: True`; the CLI exits with status 143) or, in a
one-process run, a first Ctrl-C (`interrupted: True` as well; status 130; a second Ctrl-C stops at once). A
resumed run restores model, optimizer and RNG of the newest complete checkpoint onto its own mesh and starts
its input at that step's batch (global batches are a pure function of their index), so it ends
bit-identical (on CPU) to an uninterrupted run, and may resume on another number of processes, devices or
input workers (the same global batches; only float sums are ordered differently).
"""

from __future__ import annotations

import logging
import os
import sys
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from input_pipeline import paths
from ta2net_jax import checkpoint, distributed, mesh as mesh_lib, observability, optim
from ta2net_jax.config_utils import config_from_json, save_config
from ta2net_jax.inflection import model_inputs
from ta2net_jax.losses import ta2net_loss
from ta2net_jax.validation import Validator

log = logging.getLogger(__name__)

# Defaults of the `train` options a config may leave out (configs/synthetic_small.py states them all).
TRAIN_DEFAULTS = dict(
    keep_best=0,  # also keep the N checkpoints with the best validation event F1 ±3
    eval_every=0,  # validation (events F1 on config.eval.tune_split) every N steps; 0: never
    eval_max_videos=0,  # validate on the first N videos only; 0: all
    async_checkpoints=True,  # write checkpoints in a background thread
    nan_policy="stop",  # non-finite loss/gradient: "stop" (error naming the step) or "skip" the batch
    tensorboard=True,  # <workdir>/tensorboard/ event files
)
NAN_POLICIES = ("stop", "skip")
PREEMPTED_EXIT_STATUS = 143  # 128 + SIGTERM: the CLI's exit status after a preemption checkpoint


def train_options(config) -> dict:
    options = dict(TRAIN_DEFAULTS)
    options.update({k: v for k, v in config.train.items()})
    if options["nan_policy"] not in NAN_POLICIES:
        raise ValueError(f"train.nan_policy {options['nan_policy']!r} is not one of {NAN_POLICIES}")
    return options


def create_train_state(config, mesh):
    """(graphdef, state): the model and optimizer split into a static graph and a state pytree placed on
    the mesh (replicated; split along an 'fsdp' axis when the mesh has one, `mesh.state_sharding`)."""
    graphdef, state = nnx.split(checkpoint.model_and_optimizer(config))
    return graphdef, jax.device_put(state, mesh_lib.state_sharding(state, mesh))


def _select(ok, new, old):
    """`new` where ok else `old`, leaf by leaf (typed PRNG keys through their key data)."""

    def one(n, o):
        if jax.dtypes.issubdtype(n.dtype, jax.dtypes.prng_key):
            data = jnp.where(ok, jax.random.key_data(n), jax.random.key_data(o))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(n))
        return jnp.where(ok, n, o)

    return jax.tree.map(one, new, old)


def make_train_step(config, graphdef, mesh, state_sharding=None):
    """A jit step (state, batch) → (state, metrics); the state is donated and keeps `state_sharding`
    (default: replicated). When the loss or the gradient norm is not finite the state comes back
    unchanged and metrics["finite"] is False."""
    base_key = jax.random.key(config.seed + 2)  # for the contrastive loss's frame sampling

    def train_step(state, batch):
        old = jax.tree.map(lambda x: x, state)  # the incoming arrays (merge may share Variables with `state`)
        model, optimizer = nnx.merge(graphdef, state)
        rng = jax.random.fold_in(base_key, optimizer.step[...])

        def loss_fn(model):
            video, motion, inflection = model_inputs(batch, config.inflection.mode, config.inflection.flow_scale)
            outputs = model(video, motion, inflection)
            return ta2net_loss(outputs, batch["labels"], rng, config.loss, batch.get("contact_xy"))

        (loss, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        new = _select(finite, nnx.state((model, optimizer)), old)
        metrics = {"loss": loss, "grad_norm": grad_norm, "finite": finite, **terms}
        return new, metrics

    replicated = mesh_lib.replicated(mesh)
    return jax.jit(
        train_step,
        donate_argnums=0,
        out_shardings=(replicated if state_sharding is None else state_sharding, replicated),
    )


# Train-step options that do not change the compiled step (everything else in the config may).
_STEP_NEUTRAL_TRAIN_KEYS = ("log_every", "checkpoint_every", "max_to_keep", *TRAIN_DEFAULTS)
_COMPILED: dict = {}


def _compile_step(config, train_step, state, batch):
    """The AOT-compiled step for these shapes and shardings, reused by later runs in the same process
    (tests, notebooks, sweeps) whose step-relevant config is the same: tracing the model takes seconds."""
    relevant = config.to_dict()
    neutral = _STEP_NEUTRAL_TRAIN_KEYS + (("num_steps",) if config.optim.get("schedule") == "constant" else ())
    relevant["train"] = {k: v for k, v in relevant["train"].items() if k not in neutral}  # num_steps: lr schedule

    def avals(tree):
        leaves, treedef = jax.tree.flatten(tree)
        return treedef, tuple((x.shape, str(x.dtype), x.sharding) for x in leaves)

    try:
        # The graph definition follows from the config (GraphDefs of two builds do not compare equal).
        key = (repr(sorted(relevant.items())), avals(state), avals(batch))
        hash(key)
    except TypeError:  # something unhashable: compile without caching
        key = None
    if key is not None and key in _COMPILED:
        return _COMPILED[key]
    compiled = train_step.lower(state, batch).compile()
    if key is not None:
        if len(_COMPILED) >= 4:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = compiled
    return compiled


def _initial_weights(graphdef, state, source: str):
    """`state` with the model's weights replaced by those of `source` (checkpoint.flat_weights_of), on
    the same shardings; ValueError naming the mismatching entries when the architectures differ."""
    from ta2net_jax.export import weights

    shardings = jax.tree.map(lambda x: x.sharding, state)
    model, optimizer = nnx.merge(graphdef, state)
    weights.load_flat_state(model, checkpoint.flat_weights_of(source), source=source)
    optim.reset_average(model, optimizer)
    return jax.device_put(nnx.state((model, optimizer)), shardings)


# ---- The loop -----------------------------------------------------------------------------------------


def _non_finite(step: int, metrics: dict, policy: str, last_checkpoint) -> bool:
    """True when the step's update was skipped; raises FloatingPointError under the "stop" policy."""
    if bool(jax.device_get(metrics["finite"])):
        return False
    values = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "finite"}
    if policy == "stop":
        raise FloatingPointError(
            f"non-finite loss or gradient at step {step} (loss {values['loss']}, grad_norm {values['grad_norm']}; "
            f"terms {values}). The update was not applied; "
            + (
                f"the last checkpoint is step {last_checkpoint}. "
                if last_checkpoint
                else "there is no checkpoint yet. "
            )
            + "Set --config.train.nan_policy=skip to skip such batches."
        )
    log.warning("step %d: non-finite loss or gradient (%s); batch skipped", step, values)
    return True


def _note(message: str) -> None:
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


def train_and_evaluate(config, workdir: str, *, progress: bool = True, init_from: str | None = None) -> dict:
    """Trains for `config.train.num_steps` steps (resuming from the latest complete checkpoint in
    `workdir`). Returns the last logged metrics; `preempted: True` when stopped by SIGTERM or a first Ctrl-C
    with a checkpoint at the next step (`interrupted: True` for Ctrl-C).

    `init_from` (a training workdir or a safetensors export): a run with no checkpoint yet starts from its
    parameters and BatchNorm statistics (fine-tuning; the optimizer starts fresh); a resumed run ignores it.

    The SIGTERM and SIGINT handlers are installed first: a notice that arrives while the run starts (restore,
    compilation) is honoured after the first step."""
    preemption = distributed.PreemptionWatcher()
    try:
        return _train(config, workdir, progress, preemption, init_from)
    finally:
        preemption.close()


def _train(
    config, workdir: str, progress: bool, preemption: distributed.PreemptionWatcher, init_from: str | None = None
) -> dict:
    from input_pipeline import pipeline
    from input_pipeline.progress import tqdm

    options = train_options(config)
    main = jax.process_index() == 0
    if not paths.is_remote(workdir) and os.path.exists(workdir) and not os.path.isdir(workdir):
        raise NotADirectoryError(f"{workdir}: the workdir is a file, not a folder")

    # ---- Mesh -------------------------------------------------------------------------------------
    mesh = mesh_lib.make_mesh(config.mesh)
    batch_sharding = mesh_lib.batch_sharding(mesh)
    batch_size = config.train.batch_size
    ways = mesh_lib.batch_parallelism(mesh)
    if batch_size % ways:
        raise ValueError(
            f"train.batch_size {batch_size} is not divisible by the {ways} devices the batch is "
            f"split over (mesh {dict(mesh.shape)})"
        )
    paths.makedirs(workdir)  # a local folder; nothing to create under gs:// (input_pipeline.paths)
    config_path = paths.join(workdir, "config.json")
    batch_size_so_far = config_from_json(config_path).train.batch_size if paths.exists(config_path) else None
    if main:
        save_config(config, config_path)

    # ---- Input pipeline: this process's rows of every global batch ------------------------------------
    source = pipeline.data_source(config.data, "train")
    mixture = pipeline.mixture_sources(config.data)
    rows = mesh_lib.process_batch_rows(batch_sharding, batch_size)

    def iterator_from(step: int):
        """This process's batches from global batch `step` on (one batch per step: a resumed run's next)."""
        return iter(
            pipeline.train_dataset(
                config,
                source,
                process_index=jax.process_index(),
                process_count=jax.process_count(),
                rows=rows,
                mixture=mixture,
                start_batch=step,
            )
        )

    # ---- Model, optimizer, update step ----------------------------------------------------------------
    with jax.set_mesh(mesh):
        graphdef, state = create_train_state(config, mesh)
        train_step = make_train_step(config, graphdef, mesh, jax.tree.map(lambda x: x.sharding, state))

    # ---- Restore ----------------------------------------------------------------------------------
    mngr = checkpoint.manager(
        workdir, config.train.max_to_keep, keep_best=options["keep_best"], async_save=options["async_checkpoints"]
    )
    # Steps that cannot be restored are moved to <workdir>/checkpoints_corrupt/ (so the run can save them
    # again); nothing restorable although steps existed is said loudly.
    had_steps = bool(mngr.all_steps())
    restored, start_step = checkpoint.restore(mngr, state, move_corrupt=True)
    if restored is not None:
        state = restored
        _note(f"resumed from checkpoint step {start_step} ({checkpoint.directory(workdir)})")
        if batch_size_so_far not in (None, batch_size):
            _note(
                f"train.batch_size is {batch_size}, the run so far used {batch_size_so_far}: the input goes on at "
                f"global batch {start_step} of the new size, not at the clip the run had reached"
            )
    elif had_steps:
        _note(f"no checkpoint in {checkpoint.directory(workdir)} could be restored: training restarts at step 0")
    if restored is None and init_from:
        state = _initial_weights(graphdef, state, init_from)
        _note(f"initialised from {init_from} (parameters and BatchNorm statistics; fresh optimizer)")
    start_step = start_step or 0
    last_checkpoint = start_step or None
    train_iter = iterator_from(start_step)

    # ---- Observability ----------------------------------------------------------------------------
    metrics_log = observability.MetricsLog(workdir, enabled=main)
    metrics_log.truncate_after(start_step)
    events = observability.EventWriter(paths.join(workdir, "tensorboard"), enabled=main and options["tensorboard"])
    flops_per_step = None
    if main:
        per_clip = observability.train_flops_per_clip(config)
        flops_per_step = per_clip * batch_size if per_clip else None
    peak = observability.peak_flops(jax.devices()[0].device_kind, config.model.compute_dtype)
    validator = Validator(config, options) if options["eval_every"] else None

    # ---- Train loop -------------------------------------------------------------------------------
    num_steps = config.train.num_steps
    last: dict = {}
    skipped = 0
    pending = None  # (step, metrics) whose finiteness is checked after the next step is dispatched
    window = observability.ThroughputWindow(batch_size, flops_per_step, peak * jax.device_count() if peak else None)
    bar = tqdm(
        total=num_steps,
        initial=start_step,
        desc="train",
        unit="step",
        disable=not (progress and main),
        dynamic_ncols=True,
    )
    step = start_step
    compiled = None
    try:
        while step < num_steps:
            step += 1
            t0 = time.perf_counter()
            local_batch = next(train_iter)
            window.wait += time.perf_counter() - t0
            batch = mesh_lib.to_global(local_batch, batch_sharding)
            if compiled is None:
                # Compile (or load from the persistent cache) on every process, then wait for all of them:
                # processes that start the first step at very different times can trip the collectives'
                # connection timeouts (CPU/Gloo: 30 s).
                with jax.set_mesh(mesh):
                    compiled = _compile_step(config, train_step, state, batch)
                distributed.barrier("train_step_compiled")
                window.reset()
            state, metrics = compiled(state, batch)
            window.steps += 1
            if pending is not None:
                skipped += _non_finite(*pending, options["nan_policy"], last_checkpoint)
            pending = (step, metrics)
            bar.update(1)

            preempted = preemption.reached(step)
            is_log = step % config.train.log_every == 0 or step == num_steps
            is_eval = bool(options["eval_every"]) and (step % options["eval_every"] == 0 or step == num_steps)
            is_checkpoint = step % config.train.checkpoint_every == 0 or step == num_steps
            if is_log or is_eval or is_checkpoint or preempted:
                skipped += _non_finite(*pending, options["nan_policy"], last_checkpoint)
                pending = None
            if is_log:
                values = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "finite"}
                rates = optim.group_learning_rates(config.optim, step - 1, num_steps)
                last = {
                    "step": step,
                    **values,
                    **{f"lr_{g}": lr for g, lr in rates.items()},
                    **window.figures(),
                    "skipped_batches": skipped,
                }
                metrics_log.write(last)
                events.scalars(step, last)
                bar.set_postfix(loss=f"{values['loss']:.4f}", focal=f"{values['focal']:.4f}")
                window.reset()
            val = None
            if is_eval:
                val = validator(graphdef, state)
                metrics_log.write({"step": step, **val})
                events.scalars(step, val)
                last.update(val)
                window.reset()
            if is_checkpoint or val is not None or preempted:
                checkpoint.save(mngr, step, state, force=True, metrics=val)
                last_checkpoint = step
            if preempted:
                cause = "interrupted (Ctrl-C)" if preemption.interrupted else "preempted (SIGTERM)"
                _note(f"{cause}: checkpoint at step {step} saved; rerun the same command to resume")
                last = {**last, "step": step, "preempted": True, "interrupted": preemption.interrupted}
                break
        if pending is not None:
            skipped += _non_finite(*pending, options["nan_policy"], last_checkpoint)
    finally:
        bar.close()
        events.close()
        mngr.wait_until_finished()
        mngr.close()
    if main and options["keep_best"]:
        _write_best(workdir)
    if not last:  # nothing left to train: the run was already complete
        last = {"step": start_step, "already_complete": True}
    return last


def _write_best(workdir: str) -> None:
    """`<workdir>/best_checkpoints.json`: the kept steps that have validation metrics, best first."""
    import json

    mngr = checkpoint.manager(workdir, for_training=False)
    try:
        kept = [(s, mngr.metrics(s)) for s in checkpoint.complete_steps(mngr)]
    finally:
        mngr.close()
    scored = sorted(
        ((s, m) for s, m in kept if m and checkpoint.BEST_METRIC in m),
        key=lambda sm: (-sm[1][checkpoint.BEST_METRIC], -sm[0]),
    )
    best = {
        "metric": checkpoint.BEST_METRIC,
        "steps": [{"step": s, checkpoint.BEST_METRIC: m[checkpoint.BEST_METRIC]} for s, m in scored],
    }
    paths.write_text(paths.join(workdir, "best_checkpoints.json"), json.dumps(best, indent=2))
