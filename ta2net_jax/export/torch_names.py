"""Names and layouts of our parameters in the original PyTorch TA²Net's `state_dict`, both ways.

Our flat names are the NNX state paths joined by dots (`video_net.layers.0.1.conv2.kernel`); the
original's are its module attributes (`video_net.layer1.1.conv2.weight`, models/mymodel.py,
backbone.py, and for the TransRAC blocks of blocks.py: `sims.linear_q`, `transEncoder.trans_encoder`,
`cls.layers.N`). The mapping is data (the `_MODULE_RULES` table) plus per-leaf layout rules:

* Linear kernel [in, out] ↔ weight [out, in]; Conv2d [kh, kw, in, out] ↔ [out, in, kh, kw];
  Conv3d [kt, kh, kw, in, out] ↔ [out, in, kt, kh, kw].
* BatchNorm scale/bias/mean/var ↔ weight/bias/running_mean/running_var; LayerNorm scale ↔ weight.
* The transformer's separate query/key/value kernels ↔ the packed `in_proj_weight` [3·E, E] and
  `in_proj_bias` [3·E] of `nn.MultiheadAttention` (q, k, v in that order).

Entries of the original that our model does not have (documented in docs/export.md):
* `layer4.*` (and `fc.*`) of each ResNet trunk: built by the original but never called — dropped on
  import, absent on export (so `load_state_dict(strict=True)` of an export into the original reports
  exactly these as missing).
* `sim_decoder.sims.linear_v.*`: the similarity matrix's value projection, never used — dropped on
  import, exported as zeros so the original's module loads.
* `*.num_batches_tracked`: not kept by flax — dropped on import, exported as 0 (only used by torch
  BatchNorm with momentum=None, which the original does not set).
* `sim_decoder.transEncoder.pos_encoder.pe`: the fixed sinusoidal table, a buffer — dropped on import
  (ours is computed), exported as the same table [T, 1, d_model].
The DataParallel prefix `module.` of the original's checkpoints is removed on import.
"""

from __future__ import annotations

import re

import numpy as np

# (pattern on our module path, replacement in the original's naming); applied in order, first match wins.
_MODULE_RULES: list[tuple[str, str]] = [
    # ResNet trunks (backbone.py ResEncoder): stem, torchvision layers, the 1×1 projection.
    (r"^(video_net|flow_net|d2f_net)\.conv1$", r"\1.firstconv"),
    (r"^(video_net|flow_net|d2f_net)\.bn1$", r"\1.firstbn"),
    (r"^(video_net|flow_net|d2f_net)\.proj$", r"\1.conv_256"),
    (r"^(video_net|flow_net|d2f_net)\.proj_bn$", r"\1.bn_256"),
    (r"^(video_net|flow_net|d2f_net)\.layers\.(\d+)\.(\d+)\.downsample\.conv$", r"\1.layer{\2+1}.\3.downsample.0"),
    (r"^(video_net|flow_net|d2f_net)\.layers\.(\d+)\.(\d+)\.downsample\.bn$", r"\1.layer{\2+1}.\3.downsample.1"),
    (r"^(video_net|flow_net|d2f_net)\.layers\.(\d+)\.(\d+)\.(\w+)$", r"\1.layer{\2+1}.\3.\4"),
    # Cross-modal attention (mymodel.py Self_Attn).
    (r"^(v2f|v2df)\.(query|key|value)$", r"\1.\2_conv"),
    # Temporal head (mymodel.py Similarity_Decoder; blocks.py Similarity_matrix / TransEncoder; Prediction).
    (r"^sim_decoder\.conv3d$", "sim_decoder.conv3D"),
    (r"^sim_decoder\.bn3d$", "sim_decoder.bn1"),
    (r"^sim_decoder\.similarity\.query$", "sim_decoder.sims.linear_q"),
    (r"^sim_decoder\.similarity\.key$", "sim_decoder.sims.linear_k"),
    (r"^sim_decoder\.sim_conv$", "sim_decoder.conv3x3"),
    (r"^sim_decoder\.sim_bn$", "sim_decoder.bn2"),
    (r"^sim_decoder\.input_projection$", "sim_decoder.input_projection"),
    (r"^sim_decoder\.input_norm$", "sim_decoder.ln1"),
    (
        r"^sim_decoder\.transformer\.self_attn\.out$",
        "sim_decoder.transEncoder.trans_encoder.layers.0.self_attn.out_proj",
    ),
    (
        r"^sim_decoder\.transformer\.(linear1|linear2|norm1|norm2)$",
        r"sim_decoder.transEncoder.trans_encoder.layers.0.\1",
    ),
    (r"^sim_decoder\.final_norm$", "sim_decoder.transEncoder.trans_encoder.norm"),
    (r"^sim_decoder\.prediction\.fc1$", "sim_decoder.cls.layers.0"),
    (r"^sim_decoder\.prediction\.norm$", "sim_decoder.cls.layers.1"),
    (r"^sim_decoder\.prediction\.fc2$", "sim_decoder.cls.layers.4"),
    (r"^sim_decoder\.prediction\.fc3$", "sim_decoder.cls.layers.7"),
    # Sound-source branch (mymodel.py Disentangler): same names.
    (r"^disent\.(activation_head|bn_head)$", r"disent.\1"),
]
_PACKED_QKV = re.compile(r"^sim_decoder\.transformer\.self_attn\.(query|key|value)$")
_PACKED_TORCH = "sim_decoder.transEncoder.trans_encoder.layers.0.self_attn"
_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
# Original entries with no counterpart here (module docstring); dropped on import.
IGNORED_ON_IMPORT = (
    re.compile(r"^(video_net|flow_net|d2f_net)\.(layer4|fc)\."),
    re.compile(r"\.num_batches_tracked$"),
    re.compile(r"^sim_decoder\.sims\.linear_v\."),
    re.compile(r"^sim_decoder\.transEncoder\.pos_encoder\.pe$"),
)


