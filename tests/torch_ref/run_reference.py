"""Command line of the PyTorch side of the parity and export tests (run with the PyTorch env's python).

    run_reference.py forward --config model.json --weights W --inputs in.npz --out out.npz \
                             [--loss loss.json] [--with-unused]
    run_reference.py init    --config model.json --seed S --out original.pt   # a checkpoint in the original's format
    run_reference.py load    --config model.json --weights W [--with-unused]  # load_state_dict(strict=True) report
    run_reference.py init-stats --config model.json --seed S --out stats.json  # per-tensor statistics at init
    run_reference.py train-step --config model.json --weights W --inputs in.npz --loss loss.json \
                                --optim optim.json --out state.npz [--float64]  # one training step, state after it

W is a `.pt` file (a state_dict, or the original's {'epoch', 'state_dict'} with `module.` prefixes) or an
`.npz` of torch-named arrays. Exchanges go through files so the JAX env never imports torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ta2net_torch import TA2Net, ta2net_loss  # noqa: E402


def _state_dict(path):
    if path.endswith(".npz"):
        with np.load(path) as f:
            return {k: torch.from_numpy(f[k]) for k in f.files}
    obj = torch.load(path, map_location="cpu")
    sd = obj["state_dict"] if "state_dict" in obj else obj
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items()}


def _model(config, weights=None, with_unused=False):
    torch.manual_seed(0)
    model = TA2Net(config, with_unused=with_unused)
    report = None
    if weights:
        result = model.load_state_dict(_state_dict(weights), strict=False)
        report = {"missing": sorted(result.missing_keys), "unexpected": sorted(result.unexpected_keys)}
    return model.eval(), report


def forward(args):
    with open(args.config) as f:
        config = json.load(f)
    model, report = _model(config, args.weights, with_unused=args.with_unused)
    if report["missing"] or report["unexpected"]:
        raise SystemExit(f"weights do not load strictly: {report}")
    with np.load(args.inputs) as f:
        inputs = {k: f[k] for k in f.files}
    # Inputs arrive channels-last [B, T, H, W, C]; the original takes [B, T, C, H, W].
    video, motion, inflection = (
        torch.from_numpy(np.ascontiguousarray(np.moveaxis(inputs[k], -1, 2))) for k in ("video", "motion", "inflection")
    )
    with torch.no_grad():
        out = model(video, motion, inflection)
        result = {k: v.numpy() for k, v in out.items()}
        if args.loss:
            with open(args.loss) as f:
                loss_cfg = json.load(f)
            terms = ta2net_loss(
                out, torch.from_numpy(inputs["labels"]).long(), torch.from_numpy(inputs["fb_index"]).long(), loss_cfg
            )
            result.update({f"loss_{k}": v.numpy() for k, v in terms.items()})
    np.savez(args.out, **result)


def init(args):
    with open(args.config) as f:
        config = json.load(f)
    torch.manual_seed(args.seed)
    model = TA2Net(config, with_unused=True)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.1, generator=generator)
                module.num_batches_tracked.fill_(1234)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}  # nn.DataParallel's prefix
    torch.save({"epoch": 20, "state_dict": state}, args.out)


def init_stats(args):
    """{name: {numel, std, max_abs, mean, constant}} of every parameter of a freshly built model."""
    with open(args.config) as f:
        config = json.load(f)
    torch.manual_seed(args.seed)
    model = TA2Net(config)
    stats = {}
    for name, p in model.named_parameters():
        x = p.detach().double()
        stats[name] = {
            "numel": x.numel(),
            "std": float(x.std(unbiased=False)),
            "max_abs": float(x.abs().max()),
            "mean": float(x.mean()),
            "constant": bool(torch.all(x == x.flatten()[0])),
        }
    with open(args.out, "w") as f:
        json.dump(stats, f)


def _parameter_groups(model):
    """mymodel.py get_parameter_groups: by 'weight'/'bias' in the name × top module `sim_decoder` or not."""
    groups = {"weight": [], "bias": [], "head_weight": [], "head_bias": []}
    for name, value in model.named_parameters():
        head = "head_" if name.split(".")[0] == "sim_decoder" else ""
        if "weight" in name:
            groups[head + "weight"].append(value)
        if "bias" in name:
            groups[head + "bias"].append(value)
    return groups


def train_step(args):
    """train.py's step in float32 (no autocast/GradScaler): train mode, forward, the loss, backward, Adam with
    the four lr groups. Writes the state_dict after the step, the loss terms and the gradients. `--float64`
    runs all of it in float64: the exact reference that float32 runs are measured against."""
    with open(args.config) as f:
        config = json.load(f)
    with open(args.loss) as f:
        loss_cfg = json.load(f)
    with open(args.optim) as f:
        optim_cfg = json.load(f)
    model, report = _model(config, args.weights)
    if report["missing"] or report["unexpected"]:
        raise SystemExit(f"weights do not load strictly: {report}")
    dtype = torch.float64 if args.float64 else torch.float32
    model.to(dtype).train()
    groups = _parameter_groups(model)
    optimizer = torch.optim.Adam(
        [
            {"params": groups[g], "lr": optim_cfg["base_lr"] * optim_cfg["multipliers"][g]}
            for g in ("weight", "bias", "head_weight", "head_bias")
        ],
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
    )
    with np.load(args.inputs) as f:
        inputs = {k: f[k] for k in f.files}
    video, motion, inflection = (
        torch.from_numpy(np.ascontiguousarray(np.moveaxis(inputs[k], -1, 2))).to(dtype)
        for k in ("video", "motion", "inflection")
    )
    optimizer.zero_grad()
    out = model(video, motion, inflection)
    terms = ta2net_loss(
        out, torch.from_numpy(inputs["labels"]).long(), torch.from_numpy(inputs["fb_index"]).long(), loss_cfg
    )
    loss = sum(terms.values())
    loss.backward()
    grads = {f"grad/{k}": p.grad.numpy().copy() for k, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    result = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    result.update({f"loss_{k}": v.detach().numpy() for k, v in terms.items()})
    result.update(grads)
    np.savez(args.out, **result)


def load(args):
    with open(args.config) as f:
        config = json.load(f)
    _, report = _model(config, args.weights, with_unused=args.with_unused)
    print(json.dumps(report))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("forward")
    p.add_argument("--config", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--loss")
    p.add_argument("--with-unused", action="store_true", help="build the original's unused layer4/fc too")
    p = sub.add_parser("init")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("load")
    p.add_argument("--config", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--with-unused", action="store_true")
    p = sub.add_parser("init-stats")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("train-step")
    for flag in ("--config", "--weights", "--inputs", "--loss", "--optim", "--out"):
        p.add_argument(flag, required=True)
    p.add_argument("--float64", action="store_true")
    args = parser.parse_args()
    commands = {"forward": forward, "init": init, "load": load, "init-stats": init_stats, "train-step": train_step}
    commands[args.command](args)


if __name__ == "__main__":
    main()
