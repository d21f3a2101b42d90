"""TV-L1's primal-dual step as one Pallas kernel (Triton backend, for NVIDIA GPUs).

Why: as XLA compiles it on a GPU, :func:`input_pipeline.flow_jax.primal_dual_step` is three kernels that
pass the new flow and its change through memory (0.39 ms per step for 1,024 pairs at 112² on an H200,
against 0.17 ms for reading the step's inputs and writing its outputs once: benchmarks/RESULTS.md). Here
one kernel reads u, p and the four per-warp constants and writes the new u, p and per-block sums of the
flow's change: each program recomputes the new flow at the pixel, its right neighbour and the one below
(what the forward gradient of the dual update needs) from loads at shifted offsets, which the GPU's
caches serve, instead of a round trip through memory.

Layout ("flat"): each field of a pair is one row of ``[P, L]``: the image's H x W pixels row-major from
column ``margin`` on, with at least W + 1 unused entries before and after, so that every load of a block
and its shifted neighbours stays inside the row (Pallas' interpreter, used on the CPU in the tests, clamps
out-of-range slices rather than masking them). Loads outside the image are masked to 0 (the zero boundary
of the divergence and forward gradient), so the unused entries are never read into a result.

Numerics: the same jnp expressions as ``primal_dual_step``, so the flow and dual variable agree with it to
float32 rounding (the compiler may contract multiply-adds). The per-pair change is summed per block of
pixels, then over blocks: another order than XLA's, which can move the iteration at which a pair stops by
one when its change sits at the threshold (as OpenCV's own order does).

The Triton backend of Pallas is deprecated in jax 0.12 (in favour of Mosaic GPU) but present in 0.11 and
0.12, the versions this project supports; on other platforms the kernel runs in Pallas' interpreter (slow:
for tests only).
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

BLOCK = 1024  # pixels per program: 8 per thread with 4 warps
NUM_WARPS = 4
_F32_EPS = float(np.finfo(np.float32).eps)


def flat_geometry(h: int, w: int, block: int = BLOCK) -> tuple[int, int, int]:
    """(margin, row length L, blocks per pair) of the flat layout of an H x W field."""
    margin = -(-(w + 1) // 32) * 32  # >= W + 1, 128-byte aligned
    blocks = -(-(h * w) // block)
    return margin, 2 * margin + blocks * block, blocks


def to_flat(x: jax.Array, block: int = BLOCK) -> jax.Array:
    """[P, H, W] -> [P, L] in the flat layout (zeros outside the image)."""
    p, h, w = x.shape
    margin, length, _ = flat_geometry(h, w, block)
    return jax.lax.pad(x.reshape(p, h * w), jnp.zeros((), x.dtype), [(0, 0, 0), (margin, length - margin - h * w, 0)])


def from_flat(x: jax.Array, h: int, w: int, block: int = BLOCK) -> jax.Array:
    """[P, L] in the flat layout -> [P, H, W]."""
    margin, _, _ = flat_geometry(h, w, block)
    return x[:, margin : margin + h * w].reshape(x.shape[0], h, w)


def _coefficient(rho, grad, l_t):
    """OpenCV's thresholding (estimateV) as ``primal_dual_step`` writes it: v = u + coef * grad(I1w)."""
    lg = l_t * grad
    fi = -rho / jnp.where(grad > _F32_EPS, grad, 1.0)
    return jnp.where(rho < -lg, l_t, jnp.where(rho > lg, -l_t, jnp.where(grad > _F32_EPS, fi, 0.0)))


