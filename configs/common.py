"""Shared pieces of the Python configs (big_vision style: `get_config(arg)` with variants).

`--config configs/synthetic_small.py:smoke` selects the `smoke` variant; the CLI then applies
`--config.key=value` overrides on top (ta2net_jax/config_utils.py).
"""

from __future__ import annotations

import ml_collections


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parses 'a=1,b=x,flag' into a ConfigDict over `defaults` (bare names set True)."""
    result = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, _, value = item.partition("=")
        if key not in result:
            raise KeyError(f"unknown config variant argument {key!r}; known: {sorted(result.keys())}")
        if not value:
            result[key] = True
        else:
            result[key] = (
                type(defaults[key])(value) if not isinstance(defaults[key], bool) else value in ("1", "true", "True")
            )
    return result


def paper_loss() -> ml_collections.ConfigDict:
    """The original's loss (docs/original.md §6): focal + 0.1·soft CE + 0.01·L_fb + 0.002·L_tmp."""
    return ml_collections.ConfigDict(
        dict(
            focal_gamma=2.0,
            soft_ce_weight=0.1,
            blur_sigma=2.0,  # frames; 7-tap kernel exp(−d²/8), summed then clipped to 1
            blur_radius=3,
            fb_weight=0.01,
            fb_rank_alpha=0.25,  # SimMax rank weights exp(−0.25·(rank − 1))
            fb_sampling="audible_frame",  # one audible frame per clip (choice 4); or "all_frames"
            fb_gather="gspmd",  # columns of L_fb: XLA gathers the global arrays; or "shard_map" (all_gather)
            tmp_weight=0.002,
            tmp_inner_weight=0.1,  # L_tmp = 0.1·Σ|m_{k+1} + m_{k−1} − 2 m_k|, within clips
            # Not in the original: weak supervision of the source map by exact contact points (losses.py
            # contact_loss; synthetic datasets only). Off here; on in configs/default_detector.py.
            contact_weight=0.0,
        )
    )


def paper_lr_multipliers() -> ml_collections.ConfigDict:
    """The original's 4 Adam parameter groups relative to the base lr (§7): 5e-6 / 1e-5 / 5e-5 / 1e-4."""
    return ml_collections.ConfigDict(dict(weight=1.0, bias=2.0, head_weight=10.0, head_bias=20.0))


def sliding_window_eval(num_frames, batch_size: int) -> ml_collections.ConfigDict:
    """Whole-video evaluation: windows of T frames every T/2, thresholds tuned on validation."""
    return ml_collections.ConfigDict(
        dict(
            stride=num_frames // 2,  # softmax averaged where windows overlap (choice 7); a FieldReference follows T
            batch_size=batch_size,  # windows per forward pass, global
            tune_split="validation",  # thresholds are tuned here, never on the reported split
            split="test",
            tolerance=3,  # frames, for threshold tuning
            min_separation=2,  # frames between two events (used when min_separation_s is None)
            min_separation_s=None,  # seconds between two events; frames = max(1, round(s·fps)) per video
            # Running-median windows (s) subtracted before thresholding, each tried on the tuning split (0: none).
            prominence_windows_s=(0.0,),
            # `ta2net eval --locator RUN2`: weights w of the locator's P(audible) in the timing curve
            # (1 − w)·P_model + w·P_locator, each tried on the tuning split with the picking (detector.json).
            locator_timing_weights=(0.0, 0.25, 0.5, 0.75, 1.0),
            # Bounds (fps) at which a higher-rate video is scored as interleaved phases, each tried on the
            # tuning split against the native rate (detection/analysis_rate.py); () = native rate only.
            analysis_max_fps=(),
            # Every window also scored mirrored left–right and the two passes averaged (inference.py), at twice
            # the model's cost; detector.json records it, and detect scores the same way.
            hflip_tta=False,
        )
    )


def mesh(axis_types: str = "auto", fsdp: int = 1) -> ml_collections.ConfigDict:
    """A data-parallel mesh over every device of every process; `axis_types` is "auto" or "explicit".

    fsdp > 1 adds an "fsdp" axis of that size: the batch is split over data × fsdp and every parameter and
    optimizer-state array over fsdp (ta2net_jax/mesh.py; Auto only). From the command line:
    `--config.mesh.shape="(-1, 2)" --config.mesh.axis_names="('data', 'fsdp')"`.
    """
    if fsdp > 1:
        return ml_collections.ConfigDict(dict(shape=(-1, fsdp), axis_names=("data", "fsdp"), axis_types=axis_types))
    return ml_collections.ConfigDict(dict(shape=(-1,), axis_names=("data",), axis_types=axis_types))
