"""ddnm-edu: zero-shot image restoration with the Denoising Diffusion Null-space Model, for learning.

    import ddnm_edu as de
    sched = de.NoiseSchedule.linear(T=1000)
    op = de.operators.SuperResolution(scale=4)
    x0_hat = de.ddnm(model, sched, op, y, steps=100, eta=0.85, seed=0)

The modules here teach, one concept each: ``schedule`` (the forward process and the one
reverse-step formula), ``losses`` (DDPM's training loss and the EMA), ``operators`` (A, A^dagger,
the range/null projections, each operator's closed-form SVD, and the named tasks),
``sampling`` (DDIM, DDPM, DDNM's Algorithm 1 and DDNM+), ``travel`` (the time-travel schedule), ``rng``
(independent random streams from one seed), ``noise_rules`` (DDNM+ noise scaling),
``posterior`` (K samples of a restoration, their spread and its calibration), ``mask_shift`` (images
larger than the prior, window by window), ``diffusers_prior`` (any diffusers DDPM as the prior,
``load_diffusers``; diffusers itself is imported only when a model is loaded: the ``diffusers`` extra),
``ddrm`` and ``dps`` (the peers), ``baselines``, ``metrics``, ``unet``, ``restormer`` (the supervised
specialist of chapter 13), ``data`` and ``pretrained`` (what ships), ``viz`` (figures and step
viewers), ``check`` (self-checks for the exercises), ``linalg`` and ``toy`` (the small dense and 2-D
examples of chapters 3, 5 and 6, and an oracle Gaussian prior); ``errors`` and ``book_scale`` (the run sizes and
the device) serve them all.
``ddnm_edu.tools`` is the tooling: the ``ddnm-edu`` command, training, model cards and benchmarks,
shipping weights, rebuilding the datasets, and the classroom edition.
"""

from . import (
    baselines,
    check,
    data,
    diffusers_prior,
    linalg,
    losses,
    mask_shift,
    metrics,
    noise_rules,
    operators,
    posterior,
    rng,
    toy,
    viz,
)
from .errors import DDNMInputError
from .operators import LinearOperator
from .sampling import (
    RestorationResult,
    SamplerSettings,
    Step,
    TraceStep,
    ddnm,
    ddnm_plus,
    ddnm_plus_steps,
    lambda_and_std,
    nfe_count,
    paper_travel_schedule,
    sample,
    sample_steps,
    travel_schedule,
)
from .posterior import posterior_samples
from .schedule import NoiseSchedule
from .book_scale import settings
from .pretrained import load_pretrained
from .diffusers_prior import load_diffusers

__version__ = "0.1.0"

__all__ = [
    "DDNMInputError",
    "LinearOperator",
    "load_pretrained",
    "NoiseSchedule",
    "RestorationResult",
    "SamplerSettings",
    "Step",
    "TraceStep",
    "ddnm",
    "ddnm_plus",
    "ddnm_plus_steps",
    "sample_steps",
    "rng",
    "baselines",
    "check",
    "data",
    "diffusers_prior",
    "load_diffusers",
    "lambda_and_std",
    "linalg",
    "losses",
    "mask_shift",
    "metrics",
    "viz",
    "nfe_count",
    "noise_rules",
    "operators",
    "paper_travel_schedule",
    "posterior",
    "posterior_samples",
    "sample",
    "settings",
    "toy",
    "travel_schedule",
    "__version__",
]
