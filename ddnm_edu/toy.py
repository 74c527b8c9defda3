"""Toy worlds with known answers.

* A two-dimensional world for watching a diffusion model learn in seconds (chapter 3): data points
  are 2-vectors stored as tiny "images" of shape (2, 1, 1), so the same schedule, loss and samplers
  as for real images apply unchanged.
* :class:`GaussianPrior`, an oracle: pixels x_0 ~ N(mean, std^2), independent, for which the MMSE
  estimate E[x_0 | x_t] (Tweedie's formula) and the ideal noise prediction are closed form. With
  x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps (ab = alpha_bar_t):

      E[x_0 | x_t] = mean + std^2 sqrt(ab) (x_t - sqrt(ab) mean) / (ab std^2 + 1 - ab)
      eps*(x_t, t) = (x_t - sqrt(ab) E[x_0 | x_t]) / sqrt(1 - ab)

  Samplers and uncertainty measures can be checked against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .errors import DDNMInputError
from .schedule import NoiseSchedule
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
        self.net = nn.Sequential(
            nn.Linear(2 + temb, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # (B, 2, 1, 1), (B,) -> (B, 2, 1, 1)
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        h = torch.cat([x.flatten(1), timestep_embedding(t, self.temb)], 1)
        return self.net(h).reshape(x.shape)


class GaussianPrior:
    """``model(x_t, t) -> eps`` for x_0 ~ N(mean, std^2 I): the exact noise prediction (an oracle)."""

    def __init__(self, sched: NoiseSchedule, mean: float = 0.0, std: float = 0.5):
        self.sched, self.mean, self.std = sched, float(mean), float(std)

    def _ab(self, t: Tensor | int, like: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=self.sched.alphas_cumprod.device).long().reshape(-1)
        ab = self.sched.alphas_cumprod[t].to(like.dtype).to(like.device)
        return ab.reshape(-1, *([1] * (like.ndim - 1)))

    def x0_mean(self, x_t: Tensor, t: Tensor | int) -> Tensor:
        """E[x_0 | x_t], Tweedie's formula for this prior."""
        ab, m, v = self._ab(t, x_t), self.mean, self.std**2
        return m + v * ab.sqrt() * (x_t - ab.sqrt() * m) / (ab * v + 1 - ab)

    def __call__(self, x_t: Tensor, t: Tensor | int) -> Tensor:
        ab = self._ab(t, x_t)
        return (x_t - ab.sqrt() * self.x0_mean(x_t, t)) / (1 - ab).sqrt()


class StationaryGaussianPrior:
    """``model(x_t, t) -> eps``, exact, for a smooth Gaussian random field seen through a ``size`` x ``size``
    window: x_0 ~ N(0, std^2 K (x) K) with K[i, j] = exp(-(i - j)^2 / (2 length^2)) along rows and columns.

    The field is the same at every place (stationary), so its ``size`` x ``size`` windows all have this
    law, whatever the size of the whole image: the oracle prior for testing window-by-window restoration
    (``mask_shift.py``) without a trained network's preferences. :meth:`draw` samples fields of any size.
    """

    def __init__(self, sched: NoiseSchedule, size: int = 32, length: float = 3.0, std: float = 0.5):
        if not (float(length) > 0 and float(std) > 0 and int(size) >= 1):
            raise DDNMInputError(
                f"StationaryGaussianPrior needs size >= 1, length > 0 and std > 0; got size {size}, "
                f"length {length}, std {std}."
            )
        self.sched, self.size, self.length, self.std = sched, int(size), float(length), float(std)
        self.lam, self.U = torch.linalg.eigh(self._K(self.size))  # K = U diag(lam) U^T

    def _K(self, n: int) -> Tensor:
        i = torch.arange(n, dtype=torch.float64)
        return torch.exp(-((i[:, None] - i[None, :]) ** 2) / (2 * self.length**2)) + 1e-9 * torch.eye(n)

    def draw(self, n: int, shape: tuple[int, int, int], seed: int = 0) -> Tensor:
        """n fields of shape (C, H, W), float32."""
        C, H, W = shape
        g = torch.Generator().manual_seed(seed)
        Lh, Lw = torch.linalg.cholesky(self._K(H)), torch.linalg.cholesky(self._K(W))
        w = torch.randn(n, C, H, W, generator=g, dtype=torch.float64)
        return (self.std * Lh @ w @ Lw.T).float()

    def __call__(self, x_t: Tensor, t: Tensor | int) -> Tensor:
        if x_t.shape[-2:] != (self.size, self.size):
            raise DDNMInputError(
                f"this oracle is for {self.size}x{self.size} windows; x_t is {x_t.shape[-1]}x{x_t.shape[-2]}."
            )
        dev = x_t.device
        t = torch.as_tensor(t).long().reshape(-1).cpu()
        ab = self.sched.alphas_cumprod[t].reshape(-1, 1, 1, 1).to(dev)  # float64
        U, lam = self.U.to(dev), self.lam.to(dev)
        v = self.std**2 * lam[:, None] * lam[None, :]  # eigenvalues of Cov(x_0)
        c = U.T @ x_t.double() @ U  # coordinates in the eigenbasis
        x0 = U @ (ab.sqrt() * v / (ab * v + 1 - ab) * c) @ U.T  # E[x_0 | x_t] (Tweedie, Gaussian prior)
        return ((x_t.double() - ab.sqrt() * x0) / (1 - ab).sqrt()).to(x_t.dtype)
