"""The default detector that ships inside the package: TA²Net trained on generator v2 (domain randomised).

`ta2net detect VIDEO` with no `--workdir` runs this model (ta2net_jax/detection/shipped.py). It is the demo
model's structure (configs/synthetic_small.py: narrow trunks, motion-valued attention, raw-flow inflection)
trained on `synthetic_collisions/v2_64`: generator v2's camera motion, hard negatives, clutter, lighting,
blur, noise and codec artefacts at 10–60 fps, resized to 64×64.

Why 64×64 and not the paper's 112×112: measured on the 2-core CPU this project trains on
(benchmarks/RESULTS.md "default detector"), a step at 112² costs ≈ 3× a step at 64², so the ≤ 2 h budget
buys ≈ 3× fewer updates; the paper size is one override away for a GPU run
(`--config.data.builder_config=v2` builds the 112² set).

    ta2net build --config configs/default_detector.py               # ≈ 20 min on 2 cores
    ta2net train --config configs/default_detector.py --workdir runs/default
    ta2net eval  --config configs/default_detector.py --workdir runs/default
    ta2net export --workdir runs/default --format shipped --out ta2net_jax/detection/default_model

Variants: `:smoke` (v2_tiny, 2 steps; used by the tests), `:size=112` (the paper's input size, builder `v2`).
"""

from __future__ import annotations

from configs import common, synthetic_small

BUILDER_OF_SIZE = {64: "v2_64", 112: "v2"}


def get_config(arg: str | None = None):
    variant = common.parse_arg(arg, smoke=False, size=64)
    if variant.size not in BUILDER_OF_SIZE:
        raise ValueError(f"default_detector size={variant.size}: the v2 datasets are {sorted(BUILDER_OF_SIZE)} px")
    smoke = variant.smoke
    c = synthetic_small.get_config("smoke" if smoke else None)
    c.data.builder_config = "v2_tiny" if smoke else BUILDER_OF_SIZE[variant.size]
    c.data.image_size = 32 if smoke else variant.size
    c.data.brightness = 0.2
    c.data.contrast = 0.3
    if not smoke:
        c.train.num_steps = 2000
        c.train.checkpoint_every = 250
        c.train.log_every = 50
        c.optim.warmup_steps = 100
    # Weak supervision of the source map by the generator's exact contact points (losses.py contact_loss),
    # so the map's high values mark the contact (issue "Where it sounds"); 0 in the paper config.
    c.loss.contact_weight = 0.1
    # The picking is chosen on validation with its threshold (evaluate.tune_eval_picking): the minimum
    # separation in seconds, whatever the frame rate (the v2 videos run at 10–60 fps), and the prominence over
    # a running-median baseline (real footage has slowly varying motion levels a fixed threshold over- or
    # under-fires on).
    c.eval.min_separation_s = (0.05, 0.1, 0.2)
    c.eval.prominence_windows_s = (0.0, 0.5, 1.0, 2.0)
    return c
