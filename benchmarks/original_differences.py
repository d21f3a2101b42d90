"""Measures the effect on training of what still differs, or differed, from the original PyTorch TA²Net.

The figures quoted in docs/design.md ("Differences from the original that change training") come from
this script. From one freshly built model (`model.init` of the config) and one random batch shaped like
a training batch (frames U[0, 1], motion and inflection N(0, 1), ≥ 1 audible frame per clip):

* side_pass — one train-mode forward without and with the original's second decoder pass
  (`model.faithful_bn_side_pass`): how far the main pass and then the side pass move the running mean
  of the decoder's BatchNorms (bn1 = `bn3d`, bn2 = `sim_bn`), and the relative change of their running
  variances that the side pass adds.
* init — per layer that the original leaves at PyTorch's default: std of "kaiming" ÷ std of
  "torch_default" (weights, and biases where the layer has them).
* bessel — per BatchNorm: the relative difference of the running variance after one train-mode
  forward between torch's unbiased update (ours now) and flax's biased one; the largest, with its n.
* tmp_across_clips — L_tmp over the flattened B·T axis (the original) ÷ within clips (ours), on the
  forward's source maps.

    python benchmarks/original_differences.py --config configs/audible623.py:smoke
    python benchmarks/original_differences.py --config configs/audible623.py --batch 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _batch(config, batch: int, seed: int = 0):
    import numpy as np

    from ta2net_jax.model import model_config
    from ta2net_jax.model_info import image_size

    cfg = model_config(config)
    t, size, c = cfg.num_frames, image_size(config), cfg.flow_channels
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(size=(batch, t, size, size, 3)).astype(np.float32),
        rng.normal(size=(batch, t, size, size, 2 * c)).astype(np.float32),
        rng.normal(size=(batch, t, size, size, 2 * c)).astype(np.float32),
    )


def _bn_stats(model):
    from flax import nnx

    flat = nnx.to_flat_state(nnx.state(model, nnx.BatchStat))
    import numpy as np

    return {".".join(map(str, p)): np.asarray(v.get_value()).astype(np.float64) for p, v in flat}


def _train_forward(config, inputs, side_pass: bool, biased_var: bool = False):
    """BatchNorm statistics after one train-mode forward of a fresh model (seed 0), and the outputs."""
    import jax.numpy as jnp
    from flax import nnx

    from ta2net_jax.model import build_model, layers

    config = config.copy_and_resolve_references()
    config.model.faithful_bn_side_pass = side_pass
    model = build_model(config, seed=0)
    model.train()
    original_call = layers.BatchNorm.__call__
    if biased_var:  # flax's own update: running variance of the biased batch variance
        layers.BatchNorm.__call__ = nnx.BatchNorm.__call__
    try:
        outputs = nnx.jit(lambda m, a, b, c: m(a, b, c))(model, *(jnp.asarray(x) for x in inputs))
    finally:
        layers.BatchNorm.__call__ = original_call
    return _bn_stats(model), outputs


def side_pass(config, inputs) -> dict:
    import numpy as np

    from ta2net_jax.model import build_model

    start = _bn_stats(build_model(config, seed=0))
    off, _ = _train_forward(config, inputs, side_pass=False)
    on, _ = _train_forward(config, inputs, side_pass=True)
    out = {}
    for name, torch_name in (("sim_decoder.bn3d", "bn1"), ("sim_decoder.sim_bn", "bn2")):
        mean, var = f"{name}.mean", f"{name}.var"
        out[torch_name] = {
            "main_pass_mean_move": float(np.max(np.abs(off[mean] - start[mean]))),
            "side_pass_mean_move": float(np.max(np.abs(on[mean] - off[mean]))),
            "side_pass_var_change": float(np.max(np.abs(on[var] / off[var] - 1))),
        }
    others = [k for k in on if not k.startswith(("sim_decoder.bn3d.", "sim_decoder.sim_bn."))]
    out["other_bn_max_diff"] = float(max(np.max(np.abs(on[k] - off[k])) for k in others))
    return out


INIT_LAYERS = {  # flat-name prefix → the original's name
    "video_net.proj": "conv_256",
    "v2f.query": "v2f.query_conv",
    "v2f.key": "v2f.key_conv",
    "v2f.value": "v2f.value_conv",
    "sim_decoder.conv3d": "conv3D",
    "sim_decoder.sim_conv": "conv3x3",
    "sim_decoder.similarity.query": "sims.linear_q",
    "sim_decoder.input_projection": "input_projection",
    "sim_decoder.transformer.self_attn.query": "self_attn.in_proj (q)",
    "sim_decoder.transformer.self_attn.out": "self_attn.out_proj",
    "sim_decoder.transformer.linear1": "linear1",
    "sim_decoder.prediction.fc1": "cls.layers.0",
    "disent.activation_head": "activation_head",
}


def init_ratios(config) -> dict:
    import numpy as np

    from ta2net_jax.export import weights
    from ta2net_jax.model import build_model

    flat = {}
    for init in ("kaiming", "torch_default"):
        c = config.copy_and_resolve_references()
        c.model.init = init
        flat[init] = weights.flat_state(build_model(c, seed=0))
    out = {}
    for prefix, name in INIT_LAYERS.items():
        for leaf in ("kernel", "bias"):
            key = f"{prefix}.{leaf}"
            if key not in flat["kaiming"]:
                continue
            k, t = np.std(flat["kaiming"][key]), np.std(flat["torch_default"][key])
            out[f"{name}.{'weight' if leaf == 'kernel' else 'bias'}"] = {
                "kaiming_std": float(k),
                "torch_default_std": float(t),
                "ratio": float(k / t) if t else None,
            }
    return out


def bessel(config, inputs) -> dict:
    import numpy as np

    unbiased, outputs = _train_forward(config, inputs, side_pass=False)
    biased, _ = _train_forward(config, inputs, side_pass=False, biased_var=True)
    diffs = {k: float(np.max(np.abs(unbiased[k] / biased[k] - 1))) for k in unbiased if k.endswith(".var")}
    worst = max(diffs, key=diffs.get)
    return {
        "max_relative_var_diff": diffs[worst],
        "layer": worst,
        "median_relative_var_diff": float(np.median(list(diffs.values()))),
    }, outputs


def tmp_across_clips(outputs) -> dict:
    import numpy as np

    m = np.asarray(outputs["source_map"], np.float64)
    ours = np.sum(np.abs(m[:, 2:] + m[:, :-2] - 2 * m[:, 1:-1]))
    flat = m.reshape((-1,) + m.shape[2:])
    original = np.sum(np.abs(flat[2:] + flat[:-2] - 2 * flat[1:-1]))
    return {
        "original_over_ours": float(original / ours),
        "terms_ours": int(m.shape[0] * (m.shape[1] - 2)),
        "terms_original": int(flat.shape[0] - 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/audible623.py:smoke", help="config file[:variant]")
    parser.add_argument("--batch", type=int, default=2, help="clips in the batch")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["side_pass", "init", "bessel"],
        choices=("side_pass", "init", "bessel"),
        help="what to measure (bessel includes tmp)",
    )
    args = parser.parse_args(argv)
    from ta2net_jax.config_utils import load_config

    config = load_config(args.config)
    inputs = _batch(config, args.batch)
    record = {"config": args.config, "batch": args.batch, "init": config.model.get("init", "kaiming")}
    if "side_pass" in args.parts:
        record["side_pass"] = side_pass(config, inputs)
    if "init" in args.parts:
        record["init_ratios"] = init_ratios(config)
    if "bessel" in args.parts:
        record["bessel"], outputs = bessel(config, inputs)
        record["tmp_across_clips"] = tmp_across_clips(outputs)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
