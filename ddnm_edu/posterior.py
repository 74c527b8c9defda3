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

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import DDNMInputError, check_int_range
from .operators import LinearOperator
from .rng import spawn, stream_ids
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
          samples disagree (std > ``floor``).
        * ``expected``: what ``coverage`` is for a calibrated spread (:func:`calibrated_coverage`).
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
        expected = calibrated_coverage(width, self.k)
        ranks = [_spearman(s[w], e[w]) for s, e, w in zip(std, err, where) if int(w.sum()) > 2]
        return {
            "coverage": covered,
            "expected": expected,
            "uncertain": where.float().mean().item(),
            "spearman": sum(ranks) / len(ranks) if ranks else float("nan"),
        }


def calibrated_coverage(width: float, k: int) -> float:
    """P(|x - mean| <= width * std) when x and the K samples are independent draws of one Gaussian.

    x - mean is N(0, sigma^2 (1 + 1/K)) (the mean's own error adds 1/K), and std^2 is sigma^2
    chi^2_{K-1} / (K - 1), independent of it, so (x - mean) / (std sqrt(1 + 1/K)) is Student's t with
    K - 1 degrees of freedom: the value is P(|T_{K-1}| <= width / sqrt(1 + 1/K)). For width 2 it is
    0.899 at K = 8, 0.929 at K = 16 and 0.948 at K = 64, approaching the Gaussian 0.954 as K grows.
    """
    k = check_int_range(k, "k", 2, 10**9, " The spread needs k >= 2 samples.")
    nu, z = k - 1, width / (1 + 1 / k) ** 0.5
    t = torch.linspace(0.0, z, 4001, dtype=torch.float64)  # Simpson's rule on the t density
    log_c = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    f = torch.exp(log_c - (nu + 1) / 2 * torch.log1p(t * t / nu))
    w = torch.ones_like(t)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return float(2 * (w * f).sum() * (z / 4000) / 3)


def _spearman(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation of two 1-D samples (ties broken by order)."""
    ra, rb = (v.argsort().argsort().double() for v in (a.flatten(), b.flatten()))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp(min=1e-30))


def posterior_samples(
    model: Model,
    sched: NoiseSchedule,
    op: LinearOperator,
    y: Tensor,
    *,
    k: int = 8,
    sigma_y: float = 0.0,
    steps: int = 100,
    settings: SamplerSettings | None = None,
    seed: int = 0,
    image_ids: Sequence[int] | None = None,
    progress: bool = False,
) -> Samples:
    """K DDNM(+) restorations of each y (N, ...) drawn as one batch of N K images.

    Sample j of image i draws from its own stream ``rng.spawn(seed, "image", image_ids[i], "sample",
    j)`` (``image_ids`` default 0..N-1; the command passes each file's index in a folder): it equals
    ``ddnm_plus(model, sched, op, y[i:i+1], generator=that stream, ...)`` run alone, so K samples
    cost one batched run, not K runs, and no two samples of any images share noise.
    """
    k = check_int_range(k, "k", 1, 4096, " Use k >= 2 for a spread.")
    if not isinstance(y, torch.Tensor) or y.ndim < 2:
        raise DDNMInputError("y must be a batch tensor (N, ...); use y[None] for one measurement.")
    n = y.shape[0]
    gens = [spawn(seed, "image", i, "sample", j) for i in stream_ids(image_ids, n) for j in range(k)]
    res = ddnm_plus(
        model,
        sched,
        op,
        y.repeat_interleave(k, dim=0),
        sigma_y=sigma_y,
        steps=steps,
        settings=settings,
        generator=gens,
        progress=progress,
    )
    return Samples(res.x0_hat.reshape(n, k, *res.x0_hat.shape[1:]), res.nfe)
