"""`optim.ema_decay`: a moving average of the parameters kept in the optimizer's state, against a float64
recurrence over the parameters the real train loop reached at every step; what inference, validation and
`--init-from` take from a run that keeps one."""

import os

import jax
import numpy as np
from flax import nnx

from ta2net_jax import checkpoint, mesh as mesh_lib, optim
from ta2net_jax.train import create_train_state, train_and_evaluate

DECAY = 0.3  # low enough that the warm-up min((1 + n) / (10 + n), decay) gives way to it by step 4


def _with_ema(config, steps):
    config.optim.ema_decay = DECAY
    config.optim.schedule = "constant"  # num_steps does not change the compiled step
    config.train.num_steps = steps
    config.train.checkpoint_every = 1
    config.train.max_to_keep = 20
    return config


def _flat(tree) -> dict:
    return {jax.tree_util.keystr(p): np.asarray(v, np.float64) for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def _params_and_average(graphdef, state, workdir, step):
    """(model parameters, the optimizer's average) restored at `step` into `state`'s layout, as flat float64
    dicts."""
    mngr = checkpoint.manager(workdir, for_training=False)
    restored, _ = checkpoint.restore(mngr, state, step=step)
    mngr.close()
    model, optimizer = nnx.merge(graphdef, restored)
    return _flat(nnx.state(model, nnx.Param)), _flat(optim.averaged_params(optimizer))


def _average_of(history: list[dict]) -> dict:
    """ema ← d·ema + (1 − d)·params after each update, d = min(DECAY, (1 + n) / (10 + n)), in float64."""
    ema = dict(history[0])
    for n, params in enumerate(history[1:]):
        d = min(DECAY, (1 + n) / (10 + n))
        ema = {k: d * ema[k] + (1 - d) * params[k] for k in ema}
    return ema


def _assert_close(got: dict, want: dict):
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_moving_average_of_the_train_loop(smoke_config, tmp_path):
    config = _with_ema(smoke_config, 6)
    workdir = str(tmp_path / "run")
    train_and_evaluate(config, workdir, progress=False)
    mesh = mesh_lib.make_mesh(config.mesh)
    with jax.set_mesh(mesh):
        graphdef, initial = create_train_state(config, mesh)  # the run's start (seeded), and the layout
    history = [_flat(nnx.state(nnx.merge(graphdef, initial)[0], nnx.Param))]
    for step in range(1, 7):
        params, average = _params_and_average(graphdef, initial, workdir, step)
        history.append(params)
        _assert_close(average, _average_of(history))
    # By the last step the average has moved away from the parameters (the test would pass with ema = params
    # otherwise).
    assert max(np.abs(average[k] - params[k]).max() for k in params) > 1e-4

    # The scored model (validation, and inference below) has the average; the state it came from keeps the
    # parameters (nnx.merge shares Variables: validating must not move the trainer's weights).
    mngr = checkpoint.manager(workdir, for_training=False)
    state, _ = checkpoint.restore(mngr, initial, step=6)
    mngr.close()
    _assert_close(_flat(nnx.state(optim.scored_model(graphdef, state), nnx.Param)), average)
    _assert_close(_flat(nnx.state(nnx.merge(graphdef, state)[0], nnx.Param)), params)

    # Inference takes the average (eval, detect, export all load through here); BatchNorm statistics are the
    # model's own.
    model, step = checkpoint.load_model_for_inference(config, workdir)
    assert step == 6
    _assert_close(_flat(nnx.state(model, nnx.Param)), average)

    # `--init-from` a run with an average starts from that average, and restarts the average there.
    finetune = str(tmp_path / "finetune")
    config.train.num_steps = 1
    train_and_evaluate(config, finetune, progress=False, init_from=workdir)
    params1, average1 = _params_and_average(graphdef, initial, finetune, 1)
    _assert_close(average1, _average_of([average, params1]))
    assert os.path.isdir(os.path.join(finetune, "checkpoints", "1"))
