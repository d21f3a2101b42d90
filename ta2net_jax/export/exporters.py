"""`ta2net export` and `ta2net import-torch`: a trained run's weights to other frameworks and back.

    ta2net export --workdir DIR [--step N] --format safetensors|torch|stablehlo|onnx|bundle --out PATH
    ta2net import-torch CKPT.pt --config CONFIG --workdir DIR [--step N]

The exported function (stablehlo, onnx) is the eval-mode model on one clip's model inputs:

    video [B, T, H, W, 3] float32 in [0, 1], motion and inflection [B, T, H, W, 2C] float32
      → logits [B, T, 2] (background, audible), source_map [B, T, H/16, W/16] in (0, 1)
        (H/8, W/8 with model.trunk.strides (1, 2, 1))

with a symbolic batch size B. motion/inflection are what `ta2net_jax.inflection.motion_and_inflection`
makes from raw flow (the run's `inflection.mode` and `flow_scale` are stored beside the weights), so
the same preprocessing serves every runtime. Formats (docs/export.md):

* safetensors — every parameter and BatchNorm statistic under its flat dotted name
  (`video_net.layers.0.0.conv1.kernel`, our layouts), the run's config as JSON metadata.
* torch — a state_dict in the original PyTorch code's names and layouts (torch_names.py), written
  without PyTorch (torch_format.py); it loads into the original architecture with `strict=True` except
  for the original's never-called layer4/fc.
* stablehlo — `jax.export` serialisation (`jax.export.deserialize(bytes).call(video, motion, inflection)`).
* onnx — via jax2onnx in its own environment (.venv-onnx, `make onnx-env`), because jax2onnx pins an
  older orbax-checkpoint than training uses; the JAX env hands it a safetensors file.
* bundle — a folder of model.safetensors, config.json and detector.json (bundle.py) that detect, eval-videos,
  export and `train --init-from` take as `--workdir`; the packaged default detector is one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp

from input_pipeline import paths
from ta2net_jax.export import FORMATS, torch_format, weights

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONNX_PYTHON = os.path.join(REPO, ".venv-onnx", "bin", "python")


# ---- the exported function ---------------------------------------------------------------------------


def inference_function(model):
    """(video, motion, inflection) → (logits, source_map) of the eval-mode model, weights closed over."""
    from flax import nnx

    model.eval()
    graphdef, state = nnx.split(model)

    def infer(video, motion, inflection):
        outputs = nnx.merge(graphdef, state)(video, motion, inflection)
        return outputs["logits"], outputs["source_map"]

    return infer


def input_shapes(config, batch) -> list[tuple]:
    """Shapes of (video, motion, inflection) for `batch` clips (an int or a symbolic dimension)."""
    from ta2net_jax.model import model_config

    cfg = model_config(config)
    size = config.data.get("image_size", None)
    if size is None:
        raise ValueError("config.data.image_size is needed to export (the model's input H = W)")
    t, c = cfg.num_frames, cfg.flow_channels
    return [(batch, t, size, size, 3), (batch, t, size, size, 2 * c), (batch, t, size, size, 2 * c)]


# ---- JAX → formats -----------------------------------------------------------------------------------


def load_safetensors(path: str):
    """(config, flat weights) from a safetensors export."""
    return weights.read_safetensors(path)


def export_torch(model, config, out: str) -> None:
    from ta2net_jax.model import model_config
    from ta2net_jax.model.resnet import PAPER_STRIDES

    strides = tuple(config.model.trunk.get("strides", PAPER_STRIDES))
    if strides != PAPER_STRIDES:
        # The names carry no strides: the original's ResEncoder would load these weights and run them at /16.
        raise ValueError(
            f"--format torch: model.trunk.strides is {strides}, and the original's ResNet layers run at "
            f"{PAPER_STRIDES} (features at H/16), so PyTorch would compute another model; export "
            "safetensors, stablehlo or onnx instead"
        )
    torch_format.save(weights.torch_state_dict(model, model_config(config)), out)


def export_stablehlo(model, config, out: str) -> None:
    (b,) = jax.export.symbolic_shape("b")
    specs = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in input_shapes(config, b)]
    exported = jax.export.export(jax.jit(inference_function(model)))(*specs)
    with open(out, "wb") as f:
        f.write(exported.serialize())


def load_stablehlo(path: str):
    with open(path, "rb") as f:
        return jax.export.deserialize(bytearray(f.read()))


def export_onnx(safetensors_path: str, out: str) -> None:
    """Converts a safetensors export to ONNX in the jax2onnx environment (a subprocess)."""
    try:
        import jax2onnx  # noqa: F401  (present when this env is the ONNX one)

        python = sys.executable
    except ImportError:
        python = ONNX_PYTHON
        if not os.path.exists(python):
            raise FileNotFoundError(
                f"{python}: the ONNX export environment is missing; create it with "
                f"`make onnx-env` (jax2onnx pins an older orbax, so it lives apart)"
            ) from None
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [python, "-m", "ta2net_jax.export.onnx_convert", "convert", safetensors_path, out],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode:
        raise RuntimeError(f"ONNX conversion of {safetensors_path} failed:\n{proc.stderr[-3000:]}")


# ---- runs ------------------------------------------------------------------------------------------


def with_input_spec(config):
    """The config with the run's whole input stated in `data` (`image_size`, `flow_method`, `crop_borders`, from
    the run's dataset: input_pipeline/registry.py `input_spec`), which a synthetic config may leave to its TFDS
    builder config. An exported config then answers `input_spec` by itself, so loading a bundle (`ta2net
    detect`) never imports the dataset's builder, nor TFDS."""
    from input_pipeline import registry

    spec = registry.input_spec(config.data)
    config.data.image_size = spec.image_size
    config.data.flow_method = spec.flow_method
    config.data.crop_borders = spec.crop_borders
    return config