def _step_kernel(active_ref, *refs, h, w, margin, block, l_t, theta, taut):
    (u1_ref, u2_ref, p11_ref, p12_ref, p21_ref, p22_ref, wx_ref, wy_ref, grad_ref, rho_ref) = refs[:10]
    (u1_out, u2_out, p11_out, p12_out, p21_out, p22_out, err_out) = refs[10:]
    pair, blk = pl.program_id(0), pl.program_id(1)
    k = blk * block + jax.lax.iota(jnp.int32, block)  # pixel index in the image
    row, col = k // w, k % w
    start = margin + blk * block
    inside = k < h * w
    right = inside & (col < w - 1)  # the pixel has a right neighbour
    below = inside & (row < h - 1)
    has_left, has_above = col > 0, row > 0

    def at(ref, offset, mask):
        return plgpu.load(ref.at[pair, pl.ds(start + offset, block)], mask=mask, other=0.0)

    def new_flow(offset, mask, div1, div2):
        """u_new at pixel k + offset (primal_dual_step's expressions), given the divergences there."""
        u1, u2 = at(u1_ref, offset, mask), at(u2_ref, offset, mask)
        wx, wy = at(wx_ref, offset, mask), at(wy_ref, offset, mask)
        grad = at(grad_ref, offset, mask)
        coef = _coefficient(at(rho_ref, offset, mask) + (wx * u1 + wy * u2), grad, l_t)
        return (u1, u2), (u1 + coef * wx + theta * div1, u2 + coef * wy + theta * div2)

    def divergences(px_ref, py_ref):
        """div p at k, k + 1 and k + W (zero p outside the image, as flow_jax_ops.divergence)."""
        px0, py0 = at(px_ref, 0, inside), at(py_ref, 0, inside)
        here = (px0 - at(px_ref, -1, inside & has_left)) + (py0 - at(py_ref, -w, inside & has_above))
        nxt = (at(px_ref, 1, right) - px0) + (at(py_ref, 1, right) - at(py_ref, 1 - w, right & has_above))
        down = (at(px_ref, w, below) - at(px_ref, w - 1, below & has_left)) + (at(py_ref, w, below) - py0)
        return (px0, py0), (here, nxt, down)

    p1, div1 = divergences(p11_ref, p12_ref)
    p2, div2 = divergences(p21_ref, p22_ref)
    (u1, u2), here = new_flow(0, inside, div1[0], div2[0])
    _, nxt = new_flow(1, right, div1[1], div2[1])
    _, down = new_flow(w, below, div1[2], div2[2])

    active = plgpu.load(active_ref.at[pl.ds(pair, 1)]) != 0  # [1]
    keep = functools.partial(jnp.where, active)
    change = jnp.square(here[0] - u1) + jnp.square(here[1] - u2)
    plgpu.store(err_out.at[pair, pl.ds(blk, 1)], jnp.sum(jnp.where(inside, change, 0.0), keepdims=True))
    dual = []
    for c, (px, py) in enumerate((p1, p2)):
        ux = jnp.where(right, nxt[c] - here[c], 0.0)
        uy = jnp.where(below, down[c] - here[c], 0.0)
        norm = 1.0 + taut * jnp.hypot(ux, uy)
        dual += [keep((px + taut * ux) / norm, px), keep((py + taut * uy) / norm, py)]
    outs = (keep(here[0], u1), keep(here[1], u2), *dual)
    for ref, value in zip((u1_out, u2_out, p11_out, p12_out, p21_out, p22_out), outs):
        plgpu.store(ref.at[pair, pl.ds(start, block)], value, mask=inside)


def primal_dual_step_flat(
    u, p, i1wx, i1wy, grad, rho_c, active, *, h: int, w: int, l_t: float, theta: float, taut: float,
    block: int = BLOCK, num_warps: int = NUM_WARPS,
):  # fmt: skip
    """One inner TV-L1 iteration on a batch in the flat layout, finished pairs left unchanged.

    Args:
      u: (u1, u2) flow components in px; p: ((p1x, p1y), (p2x, p2y)) dual variable; i1wx, i1wy, grad,
        rho_c: as :func:`input_pipeline.flow_jax.primal_dual_step`. Every field [P, L] (:func:`to_flat`
        of [P, H, W]).
      active: [P] bool; pairs where it is False keep their u and p.
      h, w: the image size (px). l_t = lambda theta, taut = tau / theta.
    Returns:
      (u, p, error): the new u and p (flat, as above; the entries outside the image are undefined), and
      error [P] = sum over pixels of |u_new - u|^2 (px^2), computed for every pair.
    """
    num_pairs, length = u[0].shape
    margin, expected, blocks = flat_geometry(h, w, block)
    if length != expected:
        raise ValueError(f"flat fields of a {h}x{w} image have length {expected}, got {length}")
    kernel = functools.partial(_step_kernel, h=h, w=w, margin=margin, block=block, l_t=l_t, theta=theta, taut=taut)
    field = jax.ShapeDtypeStruct((num_pairs, length), jnp.float32)
    interpret = jax.default_backend() != "gpu"
    with warnings.catch_warnings():  # jax 0.12's deprecation of the Triton backend, documented above
        warnings.simplefilter("ignore", DeprecationWarning)
        outs = pl.pallas_call(
            kernel,
            out_shape=(field,) * 6 + (jax.ShapeDtypeStruct((num_pairs, blocks), jnp.float32),),
            grid=(num_pairs, blocks),
            compiler_params=plgpu.CompilerParams(num_warps=num_warps),
            interpret=interpret,
            name="tvl1_primal_dual_step",
        )(active.astype(jnp.int32), *u, *p[0], *p[1], i1wx, i1wy, grad, rho_c)
    u1, u2, p11, p12, p21, p22, error = outs
    return (u1, u2), ((p11, p12), (p21, p22)), jnp.sum(error, axis=1)
