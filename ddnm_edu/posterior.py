"""What DDNM samples: K restorations of each y, their mean and spread, and how well the spread
predicts the error.

Every noise-free DDNM sample satisfies A x_hat = y, so its range part A^dagger A x_hat = A^dagger y is
the same in every sample: K samples differ only in their null parts, and their per-pixel spread is
the uncertainty that y leaves -- zero in the range directions (:meth:`Samples.spread_parts`).
Whether that spread is the *posterior's* is another matter: DDNM is not proven to sample
p(x | y), so :meth:`Samples.calibration` measures how well the spread predicts the actual error.

If the samples were exact posterior samples, one sample would have twice the expected squared error
of the posterior mean (E||x_s - x||^2 = 2 E||E[x|y] - x||^2: about 3.01 dB below it in PSNR), and the
mean of K samples (1 + 1/K) times it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import DDNMInputError, check_int_range
from .operators import LinearOperator
from .sampling import Model, SamplerSettings, ddnm_plus
from .schedule import NoiseSchedule

Tensor = torch.Tensor


@dataclass
class Samples:
    """K restorations of each of N measurements: ``samples`` is (N, K, C, H, W)."""

    samples: Tensor
    nfe: int  # model calls per sample

    @property
    def k(self) -> int:
        return self.samples.shape[1]

    @property
    def mean(self) -> Tensor:
        """(N, C, H, W): the mean of the K samples."""
        return self.samples.mean(1)

    @property
    def std(self) -> Tensor:
        """(N, C, H, W): the per-pixel standard deviation of the K samples (with Bessel's correction)."""
        if self.k < 2:
            raise DDNMInputError("the spread of samples needs k >= 2 samples per image.")
        return self.samples.std(1)

    def spread_parts(self, op: LinearOperator) -> tuple[Tensor, Tensor]:
        """Per-pixel std of the samples' range parts A^dagger A x_k and of their null parts
        (I - A^dagger A) x_k, each (N, C, H, W). For noise-free DDNM the range part's is 0."""
        flat = self.samples.flatten(0, 1)
        rng = op.range_part(flat).reshape(self.samples.shape)
        return rng.std(1), (self.samples - rng).std(1)

    def calibration(self, x: Tensor, width: float = 2.0, floor: float = 1e-6) -> dict[str, float]:
        """How well the spread predicts the error of the mean, against the truth x (N, C, H, W).

        * ``coverage``: the fraction of pixels with |x - mean| <= width * std, over the pixels where the
          samples disagree (std > ``floor``). For Gaussian errors whose std the spread gets right it is
          P(|Z| <= width / sqrt(1 + 1/K)): 0.950 for width 2 and K = 64 (the mean's own error adds 1/K).
        * ``expected``: that Gaussian value, for comparison.
        * ``spearman``: the rank correlation between std and |x - mean| over pixels, averaged over images
          (does the spread point at the pixels that are wrong?).
        * ``uncertain``: the fraction of pixels with std > ``floor``.
        """
        mean = self.mean
        if x.shape != mean.shape:
            raise DDNMInputError(f"x has shape {tuple(x.shape)}; the samples' mean has {tuple(mean.shape)}.")
        err, std = (x.to(self.samples) - mean).abs(), self.std
        where = std > floor
        covered = (err <= width * std)[where].float().mean().item() if bool(where.any()) else float("nan")
        z = width / (1 + 1 / self.k) ** 0.5
        expected = torch.erf(torch.tensor(z / 2 ** 0.5)).item()
        ranks = [_spearman(s[w], e[w]) for s, e, w in zip(std, err, where) if int(w.sum()) > 2]
        return {"coverage": covered, "expected": expected, "uncertain": where.float().mean().item(),
                "spearman": sum(ranks) / len(ranks) if ranks else float("nan")}


def _spearman(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation of two 1-D samples (ties broken by order)."""
    ra, rb = (v.argsort().argsort().double() for v in (a.flatten(), b.flatten()))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp(min=1e-30))


def posterior_samples(model: Model, sched: NoiseSchedule, op: LinearOperator, y: Tensor, k: int = 8,
                      sigma_y: float = 0.0, steps: int = 100, settings: SamplerSettings | None = None,
                      seed: int = 0, progress: bool = False) -> Samples:
    """K DDNM(+) restorations of each y (N, ...) drawn as one batch of N K images.

    Sample j of image i uses seed ``seed + j``: it equals ``ddnm_plus(model, sched, op, y[i:i+1],
    seed=seed + j, ...)`` run alone (per-image generators, :func:`sampling.generators`), so K samples
    cost one batched run, not K runs.
    """
    k = check_int_range(k, "k", 1, 4096, " Use k >= 2 for a spread.")
    if not isinstance(y, torch.Tensor) or y.ndim < 2:
        raise DDNMInputError("y must be a batch tensor (N, ...); use y[None] for one measurement.")
    n = y.shape[0]
    seeds: Sequence[int] = [seed + j for _ in range(n) for j in range(k)]
    res = ddnm_plus(model, sched, op, y.repeat_interleave(k, dim=0), sigma_y=sigma_y, steps=steps,
                    settings=settings, seed=seeds, progress=progress)
    return Samples(res.x0_hat.reshape(n, k, *res.x0_hat.shape[1:]), res.nfe)