def _export_locator(config, locator: str, out: str) -> dict:
    """Writes the locator run's bundle into `out`, after checking it takes the main model's input."""
    from ta2net_jax.checkpoint import load_model_for_inference
    from ta2net_jax.config_utils import run_config
    from ta2net_jax.export import bundle

    locator_config = with_input_spec(run_config(locator))
    bundle.check_locator_input(config, locator_config, f"--locator {locator}")
    model, step = load_model_for_inference(locator_config, locator)
    return {"step": step, **bundle.write_bundle(model, locator_config, step, locator, out)}


def _check_timing_locator(workdir: str, locator: str | None) -> None:
    """A run whose picking was tuned on a timing blended with a locator (`ta2net eval --locator`) is bundled
    with that locator, or its detector.json would not hold for the bundle."""
    from input_pipeline import paths
    from ta2net_jax.export import bundle

    timing = bundle.read_tuned(workdir).get("locator_timing") or {}
    if timing.get("weight", 0) <= 0:
        return
    tuned_with = timing.get("locator")
    given = None if locator is None else paths.resolve(locator)
    if given != (None if tuned_with is None else paths.resolve(tuned_with)):  # recorded absolute by eval
        raise ValueError(
            f"{paths.join(workdir, 'detector.json')}: the picking was tuned on the timing blended with the locator "
            f"{tuned_with} (ta2net eval --locator); export with --locator {tuned_with}"
            + ("" if locator is None else f", not {locator}")
            + ", or re-run ta2net eval with this locator"
        )


def export(workdir: str, fmt: str, out: str, step: int | None = None, locator: str | None = None) -> dict:
    """Exports the run's checkpoint (latest or `step`) to `out`; returns a summary dict. `locator` (bundle
    only): a second run or bundle whose model gives the maps and locations (export/bundle.py)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if locator is not None and fmt != "bundle":
        raise ValueError(f"--locator goes with --format bundle, not {fmt}")
    from input_pipeline import paths
    from ta2net_jax.checkpoint import load_model_for_inference
    from ta2net_jax.config_utils import run_config

    if fmt == "bundle":
        _check_timing_locator(workdir, locator)
        paths.check_output_dir(out, "bundle folder (--out)")
    else:
        paths.check_output_file(out, f"{fmt} export (--out)")
    config = with_input_spec(run_config(workdir))
    model, step = load_model_for_inference(config, workdir, step)
    if fmt == "bundle":
        from ta2net_jax.export import bundle

        written = bundle.write_bundle(model, config, step, workdir, out)
        if locator is not None:
            written["locator"] = _export_locator(config, locator, paths.join(out, bundle.LOCATOR_DIR))
            written["files"] += [paths.join(bundle.LOCATOR_DIR, f) for f in written["locator"]["files"]]
            bundle.point_timing_at_own_locator(out)
        size = sum(paths.getsize(paths.join(out, f)) for f in written["files"])
        return {
            "format": fmt,
            "out": paths.resolve(out),
            "step": step,
            "bytes": size,
            "inputs": [list(s) for s in input_shapes(config, "B")],
            **written,
        }
    if not paths.is_remote(out):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    # The writers need a local file: a gs:// `out` is written locally, then uploaded in one object write.
    with paths.written_locally(out) as local_out:
        if fmt == "safetensors":
            weights.write_safetensors(model, config, step, local_out)
        elif fmt == "torch":
            export_torch(model, config, local_out)
        elif fmt == "stablehlo":
            export_stablehlo(model, config, local_out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                weights_path = os.path.join(tmp, "weights.safetensors")
                weights.write_safetensors(model, config, step, weights_path)
                export_onnx(weights_path, local_out)
    return {
        "format": fmt,
        "out": paths.resolve(out),
        "step": step,
        "bytes": paths.getsize(out),
        "inputs": [list(s) for s in input_shapes(config, "B")],
    }


def import_torch(checkpoint_path: str, config, workdir: str, step: int = 0) -> dict:
    """Writes an orbax checkpoint of `config`'s model with the weights of a PyTorch checkpoint (the
    original's format or our torch export) into `workdir`, which `ta2net eval/detect/export` then use."""
    import orbax.checkpoint as ocp
    from flax import nnx

    from ta2net_jax import checkpoint, optim
    from ta2net_jax.checkpoint import model_and_optimizer
    from ta2net_jax.config_utils import save_config

    # The checkpoint holds the training state's layout: (model, optimizer), with fresh Adam moments.
    model, optimizer = model_and_optimizer(config)
    meta = weights.load_torch_checkpoint(model, checkpoint_path)
    optim.reset_average(model, optimizer)
    paths.makedirs(workdir)
    mngr = checkpoint.manager(workdir, for_training=False)
    if step in mngr.all_steps():
        mngr.close()
        raise ValueError(f"{workdir}: already has a checkpoint at step {step}; choose another --step or workdir")
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(nnx.state((model, optimizer)))))
    mngr.wait_until_finished()
    mngr.close()
    save_config(config, paths.join(workdir, "config.json"))
    imported = {"checkpoint": os.path.abspath(checkpoint_path), "step": step, **meta}
    paths.write_text(paths.join(workdir, "imported_from.json"), json.dumps(imported, indent=2))
    return {"workdir": paths.resolve(workdir), "step": step, **meta}
