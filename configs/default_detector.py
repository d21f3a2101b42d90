"""The default detector that ships inside the package: TA²Net trained on generator v2 (domain randomised).

`ta2net detect VIDEO` with no `--workdir` runs this model (found by ta2net_jax/export/bundle.py). It is the demo
model's structure (configs/synthetic_small.py: narrow trunks, motion-valued attention, raw-flow inflection)
trained on `synthetic_collisions/v2_64`: generator v2's camera motion, hard negatives, clutter, lighting,
blur, noise and codec artefacts at 10–60 fps, resized to 64×64.

Why 64×64 and not the paper's 112×112: measured on the 2-core CPU this project trains on
(benchmarks/RESULTS.md "default detector"), a step at 112² costs ≈ 3× a step at 64², so the ≤ 2 h budget
buys ≈ 3× fewer updates; the paper size is one override away for a GPU run
(`--config.data.builder_config=v2` builds the 112² set).

Three stages; 2 and 3 each start (`--init-from`) from stage 1 (no parameter changes shape between them):
1. v2 only, 2,000 steps from scratch (the trunks stop at the paper's H/16: a 4×4 source map at 64 px);
2. `:mix_small=0.25`: 1,000 steps with a quarter of the clips from generator v1's clean `small` renders
   (`data.mixture`, resized from 48 px): v2's randomisation around v1's look rather than instead of it.
   This is the timing model that ships (docs/default_model.md says what it gained);
3. `:stride=8`: 600 steps with the trunks' last stage at stride 1 (`model.trunk.strides` (1, 2, 1): an
   8×8 map). It points at the contact better and times real clips worse, so it ships as the bundle's
   *locator* only: its map gives the events' (x, y), the stage-2 model their frames. (An /8 stage of stage 2,
   `:stride=8,mix_small=0.25`, pointed worse on validation.)

    ta2net build --config configs/default_detector.py:mix_small=0.25      # v2_64 and small: ≈ 20 min on 2 cores
    ta2net train --config configs/default_detector.py --workdir runs/default                  # 23 min
    ta2net train --config configs/default_detector.py:mix_small=0.25 --workdir runs/mix \
      --init-from runs/default                                                                # 11 min
    ta2net train --config configs/default_detector.py:stride=8 --workdir runs/default_s8 \
      --init-from runs/default                                                                # 9 min
    ta2net eval  --config configs/default_detector.py:stride=8 --workdir runs/default_s8
    ta2net eval  --config configs/default_detector.py:mix_small=0.25 --workdir runs/mix --locator runs/default_s8
    ta2net export --workdir runs/mix --locator runs/default_s8 --format bundle --out ta2net_jax/detection/default_model

The paper's input size and map (issue "Where it sounds": the 7×7 map at 112²), measured, not shipped:

    ta2net build --config configs/default_detector.py:size=112      # v2_64's videos at 112² (23 min after v2_64)
    ta2net train --config configs/default_detector.py:size=112 --workdir runs/s112 \
      --init-from ta2net_jax/detection/default_model                                       # 600 steps
    ta2net eval  --config configs/default_detector.py:size=112 --workdir runs/s112

The parameters do not depend on the input size, so the 112² stage starts from the 64 px model (a 112² step
costs ≈ 3× a 64² one on this CPU: 600 steps instead of 2,000 from scratch). On a GPU, train it from scratch
on the full 2,400-video set with stage 1's schedule and no init: `--config.data.builder_config=v2
--config.train.num_steps=2000 --config.optim.base_lr=2e-3 --config.optim.warmup_steps=100`.

Variants: `:smoke` (v2_tiny, 2 steps; used by the tests), `:size=112` (the paper's input size, builder `v2_112`),
`:videos=2000` (all 2,000 of generator v2's training renders instead of v2_64's first 720, builder `v2_64_2000`:
the same validation and test videos, the same steps; docs/RESULTS.md §4 "More scenes"),
`:width=F` (every trunk's channels and the projection × F: `:width=2` is 16/32/64, ≈ 1.7× a step's time
on this CPU; measured as stage 1 from scratch, docs/RESULTS.md §4 "A wider network"), `:mix_small=F` (stage 2:
that fraction of v1 `small` clips), `:stride=8` (stage 3's trunks), `:flow_mix=F`
(that fraction of the clips with TV-L1 flow from `v2_64_240_tvl1-jax`, 500 steps `--init-from` a trained stage;
measured, not shipped: docs/RESULTS.md §3 "Training on both flows"), `:thud_mix=F` (that fraction of the clips
from `v2_64_thud`, generator v2's preset whose bodies may stop dead on impact, 500 steps `--init-from` a trained
stage; docs/RESULTS.md §4 "Thuds"), `:jab_mix=F` (that fraction from `v2_64_jabs`, the preset with shapes that
turn abruptly in the air without touching anything, 500 steps `--init-from` a trained stage; §4 "Jabs"),
`:persp_mix=F` (that fraction from `perspective_64`, the perspective generator's training scenes: a second
renderer, 500 steps `--init-from` a trained stage; docs/RESULTS.md §5 "Trained on a second renderer"),
`:rotate=F` (that fraction of the training clips turned by one to three quarter turns, frames, flows and
contact points together: contacts from every side, not only with gravity pointing down; docs/RESULTS.md §4
"Quarter turns"), `:flow_gain=F` (both flows of every training clip multiplied by one gain, log-uniform in
[1/F, F]: motion speed randomised; docs/RESULTS.md §4 "Speed randomisation"), `:anywhere=F` (that fraction
of the training clips starting anywhere in their video rather than around a chosen event: windows as detect
slides them, many without a contact; docs/RESULTS.md §4 "Clips from anywhere"), `:ema=D` (validation, eval and
export use a moving average of the parameters with decay D, `optim.ema_decay`; docs/RESULTS.md §4 "A moving
average of the parameters"), `:reverse=F` (that fraction of the training clips played backwards, frames,
flows and labels together, clips.time_reversed; docs/RESULTS.md §4 "Time reversal in training"),
`:label_sigma=S` (the soft-label kernel's σ in frames, `loss.blur_sigma`; the paper's 2 by default: with σ = 2
two contacts 2–3 frames apart share one plateau of soft label, with 0.5 they do not; docs/RESULTS.md §4
"Sharper soft labels").
"""

