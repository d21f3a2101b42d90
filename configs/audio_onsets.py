"""Fine-tune a trained model on any folder of videos with sound, labelled by their audio onsets.

The model, loss and optimiser are the demo's (configs/synthetic_small.py), so a demo run (or an export of
one) is a valid starting point; the data is the `audio_onsets` dataset (input_pipeline/datasets/
audio_onsets.py, docs/audio.md): onsets at the native frame rate, shifted by the lag estimated over the
folder, clips whose soundtrack does not follow the motion left out and listed in the build report.

    ta2net prepare --config configs/audio_onsets.py --config.data.manual_dir=DIR     # decode + flow
    ta2net build   --config configs/audio_onsets.py --config.data.manual_dir=DIR     # labels + records
    ta2net train   --config configs/audio_onsets.py --config.data.manual_dir=DIR --workdir runs/ft \
                   --init-from runs/demo
    ta2net eval    --config configs/audio_onsets.py --config.data.manual_dir=DIR --workdir runs/ft

Variants: `:smoke` (32×32 `tiny` builder config, T = 8, 2 steps: tests).
"""

from __future__ import annotations

from configs import common, synthetic_small


def get_config(arg: str | None = None):
    variant = common.parse_arg(arg, smoke=False)
    c = synthetic_small.get_config("smoke" if variant.smoke else None)
    c.data.name = "audio_onsets"
    c.data.builder_config = "tiny" if variant.smoke else "small"  # 32×32 / 48×48 (the demo model's input)
    c.data.data_dir = "data/tfds"
    c.data.manual_dir = "data/manual/audio_onsets"  # the videos, with their soundtracks
    c.data.flow_method = "dis"  # input_pipeline/flow.py
    c.data.fps = 0.0  # 0: native frame rate
    c.data.max_frames = 300
    c.data.validation_fraction = 0.1  # of the videos (md5 of the stem): threshold tuning
    c.data.test_fraction = 0.1  # reported split of `ta2net eval`
    c.train.num_steps = 2 if variant.smoke else 200  # fine-tuning: fewer steps than from scratch
    c.optim.base_lr = c.optim.base_lr / 4  # keep close to the starting weights
    c.optim.warmup_steps = 0 if variant.smoke else 10
    return c