def _torch_module(module: str) -> str:
    for pattern, replacement in _MODULE_RULES:
        match = re.match(pattern, module)
        if match:
            out = match.expand(replacement)
            return re.sub(r"\{(\d+)\+1\}", lambda m: str(int(m.group(1)) + 1), out)
    raise KeyError(f"no PyTorch name for module {module!r}")


def torch_name(name: str) -> str:
    """Our flat name → the original's state_dict key (for the packed q/k/v: the packed key)."""
    module, leaf = name.rsplit(".", 1)
    if _PACKED_QKV.match(module):
        return f"{_PACKED_TORCH}.in_proj_{_LEAF_NAMES[leaf]}"
    return f"{_torch_module(module)}.{_LEAF_NAMES[leaf]}"


def _to_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
    if not name.endswith(".kernel"):
        return value
    if value.ndim == 2:
        return value.T
    return np.transpose(value, (value.ndim - 1, value.ndim - 2) + tuple(range(value.ndim - 2)))


def _from_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
    if not name.endswith(".kernel"):
        return value
    if value.ndim == 2:
        return value.T
    return np.transpose(value, tuple(range(2, value.ndim)) + (1, 0))


def to_torch(flat: dict[str, np.ndarray], *, num_frames: int, d_model: int) -> dict[str, np.ndarray]:
    """Our flat state (params + BatchNorm statistics) → the original's state_dict (NumPy arrays)."""
    out: dict[str, np.ndarray] = {}
    packed: dict[str, dict[str, np.ndarray]] = {"weight": {}, "bias": {}}
    for name, value in flat.items():
        value = np.asarray(value)
        module, leaf = name.rsplit(".", 1)
        qkv = _PACKED_QKV.match(module)
        if qkv:
            packed[_LEAF_NAMES[leaf]][qkv.group(1)] = _to_torch_layout(name, value)
            continue
        key = torch_name(name)
        out[key] = np.ascontiguousarray(_to_torch_layout(name, value))
        if leaf == "mean":
            out[key.rsplit(".", 1)[0] + ".num_batches_tracked"] = np.array(0, np.int64)
    for leaf, parts in packed.items():
        if parts:
            out[f"{_PACKED_TORCH}.in_proj_{leaf}"] = np.concatenate([parts["query"], parts["key"], parts["value"]])
    if "sim_decoder.sims.linear_q.weight" in out:
        out["sim_decoder.sims.linear_v.weight"] = np.zeros_like(out["sim_decoder.sims.linear_q.weight"])
        out["sim_decoder.sims.linear_v.bias"] = np.zeros_like(out["sim_decoder.sims.linear_q.bias"])
        from ta2net_jax.model.temporal_head import sinusoidal_encoding

        out["sim_decoder.transEncoder.pos_encoder.pe"] = sinusoidal_encoding(num_frames, d_model)[:, None, :]
    return out


def strip_data_parallel(state_dict: dict) -> dict:
    """Removes nn.DataParallel's `module.` prefix (the original saved its checkpoints wrapped)."""
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def from_torch(
    state_dict: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], *, source: str = "state_dict"
) -> dict[str, np.ndarray]:
    """The original's state_dict → our flat state for the names (and shapes) in `expected`.

    Raises ValueError naming `source` and listing every missing, unexpected or mis-shaped entry.
    """
    state_dict = strip_data_parallel(state_dict)
    out, problems, used = {}, [], set()
    for name, shape in expected.items():
        module, leaf = name.rsplit(".", 1)
        qkv = _PACKED_QKV.match(module)
        key = torch_name(name)
        if key not in state_dict:
            problems.append(f"missing {key}")
            continue
        used.add(key)
        value = np.asarray(state_dict[key])
        if qkv:
            value = np.split(value, 3, axis=0)[("query", "key", "value").index(qkv.group(1))]
        value = _from_torch_layout(name, value)
        if tuple(value.shape) != tuple(shape):
            problems.append(
                f"{key}: shape {tuple(np.asarray(state_dict[key]).shape)} does not fit {name} {tuple(shape)}"
            )
            continue
        out[name] = value
    unexpected = [k for k in state_dict if k not in used and not any(p.search(k) for p in IGNORED_ON_IMPORT)]
    problems += [f"unexpected {k}" for k in sorted(unexpected)]
    if problems:
        shown = "; ".join(problems[:12]) + (f"; … {len(problems) - 12} more" if len(problems) > 12 else "")
        raise ValueError(f"{source}: does not match this model configuration ({len(problems)} problems): {shown}")
    return out
