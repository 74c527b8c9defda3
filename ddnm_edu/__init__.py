"""ddnm-edu: zero-shot image restoration with the Denoising Diffusion Null-space Model, for learning.

    import ddnm_edu as de
    sched = de.NoiseSchedule.linear(T=1000)
    op = de.operators.SuperResolution(scale=4)
    x0_hat = de.ddnm(model, sched, op, y, steps=100, eta=0.85, seed=0)

Modules, one concept each: ``schedule`` (forward process and one-step samplers),
``operators`` (A, A^dagger, the range/null projections and, where it is known in closed
form, the SVD), ``sampling`` (DDIM, DDPM, DDNM, DDNM+), ``noise_rules`` (DDNM+ noise scaling),
``metrics``, ``unet``, ``restormer`` (the supervised specialist of chapter 10), ``data``, ``train``,
``check`` (self-checks for the exercises) and ``classroom`` (nbgrader assignments, the student edition).
"""
from . import baselines, check, data, linalg, metrics, noise_rules, operators, viz
from .errors import DDNMInputError
from .operators import LinearOperator
from .sampling import (RestorationResult, SamplerSettings, TraceStep, ddnm, ddnm_plus, lambda_and_std, nfe_count,
                       paper_travel_schedule, sample, travel_schedule)
from .schedule import NoiseSchedule
from .settings import settings
from .pretrained import load_pretrained

__version__ = "0.1.0"

__all__ = [
    "DDNMInputError", "LinearOperator", "load_pretrained", "NoiseSchedule", "RestorationResult", "SamplerSettings", "TraceStep", "ddnm", "ddnm_plus",
    "baselines", "check", "data", "lambda_and_std", "linalg", "metrics", "viz", "nfe_count", "noise_rules", "operators", "paper_travel_schedule", "sample", "settings", "travel_schedule", "__version__",
]
