"""The trainer: `train_and_evaluate(config, workdir)`, readable top to bottom.

    mesh → input pipeline → model & optimizer → shard → jit update step → restore → loop → checkpoint

One jit-compiled step takes the whole training state (model params, BatchNorm statistics, dropout RNG,
optimizer) donated, and a global batch sharded on the mesh's data axis; motion and inflection flow are
computed from raw flow inside the step (inflection.py). Side effects (logs, files) happen on process 0;
every process runs every step and every checkpoint save.
"""
from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
import optax
from flax import nnx

from ta2net_jax import checkpoint, mesh as mesh_lib, optim
from ta2net_jax.config_utils import save_config
from ta2net_jax.inflection import model_inputs
from ta2net_jax.losses import ta2net_loss
from ta2net_jax.model import build_model


def create_train_state(config, mesh):
    """(graphdef, state): the model and optimizer split into a static graph and a replicated state pytree."""
    model = build_model(config)
    model.train()
    optimizer = optim.make_optimizer(model, config.optim, config.train.num_steps)
    graphdef, state = nnx.split((model, optimizer))
    return graphdef, jax.device_put(state, mesh_lib.replicated(mesh))


def make_train_step(config, graphdef, mesh):
    """A jit step (state, batch) → (state, metrics); the state is donated and stays replicated."""
    base_key = jax.random.key(config.seed + 2)   # for the contrastive loss's frame sampling

    def train_step(state, batch):
        model, optimizer = nnx.merge(graphdef, state)
        rng = jax.random.fold_in(base_key, optimizer.step[...])

        def loss_fn(model):
            video, motion, inflection = model_inputs(batch, config.inflection.mode, config.inflection.flow_scale)
            outputs = model(video, motion, inflection)
            return ta2net_loss(outputs, batch["labels"], rng, config.loss)

        (loss, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **terms}
        return nnx.state((model, optimizer)), metrics

    replicated = mesh_lib.replicated(mesh)
    return jax.jit(train_step, donate_argnums=0, out_shardings=(replicated, replicated))


class _Log:
    """JSONL metrics on process 0 (`<workdir>/metrics.jsonl`), one line per logging step."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = jax.process_index() == 0

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def train_and_evaluate(config, workdir: str, *, progress: bool = True) -> dict:
    """Trains for `config.train.num_steps` steps (resuming from the latest checkpoint in `workdir`).

    Returns the last logged metrics.
    """
    from tqdm import tqdm
    from input_pipeline import pipeline

    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() == 0:
        save_config(config, os.path.join(workdir, "config.json"))
    log = _Log(workdir)

    # ---- Mesh -------------------------------------------------------------------------------------
    mesh = mesh_lib.make_mesh(config.mesh)
    batch_sharding = mesh_lib.batch_sharding(mesh)
    if config.train.batch_size % mesh.size:
        raise ValueError(f"train.batch_size {config.train.batch_size} is not divisible by {mesh.size} devices")

    # ---- Input pipeline ---------------------------------------------------------------------------
    source = pipeline.data_source(config.data, "train")
    train_iter = iter(pipeline.train_dataset(config, source, process_index=jax.process_index(),
                                             process_count=jax.process_count()))

    # ---- Model, optimizer, update step ----------------------------------------------------------------
    with jax.set_mesh(mesh):
        graphdef, state = create_train_state(config, mesh)
        train_step = make_train_step(config, graphdef, mesh)

    # ---- Restore ----------------------------------------------------------------------------------
    mngr = checkpoint.manager(workdir, config.train.max_to_keep)
    restored, start_step = checkpoint.restore(mngr, state, train_iter)
    if restored is not None:
        state = restored
    start_step = start_step or 0

    # ---- Train loop -------------------------------------------------------------------------------
    num_steps = config.train.num_steps
    last = {}
    bar = tqdm(total=num_steps, initial=start_step, desc="train", unit="step", disable=not progress,
               dynamic_ncols=True)
    wait_s = 0.0
    window_start = time.perf_counter()
    window_steps = 0
    for step in range(start_step + 1, num_steps + 1):
        t0 = time.perf_counter()
        batch = mesh_lib.to_global(next(train_iter), batch_sharding)
        t1 = time.perf_counter()
        with jax.set_mesh(mesh):
            state, metrics = train_step(state, batch)
        wait_s += t1 - t0
        window_steps += 1
        bar.update(1)
        if step % config.train.log_every == 0 or step == num_steps:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            if not np.isfinite(metrics["loss"]):
                raise FloatingPointError(f"loss is {metrics['loss']} at step {step}; terms: {metrics}")
            elapsed = time.perf_counter() - window_start
            last = {"step": step, **metrics,
                    "clips_per_s": window_steps * config.train.batch_size / max(elapsed, 1e-9),
                    "data_wait_fraction": wait_s / max(elapsed, 1e-9),
                    **{f"lr_{g}": lr for g, lr in optim.group_learning_rates(config.optim, step, num_steps).items()}}
            log.write(last)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", focal=f"{metrics['focal']:.4f}")
            window_start, window_steps, wait_s = time.perf_counter(), 0, 0.0
        if step % config.train.checkpoint_every == 0 or step == num_steps:
            checkpoint.save(mngr, step, state, train_iter)
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
    return last


def load_model_for_inference(config, workdir: str, step: int | None = None):
    """(model in eval mode, step) from the latest (or given) checkpoint of a training workdir."""
    mesh = mesh_lib.make_mesh(config.mesh)
    # Outside `set_mesh`: flax's eval_shape cannot attach an abstract mesh to unannotated variables.
    graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: _model_and_optimizer(config)))
    replicated = mesh_lib.replicated(mesh)
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract_state)
    mngr = checkpoint.manager(workdir, with_data=False)
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{os.path.join(workdir, 'checkpoints')}: no checkpoint; train first "
                                f"(`ta2net train --workdir {workdir}`)")
    import orbax.checkpoint as ocp
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    model, _ = nnx.merge(graphdef, restored["state"])
    model.eval()
    mngr.close()
    return model, step


def _model_and_optimizer(config):
    model = build_model(config)
    model.train()
    return model, optim.make_optimizer(model, config.optim, config.train.num_steps)
