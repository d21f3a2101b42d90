"""ResNet trunks cut after layer3, plus the 1×1 projection: the original's `ResEncoder`.

Paper configuration: ResNet-50 (bottleneck blocks [3, 4, 6], widths 64/128/256, expansion 4, strides
[1, 2, 2]) → 1024 channels at 1/16 resolution → 1×1 conv to 256 (no bias) → BN → ReLU, i.e. 256×7×7 per
112² frame. layer4 and fc exist in the original but are never called, so they are not built here.
The `small` configuration uses the same code with basic blocks and narrow widths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ta2net_jax.mesh import batch_reshape
from ta2net_jax.model.layers import batch_norm, conv


class BasicBlock(nnx.Module):
    """Two 3×3 convolutions (ResNet-18/34 block). Output channels = width."""

    expansion = 1

    def __init__(self, in_features: int, width: int, stride: int, *, dtype: Any, rngs: nnx.Rngs):
        self.conv1 = conv(in_features, width, 3, stride=stride, padding=1, dtype=dtype, rngs=rngs)
        self.bn1 = batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = conv(width, width, 3, padding=1, dtype=dtype, rngs=rngs)
        self.bn2 = batch_norm(width, dtype=dtype, rngs=rngs)
        self.downsample = _downsample(in_features, width, stride, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        identity = x if self.downsample is None else self.downsample(x)
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return jax.nn.relu(y + identity)


class Bottleneck(nnx.Module):
    """1×1 → 3×3 (stride here, torchvision's v1.5) → 1×1 ×4. Output channels = 4·width."""

    expansion = 4

    def __init__(self, in_features: int, width: int, stride: int, *, dtype: Any, rngs: nnx.Rngs):
        out = width * self.expansion
        self.conv1 = conv(in_features, width, 1, dtype=dtype, rngs=rngs)
        self.bn1 = batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = conv(width, width, 3, stride=stride, padding=1, dtype=dtype, rngs=rngs)
        self.bn2 = batch_norm(width, dtype=dtype, rngs=rngs)
        self.conv3 = conv(width, out, 1, dtype=dtype, rngs=rngs)
        self.bn3 = batch_norm(out, dtype=dtype, rngs=rngs)
        self.downsample = _downsample(in_features, out, stride, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        identity = x if self.downsample is None else self.downsample(x)
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return jax.nn.relu(y + identity)


class Downsample(nnx.Module):
    """1×1 strided conv + BN on the shortcut (torchvision's `downsample.0/1`)."""

    def __init__(self, in_features: int, out_features: int, stride: int, *, dtype: Any, rngs: nnx.Rngs):
        self.conv = conv(in_features, out_features, 1, stride=stride, dtype=dtype, rngs=rngs)
        self.bn = batch_norm(out_features, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.conv(x))


def _downsample(in_features, out_features, stride, *, dtype, rngs):
    if stride == 1 and in_features == out_features:
        return None
    return Downsample(in_features, out_features, stride, dtype=dtype, rngs=rngs)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


# The stages' strides after the stem's /4: ResNet's /16, the paper's 7×7 map at 112². (1, 2, 1) keeps /8.
PAPER_STRIDES = (1, 2, 2)


class ResEncoder(nnx.Module):
    """Per-frame ResNet trunk (conv1 … layer3) and 1×1 projection.

    Maps frames [..., H, W, C] to features [..., H/16, W/16, proj_features] (H/8 with strides (1, 2, 1)).
    """

    def __init__(
        self,
        in_features: int,
        *,
        block: str = "bottleneck",
        stem_width: int = 64,
        widths: Sequence[int] = (64, 128, 256),
        depths: Sequence[int] = (3, 4, 6),
        strides: Sequence[int] = PAPER_STRIDES,
        proj_features: int = 256,
        dtype: Any = jnp.float32,
        init: str = "kaiming",
        rngs: nnx.Rngs,
    ):
        """init: the `model.init` scheme of the projection (the original's `conv_256`, outside the
        ResNet, keeps torch's default); the trunk is He-normal fan-out under every scheme."""
        block_cls = BLOCKS[block]
        self.dtype = dtype
        self.conv1 = conv(in_features, stem_width, 7, stride=2, padding=3, dtype=dtype, rngs=rngs)
        self.bn1 = batch_norm(stem_width, dtype=dtype, rngs=rngs)
        layers, features = [], stem_width
        for width, depth, stride in zip(widths, depths, strides):
            blocks = []
            for i in range(depth):
                blocks.append(block_cls(features, width, stride if i == 0 else 1, dtype=dtype, rngs=rngs))
                features = width * block_cls.expansion
            layers.append(nnx.List(blocks))
        self.layers = nnx.List(layers)
        self.out_features = features
        self.proj = conv(features, proj_features, 1, dtype=dtype, rngs=rngs, init=init)
        self.proj_bn = batch_norm(proj_features, dtype=dtype, rngs=rngs)

    def __call__(self, frames: jax.Array) -> jax.Array:
        lead = frames.shape[:-3]
        x = batch_reshape(frames, (-1,) + frames.shape[-3:]).astype(self.dtype)  # batch-major merge
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        # 3×3/2 max pool with padding 1 (PyTorch pads with −inf). The padding is spelled out because
        # jax2onnx's max_pool ignores explicit padding; keywords because it patches the signature.
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
        x = nnx.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding="VALID")
        for layer in self.layers:
            for block in layer:
                x = block(x)
        x = jax.nn.relu(self.proj_bn(self.proj(x)))
        return batch_reshape(x, lead + x.shape[-3:])
