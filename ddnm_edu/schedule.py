"""The forward process of DDPM and the one-step samplers built on it.

Notation (Ho et al. 2020, "DDPM"; Song et al. 2021, "DDIM"; Wang et al. 2023, "DDNM"):

* Timesteps are **0-indexed** as in diffusers and the DDNM code: ``t = 0`` is the
  first noise level and ``t = T - 1`` the last; "t = -1" stands for clean data
  with alpha_bar = 1. The library's ``t`` is the papers' t + 1 (the book's equations
  count like the papers: x_0 clean, t = 1..T; preface, "Timesteps: paper and code").
* In the library's indexing, written below with the library's t: ``betas[t]`` = beta_t,
  ``alphas[t]`` = alpha_t = 1 - beta_t, ``alphas_cumprod[t]`` = alpha_bar_t =
  prod_{i<=t} alpha_i (the papers' beta_{t+1}, alpha_{t+1} and alpha_bar_{t+1}).

All tables are float64 on the CPU; every method casts the entries it needs to
the dtype and device of its input, so the schedule works unchanged on CPU,
CUDA and MPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import DDNMInputError, check_int_range

Tensor = torch.Tensor
TimeLike = int | Tensor


def _as_index(t: TimeLike, T: int) -> int | Tensor:
    """One timestep as an int, several as a long tensor on the CPU; -1 is allowed (clean data)."""
    if isinstance(t, int) and not isinstance(t, bool):
        if not -1 <= t < T:
            raise DDNMInputError(f"timestep {t} out of range; use 0 <= t < T={T} (or -1 for clean data).")
        return t
    idx = torch.as_tensor(t).long().cpu()
    if (idx < -1).any() or (idx >= T).any():
        raise DDNMInputError(f"timestep(s) {idx.tolist()} out of range; use 0 <= t < T={T} (or -1 for clean data).")
    return idx


@dataclass
class NoiseSchedule:
    """A variance schedule beta_1..beta_T and everything derived from it.

    Build one with :meth:`linear` (DDPM / DDNM: beta from 1e-4 to 0.02) or
    :meth:`cosine` (Nichol & Dhariwal 2021).
    """

    betas: Tensor  # (T,) float64

    def __post_init__(self) -> None:
        b = torch.as_tensor(self.betas, dtype=torch.float64).cpu()
        if b.ndim != 1 or len(b) < 1 or not ((b > 0) & (b < 1)).all():
            raise DDNMInputError("betas must be a 1-D sequence with every entry in (0, 1).")
        self.betas = b
        self.alphas = 1.0 - b  # alpha_t
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)  # alpha_bar_t (DDPM eq. 4)
        # the same table with alpha_bar = 1 in front, for t = -1 (clean data): entry t + 1 is alpha_bar_t
        self._alpha_bar_from_clean = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])

    # ------------------------------------------------------------------ builders
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """Linear betas (DDPM section 4; the DDNM models use T=1000, 1e-4 -> 0.02)."""
        T = check_int_range(T, "T", 1)
        return cls(torch.linspace(beta_start, beta_end, T, dtype=torch.float64))

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """Cosine schedule: alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2) (Nichol & Dhariwal, eq. 17)."""
        T = check_int_range(T, "T", 1)
        f = lambda u: math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(T)]
        return cls(torch.tensor(betas, dtype=torch.float64))

    @property
    def T(self) -> int:
        return len(self.betas)

    # ------------------------------------------------------------------ lookups
    def alpha_bar(self, t: TimeLike, like: Tensor) -> Tensor:
        """alpha_bar_t broadcast to ``(B, 1, 1, 1)`` with the dtype/device of ``like``; t=-1 gives 1."""
        ab = self._alpha_bar_from_clean[_as_index(t, len(self.betas)) + 1]
        return ab.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def _table(self, table: Tensor, t: TimeLike, like: Tensor) -> Tensor:
        idx = torch.as_tensor(_as_index(t, self.T))
        if (idx < 0).any():
            raise DDNMInputError("this quantity is defined for t >= 0 only.")
        return table[idx].to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def snr(self, t: TimeLike) -> Tensor:
        """Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) (infinite at t = -1, clean data)."""
        ab = self._alpha_bar_from_clean[_as_index(t, self.T) + 1]
        return ab / (1 - ab)

    # ------------------------------------------------------------------ forward process
    def q_step(self, x_prev: Tensor, eps: Tensor, t: TimeLike) -> Tensor:
        """One forward step q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (DDPM eq. 2)."""
        a = self._table(self.alphas, t, x_prev)
        return a.sqrt() * x_prev + (1 - a).sqrt() * eps

    def add_noise(self, x0: Tensor, eps: Tensor, t: TimeLike) -> Tensor:
        """Closed form q(x_t | x_0): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (DDPM eq. 4)."""
        ab = self.alpha_bar(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def predict_x0(self, x_t: Tensor, eps: Tensor, t: TimeLike) -> Tensor:
        """x0_t = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)  (DDNM Algorithm 1, line 3)."""
        ab = self.alpha_bar(t, x_t)
        return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()

    def predict_eps(self, x_t: Tensor, x0: Tensor, t: TimeLike) -> Tensor:
        """Invert add_noise for eps: eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)."""
        ab = self.alpha_bar(t, x_t)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    # ------------------------------------------------------------------ posterior
    def posterior_coefs(
        self, t: TimeLike, like: Tensor, t_next: TimeLike | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Coefficients of q(x_s | x_t, x_0) = N(c0 x_0 + ct x_t, var I) for s = t_next < t.

        With s = t - 1 this is DDPM eq. 7:
        c0 = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t),
        ct = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t),
        var = beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t.
        For a skipped step s < t - 1 the same formulas hold with
        beta = 1 - alpha_bar_t / alpha_bar_s (the forward jump s -> t is Gaussian too).
        """
        idx = _as_index(t, self.T)
        s = idx - 1 if t_next is None else _as_index(t_next, self.T)
        ab_t, ab_s = self.alpha_bar(idx, like), self.alpha_bar(s, like)
        beta = 1 - ab_t / ab_s
        c0 = ab_s.sqrt() * beta / (1 - ab_t)
        ct = (1 - beta).sqrt() * (1 - ab_s) / (1 - ab_t)
        var = (1 - ab_s) / (1 - ab_t) * beta
        return c0, ct, var

    def posterior_mean(self, x0: Tensor, x_t: Tensor, t: TimeLike) -> Tensor:
        """mu~_t(x_t, x_0) in the x_0 / x_t form (DDPM eq. 7)."""
        c0, ct, _ = self.posterior_coefs(t, x_t)
        return c0 * x0 + ct * x_t

    def posterior_mean_eps(self, x_t: Tensor, eps: Tensor, t: TimeLike) -> Tensor:
        """mu~_t in the eps form: (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) (DDPM eq. 11)."""
        a = self._table(self.alphas, t, x_t)
        ab = self.alpha_bar(t, x_t)
        return (x_t - (1 - a) / (1 - ab).sqrt() * eps) / a.sqrt()

    def posterior_variance(self, t: TimeLike, like: Tensor | None = None) -> Tensor:
        """beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t (DDPM eq. 7)."""
        like = torch.zeros(1, dtype=torch.float64) if like is None else like
        return self.posterior_coefs(t, like)[2]

    # ------------------------------------------------------------------ sampling
    def timesteps(self, steps: int) -> list[int]:
        """The skipped ("leading") timestep sequence, largest first, as DDIM / DDNM use.

        ``steps`` timesteps ``0, k, 2k, ...`` with ``k = T // steps``, reversed.
        The timesteps diffusers' ``DDIMScheduler.set_timesteps(steps)`` stores in
        ``scheduler.timesteps`` (timestep_spacing="leading"), and the DDNM code's
        ``range(0, T, skip)``; this method only returns them.
        """
        steps = check_int_range(steps, "steps", 1, self.T, f" Choose 1 <= steps <= T={self.T}.")
        k = self.T // steps
        return [i * k for i in range(steps)][::-1]

    def timestep_pairs(self, steps: int) -> list[tuple[int, int]]:
        """Consecutive (t, t_next) pairs of :meth:`timesteps`, the last one ending at -1 (clean data)."""
        ts = self.timesteps(steps)
        return list(zip(ts, ts[1:] + [-1]))

    def step_coefs(self, t: int, t_next: int, eta: float, kind: str = "ddim") -> "StepCoefs":
        """Coefficients of one reverse step t -> t_next (numbers, computed in float64), written as

            x_{t_next} = c_x0 * x0_t + c_eps * eps + c_xt * x_t + sigma * z,   z ~ N(0, I).

        ``kind="ddim"`` (the eps form used by the DDNM code):
            c_x0 = sqrt(alpha_bar_s), c_eps = sqrt(1 - alpha_bar_s - sigma^2), c_xt = 0,
            with the **DDNM/DDRM eta convention** sigma = eta * sqrt(1 - alpha_bar_s):
            eta = 0 is deterministic, eta = 1 replaces the whole noise part with fresh noise.
        ``kind="ddim-paper"``: same step with the DDIM paper's convention
            sigma = eta * sqrt((1 - alpha_bar_s)/(1 - alpha_bar_t)) * sqrt(1 - alpha_bar_t/alpha_bar_s)
            (eta = 1 is DDPM's posterior variance; this is what diffusers' DDIMScheduler uses).
        ``kind="ddpm"``: ancestral sampling from the posterior q(x_s | x_t, x0_t) (DDPM eq. 6-7),
            c_x0, c_xt, sigma^2 from :meth:`posterior_coefs`; ``eta`` scales sigma.
        """
        if kind == "ddpm":
            c0, ct, var = (float(v) for v in self.posterior_coefs(t, torch.ones((), dtype=torch.float64), t_next))
            return StepCoefs(c_x0=c0, c_eps=0.0, c_xt=ct, sigma=eta * math.sqrt(var))
        T = len(self.betas)
        ab_t = float(self._alpha_bar_from_clean[_as_index(t, T) + 1])  # alpha_bar_t
        ab_s = float(self._alpha_bar_from_clean[_as_index(t_next, T) + 1])  # 1 at t_next = -1
        if kind == "ddim":
            sigma = eta * math.sqrt(1 - ab_s)
        elif kind == "ddim-paper":
            sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))
        else:
            raise DDNMInputError(f"unknown step kind {kind!r}; use 'ddim', 'ddim-paper' or 'ddpm'.")
        c_eps = math.sqrt(max(1 - ab_s - sigma**2, 0.0))
        return StepCoefs(c_x0=math.sqrt(ab_s), c_eps=c_eps, c_xt=0.0, sigma=sigma)

    def step(
        self,
        eps: Tensor,
        t: int,
        x_t: Tensor,
        t_next: int | None = None,
        eta: float = 0.0,
        kind: str = "ddim",
        noise: Tensor | None = None,
        x0: Tensor | None = None,
    ) -> Tensor:
        """One reverse step x_t -> x_{t_next} (default ``t_next = t - 1``), see :meth:`step_coefs`.

        ``x0`` overrides the model's estimate x0_t (DDNM passes the rectified x0_hat here).
        """
        t_next = t - 1 if t_next is None else t_next
        c = self.step_coefs(t, t_next, eta, kind)
        x0 = self.predict_x0(x_t, eps, t) if x0 is None else x0
        if noise is None:
            noise = torch.randn_like(x_t) if c.sigma > 0 else torch.zeros_like(x_t)
        return c.apply(x0, eps, x_t, noise)

    def forward_jump(self, x_s: Tensor, s: int, t: int, noise: Tensor) -> Tensor:
        """q(x_t | x_s) for s < t: x_t = sqrt(alpha_bar_t/alpha_bar_s) x_s + sqrt(1 - alpha_bar_t/alpha_bar_s) z.

        Used by time travel (RePaint / DDNM+) to go back to a noisier timestep.
        """
        r = self.alpha_bar(t, x_s) / self.alpha_bar(s, x_s)
        return r.sqrt() * x_s + (1 - r).sqrt() * noise


@dataclass
class StepCoefs:
    """x_next = c_x0 * x0 + c_xt * x_t + c_eps * eps + sigma * z (:meth:`NoiseSchedule.step_coefs`)."""

    c_x0: float
    c_eps: float
    c_xt: float  # 0 except for DDPM steps
    sigma: float  # std of the fresh noise z

    def apply(self, x0: Tensor, eps: Tensor, x_t: Tensor, z: Tensor, noise_scale: float = 1.0) -> Tensor:
        """The one reverse-step formula of the library: DDIM (eq. 12 of Song et al.), DDPM's posterior
        (eq. 6-7) and DDNM's line 5 (x0 = x0_hat). ``noise_scale`` scales the noise part, eps and z
        together (DDNM+'s scalar rule: sqrt(gamma_t) / B_t)."""
        x_next = self.c_x0 * x0 + (noise_scale * self.c_eps) * eps + (noise_scale * self.sigma) * z
        if self.c_xt:  # DDPM steps: the posterior mean also weighs x_t
            x_next = x_next + self.c_xt * x_t
        return x_next