from __future__ import annotations

from configs import common, synthetic_small

# (input size, training videos) -> builder: every one holds the first videos of generator v2's renders
BUILDERS = {(64, 720): "v2_64", (64, 2000): "v2_64_2000", (112, 720): "v2_112"}
TRUNK_STRIDES = {16: (1, 2, 2), 8: (1, 2, 1)}  # the stages' strides after the stem's /4
# Variant argument -> (mixture component, its smoke stand-in) (docs/synthetic.md): generator v2's presets
# "thud" (half the bodies of a dead material: an impact that stops a body is an event as well as one that
# bounces it back) and "jabs" (shapes that turn abruptly in the air and touch nothing: a reversal alone is not
# a contact), and the perspective generator (a second renderer: 3-D balls under a perspective camera).
PRESET_MIXES = {
    "thud_mix": ("v2_64_thud", "v2_tiny"),
    "jab_mix": ("v2_64_jabs", "v2_tiny"),
    "persp_mix": ("perspective_64", "perspective_tiny"),
}


def get_config(arg: str | None = None):
    variant = common.parse_arg(
        arg,
        smoke=False,
        size=64,
        videos=720,
        stride=16,
        width=1.0,
        mix_small=0.0,
        flow_mix=0.0,
        rotate=0.0,
        flow_gain=1.0,
        anywhere=0.0,
        reverse=0.0,
        ema=0.0,
        label_sigma=common.paper_loss().blur_sigma,
        **{arg: 0.0 for arg in PRESET_MIXES},
    )
    if (variant.size, variant.videos) not in BUILDERS:
        raise ValueError(
            f"default_detector size={variant.size},videos={variant.videos}: the v2 datasets are (size, videos) "
            f"{sorted(BUILDERS)}"
        )
    if variant.flow_gain < 1.0:
        raise ValueError(f"default_detector flow_gain={variant.flow_gain}: gains are drawn in [1/F, F], give F ≥ 1")
    if not 0.0 <= variant.anywhere <= 1.0:
        raise ValueError(f"default_detector anywhere={variant.anywhere}: a fraction of the clips, in [0, 1]")
    if not 0.0 <= variant.reverse <= 1.0:
        raise ValueError(f"default_detector reverse={variant.reverse}: a fraction of the clips, in [0, 1]")
    if variant.label_sigma <= 0.0:
        raise ValueError(f"default_detector label_sigma={variant.label_sigma}: a kernel width in frames, give σ > 0")
    if variant.stride not in TRUNK_STRIDES:
        raise ValueError(f"default_detector stride={variant.stride}: the trunks stop at 1/{sorted(TRUNK_STRIDES)}")
    smoke = variant.smoke
    c = synthetic_small.get_config("smoke" if smoke else None)
    c.data.builder_config = "v2_tiny" if smoke else BUILDERS[variant.size, variant.videos]
    c.data.image_size = 32 if smoke else variant.size
    c.data.brightness = 0.2
    c.data.contrast = 0.3
    c.model.trunk.strides = TRUNK_STRIDES[variant.stride]
    if variant.width != 1.0:  # every trunk's channels (and the projection) × width: a wider network, same depth
        widths = tuple(max(1, round(w * variant.width)) for w in c.model.trunk.widths)
        c.model.trunk.stem_width = max(1, round(c.model.trunk.stem_width * variant.width))
        c.model.trunk.widths = widths
        c.model.proj_features = widths[-1]
    if variant.mix_small:
        # Generator v1's clean renders (the demo's `small`, 48 px, resized to the input size) as that fraction
        # of the training clips: v2's randomisation around v1's look rather than instead of it.
        c.data.mixture = (("tiny" if smoke else "small", variant.mix_small),)
    if variant.rotate:  # that fraction of the clips turned by 1–3 quarter turns (clips.quarter_turns)
        c.data.rotate = variant.rotate
    if variant.flow_gain != 1.0:  # both flows × a per-clip gain, log-uniform in [1/F, F] (clips.augment)
        c.data.flow_gain = variant.flow_gain
    if variant.anywhere:  # that fraction of the clips starting anywhere, not around an event (clips.py)
        c.data.clips_anywhere = variant.anywhere
    if variant.reverse:  # that fraction of the clips played backwards (clips.time_reversed)
        c.data.time_reverse = variant.reverse
    c.loss.blur_sigma = variant.label_sigma  # the soft CE's targets: kernels of σ frames around each contact
    if variant.ema:  # evaluate and export a moving average of the parameters (ta2net_jax/optim.py)
        c.optim.ema_decay = variant.ema
    if variant.flow_mix:
        # That fraction of the clips with TV-L1 flow (`--flow tvl1-jax`) instead of DIS: a third of v2_64's
        # videos (`v2_64_240`), so the model is not tied to one estimator's errors.
        component = ("v2_tiny" if smoke else "v2_64_240", variant.flow_mix, "tvl1-jax")
        c.data.mixture = (*c.data.get("mixture", ()), component)
    for arg, (builder, smoke_builder) in PRESET_MIXES.items():
        if variant[arg]:  # that fraction of the clips from a cue preset or the second renderer
            c.data.mixture = (*c.data.get("mixture", ()), (smoke_builder if smoke else builder, variant[arg]))
    if not smoke:
        c.train.checkpoint_every = 250
        c.train.log_every = 50
        if variant.size == 112:  # the paper's input and 7×7 map, `--init-from` a 64 px model (module docstring)
            c.train.num_steps = 600
            c.optim.base_lr = 5e-4
            c.optim.warmup_steps = 50
        elif variant.flow_mix or any(variant[arg] for arg in PRESET_MIXES):  # a stage `--init-from` a trained one
            c.train.num_steps = 500
            c.optim.base_lr = 5e-4
            c.optim.warmup_steps = 50
        elif variant.stride == 16 and not variant.mix_small:  # the v2-only model, from scratch
            c.train.num_steps = 2000
            c.optim.warmup_steps = 100
        elif variant.stride == 16:  # the mixture stage, `--init-from` the v2-only model (module docstring)
            c.train.num_steps = 1000
            c.optim.base_lr = 5e-4
            c.optim.warmup_steps = 50
        else:  # the /8 stage, `--init-from` the /16 run (module docstring)
            c.train.num_steps = 600
            c.optim.base_lr = 5e-4
            c.optim.warmup_steps = 50
    # Weak supervision of the source map by the generator's exact contact points (losses.py contact_loss),
    # so the map's high values mark the contact (issue "Where it sounds"); 0 in the paper config.
    c.loss.contact_weight = 0.1
    # The picking is chosen on validation with its threshold (evaluate.tune_eval_picking): the minimum
    # separation in seconds, whatever the frame rate (the v2 videos run at 10–60 fps), and the prominence over
    # a running-median baseline (real footage has slowly varying motion levels a fixed threshold over- or
    # under-fires on).
    c.eval.min_separation_s = (0.05, 0.1, 0.2)
    c.eval.prominence_windows_s = (0.0, 0.5, 1.0, 2.0)
    # A 45–60 fps video scored as two 30 fps (or three 20 fps) phases, if validation prefers it.
    c.eval.analysis_max_fps = (20.0, 30.0)
    return c
