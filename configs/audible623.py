"""The paper configuration of TA²Net (docs/original.md §5–7): the model, loss and optimiser as released.

Model: three ResNet-50 trunks cut after layer3 (bottleneck blocks [3, 4, 6], widths 64/128/256, stem 64)
with a 1×1 projection to 256, cross-modal attention with 32-d queries/keys, the TransRAC similarity
decoder (Conv3d to 512, 4 similarity heads at the fixed scale √64, 32 similarity channels, d_model 512,
4 attention heads, FFN 512) and the CCAM disentangler: ≈ 41.0 M parameters used. Clips of T = 64 frames
at 112×112, batch 4, Adam at 5e-6 with the original's four lr groups (×1 / ×2 / ×10 / ×20), constant
lr, no warm-up, no gradient clipping, 75 000 steps (600 epochs × 125 iterations). Trained as the original
is: its per-layer initialisation (`model.init="torch_default"`) and its second decoder pass over the map,
which moves the decoder's BatchNorm statistics in training (`model.faithful_bn_side_pass`); what still
differs is listed in docs/design.md ("Differences from the original that change training").

Data: the synthetic collision videos rendered at the paper's input size (builder config `paper`:
112×112, 80 frames, so that every 64-frame clip fits); configs/audible623_data.py is the same model on
the real datasets. `data.image_size` states the model's input size; the pipeline checks
that the dataset matches it.

    ta2net info  --config configs/audible623.py                       # params, FLOPs per clip, shapes
    ta2net build --config configs/audible623.py                       # synthetic data at 112×112 (once)
    ta2net train --config configs/audible623.py --workdir runs/paper
    ta2net eval  --config configs/audible623.py --workdir runs/paper
    python benchmarks/train_step.py --config configs/audible623.py --batch 4 16 --dtype float32 bfloat16

Variants (combinable, e.g. `configs/audible623.py:bf16,smoke`):
  `:bf16`  — bfloat16 compute (convolutions, matmuls, activations); parameters, optimizer state,
             BatchNorm statistics, LayerNorms, softmaxes and every loss term stay float32
             (the original trained with fp16 autocast).
  `:smoke` — the same architecture on tiny inputs for tests: T = 8 frames at 32×32 on the `tiny`
             synthetic dataset, batch 2, 2 steps.
"""

from __future__ import annotations

import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = common.parse_arg(arg, bf16=False, smoke=False)
    c = ml_collections.ConfigDict()
    c.seed = 0
    # One reference: `--config.data.num_frames=N` also resizes the model's temporal head and eval stride.
    num_frames = ml_collections.FieldReference(64)

    c.data = ml_collections.ConfigDict(
        dict(
            # The synthetic videos at 112×112; configs/audible623_data.py is this model on the real datasets.
            name="synthetic_collisions",
            builder_config="paper",  # 112×112, 80 frames @ 25 fps; see input_pipeline/datasets/synthetic_configs.py
            data_dir="data/tfds",  # relative paths are taken from the current directory
            image_size=112,  # model input H = W (the original resizes every frame to 112×112)
            num_frames=num_frames,  # clip length T
            hflip=False,  # no augmentation, as the original (its only one is the clip sampling)
            brightness=0.0,
            contrast=0.0,
            worker_count=0,  # grain worker processes (0: in-process)
            prefetch_buffer=2,
        )
    )
    # The original's colour-coded inflection flow; flow_scale (pixels per unit) is used by mode="raw" only.
    c.inflection = ml_collections.ConfigDict(dict(mode="color", flow_scale=11.2))
    c.model = ml_collections.ConfigDict(
        dict(
            num_frames=num_frames,
            compute_dtype="float32",
            trunk=dict(block="bottleneck", stem_width=64, widths=(64, 128, 256), depths=(3, 4, 6)),
            proj_features=256,
            qk_features=32,
            attention_values="video",  # cross-modal attention values from the video features, as the original
            init="torch_default",  # the original's initialisation per layer (model/layers.py)
            faithful_bn_side_pass=True,  # the original's second decoder pass over the map: BatchNorm updates only
            bn_variance="two_pass",  # torch's E[(x − E[x])²] (model/layers.py `batch_norm`)
            decoder=dict(
                conv_features=512,
                sim_heads=4,
                sim_scale=8.0,
                sim_features=32,
                d_model=512,
                attn_heads=4,
                ffn_features=512,
                sim_dropout=0.25,
                pe_dropout=0.1,
                attn_dropout=0.2,
                mlp_dropout=0.25,
            ),
        )
    )
    c.loss = common.paper_loss()
    c.optim = ml_collections.ConfigDict(
        dict(
            base_lr=5e-6,
            multipliers=common.paper_lr_multipliers(),
            schedule="constant",
            warmup_steps=0,
            grad_clip_norm=0.0,  # 0: no clipping
            ema_decay=0.0,  # the original keeps no average of the parameters
        )
    )
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=4,  # global, clips per step
            num_steps=75_000,  # 600 epochs × 125 iterations (497 videos / 4)
            log_every=125,
            checkpoint_every=2_500,  # the original saved every 20 epochs
            max_to_keep=3,
        )
    )
    c.eval = common.sliding_window_eval(num_frames, batch_size=8)
    c.mesh = common.mesh("auto")

    if variant.bf16:
        c.model.compute_dtype = "bfloat16"
    if variant.smoke:
        num_frames.set(8)
        c.data.builder_config = "tiny"
        c.data.image_size = 32
        c.train.batch_size = 2
        c.train.num_steps = 2
        c.train.log_every = 1
        c.train.checkpoint_every = 1
        c.eval.batch_size = 2
    return c
