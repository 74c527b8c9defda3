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
    """eps_theta(x_t, t) for 2-D points: an MLP on [Fourier features of x_t, sinusoidal embedding of t].

    The MLP sees the point through sin and cos of pi 2^k x_t for k = 0 .. octaves - 1 (Fourier
    features, NeRF's positional encoding; Tancik et al. 2020). On the raw coordinates alone the same MLP
    cannot place the spiral (points scattered 0.03 around its curve) finely enough: its samples stay a blob.
    """

    def __init__(self, hidden: int = 128, temb: int = 32, octaves: int = 6):
        super().__init__()
        self.temb = temb
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(octaves))
        self.net = nn.Sequential(
            nn.Linear(2 + 4 * octaves + temb, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def features(self, x: Tensor) -> Tensor:  # (B, 2) -> (B, 2 + 4 octaves)
        angles = (x[:, :, None] * self.freqs).flatten(1)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], 1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # (B, 2, 1, 1), (B,) -> (B, 2, 1, 1)
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        h = torch.cat([self.features(x.flatten(1)), timestep_embedding(t, self.temb)], 1)
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


class MixturePrior(GaussianPrior):
    """``model(x_t, t) -> eps`` for pixels drawn from a mixture of Gaussians, independently: x_0 ~ sum_k
    w_k N(m_k, s_k^2). Its E[x_0 | x_t] is not linear in x_t (chapter 3 draws it for two modes).

    Given x_t, mode k has posterior weight r_k proportional to w_k N(x_t; sqrt(ab) m_k, ab s_k^2 + 1 - ab),
    and within a mode the Gaussian answer applies (:class:`GaussianPrior`), so
    E[x_0 | x_t] = sum_k r_k (m_k + s_k^2 sqrt(ab) (x_t - sqrt(ab) m_k) / (ab s_k^2 + 1 - ab)).
    """

    def __init__(self, sched: NoiseSchedule, means, stds, weights=None):
        self.sched = sched
        self.means, self.stds = torch.as_tensor(means, dtype=torch.float64), torch.as_tensor(stds, dtype=torch.float64)
        k = len(self.means)
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else torch.as_tensor(weights)
        if self.stds.shape != (k,) or w.shape != (k,) or (self.stds <= 0).any() or (w < 0).any() or w.sum() <= 0:
            raise DDNMInputError("MixturePrior needs as many stds (> 0) and weights (>= 0) as means.")
        self.weights = (w / w.sum()).double()

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n pixels of x_0, float64, shaped (n, 1, 1, 1)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, generator=generator, dtype=torch.float64)
        return (self.means[k] + self.stds[k] * z).reshape(n, 1, 1, 1)

    def x0_mean(self, x_t: Tensor, t: Tensor | int) -> Tensor:
        """E[x_0 | x_t]: the modes' Gaussian answers, weighted by how well each explains x_t."""
        ab = self._ab(t, x_t)[..., None]  # a last axis for the modes
        x, m, v = x_t[..., None], self.means.to(x_t), self.stds.to(x_t) ** 2
        var = ab * v + 1 - ab  # of x_t given mode k
        logr = torch.log(self.weights.to(x_t)) - (x - ab.sqrt() * m) ** 2 / (2 * var) - 0.5 * torch.log(var)
        within = m + v * ab.sqrt() * (x - ab.sqrt() * m) / var
        return (torch.softmax(logr, -1) * within).sum(-1)


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
