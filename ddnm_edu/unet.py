"""A small DDPM-style epsilon-prediction UNet (Ho et al. 2020, appendix B, shrunk).

Sinusoidal time embedding, residual blocks with GroupNorm + SiLU, self-attention
at the lowest resolution(s), skip connections by concatenation. About 1.7 M
parameters for the shipped 32x32 configurations; ``model(x_t, t) -> eps``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass
class UNetConfig:
    in_channels: int = 1
    image_size: int = 32
    ch: int = 32  # base width
    ch_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (8,)
    dropout: float = 0.0
    groups: int = 8

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ch_mult"], d["attn_resolutions"] = list(self.ch_mult), list(self.attn_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        d["ch_mult"], d["attn_resolutions"] = tuple(d["ch_mult"]), tuple(d["attn_resolutions"])
        return cls(**d)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (B,) timesteps -> (B, dim) (Transformer positional encoding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb: int, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(temb, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # x: (B, C, H, W), emb: (B, E)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm, self.qkv, self.proj = nn.GroupNorm(groups, c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)  # (B, HW, C)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # (B, HW, C)
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


class UNet(nn.Module):
    """eps_theta(x_t, t): (B, C, H, W), (B,) -> (B, C, H, W)."""

    def __init__(self, config: UNetConfig | None = None, **kwargs):
        super().__init__()
        cfg = config or UNetConfig(**kwargs)
        self.config = cfg
        ch, temb, g = cfg.ch, cfg.ch * 4, cfg.groups
        self.temb = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        chans, c, res = [ch], ch, cfg.image_size
        for i, m in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                blk = nn.ModuleList([ResBlock(c, ch * m, temb, g, cfg.dropout)])
                c = ch * m
                if res in cfg.attn_resolutions:
                    blk.append(AttnBlock(c, g))
                self.down.append(blk)
                chans.append(c)
            if i != len(cfg.ch_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                chans.append(c)
                res //= 2
        self.mid = nn.ModuleList(
            [ResBlock(c, c, temb, g, cfg.dropout), AttnBlock(c, g), ResBlock(c, c, temb, g, cfg.dropout)]
        )
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(cfg.ch_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                blk = nn.ModuleList([ResBlock(c + chans.pop(), ch * m, temb, g, cfg.dropout)])
                c = ch * m
                if res in cfg.attn_resolutions:
                    blk.append(AttnBlock(c, g))
                self.up.append(blk)
            if i != 0:
                self.up.append(
                    nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)])
                )
                res *= 2
        self.out = nn.Sequential(nn.GroupNorm(g, c), nn.SiLU(), nn.Conv2d(c, cfg.in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor | int) -> Tensor:
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        emb = self.temb(timestep_embedding(t, self.config.ch))  # (B, 4ch)
        h = self.conv_in(x)
        hs = [h]
        for blk in self.down:
            h = self._run(blk, h, emb)
            hs.append(h)
        h = self._run(self.mid, h, emb)
        for blk in self.up:
            if isinstance(blk[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(blk, h, emb)
        return self.out(h)

    @staticmethod
    def _run(blk: nn.ModuleList, h: Tensor, emb: Tensor) -> Tensor:
        for layer in blk:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in a network (a UNet or a Restormer)."""
    return sum(p.numel() for p in model.parameters())
