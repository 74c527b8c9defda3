"""The training objectives: DDPM's denoising loss (chapter 3) and the EMA of the weights that ships.

The DDPM objective (Ho et al. 2020, Algorithm 1): sample x_0 from the data, t ~ U{0..T-1},
eps ~ N(0, I), and minimise || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2.
``python -m ddnm_edu.tools.train`` runs it on the book's datasets; the supervised specialists' L1 loss
is ``restormer.supervised_loss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedule import NoiseSchedule


def loss_weights(sched: NoiseSchedule, t: torch.Tensor, rule: str = "mse", gamma: float = 5.0) -> torch.Tensor:
    """Per-sample weight w_t of the eps-MSE, shape (B,).

    * ``"mse"``: w_t = 1 (DDPM's L_simple).
    * ``"min-snr"``: Min-SNR-gamma (Hang et al., ICCV 2023, eq. 9 for eps-prediction):
      w_t = min(SNR_t, gamma) / SNR_t with SNR_t = alpha_bar_t / (1 - alpha_bar_t). It down-weights the
      low-noise timesteps (SNR_t > gamma), whose eps-loss is large in gradient but easy.
    """
    if rule == "mse":
        return torch.ones(t.shape, dtype=torch.float32, device=t.device)
    if rule != "min-snr":
        raise ValueError(f"unknown loss rule {rule!r}; use 'mse' or 'min-snr'.")
    snr = sched.snr(t.cpu()).to(device=t.device, dtype=torch.float32)  # alpha_bar_t / (1 - alpha_bar_t)
    return snr.clamp(max=gamma) / snr


def diffusion_loss(
    model,
    sched: NoiseSchedule,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    rule: str = "mse",
    gamma: float = 5.0,
) -> torch.Tensor:
    """DDPM's simplified objective (Ho et al. 2020, Algorithm 1 / eq. 14):
    E_{t, eps} w_t || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2,
    w_t = 1 by default (see :func:`loss_weights` for Min-SNR-gamma)."""
    B = x0.shape[0]
    t = torch.randint(0, sched.T, (B,), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = sched.add_noise(x0, eps, t)
    pred = model(x_t, t)
    if rule == "mse":
        return F.mse_loss(pred.float(), eps)
    per_sample = (pred.float() - eps).pow(2).flatten(1).mean(1)  # (B,)
    return (loss_weights(sched, t, rule, gamma) * per_sample).mean()


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1 - decay)
