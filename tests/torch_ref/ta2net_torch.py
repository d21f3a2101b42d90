"""TA²Net in PyTorch, written for this project's parity tests (runs in the separate PyTorch env).

The architecture and module names follow the original code (docs/original.md §5; module names
of models/mymodel.py, backbone.py and the TransRAC blocks), NCHW as PyTorch does, so a state_dict in
the original's format loads with `strict=True`. It is configured by the same `model` config dict as
the JAX model (ta2net_jax/model), so the small configurations can be checked too. `with_unused=True`
also builds what the original builds but never calls (layer4 and fc of each ResNet), to load and
write checkpoints of exactly the original's layout.

Initialisation is the original's: PyTorch's defaults everywhere, except the ResNet trunks' convolutions,
which get models/resnet.py's normal(0, √(2 / (k·k·out_channels))) (He-normal fan-out). In training,
`faithful_bn_side_pass` (the model config's key) adds the original's second decoder pass over the map
(`out_mlt`), whose output is dropped (the original's loss leaves it out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(inplanes, planes, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = _downsample(inplanes, planes * 4, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + identity)


def _downsample(inplanes, outplanes, stride):
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))


class ResEncoder(nn.Module):
    """backbone.py ResEncoder: [B, T, C, H, W] → [B·T, P, H/16, W/16]."""

    def __init__(self, in_channels, trunk, proj_features, with_unused=False):
        super().__init__()
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[trunk["block"]]
        stem = trunk["stem_width"]
        self.firstconv = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.firstbn = nn.BatchNorm2d(stem)
        features = stem
        widths, depths = list(trunk["widths"]), list(trunk["depths"])
        strides = [1, 2, 2]
        if with_unused:  # the original's ResNet-50 layer4 and fc, never called
            widths, depths, strides = widths + [widths[-1] * 2], depths + [3], strides + [2]
        for i, (width, depth, stride) in enumerate(zip(widths, depths, strides)):
            blocks = []
            for j in range(depth):
                blocks.append(block(features, width, stride if j == 0 else 1))
                features = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            if i == 2:
                trunk_features = features
        if with_unused:
            self.fc = nn.Linear(features, 1000)
        for module in self.modules():  # models/resnet.py's init loop; conv_256 (below) keeps torch's default
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
        self.conv_256 = nn.Conv2d(trunk_features, proj_features, 1, bias=False)
        self.bn_256 = nn.BatchNorm2d(proj_features)

    def forward(self, x):
        x = x.reshape(-1, *x.shape[2:])
        x = F.max_pool2d(F.relu(self.firstbn(self.firstconv(x))), 3, 2, 1)
        x = self.layer3(self.layer2(self.layer1(x)))
        return F.relu(self.bn_256(self.conv_256(x)))


class SelfAttn(nn.Module):
    """mymodel.py Self_Attn: video queries, motion keys; values from video (or motion, our option)."""

    def __init__(self, in_dim, key_in_dim, qk_features, value_source="video"):
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, qk_features, 1)
        self.key_conv = nn.Conv2d(key_in_dim, qk_features, 1)
        self.value_conv = nn.Conv2d(in_dim if value_source == "video" else key_in_dim, in_dim, 1)
        self.qk_features, self.value_source = qk_features, value_source

    def forward(self, x, v):
        n, c, h, w = x.shape
        q = self.query_conv(x).view(n, -1, h * w).permute(0, 2, 1)
        k = self.key_conv(v).view(n, -1, h * w)
        attention = torch.softmax(torch.bmm(q, k) / math.sqrt(self.qk_features), dim=-1)
        value = self.value_conv(x if self.value_source == "video" else v).view(n, -1, h * w)
        return torch.bmm(value, attention.permute(0, 2, 1)).view(n, c, h, w)


class SimilarityMatrix(nn.Module):
    """TransRAC Similarity_matrix: softmax(q kᵀ / √scale²) per head; linear_v exists but is unused."""

    def __init__(self, features, heads, scale):
        super().__init__()
        self.linear_q = nn.Linear(features, features)
        self.linear_k = nn.Linear(features, features)
        self.linear_v = nn.Linear(features, features)
        self.heads, self.scale = heads, scale

    def forward(self, x):
        b, t, d = x.shape
        q = self.linear_q(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        k = self.linear_k(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        return torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / self.scale, dim=-1)  # [B, heads, T, T]


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout, max_len):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float64)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pe", pe.float()[:, None, :])

    def forward(self, x):  # sequence-first [T, B, d]
        return self.dropout(x + self.pe[: x.shape[0]])


class TransEncoder(nn.Module):
    def __init__(self, d_model, heads, ffn, dropout, num_frames, pe_dropout):
        super().__init__()
        self.pos_encoder = PositionalEncoding(d_model, pe_dropout, num_frames)
        layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, activation="relu")
        self.trans_encoder = nn.TransformerEncoder(layer, 1, nn.LayerNorm(d_model), enable_nested_tensor=False)

    def forward(self, x):
        return self.trans_encoder(self.pos_encoder(x))


class Prediction(nn.Module):
    def __init__(self, features, hidden, out, dropout):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(features, hidden),
            nn.LayerNorm(hidden),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden // 2, out),
        )

    def forward(self, x):
        return self.layers(x)


class SimilarityDecoder(nn.Module):
    def __init__(self, in_features, num_frames, d):
        super().__init__()
        self.conv3D = nn.Conv3d(in_features, d["conv_features"], 3, padding=(3, 1, 1), dilation=(3, 1, 1))
        self.bn1 = nn.BatchNorm3d(d["conv_features"])
        self.sims = SimilarityMatrix(d["conv_features"], d["sim_heads"], d["sim_scale"])
        self.conv3x3 = nn.Conv2d(d["sim_heads"], d["sim_features"], 3, padding=1)
        self.bn2 = nn.BatchNorm2d(d["sim_features"])
        self.dropout1 = nn.Dropout(d["sim_dropout"])
        self.input_projection = nn.Linear(num_frames * d["sim_features"], d["d_model"])
        self.ln1 = nn.LayerNorm(d["d_model"])
        self.transEncoder = TransEncoder(
            d["d_model"], d["attn_heads"], d["ffn_features"], d["attn_dropout"], num_frames, d["pe_dropout"]
        )
        self.cls = Prediction(d["d_model"], d["d_model"], 2, d["mlp_dropout"])

    def forward(self, x):  # [B, T, C, h, w]
        x = F.relu(self.bn1(self.conv3D(x.transpose(1, 2))))  # [B, C', T, h, w]
        x = torch.amax(x, dim=(3, 4)).transpose(1, 2)  # [B, T, C']
        x = F.relu(self.sims(x))  # [B, heads, T, T]
        x = self.dropout1(F.relu(self.bn2(self.conv3x3(x))))  # [B, S, T, T]
        x = x.permute(0, 2, 3, 1).flatten(start_dim=2)  # [B, T, T·S]
        x = self.ln1(F.relu(self.input_projection(x)))
        x = self.transEncoder(x.transpose(0, 1)).transpose(0, 1)
        return self.cls(x)


class Disentangler(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.activation_head = nn.Conv2d(features, 1, 3, padding=1, bias=False)
        self.bn_head = nn.BatchNorm2d(1)

    def forward(self, x):
        n, c, h, w = x.shape
        m = torch.sigmoid(self.bn_head(self.activation_head(x)))
        flat = x.reshape(n, c, h * w).permute(0, 2, 1)
        m_ = m.reshape(n, 1, h * w)
        return (
            (torch.matmul(m_, flat) / (h * w)).reshape(n, -1),
            (torch.matmul(1 - m_, flat) / (h * w)).reshape(n, -1),
            m,
        )


class TA2Net(nn.Module):
    """mymodel.py MyModel: inputs video [B,T,3,H,W], diff and d2f [B,T,2C,H,W] (forward half first)."""

    def __init__(self, cfg, with_unused=False):
        super().__init__()
        c, p = cfg["flow_channels"], cfg["proj_features"]
        self.video_net = ResEncoder(3, cfg["trunk"], p, with_unused)
        self.flow_net = ResEncoder(c, cfg["trunk"], p, with_unused)
        self.d2f_net = ResEncoder(c, cfg["trunk"], p, with_unused)
        self.sim_decoder = SimilarityDecoder(3 * p, cfg["num_frames"], cfg["decoder"])
        self.disent = Disentangler(3 * p)
        value_source = cfg.get("attention_values", "video")
        self.v2f = SelfAttn(p, 2 * p, cfg["qk_features"], value_source)
        self.v2df = SelfAttn(p, 2 * p, cfg["qk_features"], value_source)
        self.c = c
        self.faithful_bn_side_pass = bool(cfg.get("faithful_bn_side_pass", False))

    def forward(self, video, diff, d2f):
        b, t = video.shape[:2]
        x = self.video_net(video)
        f = torch.cat((self.flow_net(diff[:, :, : self.c]), self.flow_net(diff[:, :, self.c :])), dim=1)
        df = torch.cat((self.d2f_net(d2f[:, :, : self.c]), self.d2f_net(d2f[:, :, self.c :])), dim=1)
        fused = torch.cat((x, self.v2f(x, f), self.v2df(x, df)), dim=1)  # [B·T, 3P, h, w]
        out = self.sim_decoder(fused.view(b, t, *fused.shape[1:]))
        fg, bg, m = self.disent(fused)
        if self.training and self.faithful_bn_side_pass:  # mymodel.py: out_mlt, in no loss
            self.sim_decoder(m.view(b, t, -1, *m.shape[2:]).repeat(1, 1, fused.shape[1], 1, 1))
        return {
            "logits": out,
            "fg": fg.view(b, t, -1),
            "bg": bg.view(b, t, -1),
            "source_map": m.view(b, t, *m.shape[2:]),
        }


# ---- the original's loss (docs/original.md §6), with the choices of ta2net_jax/losses.py -------------


def _cos(a, b):
    return torch.clamp(F.normalize(a, dim=1) @ F.normalize(b, dim=1).T, 0.0005, 0.9995)


def sim_max(x, alpha=0.25):
    sim = _cos(x, x)
    _, order = sim.sort(descending=True, dim=1)
    _, rank = order.sort(dim=1)
    return torch.mean(torch.exp(-alpha * (rank.float() - 1)) * -torch.log(sim))


def sim_min(bg, fg):
    return torch.mean(-torch.log(1 - _cos(bg, fg)))


def ta2net_loss(out, labels, fb_index, cfg):
    """labels [B, T] int64; fb_index [B] (the sampled audible frame per clip). Returns dict of weighted terms."""
    logits = out["logits"].to(torch.promote_types(out["logits"].dtype, torch.float32))  # float64 stays
    log_p = F.log_softmax(logits, dim=-1)
    log_p_y = log_p.gather(-1, labels[..., None])[..., 0]
    focal = torch.mean((1 - log_p_y.exp()) ** cfg["focal_gamma"] * -log_p_y)
    r = cfg["blur_radius"]
    d = torch.arange(-r, r + 1, dtype=torch.float64)
    kernel = torch.exp(-(d**2) / (2 * cfg["blur_sigma"] ** 2)).float()
    g = torch.clamp(F.conv1d(labels.float()[:, None], kernel[None, None], padding=r)[:, 0], 0, 1)
    soft_ce = torch.mean(-((1 - g) * log_p[..., 0] + g * log_p[..., 1]))
    rows = torch.arange(labels.shape[0])
    fg, bg = out["fg"][rows, fb_index], out["bg"][rows, fb_index]
    fb = sim_max(fg, cfg["fb_rank_alpha"]) + sim_min(bg, fg) + sim_max(bg, cfg["fb_rank_alpha"])
    m = out["source_map"]
    tmp = cfg["tmp_inner_weight"] * torch.sum(torch.abs(m[:, 2:] + m[:, :-2] - 2 * m[:, 1:-1]))
    return {
        "focal": focal,
        "soft_ce": cfg["soft_ce_weight"] * soft_ce,
        "fb": cfg["fb_weight"] * fb,
        "tmp": cfg["tmp_weight"] * tmp,
    }
