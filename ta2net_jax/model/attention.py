"""Cross-modal attention (the original's `Self_Attn`): video features query motion features.

Per frame, over the h·w positions: q = 1×1 conv(video), k = 1×1 conv(motion), v = 1×1 conv(video);
A = softmax_keys(q kᵀ / √qk_features); out = A v. No residual and no learned gamma, as the original.
Two instances: `v2f` (video → first-order motion) and `v2df` (video → inflection).

`value_source="motion"` (a config option, not the original) takes the values from the motion features
instead (v = 1×1 conv(motion), 2P → P): the output then carries motion content itself rather than only
re-weighting video features by where motion is, which makes the small model learn in minutes on CPU.
Shapes and the rest of the model are unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ta2net_jax.mesh import batch_reshape
from ta2net_jax.model.layers import conv


class CrossModalAttention(nnx.Module):
    def __init__(
        self,
        video_features: int,
        motion_features: int,
        qk_features: int,
        *,
        value_source: str = "video",
        dtype: Any = jnp.float32,
        init: str = "kaiming",
        rngs: nnx.Rngs,
    ):
        if value_source not in ("video", "motion"):
            raise ValueError(f"value_source {value_source!r} is not 'video' (original) or 'motion'")
        self.query = conv(video_features, qk_features, 1, use_bias=True, dtype=dtype, rngs=rngs, init=init)
        self.key = conv(motion_features, qk_features, 1, use_bias=True, dtype=dtype, rngs=rngs, init=init)
        value_in = video_features if value_source == "video" else motion_features
        self.value = conv(value_in, video_features, 1, use_bias=True, dtype=dtype, rngs=rngs, init=init)
        self.scale = float(qk_features) ** -0.5
        self.value_source = value_source

    def __call__(self, video: jax.Array, motion: jax.Array) -> jax.Array:
        """video [..., h, w, Cv], motion [..., h, w, Cm] → [..., h, w, Cv]."""
        lead, (h, w) = video.shape[:-3], video.shape[-3:-1]
        flat = lambda x: batch_reshape(x, (-1, h * w, x.shape[-1]))
        video2d = batch_reshape(video, (-1,) + video.shape[-3:])
        motion2d = batch_reshape(motion, (-1,) + motion.shape[-3:])
        q, k = flat(self.query(video2d)), flat(self.key(motion2d))
        v = flat(self.value(video2d if self.value_source == "video" else motion2d))
        logits = jnp.einsum("nqc,nkc->nqk", q, k).astype(jnp.float32) * self.scale
        weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        out = jnp.einsum("nqk,nkc->nqc", weights, v)
        return batch_reshape(out, lead + (h, w, v.shape[-1]))
