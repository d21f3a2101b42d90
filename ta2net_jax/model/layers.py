"""Layer constructors with PyTorch's conventions (the original TA²Net is PyTorch).

Flax defaults differ from PyTorch in ways that change the function (docs/original.md §11):
BatchNorm momentum (flax 0.99 = torch 0.01; the original uses torch's 0.1 = flax 0.9), LayerNorm eps
(1e-6 vs 1e-5), Conv padding ('SAME' vs 0) and initialisers. Every layer of the model is built here
so those choices live in one place.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import jax
import jax.numpy as jnp
from flax import nnx


def _host_initializer(jax_init, numpy_sample):
    """An initializer that samples on the host with NumPy when its key is concrete.

    Eager JAX sampling compiles one XLA program per parameter shape (≈0.5 s each on CPU, a minute for
    the model); seeding NumPy from the key's bits gives the same distribution with no compilation and
    stays deterministic. Under tracing (jit, eval_shape) it falls back to the JAX initializer.
    """
    def init(key, shape, dtype=jnp.float32):
        if isinstance(key, jax.core.Tracer):
            return jax_init(key, shape, dtype)
        seed = np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel()
        rng = np.random.default_rng(seed.tolist())
        return jnp.asarray(numpy_sample(rng, shape), dtype)
    return init


def _fans(shape):
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _kaiming_fan_out_normal(rng, shape):
    return rng.normal(0.0, np.sqrt(2.0 / _fans(shape)[1]), size=shape)


def _torch_linear_uniform(rng, shape):
    bound = 1.0 / np.sqrt(_fans(shape)[0])
    return rng.uniform(-bound, bound, size=shape)


# torch.nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu"), as torchvision's ResNet.
KAIMING_FAN_OUT = _host_initializer(nnx.initializers.variance_scaling(2.0, "fan_out", "normal"),
                                    _kaiming_fan_out_normal)
# torch nn.Linear's default weight init: kaiming_uniform(a=√5) = U(±1/√fan_in).
TORCH_LINEAR = _host_initializer(nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
                                 _torch_linear_uniform)
BN_MOMENTUM = 0.9   # = torch momentum 0.1
BN_EPSILON = 1e-5
LN_EPSILON = 1e-5


def conv(in_features: int, out_features: int, kernel_size: int | Sequence[int], *, stride: int | Sequence[int] = 1,
         padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, use_bias: bool = False,
         dtype: Any = jnp.float32, rngs: nnx.Rngs, kernel_init=KAIMING_FAN_OUT) -> nnx.Conv:
    """A channels-last convolution with explicit symmetric padding (PyTorch's `padding=p`)."""
    ndim = len(kernel_size) if isinstance(kernel_size, Sequence) else 2
    kernel = tuple(kernel_size) if isinstance(kernel_size, Sequence) else (kernel_size,) * ndim
    pads = tuple(padding) if isinstance(padding, Sequence) else (padding,) * ndim
    return nnx.Conv(in_features, out_features, kernel, strides=stride, padding=tuple((p, p) for p in pads),
                    kernel_dilation=dilation, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32,
                    kernel_init=kernel_init, rngs=rngs)


def batch_norm(num_features: int, *, dtype: Any = jnp.float32, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm with torch defaults (momentum 0.1, eps 1e-5); statistics in float32."""
    return nnx.BatchNorm(num_features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)


def linear(in_features: int, out_features: int, *, dtype: Any = jnp.float32, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(in_features, out_features, dtype=dtype, param_dtype=jnp.float32,
                      kernel_init=TORCH_LINEAR, rngs=rngs)


def layer_norm(num_features: int, *, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm with torch's eps, computed in float32."""
    return nnx.LayerNorm(num_features, epsilon=LN_EPSILON, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)

