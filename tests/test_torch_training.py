"""Training parity with the original PyTorch code (tests/torch_ref): one Adam step from the same weights and
inputs leaves every parameter and every BatchNorm running statistic where PyTorch's step leaves them, the
original's second decoder pass (`model.faithful_bn_side_pass`) included; and a freshly built model's
per-layer initialisation statistics are PyTorch's for the same shapes (`model.init="torch_default"`).

Dropout is off on both sides (p = 0) so that the step is deterministic; everything else is the training
configuration: train-mode BatchNorm, the original's loss, Adam (0.9, 0.999, 1e-8) with its four lr groups.
"""

import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from torch_support import REPO, randomize_weights, rel_error, run_reference, torch_python, write_json

from configs import common
from ta2net_jax import optim
from ta2net_jax.config_utils import load_config
from ta2net_jax.export import torch_names, weights
from ta2net_jax.losses import sample_audible_frames, ta2net_loss
from ta2net_jax.model import build_model, model_config

DROPOUT_OFF = [f"model.decoder.{k}=0.0" for k in ("sim_dropout", "pe_dropout", "attn_dropout", "mlp_dropout")]
CONFIGS = {
    # The paper model (ResNet-50 trunks) at T = 8, 64² (layer3 at 4×4): side pass and torch init are its defaults.
    "paper": ("configs/audible623.py:smoke", ["data.image_size=64"] + DROPOUT_OFF),
    # The demo's small model with the original's side pass, init and batch variance switched on.
    "small": (
        "configs/synthetic_small.py:smoke",
        ["data.num_frames=8", "model.init=torch_default", "model.faithful_bn_side_pass=True"]
        + ["model.bn_variance=two_pass"]  # torch's batch variance (the demo keeps flax's one-pass)
        + DROPOUT_OFF,
    ),
}
# Fraction of gradient tensors allowed beyond 4× PyTorch's own float32 error (test docstring); each must
# still be within the worst float32 error PyTorch itself shows in the same step.
TAIL_FRACTION = {"small": 0.0, "paper": 0.05}
# The original's optimiser (docs/original_ta2net.md §7), whatever the config trains with.
PAPER_OPTIM = ml_collections.ConfigDict(
    dict(
        base_lr=5e-6, multipliers=common.paper_lr_multipliers(), schedule="constant", warmup_steps=0, grad_clip_norm=0.0
    )
)
GROUP_LR = {g: PAPER_OPTIM.base_lr * m for g, m in PAPER_OPTIM.multipliers.items()}
BATCH = 2
ZERO_GRADIENT = re.compile(r"^sim_decoder\.(conv3D|conv3x3|sims\.linear_k)\.bias$|\.key_conv\.bias$")


def _config(name, extra=()):
    path, overrides = CONFIGS[name]
    return load_config(os.path.join(REPO, path), list(overrides) + list(extra))


