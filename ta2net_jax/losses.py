"""The original TA²Net training loss (docs/original.md §6), in float32.

    L = Focal(logits, y) + 0.1·SoftCE(logits, blur(y)) + 0.01·L_fb(fg, bg) + 0.002·L_tmp(map)

* Focal: γ = 2, no α, mean over all B·T frames (padded clip positions included, as the original).
* SoftCE: targets [1 − g, g], g = Σ of 7-tap exp(−d²/2σ²) kernels (σ = 2 frames) over positive frames,
  clipped to [0, 1].
* L_fb (CCAM, not InfoNCE): SimMax(FG) + SimMin(BG, FG) + SimMax(BG) over a set of N feature vectors.
  The released sampling crashes (§10.4). Choice (config `loss.fb_sampling`):
  - "audible_frame" (default): one randomly chosen audible frame per clip, N = global batch size —
    the vectors of *every* device enter every row (the arrays are global; under jit XLA all-gathers the
    column operand), so negatives come from all devices;
  - "all_frames": every frame of every clip, N = B·T.
  How the columns reach each device (config `loss.fb_gather`; the value is the same either way):
  - "gspmd" (default): global arrays, XLA all-gathers the column operand (an explicit reshard under
    an Explicit mesh);
  - "shard_map": per-device rows under `jax.shard_map`, fg and bg all-gathered (tiled) to all N
    columns, the sums psum'd over 'data' and divided by N² (jax_stack.md §9 "V2"). Needs N divisible
    by the number of devices on 'data'; without a mesh with a 'data' axis it is the plain computation.
* L_tmp: 0.1 · Σ |m_{k+1} + m_{k−1} − 2 m_k| summed over maps, with k running over frames *within* each
  clip. The original flattens B·T and so also differences across clip boundaries (a bug, choice 5);
  the sum (not mean) reduction is kept, so its effective weight is 2e-4 per element.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from ta2net_jax.mesh import DATA_AXIS, batch_reshape, is_explicit

COS_MIN, COS_MAX = 0.0005, 0.9995


def focal_loss(logits: jax.Array, labels: jax.Array, gamma: float = 2.0) -> jax.Array:
    """logits [..., 2], labels [...] in {0, 1} → scalar mean of (1 − p_y)^γ · (−log p_y)."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    log_p_y = jnp.take_along_axis(log_p, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.mean((1.0 - jnp.exp(log_p_y)) ** gamma * -log_p_y)


def gaussian_label_kernel(sigma: float = 2.0, radius: int = 3) -> np.ndarray:
    """[2·radius + 1] exp(−d²/(2σ²)); σ = 2 gives the original's [0.3247, 0.6065, 0.8825, 1, …]."""
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-(d**2) / (2 * sigma**2)).astype(np.float32)


def soft_labels(labels: jax.Array, sigma: float = 2.0, radius: int = 3) -> jax.Array:
    """labels [B, T] in {0, 1} → g [B, T]: kernels of all positives summed, then clipped to [0, 1]."""
    kernel = jnp.asarray(gaussian_label_kernel(sigma, radius))
    padded = jnp.pad(labels.astype(jnp.float32), ((0, 0), (radius, radius)))  # zeros beyond the clip
    blurred = jax.vmap(lambda y: jnp.convolve(y, kernel, mode="valid"))(padded)
    return jnp.clip(blurred, 0.0, 1.0)


