"""A model's weights as a flat dict of NumPy arrays, and loading one back (any source, any format).

Flat names are NNX state paths joined by dots (`sim_decoder.conv3d.kernel`), over parameters and
BatchNorm statistics (`nnx.Param`, `nnx.BatchStat`): everything inference needs, nothing of the
optimizer or the RNG state.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from ta2net_jax.export import torch_format, torch_names

WEIGHT_TYPES = (nnx.Param, nnx.BatchStat)


def flat_state(model: nnx.Module) -> dict[str, np.ndarray]:
    """{dotted name: array} of the model's parameters and BatchNorm statistics (float32)."""
    flat = nnx.to_flat_state(nnx.state(model, WEIGHT_TYPES))
    return {".".join(map(str, path)): np.asarray(var.get_value()) for path, var in flat}


def shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    flat = nnx.to_flat_state(nnx.state(model, WEIGHT_TYPES))
    return {".".join(map(str, path)): tuple(var.get_value().shape) for path, var in flat}


def load_flat_state(model: nnx.Module, flat: dict[str, np.ndarray], *, source: str) -> None:
    """Sets the model's parameters and BatchNorm statistics from `flat` (in place).

    Raises ValueError naming `source` when a name is missing or extra, or a shape differs.
    """
    state = nnx.state(model, WEIGHT_TYPES)
    entries = nnx.to_flat_state(state)
    expected = {".".join(map(str, path)): var for path, var in entries}
    missing = sorted(set(expected) - set(flat))
    extra = sorted(set(flat) - set(expected))
    wrong = [
        f"{k}: {tuple(np.shape(flat[k]))} vs {tuple(v.get_value().shape)}"
        for k, v in expected.items()
        if k in flat and tuple(np.shape(flat[k])) != tuple(v.get_value().shape)
    ]
    if missing or extra or wrong:
        details = [f"missing {k}" for k in missing[:6]] + [f"unexpected {k}" for k in extra[:6]] + wrong[:6]
        raise ValueError(
            f"{source}: does not match this model configuration ({len(missing)} missing, "
            f"{len(extra)} unexpected, {len(wrong)} mis-shaped): {'; '.join(details)}"
        )
    for name, var in expected.items():
        var.set_value(jnp.asarray(flat[name], dtype=var.get_value().dtype))
    nnx.update(model, nnx.from_flat_state(entries))


def read_safetensors(path: str):
    """(config, flat weights) of a `ta2net export --format safetensors` file."""
    import json

    import ml_collections
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    if metadata.get("format") != "ta2net-jax" or "config" not in metadata:
        raise ValueError(f"{path}: not a ta2net-jax safetensors export (no config in its metadata)")
    return ml_collections.ConfigDict(json.loads(metadata["config"])), load_file(path)


def torch_state_dict(model: nnx.Module, model_cfg) -> dict[str, np.ndarray]:
    """The model's weights under the original PyTorch names and layouts (torch_names.py)."""
    return torch_names.to_torch(flat_state(model), num_frames=model_cfg.num_frames, d_model=model_cfg.decoder.d_model)


def load_torch_checkpoint(model: nnx.Module, path: str) -> dict:
    """Loads a PyTorch checkpoint of the original TA²Net into `model` (in place); returns its metadata.

    Accepts the original's `{'epoch', 'state_dict'}` with nn.DataParallel `module.` prefixes, or a bare
    state_dict. The original's unused entries (layer4/fc, the similarity value projection,
    num_batches_tracked, the positional table) are ignored; anything else that does not fit is an error
    naming the file and the entries.
    """
    obj = torch_format.load(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    state_dict = obj["state_dict"] if "state_dict" in obj else obj
    flat = torch_names.from_torch(state_dict, shapes(model), source=path)
    load_flat_state(model, flat, source=path)
    return {k: v for k, v in obj.items() if k != "state_dict" and isinstance(v, (int, float, str))}


def safetensors_metadata(config, step) -> dict[str, str]:
    return {
        "format": "ta2net-jax",
        "config": config.to_json_best_effort(sort_keys=True),
        "step": str(step),
        "inputs": "video [B,T,H,W,3] in [0,1]; motion, inflection [B,T,H,W,2C]",
        "outputs": "logits [B,T,2]; source_map [B,T,H/s,W/s], s = 16 (8 with model.trunk.strides (1, 2, 1))",
    }


def write_safetensors(model, config, step, out: str) -> None:
    from safetensors.numpy import save_file

    save_file(flat_state(model), out, metadata=safetensors_metadata(config, step))
