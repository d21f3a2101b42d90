"""The four Adam groups of optim.py: labels on the smoke model's real parameter paths, one Adam step
moving each group by its own learning rate (paper multipliers), the logged rates, and the schedules."""

import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from configs.common import paper_lr_multipliers
from ta2net_jax import optim
from ta2net_jax.config_utils import load_config
from ta2net_jax.model import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def paper_optim(**overrides) -> ml_collections.ConfigDict:
    cfg = dict(
        base_lr=5e-6, multipliers=paper_lr_multipliers(), schedule="constant", warmup_steps=0, grad_clip_norm=0.0
    )
    return ml_collections.ConfigDict({**cfg, **overrides})


def test_groups_on_the_smoke_models_parameter_paths():
    # The smoke config (as conftest's smoke_config, without building its dataset: the model needs none).
    config = load_config(os.path.join(REPO, "configs", "synthetic_small.py:smoke"), ["data.num_frames=8"])
    params = nnx.state(build_model(config), nnx.Param)
    labels = {
        tuple(str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey)): g
        for path, g in jax.tree_util.tree_leaves_with_path(optim.param_groups(params))
    }
    assert labels[("sim_decoder", "input_projection", "bias")] == "head_bias"
    assert labels[("sim_decoder", "input_projection", "kernel")] == "head_weight"
    assert labels[("sim_decoder", "input_norm", "scale")] == "head_weight"  # LayerNorm scale: a weight
    assert labels[("sim_decoder", "bn3d", "bias")] == "head_bias"
    assert labels[("video_net", "bn1", "bias")] == "bias"  # BatchNorm bias
    assert labels[("video_net", "bn1", "scale")] == "weight"  # BatchNorm scale: a weight
    assert labels[("video_net", "conv1", "kernel")] == "weight"  # conv kernel
    assert labels[("v2f", "query", "bias")] == "bias"
    for names, group in labels.items():
        head = "sim_decoder" in names
        assert group == ("head_" if head else "") + ("bias" if names[-1] == "bias" else "weight"), names
    assert set(labels.values()) == set(optim.GROUPS)


class Trunk(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 3, (3,), rngs=rngs)
        self.bn = nnx.BatchNorm(3, rngs=rngs)


class Head(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(3, 2, rngs=rngs)
        self.norm = nnx.LayerNorm(2, rngs=rngs)


class TinyModel(nnx.Module):
    def __init__(self, rngs):
        self.video_net = Trunk(rngs)
        self.sim_decoder = Head(rngs)


def test_one_adam_step_moves_each_group_by_its_own_lr():
    model = TinyModel(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(jnp.zeros_like, params))  # zero params: the step is the update
    optimizer = optim.make_optimizer(model, paper_optim(), num_steps=100)
    rng = np.random.default_rng(0)
    # Known gradients, |g| in [0.5, 2], random signs: Adam's first step is −lr·g/(|g| + ε) ≈ −lr·sign(g).
    grads = jax.tree.map(
        lambda p: jnp.asarray(rng.choice([-1, 1], p.shape) * rng.uniform(0.5, 2, p.shape), jnp.float32), params
    )
    optimizer.update(model, grads)
    new = nnx.state(model, nnx.Param)
    groups = optim.param_groups(params)
    lrs = {"weight": 5e-6, "bias": 1e-5, "head_weight": 5e-5, "head_bias": 1e-4}
    seen = set()
    for (path, g), p, group in zip(
        jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(new), jax.tree.leaves(groups)
    ):
        np.testing.assert_allclose(
            np.asarray(p), -lrs[group] * np.sign(np.asarray(g)), rtol=1e-5, err_msg=jax.tree_util.keystr(path)
        )
        seen.add(group)
    assert seen == set(optim.GROUPS)


def test_group_learning_rates_paper():
    assert optim.group_learning_rates(paper_optim(), step=7, num_steps=100) == pytest.approx(
        {"weight": 5e-6, "bias": 1e-5, "head_weight": 5e-5, "head_bias": 1e-4}, rel=1e-12
    )


def expected_warmup_cosine(step, peak, warmup, num_steps):
    if step < warmup:
        return peak * step / warmup
    frac = min((step - warmup) / (num_steps - warmup), 1.0)
    return peak * 0.5 * (1 + math.cos(math.pi * frac))


@pytest.mark.parametrize("num_steps, warmup_steps, warmup", [(400, 30, 30), (10, 30, 5), (100, 0, 1)])
def test_warmup_cosine_schedule(num_steps, warmup_steps, warmup):
    """Linear warm-up from 0 over min(warmup_steps, num_steps // 2) (at least 1) steps, cosine to 0."""
    cfg = paper_optim(base_lr=2e-3, schedule="cosine", warmup_steps=warmup_steps)
    for step in sorted({0, warmup // 2, warmup, (warmup + num_steps) // 2, num_steps - 1, num_steps}):
        got = optim.group_learning_rates(cfg, step, num_steps)
        for group, mult in paper_lr_multipliers().items():
            want = expected_warmup_cosine(step, 2e-3 * mult, warmup, num_steps)
            # float32 schedule: 1 + cos(·) cancels near the end, so an absolute tolerance of 1e-6·peak
            assert got[group] == pytest.approx(want, rel=1e-5, abs=1e-6 * 2e-3 * mult), (step, group)
    assert optim.group_learning_rates(cfg, warmup, num_steps)["weight"] == pytest.approx(2e-3, rel=1e-6)
    assert optim.group_learning_rates(cfg, num_steps, num_steps)["weight"] == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule_is_an_error():
    cfg = paper_optim(schedule="linear")
    with pytest.raises(ValueError, match="optim.schedule 'linear'"):
        optim.group_learning_rates(cfg, 0, 10)
    with pytest.raises(ValueError, match="optim.schedule"):
        optim.make_optimizer(TinyModel(nnx.Rngs(0)), cfg, 10)