def soft_cross_entropy(logits: jax.Array, soft_target: jax.Array) -> jax.Array:
    """logits [B, T, 2], g [B, T] → mean over frames of −[(1 − g) log p₀ + g log p₁]."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.mean(-((1.0 - soft_target) * log_p[..., 0] + soft_target * log_p[..., 1]))


def _unit_rows(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """a [N, D], b [M, D] → [N, M] cosine, clamped to [0.0005, 0.9995] (CCAM's `cos_simi`).

    With batch-sharded global arrays each device computes its rows against *all* M columns: under an
    Auto mesh XLA all-gathers b; under an Explicit mesh b is resharded to replicated here, because a
    product of two arrays sharded on the same axis has no legal output sharding.
    """
    a, b = _unit_rows(a), _unit_rows(b)
    if is_explicit():
        b = jax.reshard(b, P())
    return jnp.clip(a @ b.T, COS_MIN, COS_MAX)


def _rank_weighted_nll(sim: jax.Array, self_col: jax.Array, alpha: float) -> jax.Array:
    """sim [n, N] (rows against all N columns), self_col [n] → [n, N] exp(−α(r − 1)) · (−log S).

    r is the rank of a column in its row by descending similarity, with the row's own column
    (`self_col`) ranked first explicitly: the clamp makes it tie with near-duplicates, so ranks do not
    depend on the sort. Near-equal similarities can still swap ranks under float rounding, so runs that
    sum in another order (another device count) can part ways within steps: with α = 0 a 1- and a
    4-device run agree at step 3 to 1e-6, with α = 0.25 they differ by 1 % (tests/test_scaling.py).
    """
    is_self = jnp.arange(sim.shape[1])[None, :] == self_col[:, None]
    ranking_key = jnp.where(is_self, jnp.inf, jax.lax.stop_gradient(sim))
    order = jnp.argsort(-ranking_key, axis=1, stable=True)
    ranks = jnp.argsort(order, axis=1, stable=True).astype(jnp.float32)
    return jnp.exp(-alpha * (ranks - 1.0)) * -jnp.log(sim)


def sim_max_loss(x: jax.Array, alpha: float = 0.25) -> jax.Array:
    """CCAM SimMax over a set x [N, D]: mean_ij exp(−α(r_ij − 1)) · (−log S_ij) (self ranked first)."""
    return jnp.mean(_rank_weighted_nll(cosine_similarity(x, x), jnp.arange(x.shape[0]), alpha))


def sim_min_loss(bg: jax.Array, fg: jax.Array) -> jax.Array:
    """CCAM SimMin: mean_ij −log(1 − cos(bg_i, fg_j))."""
    return jnp.mean(-jnp.log(1.0 - cosine_similarity(bg, fg)))


def foreground_background_loss(fg: jax.Array, bg: jax.Array, alpha: float = 0.25) -> jax.Array:
    """L_fb = SimMax(FG) + SimMin(BG, FG) + SimMax(BG); fg, bg [N, D] (global arrays)."""
    fg, bg = fg.astype(jnp.float32), bg.astype(jnp.float32)
    return sim_max_loss(fg, alpha) + sim_min_loss(bg, fg) + sim_max_loss(bg, alpha)


def foreground_background_loss_shard_map(fg: jax.Array, bg: jax.Array, alpha: float = 0.25) -> jax.Array:
    """L_fb as `foreground_background_loss`, computed per device with `jax.shard_map` + all_gather.

    Uses the current mesh (`jax.set_mesh`); each device takes its n = N / devices rows of fg and bg
    (split on 'data') against all N gathered columns. Without a mesh with a 'data' axis this is the
    plain computation.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA_AXIS not in mesh.axis_names:
        return foreground_background_loss(fg, bg, alpha)
    fg, bg = fg.astype(jnp.float32), bg.astype(jnp.float32)
    num_devices = mesh.shape[DATA_AXIS]
    if fg.shape[0] % num_devices:
        raise ValueError(
            f"loss.fb_gather='shard_map': the contrastive set of {fg.shape[0]} vectors (one per clip of "
            f"the global batch, or per frame for all_frames) is not "
            f"divisible by the {num_devices} devices of the '{DATA_AXIS}' axis"
        )
    if is_explicit(mesh):  # shard_map asserts (does not apply) in_specs under Explicit axes
        fg, bg = jax.reshard(fg, P(DATA_AXIS)), jax.reshard(bg, P(DATA_AXIS))

    def local(fg, bg):  # [n, D] rows of this device
        n = fg.shape[0]
        fg, bg = _unit_rows(fg), _unit_rows(bg)
        fg_all = jax.lax.all_gather(fg, DATA_AXIS, axis=0, tiled=True)  # [N, D], device-major
        bg_all = jax.lax.all_gather(bg, DATA_AXIS, axis=0, tiled=True)
        self_col = jax.lax.axis_index(DATA_AXIS) * n + jnp.arange(n)

        def cos(a, b):
            return jnp.clip(a @ b.T, COS_MIN, COS_MAX)

        total = (
            jnp.sum(_rank_weighted_nll(cos(fg, fg_all), self_col, alpha))
            + jnp.sum(-jnp.log(1.0 - cos(bg, fg_all)))
            + jnp.sum(_rank_weighted_nll(cos(bg, bg_all), self_col, alpha))
        )
        big_n = fg_all.shape[0]
        return jax.lax.psum(total, DATA_AXIS) / (big_n * big_n)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(DATA_AXIS), P(DATA_AXIS)), out_specs=P())(fg, bg)


FB_GATHER = {"gspmd": foreground_background_loss, "shard_map": foreground_background_loss_shard_map}


def sample_audible_frames(labels: jax.Array, rng: jax.Array) -> jax.Array:
    """One uniformly random audible frame index per clip, [B] int; a random frame if a clip has none."""
    noise = jax.random.uniform(rng, labels.shape)
    if is_explicit():  # the draw is replicated; `where` needs both operands sharded alike
        noise = jax.reshard(noise, jax.typeof(labels).sharding.spec)
    return jnp.argmax(jnp.where(labels > 0, 1.0 + noise, noise), axis=1)


