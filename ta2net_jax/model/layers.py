"""Layer constructors with PyTorch's conventions (the original TA²Net is PyTorch).

Flax defaults differ from PyTorch in ways that change the function (docs/original.md §11):
BatchNorm momentum (flax 0.99 = torch 0.01; the original uses torch's 0.1 = flax 0.9), LayerNorm eps
(1e-6 vs 1e-5), Conv padding ('SAME' vs 0), the BatchNorm running variance (flax keeps the biased batch
variance, torch the unbiased one) and initialisers. Every layer of the model is built here so those
choices live in one place.

Initialisation schemes (`model.init`, docs/design.md "Differences from the original that change training"):

* "torch_default" — the original's: PyTorch's default `reset_parameters` wherever the original keeps it,
  i.e. every convolution and linear layer outside the ResNet trunks gets weight and bias
  U(±1/√fan_in) (kaiming_uniform(a=√5)), and the transformer's q/k/v projections xavier_uniform over
  the packed [3·E, E] matrix with zero biases and a zero output-projection bias (nn.MultiheadAttention).
  The trunks' convolutions get He-normal fan-out (the init loop of the original's models/resnet.py).
* "kaiming" — this project's earlier scheme: He-normal fan-out for every convolution, U(±1/√fan_in)
  for linear weights, zero biases everywhere.

BatchNorm and LayerNorm are scale 1, bias 0 under both. Weights are sampled on the host from the
JAX key (see `_host_initializer`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

INITS = ("torch_default", "kaiming")


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
    """(fan_in, fan_out) of a channels-last kernel [..., in, out], as torch counts them."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _kaiming_fan_out_normal(rng, shape):
    return rng.normal(0.0, np.sqrt(2.0 / _fans(shape)[1]), size=shape)


def _torch_linear_uniform(rng, shape):
    bound = 1.0 / np.sqrt(_fans(shape)[0])
    return rng.uniform(-bound, bound, size=shape)


def uniform_init(bound: float):
    """U(−bound, bound) of any shape (torch's default biases, whose bound comes from the weight's fan-in)."""

    def jax_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return _host_initializer(jax_init, lambda rng, shape: rng.uniform(-bound, bound, size=shape))


# torch.nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu"), as the original's models/resnet.py.
KAIMING_FAN_OUT = _host_initializer(
    nnx.initializers.variance_scaling(2.0, "fan_out", "normal"), _kaiming_fan_out_normal
)
# torch's default weight init of nn.Conv*d and nn.Linear: kaiming_uniform(a=√5) = U(±1/√fan_in).
TORCH_DEFAULT = _host_initializer(
    nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"), _torch_linear_uniform
)
ZEROS = nnx.initializers.zeros_init()
BN_MOMENTUM = 0.9  # = torch momentum 0.1
BN_EPSILON = 1e-5
LN_EPSILON = 1e-5


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"model.init {init!r} is not one of {INITS}")
    return init


def default_inits(fan_in: int, init: str, *, kaiming_kernel=KAIMING_FAN_OUT):
    """(kernel_init, bias_init) of a conv or linear layer that the original leaves at torch's default."""
    if check_init(init) == "torch_default":
        return TORCH_DEFAULT, uniform_init(1.0 / np.sqrt(fan_in))
    return kaiming_kernel, ZEROS


def conv(
    in_features: int,
    out_features: int,
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    use_bias: bool = False,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
    init: str = "trunk",
) -> nnx.Conv:
    """A channels-last convolution with explicit symmetric padding (PyTorch's `padding=p`).

    init: "trunk" (He-normal fan-out weight, zero bias: the original's ResNet init loop), or a
    `model.init` scheme for a layer the original leaves at torch's default (module docstring).
    """
    ndim = len(kernel_size) if isinstance(kernel_size, Sequence) else 2
    kernel = tuple(kernel_size) if isinstance(kernel_size, Sequence) else (kernel_size,) * ndim
    pads = tuple(padding) if isinstance(padding, Sequence) else (padding,) * ndim
    if init == "trunk":
        kernel_init, bias_init = KAIMING_FAN_OUT, ZEROS
    else:
        kernel_init, bias_init = default_inits(in_features * int(np.prod(kernel)), init)
    return nnx.Conv(
        in_features,
        out_features,
        kernel,
        strides=stride,
        padding=tuple((p, p) for p in pads),
        kernel_dilation=dilation,
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=kernel_init,
        bias_init=bias_init,
        rngs=rngs,
    )