def _inputs(config, seed=0):
    cfg = model_config(config)
    t, size, c = cfg.num_frames, config.data.get("image_size", 32), cfg.flow_channels
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=(BATCH, t)) < 0.3).astype(np.int32)
    labels[:, t // 2] = 1
    return {
        "video": rng.uniform(size=(BATCH, t, size, size, 3)).astype(np.float32),
        "motion": rng.normal(size=(BATCH, t, size, size, 2 * c)).astype(np.float32),
        "inflection": rng.normal(size=(BATCH, t, size, size, 2 * c)).astype(np.float32),
        "labels": labels,
    }


def _start_model(config):
    """The shared starting point: random weights, non-trivial BatchNorm statistics and affine terms."""
    model = build_model(config, seed=3)
    randomize_weights(model, seed=4, map_head_scale=1.0)
    return model


def _jax_step(config, model, inputs, key):
    """One training step (the trainer's loss and optimizer); returns the loss terms and torch-named grads."""
    model.train()
    optimizer = optim.make_optimizer(model, PAPER_OPTIM, num_steps=1)

    @nnx.jit
    def step(model, optimizer, batch):
        def loss_fn(model):
            outputs = model(batch["video"], batch["motion"], batch["inflection"])
            return ta2net_loss(outputs, batch["labels"], key, config.loss)

        (_, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return terms, grads

    terms, grads = step(model, optimizer, {k: jnp.asarray(v) for k, v in inputs.items()})
    flat = {".".join(map(str, path)): np.asarray(v.get_value()) for path, v in nnx.to_flat_state(grads)}
    cfg = model_config(config)
    named = torch_names.to_torch(flat, num_frames=cfg.num_frames, d_model=cfg.decoder.d_model)
    return {k: float(v) for k, v in terms.items()}, named


def _torch_step(tmp_path, config, start_weights, inputs, float64=False):
    np.savez(tmp_path / "weights.npz", **start_weights)
    np.savez(tmp_path / "inputs.npz", **inputs)
    out = tmp_path / ("after64.npz" if float64 else "after.npz")
    run_reference(
        "train-step",
        "--config",
        write_json(tmp_path / "model.json", model_config(config).to_dict()),
        "--weights",
        str(tmp_path / "weights.npz"),
        "--inputs",
        str(tmp_path / "inputs.npz"),
        "--loss",
        write_json(tmp_path / "loss.json", config.loss.to_dict()),
        "--optim",
        write_json(tmp_path / "optim.json", PAPER_OPTIM.to_dict()),
        "--out",
        str(out),
        *(["--float64"] if float64 else []),
    )
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


def _group(torch_key):
    head = "head_" if torch_key.startswith("sim_decoder.") else ""
    return head + ("bias" if torch_key.endswith("bias") else "weight")


def _compared(state):
    return {k: v for k, v in state.items() if not any(p.search(k) for p in torch_names.IGNORED_ON_IMPORT)}


def _max_abs(x):
    return float(np.max(np.abs(np.asarray(x, np.float64))))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_training_step_matches_pytorch(tmp_path, name):
    """ "Float32 tolerance" is measured, not assumed: PyTorch runs the step in float64 (the reference) and in
    float32, and each of our float32 gradients may be off the float64 one by no more than 4× PyTorch's own
    float32 error for that tensor (floor 1e-4). Train-mode BatchNorm over few elements per channel amplifies
    rounding through the depth of a ResNet-50: in this step PyTorch's own float32 gradients are up to 16 %
    off float64 (flow_net.conv_256), and ours have a tail of their own (video_net.conv_256 6.6 % where
    PyTorch's is 6e-5; our model in float64 matches PyTorch's float64 to 2e-6 there, so it is float32
    rounding, not the function). For the paper model up to `TAIL_FRACTION` of the tensors may
    exceed 4×, each still within PyTorch's worst float32 error of the step; the small model has no tail."""
    torch_python()
    config = _config(name)
    model = _start_model(config)
    start = weights.torch_state_dict(model, model_config(config))
    inputs = _inputs(config)
    key = jax.random.key(7)
    inputs["fb_index"] = np.asarray(sample_audible_frames(jnp.asarray(inputs["labels"]), key))
    terms, grads = _jax_step(config, model, inputs, key)
    ours = _compared(weights.torch_state_dict(model, model_config(config)))
    f32 = _torch_step(tmp_path, config, start, inputs)
    ref = _torch_step(tmp_path, config, start, inputs, float64=True)

    for term, value in terms.items():
        assert rel_error(value, ref[f"loss_{term}"]) < 1e-4, term
    # Gradients, relative to each tensor's scale. A few biases have zero gradient in exact arithmetic:
    # those feeding a train-mode BatchNorm (conv3D, conv3x3) and those of the keys of a softmax (key_conv,
    # linear_k: q·b is the same for every key). float64 must put exactly these at rounding level.
    scale = max(_max_abs(g) for k, g in ref.items() if k.startswith("grad/"))
    params = [k for k in ours if not k.endswith(("running_mean", "running_var"))]
    vanishing = {k for k in params if _max_abs(ref[f"grad/{k}"]) <= 1e-9 * scale}
    assert vanishing == {k for k in params if ZERO_GRADIENT.search(k)}, sorted(vanishing)
    errors = {}
    for key_ in params:
        g_ref = ref[f"grad/{key_}"]
        if key_ in vanishing:  # rounding noise in both float32 runs
            assert _max_abs(grads[key_]) <= 1e-5 * scale and _max_abs(f32[f"grad/{key_}"]) <= 1e-5 * scale, key_
            continue
        errors[key_] = rel_error(grads[key_], g_ref), rel_error(f32[f"grad/{key_}"], g_ref)
    worst_torch = max(t for _, t in errors.values())
    tail = {k: e for k, e in errors.items() if e[0] > max(4 * e[1], 1e-4)}
    assert len(tail) <= TAIL_FRACTION[name] * len(errors), (
        f"{len(tail)} of {len(errors)} gradients beyond 4x PyTorch's float32 error: {sorted(tail.items())[:5]}"
    )
    for key_, (ours_err, torch_err) in tail.items():
        assert ours_err <= max(worst_torch, 1e-4), f"gradient of {key_}: {ours_err:.2e} (PyTorch fp32 {torch_err:.2e})"

    moved = {}
    for key_ in ours:
        before, after_ref, after_j = start[key_], ref[key_], ours[key_].astype(np.float64)
        assert after_j.shape == after_ref.shape, key_
        moved[key_] = _max_abs(after_ref - before)
        if key_.endswith(("running_mean", "running_var")):
            ours_err, torch_err = _max_abs(after_j - after_ref), _max_abs(f32[key_] - after_ref)
            assert ours_err <= max(4 * torch_err, 1e-5 * _max_abs(after_ref)), (
                f"{key_}: off by {ours_err:.2e} (PyTorch fp32 {torch_err:.2e})"
            )
            continue
        # Adam's first step moves each element by lr·g/(|g| + ε), ε = 1e-8, whose slope is at most 1/ε:
        # gradients δ apart give updates at most lr·min(2, δ/ε) apart. Elements with |g| ≫ ε agree to
        # rounding (optax's float32 bias correction 1 − 0.999 is off by 1.3e-5, hence 2e-5·lr); a wrong lr
        # group or sign would be ~lr apart where the gradients agree.
        lr = GROUP_LR[_group(key_)]
        delta = np.abs(grads[key_] - ref[f"grad/{key_}"])
        rounding = 4 * np.spacing(np.abs(after_j).astype(np.float32))
        bound = lr * (np.minimum(2.0, delta / 1e-8) * 1.01 + 2e-5) + rounding
        excess = np.abs(after_j - after_ref) - bound
        assert np.all(excess <= 0), f"{key_}: parameter off by {np.max(excess):.2e} beyond the bound (lr {lr:g})"
    # Not vacuous: the step moved every BatchNorm statistic and almost every parameter.
    assert all(v > 0 for k, v in moved.items() if k.endswith("running_mean"))
    assert sum(moved[k] > 0 for k in params) >= 0.9 * len(params)


def test_side_pass_is_what_moves_the_decoder_statistics(tmp_path):
    """Without the side pass the decoder's BatchNorm statistics miss PyTorch's; with it they agree (above)."""
    torch_python()
    config = _config("small")
    off = _config("small", ["model.faithful_bn_side_pass=False"])
    inputs = _inputs(config)
    key = jax.random.key(7)
    inputs["fb_index"] = np.asarray(sample_audible_frames(jnp.asarray(inputs["labels"]), key))
    start = weights.torch_state_dict(_start_model(config), model_config(config))
    theirs = _torch_step(tmp_path, config, start, inputs)
    model = _start_model(off)
    _jax_step(off, model, inputs, key)
    ours = weights.torch_state_dict(model, model_config(off))
    for bn in ("sim_decoder.bn1", "sim_decoder.bn2"):
        for stat in ("running_mean", "running_var"):
            assert not np.allclose(ours[f"{bn}.{stat}"], theirs[f"{bn}.{stat}"], rtol=1e-3, atol=1e-4), (bn, stat)
    # Everything outside the decoder's BatchNorms is unaffected by the pass.
    np.testing.assert_allclose(
        ours["disent.bn_head.running_mean"], theirs["disent.bn_head.running_mean"], rtol=2e-5, atol=1e-6
    )


def test_side_pass_runs_only_in_training():
    config = _config("small")
    model = _start_model(config)
    inputs = _inputs(config)
    model.eval()
    before = nnx.to_flat_state(nnx.state(model, nnx.BatchStat))
    model(jnp.asarray(inputs["video"]), jnp.asarray(inputs["motion"]), jnp.asarray(inputs["inflection"]))
    after = nnx.to_flat_state(nnx.state(model, nnx.BatchStat))
    assert all(np.array_equal(a.get_value(), b.get_value()) for (_, a), (_, b) in zip(before, after))


def _init_stats_jax(config):
    model = build_model(config, seed=5)
    cfg = model_config(config)
    flat = {k: v for k, v in weights.flat_state(model).items() if not k.endswith((".mean", ".var"))}
    named = torch_names.to_torch(flat, num_frames=cfg.num_frames, d_model=cfg.decoder.d_model)
    return _compared({k: v.astype(np.float64) for k, v in named.items() if not k.endswith("num_batches_tracked")})


@pytest.mark.parametrize("name", ["paper"])
def test_initialisation_statistics_match_pytorch(tmp_path, name):
    """Per tensor: constants equal (norm layers, nn.MultiheadAttention's zero biases); otherwise the spread
    (std) and the bound (max |w|) agree within sampling error. A wrong scheme is far outside: the
    project's earlier He-normal init put activation_head ×68 and conv_256 ×4.9 above PyTorch's std."""
    torch_python()
    config = _config(name)
    ours = _init_stats_jax(config)
    import json

    run_reference(
        "init-stats",
        "--config",
        write_json(tmp_path / "model.json", model_config(config).to_dict()),
        "--seed",
        "5",
        "--out",
        str(tmp_path / "stats.json"),
    )
    with open(tmp_path / "stats.json") as f:
        theirs = {k: v for k, v in json.load(f).items() if k in ours}
    assert set(theirs) == set(ours)
    for key_, t in theirs.items():
        x = ours[key_]
        assert x.size == t["numel"], key_
        if t["constant"]:
            assert np.all(x == t["mean"]), f"{key_}: PyTorch's is the constant {t['mean']}"
            continue
        n = x.size
        # Sampling error of a std: ≈ 0.7/√n relative (normal), 0.45/√n (uniform); of two samples ≈ 1/√n.
        tol = 6.0 / np.sqrt(n)
        assert abs(np.std(x) / t["std"] - 1) < tol, f"{key_}: std {np.std(x):.4g} vs PyTorch {t['std']:.4g}"
        # The bound: max |w| of U(±b) is within b·(1 − ~3/n) of b; of a normal it drifts more, hence 30 %.
        assert abs(np.max(np.abs(x)) / t["max_abs"] - 1) < max(tol, 0.3), (
            f"{key_}: max|w| {np.max(np.abs(x)):.4g} vs PyTorch {t['max_abs']:.4g}"
        )
