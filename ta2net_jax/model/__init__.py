"""TA²Net in Flax NNX. `build_model(config)` is the one place a config becomes a model."""

from __future__ import annotations

import ml_collections
from flax import nnx

from ta2net_jax.inflection import flow_channels
from ta2net_jax.model.ta2net import TA2Net


def model_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The `model` sub-config completed with what other sections decide (input channels)."""
    cfg = ml_collections.ConfigDict(config.model.to_dict())
    cfg.flow_channels = flow_channels(config.inflection.mode)
    return cfg


def build_model(config: ml_collections.ConfigDict, seed: int | None = None) -> TA2Net:
    seed = config.seed if seed is None else seed
    return TA2Net(model_config(config), rngs=nnx.Rngs(params=seed, dropout=seed + 1))


__all__ = ["TA2Net", "build_model", "model_config"]
