"""TV-L1 optical flow in JAX: OpenCV's ``DualTVL1OpticalFlow`` as one jitted, batched function.

``tvl1_flow(i0, i1)`` takes a batch of grey frame pairs ``[P, H, W]`` (intensities on the 0..255 scale)
and returns ``[P, H, W, 2]`` float32 flow (u, v) in pixels along +x (right) and +y (down): the pixel
(x, y) of ``i0`` moves to (x + u, y + v) in ``i1``. Batches of pairs reach it on the devices through
``input_pipeline.flow_jax_batch`` (``estimate_flow_batch``: one video's consecutive frames, forward and
backward, with the conventions of ``input_pipeline.flow.estimate_flow``; ``estimate_flow_videos``: several).

The algorithm is Zach-Pock-Bischof's duality-based TV-L1 (DAGM 2007) in the form of Sanchez, Meinhardt
and Facciolo (IPOL 2013), following the structure of OpenCV's CPU implementation (opencv_contrib
``optflow/src/tvl1flow.cpp``) so that the two give nearly the same flow:

* pyramid: the frames as float (0..255), each coarser level ``cv::resize(INTER_LINEAR)`` of the previous
  one by ``scale_step`` with no pre-smoothing, stopping before a side drops under 16 px;
* per level: centred-difference gradient of ``i1`` (one-sided at the borders); ``warps`` times: warp
  ``i1`` and its gradient by the current flow (``cv::remap``: bicubic, a=-0.75, zeros outside the frame;
  OpenCV 5 samples at the exact float position, 4.x rounded it to 1/32 px), then up to
  ``outer_iterations`` x (5x5 median of the flow, then up to ``inner_iterations`` primal-dual steps:
  thresholding, u = v + theta div p, forward-difference gradient, dual update); the dual variable is
  reset per level, not per warp;
* stopping: OpenCV leaves a warp's loops once the squared change of the flow summed over the frame is
  <= epsilon^2 H W. Here every pair carries its own "still active" flag with the same test; finished
  pairs are frozen (masked updates) and a ``lax.while_loop`` ends when no pair in the batch is active,
  so each pair follows OpenCV's iteration schedule regardless of the others; ``epsilon=0`` gives the
  fixed counts (then as ``fori_loop``s with static trip counts). Masked pairs still cost their share of
  each step; ``compaction`` gathers the active ones into a smaller batch per outer iteration instead
  (``estimate_flow_batch``'s default on accelerators: 2.5-3x the pairs/s on an H200);
* between levels: bilinear ``cv::resize`` of the flow to the finer size, times 1 / scale_step.

One setting goes beyond OpenCV: ``edge_weight`` > 0 weighs the TV by the first frame's edges (an image-driven
TV, :func:`edge_weights`), more accurate on moving pixels of the synthetic videos (docs/RESULTS.md §3, "An
image-driven TV"); 0, the default, is OpenCV's TV.

Differences from OpenCV that remain: float32 sums in another order (the 16 warp taps, and the change
summed over the frame, so a pair can stop one iteration earlier or later when its change sits at the
threshold). Measured agreement and speed: benchmarks/RESULTS.md, "TV-L1 in JAX".

Everything is shape-static: pyramid sizes are Python ints, the scales are a Python loop (one traced
copy of the solver per level), iterations are ``lax`` loops, and there is no loop over pixels or pairs.
The batch axis is independent throughout, so a batch laid out as ``NamedSharding(mesh, P('data'))``
runs data-parallel under one jit with no host round trip (``estimate_flow_batch`` does that).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.flow_jax_ops import (
    centered_gradient,
    divergence,
    forward_gradient,
    median_filter,
    pyramid_shapes,
    resize_linear,
    warp,
)

__all__ = [
    "IMAGE_DRIVEN_DEFAULTS",
    "OPENCV_DEFAULTS",
    "SETTINGS",
    "edge_weights",
    "parse_overrides",
    "pyramid_shapes",
    "tvl1_flow",
]

# cv2.optflow.DualTVL1OpticalFlow_create() defaults (gamma = 0 is the only behaviour implemented here;
# useInitialFlow is tvl1_flow's initial_flow).
OPENCV_DEFAULTS = {
    "tau": 0.25,
    "lambda_": 0.15,
    "theta": 0.3,
    "nscales": 5,
    "warps": 5,
    "epsilon": 0.01,
    "inner_iterations": 30,
    "outer_iterations": 10,
    "scale_step": 0.8,
    "median_filtering": 5,
}
# Settings beyond OpenCV's (tvl1_flow's edge_weight, edge_power): 0 keeps OpenCV's TV; a weight makes the TV
# image-driven. Power 2 was the best of power 0.5 / 1 / 2 on moving pixels of synthetic videos with exact flow
# (benchmarks/tvl1_settings.py).
IMAGE_DRIVEN_DEFAULTS = {"edge_weight": 0.0, "edge_power": 2.0}
SETTINGS = {**OPENCV_DEFAULTS, **IMAGE_DRIVEN_DEFAULTS}
_F32_EPS = float(np.finfo(np.float32).eps)


def parse_overrides(items) -> dict:
    """``["lambda_=0.6", "warps=10"]`` → ``{"lambda_": 0.6, "warps": 10}``: overrides of :data:`SETTINGS`
    (OpenCV's and the image-driven TV's; each value typed like its default), for the command lines that take
    TV-L1 settings.

    Raises:
      ValueError: naming the item that is not ``KEY=VALUE``, whose key is not a TV-L1 setting, or whose value
        is not a positive number of the setting's type.
    """
    overrides = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or key not in SETTINGS:
            raise ValueError(f"TV-L1 setting {item!r}: expected KEY=VALUE with KEY one of {', '.join(SETTINGS)}")
        kind = type(SETTINGS[key])
        try:
            value = kind(text) if kind is float else int(text.strip())
        except ValueError:
            raise ValueError(
                f"TV-L1 setting {item!r}: {key} takes {'an integer' if kind is int else 'a number'}"
            ) from None
        if not value > 0:
            raise ValueError(f"TV-L1 setting {item!r}: {key} must be positive")
        overrides[key] = value
    return overrides


def primal_dual_step(u, p, i1wx, i1wy, grad, rho_c, edge=None, *, l_t: float, theta: float, taut: float):
    """One inner TV-L1 iteration on a batch (OpenCV's estimateV, divergence, estimateU, forwardGradient,
    estimateDualVariables).

    Every field is a separate [P, H, W] array, not a stacked one: on a GPU the stacks became concatenate
    kernels that re-read the step's inputs (benchmarks/RESULTS.md, "TV-L1 in JAX").

    Args:
      u: (u1, u2), the flow's x and y components in px, each [P, H, W].
      p: ((p1x, p1y), (p2x, p2y)), the dual variable per flow component, each [P, H, W].
      i1wx, i1wy: [P, H, W] gradient of the warped second frame; grad = i1wx^2 + i1wy^2;
      rho_c: [P, H, W] the constant part of the linearised residual, i1w - i1wx u0 - i1wy v0 - i0.
      edge: None (OpenCV's TV), or [P, H, W] the weight g in (0, 1] of an image-driven TV, sum g |grad u|:
        the dual update divides |grad u| by g, so the flow is smoothed less across the first frame's edges.
      l_t = lambda theta, taut = tau / theta.
    Returns:
      (u, p, error): the new u and p (as above), and error [P] = sum over pixels of |u_new - u|^2 (px^2).
    """
    rho = rho_c + (i1wx * u[0] + i1wy * u[1])
    lg = l_t * grad
    fi = -rho / jnp.where(grad > _F32_EPS, grad, 1.0)
    coef = jnp.where(rho < -lg, l_t, jnp.where(rho > lg, -l_t, jnp.where(grad > _F32_EPS, fi, 0.0)))
    u_new = tuple(uc + coef * gc + theta * divergence(pcx, pcy) for uc, gc, (pcx, pcy) in zip(u, (i1wx, i1wy), p))
    # Summed as the stacked [P, 2, H, W] change, OpenCV's order of the terms (a stack feeding a reduction
    # fuses into it; the sum decides when a pair stops, so its rounding shows in the flow).
    error = jnp.sum(jnp.square(jnp.stack(u_new, axis=1) - jnp.stack(u, axis=1)), axis=(1, 2, 3))
    p_new = []
    for uc, (pcx, pcy) in zip(u_new, p):
        ux, uy = forward_gradient(uc)
        speed = jnp.hypot(ux, uy)
        if edge is not None:
            speed = speed / edge
        norm = 1.0 + taut * speed
        p_new.append(((pcx + taut * ux) / norm, (pcy + taut * uy) / norm))
    return u_new, tuple(p_new), error


def _solve_level(
    i0,
    i1,
    u,
    *,
    l_t,
    theta,
    taut,
    warps,
    epsilon,
    inner_iterations,
    outer_iterations,
    median_filtering,
    interpolation,
    border,
    compaction,
    steps_per_check,
    edge_weight=0.0,
    edge_power=2.0,
):
    """TV-L1 at one pyramid level. i0, i1: [P, H, W]; u: [P, 2, H, W] initial flow (px). Returns u.

    With ``compaction`` > 0 each outer iteration first gathers the pairs still active to the front and runs
    on the smallest of P, P/2, ..., P/2^compaction pairs that holds them all (one `lax.switch` branch per
    size), scattering the results back: a pair that has stopped costs nothing once few are left.
    ``steps_per_check`` primal-dual steps run per inner while-loop iteration (masked, so the same steps as
    one at a time): a GPU reads the loop's predicate back to the host once per iteration."""
    h, w = i0.shape[1:]
    i1x, i1y = centered_gradient(i1)
    i1_stack = jnp.stack([i1, i1x, i1y], axis=1)
    stop = np.float32(epsilon * epsilon * h * w)
    edge = edge_weights(i0, edge_weight, edge_power) if edge_weight > 0 else None
    step = functools.partial(primal_dual_step, l_t=l_t, theta=theta, taut=taut)
    num_pairs = i0.shape[0]
    sizes = [num_pairs >> j for j in range(compaction + 1) if num_pairs >> j]  # descending

    def one_warp(_, carry):
        u, p = carry  # u: [P, 2, H, W]; p: the dual variable as primal_dual_step takes it
        i1w, i1wx, i1wy = jnp.unstack(warp(i1_stack, u, interpolation, border), axis=1)
        grad = i1wx * i1wx + i1wy * i1wy
        rho_c = i1w - i1wx * u[:, 0] - i1wy * u[:, 1] - i0

        consts = (i1wx, i1wy, grad, rho_c, edge)

        def inner(consts, carry):
            k, u, p, active = carry
            for j in range(steps_per_check):  # unrolled: one loop predicate per steps_per_check steps
                due = k + j < inner_iterations  # past the schedule's end a step changes nothing
                live = active & due
                u_new, p_new, error = step(u, p, *consts)
                keep = functools.partial(jnp.where, live[:, None, None])
                u, p = jax.tree.map(keep, (u_new, p_new), (u, p))
                active = active & ((error > stop) | ~due)
                if steps_per_check > 1:
                    # Without the barrier XLA fuses consecutive steps' stencils and recomputes each step's
                    # fields at every neighbour of the next (on the CPU 9x the time per step at 6 steps).
                    u, p, active = jax.lax.optimization_barrier((u, p, active))
            return k + steps_per_check, u, p, active

        def outer_pass(consts, u, p, active):  # one outer iteration on any number of pairs
            if median_filtering > 1:
                filtered = median_filter(jnp.stack(u, axis=1), median_filtering)
                u = tuple(jnp.where(active[:, None, None], filtered[:, c], u[c]) for c in range(2))
            _, u, p, active = repeat(
                inner_iterations, functools.partial(inner, consts), (0, u, p, active), steps_per_check
            )
            return u, p, active

        def outer(carry):
            k, u, p, active = carry
            if len(sizes) == 1:
                return (k + 1, *outer_pass(consts, u, p, active))
            order = jnp.argsort(~active, stable=True)  # the active pairs first
            smaller = sum((jnp.sum(active) <= size).astype(jnp.int32) for size in sizes[1:])

            def on_the_first(size):
                def run(u, p, active):
                    take = lambda x: x[order[:size]]  # noqa: E731
                    part = outer_pass(*jax.tree.map(take, (consts, u, p, active)))
                    return jax.tree.map(lambda x, y: x.at[order[:size]].set(y), (u, p, active), part)

                return run

            return (k + 1, *jax.lax.switch(smaller, [on_the_first(size) for size in sizes], u, p, active))

        _, u, p, _ = repeat(
            outer_iterations, outer, (0, tuple(jnp.unstack(u, axis=1)), p, jnp.ones_like(i0[:, 0, 0], bool))
        )
        return jnp.stack(u, axis=1), p

    def repeat(n, body, carry, steps_per_body=1):  # body: carry -> carry, advancing carry[0] by steps_per_body
        if epsilon > 0:  # leave as soon as no pair is active
            return jax.lax.while_loop(lambda c: (c[0] < n) & jnp.any(c[3]), body, carry)
        # No stopping test: a static trip count (on a GPU a while loop reads its predicate every step).
        return jax.lax.fori_loop(0, -(-n // steps_per_body), lambda _, c: body(c), carry)

    zero = jnp.zeros_like(i0)
    u, _ = jax.lax.fori_loop(0, warps, one_warp, (u, ((zero, zero), (zero, zero))))
    return u


def edge_weights(i0: jax.Array, edge_weight: float, edge_power: float) -> jax.Array:
    """g = exp(-edge_weight * (|grad i0| / 255)^edge_power), [P, H, W] in (0, 1]: the weight of an image-driven
    TV (Wedel et al. 2009; Werlberger et al. 2009). Where the first frame has an edge the flow may jump at a
    lower price, so a thin object's motion is not averaged away with its background. i0: [P, H, W], 0..255."""
    gx, gy = centered_gradient(i0)
    magnitude = jnp.hypot(gx, gy) * (1.0 / 255.0)
    # The floor keeps the dual update finite where a strong edge and a large weight underflow exp to 0.
    return jnp.maximum(jnp.exp(-edge_weight * magnitude**edge_power), 1e-3)


@functools.partial(
    jax.jit,
    static_argnames=(
        "tau",
        "lambda_",
        "theta",
        "nscales",
        "warps",
        "epsilon",
        "inner_iterations",
        "outer_iterations",
        "scale_step",
        "median_filtering",
        "interpolation",
        "border",
        "compaction",
        "steps_per_check",
        "edge_weight",
        "edge_power",
    ),
)
def tvl1_flow(
    i0: jax.Array,
    i1: jax.Array,
    *,
    tau: float = 0.25,
    lambda_: float = 0.15,
    theta: float = 0.3,
    nscales: int = 5,
    warps: int = 5,
    epsilon: float = 0.01,
    inner_iterations: int = 30,
    outer_iterations: int = 10,
    scale_step: float = 0.8,
    median_filtering: int = 5,
    interpolation: str = "cubic",
    border: str = "zero",
    compaction: int = 0,
    steps_per_check: int = 1,
    edge_weight: float = 0.0,
    edge_power: float = 2.0,
    initial_flow: jax.Array | None = None,
) -> jax.Array:
    """Dual TV-L1 optical flow from ``i0`` to ``i1`` for a batch of pairs, with OpenCV's defaults.

    Args:
      i0, i1: [P, H, W] grey frames, intensities on the 0..255 scale (uint8 or float; lambda_ assumes
        that scale, as OpenCV, which multiplies float input by 255). H, W >= 16 px is not required, but
        the pyramid then has one level.
      tau, lambda_, theta: time step, data weight, coupling (OpenCV: 0.25, 0.15, 0.3).
      nscales, scale_step: pyramid levels (at most) and size ratio between levels (5, 0.8).
      warps, outer_iterations, inner_iterations: per level; median filter before each outer iteration.
      epsilon: stop a pair's warp when its mean squared flow change per step is <= epsilon^2 (px^2).
      median_filtering: median window (px, odd) applied to the flow; <= 1 disables it.
      interpolation, border: see :func:`warp` (OpenCV: "cubic", "zero").
      compaction: 0, or k > 0 to run each outer iteration on only the first P / 2^j pairs (j <= k, the
        smallest that holds every pair still active, gathered to the front): the batch then no longer costs
        its full size until its slowest pair stops. Same flow up to float rounding; k + 1 compiled copies of
        the inner loop per level. Within a device only: under a sharded batch the gather crosses devices.
      steps_per_check: inner primal-dual steps per test of "is any pair still active?" (>= 1). Each step
        still applies OpenCV's per-pair test, so the flow is the same for any value; larger values trade
        up to steps_per_check - 1 wasted (masked) steps per loop exit for fewer loop-predicate reads, which
        a GPU makes by a device-to-host copy per while-loop iteration.
      edge_weight, edge_power: 0 (OpenCV's TV), or the weight g = exp(-edge_weight (|grad i0| / 255)^edge_power)
        of an image-driven TV, sum g |grad u| (:func:`edge_weights`; not in OpenCV): the flow may break at the
        first frame's edges, at each pyramid level its own.
      initial_flow: None (start from zero flow), or [P, H, W, 2] px to start from, as OpenCV's
        ``useInitialFlow``: resized down the pyramid (bilinear, times ``scale_step`` per level) and solved
        from the coarsest level; with ``nscales=1`` the iterations start from it at full size.
    Returns:
      [P, H, W, 2] float32 flow (u, v) in px: pixel (x, y) of i0 is at (x + u, y + v) in i1.
    """
    if i0.shape != i1.shape or i0.ndim != 3:
        raise ValueError(f"i0 and i1 must both be [P, H, W], got {i0.shape} and {i1.shape}")
    if steps_per_check < 1:
        raise ValueError(f"steps_per_check must be >= 1, got {steps_per_check}")
    shapes = pyramid_shapes(i0.shape[1], i0.shape[2], nscales, scale_step)
    levels0, levels1 = [i0.astype(jnp.float32)], [i1.astype(jnp.float32)]
    for shape in shapes[1:]:
        levels0.append(resize_linear(levels0[-1], shape, scale_step))
        levels1.append(resize_linear(levels1[-1], shape, scale_step))
    solve = functools.partial(
        _solve_level,
        l_t=lambda_ * theta,
        theta=theta,
        taut=tau / theta,
        warps=warps,
        epsilon=epsilon,
        inner_iterations=inner_iterations,
        outer_iterations=outer_iterations,
        median_filtering=median_filtering,
        interpolation=interpolation,
        border=border,
        compaction=compaction,
        steps_per_check=steps_per_check,
        edge_weight=edge_weight,
        edge_power=edge_power,
    )
    if initial_flow is None:
        zero = jnp.zeros_like(levels0[-1])
        u = jnp.stack([zero, zero], axis=1)
    else:
        if initial_flow.shape != (*i0.shape, 2):
            raise ValueError(f"initial_flow must be [P, H, W, 2] = {(*i0.shape, 2)}, got {initial_flow.shape}")
        u = jnp.moveaxis(initial_flow.astype(jnp.float32), -1, 1)
        for shape in shapes[1:]:
            u = resize_linear(u, shape, scale_step) * scale_step
    for level in range(len(shapes) - 1, -1, -1):
        u = solve(levels0[level], levels1[level], u)
        if level:
            u = resize_linear(u, shapes[level - 1]) * (1.0 / scale_step)
    return jnp.moveaxis(u, 1, -1)
