"""Temporal head: the TransRAC similarity decoder at one scale (the original's `Similarity_Decoder`).

    fused features [B, T, h, w, 3·P]
      → Conv3d k3, dilation (3, 1, 1), padding (3, 1, 1) → BN → ReLU      [B, T, h, w, conv_features]
      → max over h, w                                                       [B, T, conv_features]
      → self-similarity: q, k linear, `sim_heads` heads, softmax(q kᵀ / sim_scale), ReLU   [B, T, T, heads]
      → Conv2d 3×3 → BN → ReLU → Dropout 0.25                               [B, T, T, sim_features]
      → rows flattened, Linear(T·sim_features → d_model) → ReLU → LayerNorm  [B, T, d_model]
      → sinusoidal position encoding + Dropout 0.1
      → one post-LN transformer encoder layer + final LayerNorm
      → prediction MLP → 2 logits per frame                                 [B, T, 2]

`sim_scale` is the original's fixed √64, not √head_dim. The projection's input size T·sim_features
ties the head to the clip length T, as in the original (T = 64 there).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ta2net_jax.model.layers import ZEROS, batch_norm, check_init, conv, layer_norm, linear, packed_qkv_xavier


class SimilarityMatrix(nnx.Module):
    """Multi-head self-similarity of a sequence: [B, T, D] → [B, T, T, heads] (softmax rows, ReLU)."""

    def __init__(self, features: int, heads: int, scale: float, *, dtype: Any, init: str, rngs: nnx.Rngs):
        self.query = linear(features, features, dtype=dtype, rngs=rngs, init=init)
        self.key = linear(features, features, dtype=dtype, rngs=rngs, init=init)
        self.heads, self.scale = heads, scale

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        split = lambda y: y.reshape(b, t, self.heads, d // self.heads)
        q, k = split(self.query(x)), split(self.key(x))
        logits = jnp.einsum("bihd,bjhd->bijh", q, k).astype(jnp.float32) / self.scale
        return jax.nn.relu(jax.nn.softmax(logits, axis=2))


class MultiHeadSelfAttention(nnx.Module):
    """PyTorch nn.MultiheadAttention (self-attention, biases on, dropout on the weights).

    Under init="torch_default" its own `_reset_parameters`: q/k/v weights xavier-uniform over the packed
    [3·E, E] matrix, q/k/v and output biases zero; the output weight keeps nn.Linear's U(±1/√E).
    """

    def __init__(self, features: int, heads: int, dropout: float, *, dtype: Any, init: str, rngs: nnx.Rngs):
        if check_init(init) == "torch_default":
            qkv = dict(kernel_init=packed_qkv_xavier(features), bias_init=ZEROS)
            out = dict(bias_init=ZEROS)
        else:
            qkv, out = {}, {}
        self.query = linear(features, features, dtype=dtype, rngs=rngs, init=init, **qkv)
        self.key = linear(features, features, dtype=dtype, rngs=rngs, init=init, **qkv)
        self.value = linear(features, features, dtype=dtype, rngs=rngs, init=init, **qkv)
        self.out = linear(features, features, dtype=dtype, rngs=rngs, init=init, **out)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.heads = heads

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        split = lambda y: y.reshape(b, t, self.heads, d // self.heads)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        logits = jnp.einsum("bihd,bjhd->bhij", q, k).astype(jnp.float32) / np.sqrt(d // self.heads)
        weights = self.dropout(jax.nn.softmax(logits, axis=-1)).astype(v.dtype)
        return self.out(jnp.einsum("bhij,bjhd->bihd", weights, v).reshape(b, t, d))


class TransformerEncoderLayer(nnx.Module):
    """PyTorch nn.TransformerEncoderLayer, post-LN, ReLU: x = LN(x + MHA(x)); x = LN(x + FFN(x))."""

    def __init__(
        self, features: int, heads: int, ffn_features: int, dropout: float, *, dtype: Any, init: str, rngs: nnx.Rngs
    ):
        self.self_attn = MultiHeadSelfAttention(features, heads, dropout, dtype=dtype, init=init, rngs=rngs)
        self.linear1 = linear(features, ffn_features, dtype=dtype, rngs=rngs, init=init)
        self.linear2 = linear(ffn_features, features, dtype=dtype, rngs=rngs, init=init)
        self.norm1 = layer_norm(features, rngs=rngs)
        self.norm2 = layer_norm(features, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)  # inside the FFN
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)  # after attention
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)  # after the FFN

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        ffn = self.linear2(self.dropout(jax.nn.relu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ffn))


def sinusoidal_encoding(length: int, features: int) -> np.ndarray:
    """[length, features] sin on even, cos on odd channels (Vaswani et al.; TransRAC's PositionalEncoding)."""
    position = np.arange(length)[:, None]
    div = np.exp(np.arange(0, features, 2) * (-np.log(10000.0) / features))
    pe = np.zeros((length, features), np.float32)
    pe[:, 0::2] = np.sin(position * div)
    pe[:, 1::2] = np.cos(position * div)
    return pe


class Prediction(nnx.Module):
    """Linear → LN → Dropout → ReLU → Linear → ReLU → Dropout → Linear(→ 2)."""

    def __init__(
        self, features: int, hidden: int, out_features: int, dropout: float, *, dtype: Any, init: str, rngs: nnx.Rngs
    ):
        self.fc1 = linear(features, hidden, dtype=dtype, rngs=rngs, init=init)
        self.norm = layer_norm(hidden, rngs=rngs)
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)
        self.fc2 = linear(hidden, hidden // 2, dtype=dtype, rngs=rngs, init=init)
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)
        self.fc3 = linear(hidden // 2, out_features, dtype=dtype, rngs=rngs, init=init)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.dropout1(self.norm(self.fc1(x))))
        x = self.dropout2(jax.nn.relu(self.fc2(x)))
        return self.fc3(x)


class SimilarityDecoder(nnx.Module):
    """Fused per-frame features [B, T, h, w, C] → per-frame logits [B, T, 2] (see module docstring)."""

    def __init__(
        self,
        in_features: int,
        num_frames: int,
        *,
        conv_features: int = 512,
        sim_heads: int = 4,
        sim_scale: float = 8.0,
        sim_features: int = 32,
        d_model: int = 512,
        attn_heads: int = 4,
        ffn_features: int = 512,
        sim_dropout: float = 0.25,
        pe_dropout: float = 0.1,
        attn_dropout: float = 0.2,
        mlp_dropout: float = 0.25,
        dtype: Any = jnp.float32,
        init: str = "kaiming",
        rngs: nnx.Rngs,
    ):
        self.conv3d = conv(
            in_features,
            conv_features,
            (3, 3, 3),
            padding=(3, 1, 1),
            dilation=(3, 1, 1),
            use_bias=True,
            dtype=dtype,
            rngs=rngs,
            init=init,
        )
        self.bn3d = batch_norm(conv_features, dtype=dtype, rngs=rngs)
        self.similarity = SimilarityMatrix(conv_features, sim_heads, sim_scale, dtype=dtype, init=init, rngs=rngs)
        self.sim_conv = conv(sim_heads, sim_features, 3, padding=1, use_bias=True, dtype=dtype, rngs=rngs, init=init)
        self.sim_bn = batch_norm(sim_features, dtype=dtype, rngs=rngs)
        self.sim_dropout = nnx.Dropout(sim_dropout, rngs=rngs)
        self.input_projection = linear(num_frames * sim_features, d_model, dtype=dtype, rngs=rngs, init=init)
        self.input_norm = layer_norm(d_model, rngs=rngs)
        self.pe_dropout = nnx.Dropout(pe_dropout, rngs=rngs)
        self.transformer = TransformerEncoderLayer(
            d_model, attn_heads, ffn_features, attn_dropout, dtype=dtype, init=init, rngs=rngs
        )
        self.final_norm = layer_norm(d_model, rngs=rngs)
        self.prediction = Prediction(d_model, d_model, 2, mlp_dropout, dtype=dtype, init=init, rngs=rngs)
        self.num_frames, self.d_model, self.dtype = num_frames, d_model, dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.shape[1] != self.num_frames:
            raise ValueError(f"the temporal head was built for T={self.num_frames} frames, got {x.shape[1]}")
        x = jax.nn.relu(self.bn3d(self.conv3d(x.astype(self.dtype))))
        x = jnp.max(x, axis=(2, 3))  # [B, T, conv_features]
        sim = self.similarity(x).astype(self.dtype)  # [B, T, T, heads]
        sim = self.sim_dropout(jax.nn.relu(self.sim_bn(self.sim_conv(sim))))
        b, t = sim.shape[:2]
        x = self.input_projection(sim.reshape(b, t, -1))  # rows (j, channel) flattened
        x = self.input_norm(jax.nn.relu(x))
        x = self.pe_dropout(x + jnp.asarray(sinusoidal_encoding(t, self.d_model), x.dtype))
        x = self.final_norm(self.transformer(x))
        return self.prediction(x).astype(jnp.float32)
