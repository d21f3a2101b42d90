"""The ONNX side of `ta2net export --format onnx` (runs in .venv-onnx: jax2onnx + onnxruntime).

    python -m ta2net_jax.export.onnx_convert convert W.safetensors model.onnx
    python -m ta2net_jax.export.onnx_convert run model.onnx in.npz out.npz

A private entry point of exporters.py (which builds these command lines), so it takes positional arguments
only; the user-facing command is `ta2net export --format onnx`.

`convert` rebuilds the model from the safetensors export (weights + config metadata; no orbax needed)
and converts the eval-mode inference function with a symbolic batch dimension `B` (opset 23).
`run` evaluates an ONNX file with onnxruntime on the npz arrays video, motion, inflection.
"""

from __future__ import annotations

import sys

import numpy as np


def convert(weights_path: str, out: str) -> None:
    import jax2onnx

    from ta2net_jax.export import exporters, weights
    from ta2net_jax.model import build_model

    config, flat = exporters.load_safetensors(weights_path)
    model = build_model(config)
    weights.load_flat_state(model, flat, source=weights_path)
    fn = exporters.inference_function(model)
    jax2onnx.to_onnx(
        fn,
        exporters.input_shapes(config, "B"),
        model_name="ta2net",
        opset=23,
        input_names=["video", "motion", "inflection"],
        output_names=["logits", "source_map"],
        return_mode="file",
        output_path=out,
    )


def run(model_path: str, inputs_path: str, out: str) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    with np.load(inputs_path) as f:
        feeds = {k: f[k].astype(np.float32) for k in ("video", "motion", "inflection")}
    logits, source_map = session.run(["logits", "source_map"], feeds)
    np.savez(out, logits=logits, source_map=source_map)


def main(argv: list[str]) -> None:
    commands = {"convert": (convert, 2), "run": (run, 3)}
    if not argv or argv[0] not in commands or len(argv) != commands[argv[0]][1] + 1:
        raise SystemExit(f"usage: see {__file__}'s docstring (got {argv})")
    function, _ = commands[argv[0]]
    function(*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