class BatchNorm(nnx.BatchNorm):
    """nnx.BatchNorm whose running variance averages the unbiased batch variance, as torch's does.

    Normalisation in training uses the biased variance in both frameworks; only the running average
    differs: torch updates it with var·n/(n−1), n = elements per channel in the batch. For a 2×2 map of
    16 frames (n = 64) flax's running variance would drift 1.6 % × momentum low per step.
    """

    def __call__(self, x: jax.Array, use_running_average: bool | None = None, *, mask: jax.Array | None = None):
        training = not (self.use_running_average if use_running_average is None else use_running_average)
        if not training or mask is not None:
            return super().__call__(x, use_running_average, mask=mask)
        previous = self.var[...]
        y = super().__call__(x, False)
        n = x.size // x.shape[self.axis]
        # The batch variance flax just averaged in, recomputed as flax does (in float32); XLA shares the
        # reductions with the ones inside the call above.
        axes = tuple(i for i in range(x.ndim) if i != self.axis % x.ndim)
        x = x if self.dtype is None else x.astype(self.dtype)
        x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        mu = jnp.mean(x32, axes)
        if self.use_fast_variance:
            batch_var = jnp.maximum(0.0, jnp.mean(x32 * x32, axes) - mu * mu)
        else:
            batch_var = jnp.mean(jnp.square(x32 - jnp.expand_dims(mu, axes)), axes)
        unbiased = batch_var * (n / max(n - 1, 1))
        self.var[...] = jax.lax.stop_gradient(self.momentum * previous + (1 - self.momentum) * unbiased)
        return y


BN_VARIANCES = ("two_pass", "one_pass")
_BN_VARIANCE = contextvars.ContextVar("ta2net_bn_variance", default="two_pass")


@contextlib.contextmanager
def batch_norm_variance(mode: str):
    """The batch-variance formula of the BatchNorms built inside the block (`model.bn_variance`):
    "two_pass", E[(x − E[x])²], as torch; "one_pass", E[x²] − E[x]², flax's default."""
    if mode not in BN_VARIANCES:
        raise ValueError(f"model.bn_variance {mode!r} is not one of {BN_VARIANCES}")
    token = _BN_VARIANCE.set(mode)
    try:
        yield
    finally:
        _BN_VARIANCE.reset(token)


def batch_norm(num_features: int, *, dtype: Any = jnp.float32, rngs: nnx.Rngs) -> BatchNorm:
    """BatchNorm with torch defaults (momentum 0.1, eps 1e-5, unbiased running variance); float32 statistics.

    The batch variance is two-pass, E[(x − E[x])²], as torch's, unless built under
    `batch_norm_variance("one_pass")`: flax's one-pass E[x²] − E[x]² cancels when |mean| ≫ std, and through
    the paper trunk's train-mode BatchNorms it made float32 gradients several times further from float64 than
    PyTorch's (tests/test_torch_training.py); the two-pass form, on the other hand, made a 2-process × 2-device
    fsdp run of the small model drift from 1 × 4 by 1 % in loss by step 3 (one-pass: 1e-4; tests/test_scaling.py),
    so the demo config keeps flax's.
    """
    return BatchNorm(
        num_features,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        dtype=dtype,
        param_dtype=jnp.float32,
        use_fast_variance=_BN_VARIANCE.get() == "one_pass",
        rngs=rngs,
    )


def linear(
    in_features: int,
    out_features: int,
    *,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
    init: str = "kaiming",
    kernel_init=None,
    bias_init=None,
) -> nnx.Linear:
    """nnx.Linear. Under either scheme the weight is torch's default U(±1/√fan_in) unless `kernel_init`
    is given; the bias is U(±1/√fan_in) under "torch_default" and zero under "kaiming", unless `bias_init`."""
    default_kernel, default_bias = default_inits(in_features, init, kaiming_kernel=TORCH_DEFAULT)
    return nnx.Linear(
        in_features,
        out_features,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=kernel_init or default_kernel,
        bias_init=bias_init or default_bias,
        rngs=rngs,
    )


def packed_qkv_xavier(features: int):
    """nn.MultiheadAttention's in_proj init for one of q/k/v: xavier_uniform over the packed [3·E, E]
    matrix, i.e. U(±√(6 / (E + 3·E)))."""
    return uniform_init(float(np.sqrt(6.0 / (features + 3 * features))))


def layer_norm(num_features: int, *, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm with torch's eps, computed in float32."""
    return nnx.LayerNorm(num_features, epsilon=LN_EPSILON, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)
