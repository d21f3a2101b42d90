"""TA²Net: three per-frame encoders, cross-modal attention, a temporal and a spatial head.

    video [B,T,H,W,3] ──video_net──────────────► x_v [B,T,h,w,P] ─┬───────────────┐
    motion [B,T,H,W,2C] ─flow_net(fwd half) ┐                      │               │
                         flow_net(bwd half) ┴─► f  [B,T,h,w,2P] ─► v2f(x_v, f) ───┤ concat → x_fuse [B,T,h,w,3P]
    inflection ──────────d2f_net(fwd half) ┐                       │               │
                         d2f_net(bwd half) ┴─► df [B,T,h,w,2P] ─► v2df(x_v, df) ──┘
    x_fuse → sim_decoder → logits [B,T,2]         (temporal head: which frames are audible)
    x_fuse → disent      → fg, bg [B,T,3P], map [B,T,h,w]   (spatial head: where the sound comes from)

The flow and inflection trunks are each shared by the forward and backward halves and called twice,
each call with its own BatchNorm batch statistics (and two running-average updates), as the original.

In training the original also runs the decoder a second time, on the source map repeated to 3P channels
(`out_mlt` in models/mymodel.py). Its output enters no loss, but the pass updates the running statistics
of the decoder's two BatchNorms after the main pass has. `model.faithful_bn_side_pass=True` runs it the
same way (in training only, after the main pass, output discarded, no gradient); XLA removes everything
after the second BatchNorm since nothing reads it. Off, the eval-mode decoder sees different statistics
than a model trained by the original (docs/design.md, "Differences from the original that change training").
Submodule names follow the original's (`video_net`, `flow_net`, `d2f_net`, `v2f`, `v2df`,
`sim_decoder`, `disent`) so optimizer groups and checkpoint converters can key on them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ta2net_jax.mesh import batch_reshape
from ta2net_jax.model.attention import CrossModalAttention
from ta2net_jax.model.layers import batch_norm_variance, check_init
from ta2net_jax.model.resnet import PAPER_STRIDES, ResEncoder
from ta2net_jax.model.spatial_head import Disentangler
from ta2net_jax.model.temporal_head import SimilarityDecoder

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class TA2Net(nnx.Module):
    def __init__(self, config, *, rngs: nnx.Rngs):
        """config: the `model` ConfigDict (see configs/synthetic_small.py): num_frames, flow_channels, trunk,
        proj_features, qk_features, decoder, compute_dtype, attention_values ("video" as the original, or
        "motion": model/attention.py), init ("torch_default" as the original, or "kaiming": model/layers.py;
        default "kaiming"), faithful_bn_side_pass (default False; module docstring), bn_variance ("two_pass" as
        torch, or "one_pass": model/layers.py `batch_norm`; default "two_pass")."""
        dtype = DTYPES[config.compute_dtype]
        init = check_init(config.get("init", "kaiming"))
        trunk = dict(
            block=config.trunk.block,
            stem_width=config.trunk.stem_width,
            widths=tuple(config.trunk.widths),
            depths=tuple(config.trunk.depths),
            # The stages' strides (after the stem's /4): (1, 2, 2) is ResNet's /16 and the paper's 7×7 map at
            # 112²; (1, 2, 1) keeps /8, a map twice as fine for the same widths.
            strides=tuple(config.trunk.get("strides", PAPER_STRIDES)),
            proj_features=config.proj_features,
            dtype=dtype,
            init=init,
        )
        with batch_norm_variance(config.get("bn_variance", "two_pass")):
            p = config.proj_features
            self.video_net = ResEncoder(3, rngs=rngs, **trunk)
            self.flow_net = ResEncoder(config.flow_channels, rngs=rngs, **trunk)
            self.d2f_net = ResEncoder(config.flow_channels, rngs=rngs, **trunk)
            value_source = config.get("attention_values", "video")
            attention = dict(value_source=value_source, dtype=dtype, init=init, rngs=rngs)
            self.v2f = CrossModalAttention(p, 2 * p, config.qk_features, **attention)
            self.v2df = CrossModalAttention(p, 2 * p, config.qk_features, **attention)
            self.sim_decoder = SimilarityDecoder(
                3 * p, config.num_frames, dtype=dtype, init=init, rngs=rngs, **config.decoder
            )
            self.disent = Disentangler(3 * p, dtype=dtype, init=init, rngs=rngs)
        self.flow_channels = config.flow_channels
        self.faithful_bn_side_pass = bool(config.get("faithful_bn_side_pass", False))
        # Set with the BatchNorms' by `train()` / `eval()` (nnx.Module.set_attributes): the side pass runs
        # only when BatchNorm statistics are being updated.
        self.use_running_average = False

    def _two_halves(self, encoder: ResEncoder, x: jax.Array) -> jax.Array:
        c = self.flow_channels
        return jnp.concatenate([encoder(x[..., :c]), encoder(x[..., c:])], axis=-1)

    def __call__(self, video: jax.Array, motion: jax.Array, inflection: jax.Array) -> dict[str, jax.Array]:
        """video [B,T,H,W,3] in [0,1]; motion, inflection [B,T,H,W,2C] (inflection.py).

        Returns a dict: logits [B,T,2] float32 (background, audible); fg, bg [B,T,3P] float32;
        source_map [B,T,h,w] float32 in (0, 1) with h, w = H/16, W/16 (H/8, W/8 with trunk.strides (1, 2, 1)).
        """
        b, t = video.shape[:2]
        x_video = self.video_net(video)
        x_motion = self._two_halves(self.flow_net, motion)
        x_inflection = self._two_halves(self.d2f_net, inflection)
        fused = jnp.concatenate([x_video, self.v2f(x_video, x_motion), self.v2df(x_video, x_inflection)], axis=-1)
        logits = self.sim_decoder(fused)
        fg, bg, source_map = self.disent(batch_reshape(fused, (-1,) + fused.shape[2:]))
        if self.faithful_bn_side_pass and not self.use_running_average:
            self._bn_side_pass(batch_reshape(source_map, (b, t) + source_map.shape[1:]), fused.shape[-1])
        return {
            "logits": logits,
            "fg": batch_reshape(fg, (b, t, fg.shape[-1])),
            "bg": batch_reshape(bg, (b, t, bg.shape[-1])),
            "source_map": batch_reshape(source_map, (b, t) + source_map.shape[1:]),
        }

    def _bn_side_pass(self, source_map: jax.Array, channels: int) -> None:
        """The original's `out_mlt = sim_decoder(m.view(b, n, -1, 7, 7).repeat(1, 1, 768, 1, 1))`.

        source_map [B, T, h, w] → decoder input [B, T, h, w, channels] (the map in every channel). Only
        the BatchNorm updates it makes are kept; the output is dropped, so nothing reaches the loss, and
        the map is cut from the gradient since the original's unused output sends none back either.
        """
        x = jax.lax.stop_gradient(source_map)[..., None]
        self.sim_decoder(jnp.broadcast_to(x, x.shape[:-1] + (channels,)))
