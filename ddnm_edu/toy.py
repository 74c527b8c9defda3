"""A two-dimensional toy world for watching a diffusion model learn in seconds (chapter 3).

Data points are 2-vectors stored as tiny "images" of shape (2, 1, 1), so the same schedule,
loss and samplers as for real images apply unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .unet import timestep_embedding

Tensor = torch.Tensor


def spiral(n: int, seed: int = 0, noise: float = 0.03) -> Tensor:
    """n points on a spiral in [-1, 1]^2, shaped (n, 2, 1, 1)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, generator=g) * 3 * math.pi + 0.5 * math.pi
    xy = torch.stack([s * torch.cos(s), s * torch.sin(s)], 1) / (3.6 * math.pi)
    xy = xy + noise * torch.randn(xy.shape, generator=g)
    return xy[:, :, None, None]


class ToyDenoiser(nn.Module):
    """eps_theta(x_t, t) for 2-D points: an MLP on [x_t, sinusoidal embedding of t]."""

    def __init__(self, hidden: int = 128, temb: int = 32):
        super().__init__()
        self.temb = temb
        self.net = nn.Sequential(nn.Linear(2 + temb, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # (B, 2, 1, 1), (B,) -> (B, 2, 1, 1)
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        h = torch.cat([x.flatten(1), timestep_embedding(t, self.temb)], 1)
        return self.net(h).reshape(x.shape)