def map_smoothness_loss(source_map: jax.Array) -> jax.Array:
    """Σ |m_{k+1} + m_{k−1} − 2 m_k| over k inside each clip; source_map [B, T, h, w]."""
    m = source_map.astype(jnp.float32)
    return jnp.sum(jnp.abs(m[:, 2:] + m[:, :-2] - 2.0 * m[:, 1:-1]))


def contact_loss(source_map: jax.Array, contact_xy: jax.Array) -> jax.Array:
    """Weak supervision of the source map by exact contact points, at the frames that have one.

    source_map [B, T, h, w] in (0, 1); contact_xy [B, T, 2] (x / W, y / H) of the frame's contact, negative
    where it has none. Per such frame, a class-balanced binary cross-entropy: half −log m of the cell that
    holds the contact, half the mean −log(1 − m) of the other cells; averaged over those frames (0 if none).
    High m means "sounds here", so the map's polarity is fixed by construction.
    """
    h, w = source_map.shape[-2:]
    m = jnp.clip(source_map.astype(jnp.float32), 1e-6, 1.0 - 1e-6)
    x, y = contact_xy[..., 0], contact_xy[..., 1]
    has_contact = (x >= 0).astype(jnp.float32)
    row = jnp.clip(jnp.floor(y * h), 0, h - 1).astype(jnp.int32)
    col = jnp.clip(jnp.floor(x * w), 0, w - 1).astype(jnp.int32)
    target = (jnp.arange(h)[:, None] == row[..., None, None]) & (jnp.arange(w)[None, :] == col[..., None, None])
    positive = -jnp.sum(jnp.where(target, jnp.log(m), 0.0), axis=(-2, -1))
    negative = -jnp.sum(jnp.where(target, 0.0, jnp.log(1.0 - m)), axis=(-2, -1)) / max(h * w - 1, 1)
    per_frame = 0.5 * (positive + negative)
    return jnp.sum(per_frame * has_contact) / jnp.maximum(jnp.sum(has_contact), 1.0)


def ta2net_loss(
    outputs: dict, labels: jax.Array, rng: jax.Array, cfg, contact_xy: jax.Array | None = None
) -> tuple[jax.Array, dict]:
    """Total loss and its weighted terms.

    Args:
      outputs: TA2Net outputs (logits [B,T,2], fg/bg [B,T,D], source_map [B,T,h,w]).
      labels: [B, T] int in {0, 1}.
      rng: key for the contrastive frame sampling.
      cfg: the `loss` config (configs/common.py:paper_loss).
      contact_xy: [B, T, 2] contact points (contact_loss); needed when cfg.contact_weight > 0.
    Returns:
      (loss, terms) with terms = {focal, soft_ce, fb, tmp} as they enter the sum (weights applied), and
      `contact` when cfg.contact_weight > 0 (off in the paper's loss: the original has no such term).
    """
    logits = outputs["logits"]
    focal = focal_loss(logits, labels, cfg.focal_gamma)
    soft_ce = soft_cross_entropy(logits, soft_labels(labels, cfg.blur_sigma, cfg.blur_radius))
    if cfg.fb_sampling == "audible_frame":
        index = sample_audible_frames(labels, rng)[:, None, None]
        fg = jnp.take_along_axis(outputs["fg"], index, axis=1)[:, 0]
        bg = jnp.take_along_axis(outputs["bg"], index, axis=1)[:, 0]
    elif cfg.fb_sampling == "all_frames":
        fg = batch_reshape(outputs["fg"], (-1, outputs["fg"].shape[-1]))
        bg = batch_reshape(outputs["bg"], (-1, outputs["bg"].shape[-1]))
    else:
        raise ValueError(f"loss.fb_sampling {cfg.fb_sampling!r} is not 'audible_frame' or 'all_frames'")
    gather = cfg.get("fb_gather", "gspmd")
    if gather not in FB_GATHER:
        raise ValueError(f"loss.fb_gather {gather!r} is not one of {sorted(FB_GATHER)}")
    fb = FB_GATHER[gather](fg, bg, cfg.fb_rank_alpha)
    tmp = cfg.tmp_inner_weight * map_smoothness_loss(outputs["source_map"])
    terms = {
        "focal": focal,
        "soft_ce": cfg.soft_ce_weight * soft_ce,
        "fb": cfg.fb_weight * fb,
        "tmp": cfg.tmp_weight * tmp,
    }
    contact_weight = cfg.get("contact_weight", 0.0)
    if contact_weight:
        if contact_xy is None:
            raise ValueError(
                "loss.contact_weight > 0 needs contact points (batch 'contact_xy'); this dataset has none "
                "(only the synthetic datasets keep exact contact points): set --config.loss.contact_weight=0"
            )
        terms["contact"] = contact_weight * contact_loss(outputs["source_map"], contact_xy)
    return sum(terms.values()), terms
