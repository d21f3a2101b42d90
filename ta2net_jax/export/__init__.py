"""Weights in and out of ta2net-jax: flat named state, the original PyTorch format, export formats.

weights.py       flat state of a model ↔ dict of NumPy arrays; import of original checkpoints
torch_names.py   our names/layouts ↔ the original PyTorch state_dict's
torch_format.py  torch.save files read and written with NumPy only
exporters.py     `ta2net export` (safetensors, torch, stablehlo, onnx, bundle) and `ta2net import-torch`
bundle.py        model bundles (weights + config + tuned picking in a folder) and the packaged default model
"""

FORMATS = ("safetensors", "torch", "stablehlo", "onnx", "bundle")  # `ta2net export --format`
