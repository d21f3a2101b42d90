"""The paper model (configs/audible623.py, unchanged) on a real dataset built from the user's videos.

The data section names a real-video builder (input_pipeline/audible623.py, input_pipeline/repcount.py;
decisions in docs/datasets.md). Videos go anywhere under `data.manual_dir` (any layout, any container);
the label CSVs under `data.annotations_dir` (default: the manual_dir).

    ta2net prepare --config configs/audible623_data.py --workers 16      # decode + flow (resumable)
    ta2net build   --config configs/audible623_data.py                   # → ArrayRecord + build report
    ta2net train   --config configs/audible623_data.py --workdir runs/audible623
    ta2net build   --config configs/audible623_data.py:dataset=repcount \
                   --config.data.manual_dir=/data/RepCount --config.data.annotations_dir=/data/RepCount

Variants (combinable): `:dataset=NAME` (audible623, ucf101_audible, kinetics_audible, repcount, ucfrep),
`:bf16`, `:smoke` (32×32 `tiny` builder config, T = 8, batch 2: tests).
"""

from __future__ import annotations

from configs import audible623, common


def get_config(arg: str | None = None):
    variant = common.parse_arg(arg, dataset="audible623", bf16=False, smoke=False)
    model_variant = ",".join(v for v in ("bf16", "smoke") if variant[v])
    c = audible623.get_config(model_variant or None)
    c.data.name = variant.dataset
    c.data.builder_config = "tiny" if variant.smoke else "paper"  # 32×32 / 112×112
    c.data.data_dir = "data/tfds"
    c.data.manual_dir = f"data/manual/{variant.dataset}"  # the user's videos
    c.data.annotations_dir = ""  # label CSVs; empty: search the manual_dir
    c.data.flow_method = "dis"  # ta2net_jax/flow.py; "farneback", "tvl1"
    c.data.fps = 0.0  # 0: native frame rate, as the original; else resample (nearest frame)
    c.data.max_frames = 300  # the original's max_len
    c.data.jpeg_quality = 95
    # Static black borders (letterbox, pillarbox) cropped before the resize, as `ta2net detect` does
    # (input_pipeline/borders.py); False: the original's whole-frame resize.
    c.data.crop_borders = True
    if variant.dataset in ("audible623", "ucf101_audible", "kinetics_audible"):
        c.data.validation_fraction = 0.1  # of training ids, held out for threshold tuning; 0: the original
    if variant.dataset == "ucfrep":  # UCFRep has train and validation only
        c.eval.tune_split, c.eval.split = "train", "validation"
    return c
