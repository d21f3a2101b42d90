"""Sound-source branch: the CCAM `Disentangler` (foreground/background split of fused features).

Per frame: m = sigmoid(BN(conv3×3(x, no bias))) is an h×w map of where the sound comes from;
fg = Σ_hw m·x / (h·w) and bg = Σ_hw (1 − m)·x / (h·w) (divided by the area, not by Σm, as the original).
The map is learned without spatial labels, through the contrastive loss on fg/bg (losses.py).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ta2net_jax.model.layers import batch_norm, conv


class Disentangler(nnx.Module):
    def __init__(self, features: int, *, dtype: Any = jnp.float32, init: str = "kaiming", rngs: nnx.Rngs):
        self.activation_head = conv(features, 1, 3, padding=1, dtype=dtype, rngs=rngs, init=init)
        self.bn_head = batch_norm(1, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """x [N, h, w, C] → (fg [N, C], bg [N, C], map [N, h, w]) in float32; map values in (0, 1)."""
        m = jax.nn.sigmoid(self.bn_head(self.activation_head(x)).astype(jnp.float32))
        x = x.astype(jnp.float32)
        area = x.shape[-3] * x.shape[-2]
        fg = jnp.sum(m * x, axis=(-3, -2)) / area
        bg = jnp.sum((1.0 - m) * x, axis=(-3, -2)) / area
        return fg, bg, m[..., 0]
