"""Samplers: DDNM (Algorithm 1) and DDNM+ (noise scaling + time travel) as one flat loop,
and plain DDIM / DDPM sampling as another.

Line numbers are those of the DDNM paper's Algorithm 1 (1: x_T ~ N(0, I); 2: for t = T, ..., 1;
3: x_{0|t}; 4: x_hat_{0|t}; 5: x_{t-1} ~ p(.); 6: return x_0). Each denoising step from timestep
t to t_next < t (code timesteps are 0-indexed: paper t = code t + 1) in :func:`ddnm_plus_steps`:

1. eps = model(x_t, t), the paper's Z_theta(x_t, t)               (inside line 3)
2. x0_t = sched.predict_x0(x_t, eps, t)                           (line 3; clip_x0: to [-1, 1])
3. x0_hat = op.project(x0_t, y, lambda_t)                         (line 4; DDNM+ eq. 17)
4. x_next = c_x0 x0_hat + c_xt x_t + scale (c_eps eps + sigma z)  (line 5, sched.step_coefs)

The loop yields each step (smalldiffusion's ``samples``); :func:`ddnm_plus` runs it to the end.
:func:`sample_steps` / :func:`sample` are the same loop without line 4 and the operator.

**The eta convention.** ``kind="ddim"`` (default) follows the DDNM / DDRM code:
the fresh-noise std is sigma_t = eta * sqrt(1 - alpha_bar_s) and the model's eps keeps
the rest, sqrt(1 - alpha_bar_s) * sqrt(1 - eta^2). This differs from the DDIM paper's
eta (``kind="ddim-paper"``), where eta = 1 means DDPM's posterior variance.

**DDNM+ noise scaling (paper eq. 17-19)** lives in ``noise_rules.py``: the scalar rule
(``noise_rule="scalar"``, lambda_t the same for all pixels, exact only for denoising) and the
per-singular-direction rule (``noise_rule="svd"``, right within one step for every operator with an
SVD view; over a whole run neither rule samples p(x | y), chapter 9's Notes).
Both budget the *whole* noise of the step, B_t = sqrt(1 - alpha_bar_s) for DDIM steps (the
posterior std for DDPM steps); budgeting only the fresh part eta * sqrt(1 - alpha_bar_s) would
give lambda_t = 0 at eta = 0, i.e. ignore y. With sigma_y = 0 both are DDNM.

**Time travel (DDNM+ / RePaint)** is in ``travel.py``: which step indices a run visits
(:func:`travel_schedule`, RePaint's jump schedule, which the official DDNM code uses) and its model calls
(:func:`nfe_count`). ``travel_from`` chooses what a jump re-noises (the current sample, as the paper, or
the latest x0_t, as the official samplers). A jump is a move with t_next > t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from . import noise_rules
from .errors import DDNMInputError, check_channels, check_eps, check_finite, check_int_range, check_sigma_y, warn_user
from .noise_rules import NOISE_RULES, check_rule, lambda_and_std  # noqa: F401 (re-exported)
from .operators import LinearOperator, require_svd
from .rng import generators
from .schedule import NoiseSchedule
from .travel import nfe_count, paper_travel_schedule, travel_schedule  # noqa: F401 (re-exported)
from .book_scale import model_device

Tensor = torch.Tensor
Model = Callable[[Tensor, Tensor], Tensor]
Generator = torch.Generator | list[torch.Generator]  # one for the batch, or one per image
TRAVEL_FROM = ("x_t", "x0_t", "x0_hat")


# --------------------------------------------------------------------------- settings and results
@dataclass(frozen=True)
class SamplerSettings:
    """How the sampler steps. ``SamplerSettings()`` is DDNM as the book runs it.

    * ``eta``: the share of fresh noise in each step, in the DDNM/DDRM convention (module docstring).
    * ``kind``: the step formula, ``"ddim"``, ``"ddim-paper"`` or ``"ddpm"`` (:meth:`NoiseSchedule.step_coefs`).
    * ``clip_x0``: clip x0_t to [-1, 1] between Algorithm 1's lines 3 and 4. The paper has no clip;
      diffusers' DDPM/DDIM schedulers clip by default (``clip_sample=True``), and it keeps small,
      imperfect models from drifting far outside the data range. The projection comes *after* the clip,
      so consistency is unaffected. ``clip_x0=False`` is Algorithm 1 to the letter.
    * ``noise_rule``: DDNM+'s noise scaling, ``"scalar"`` (eq. 19, lambda_t the same for every pixel),
      ``"svd"`` (one lambda_{t,i} per singular direction, the paper's appendix) or ``"svd-official"``
      (as the official SVD code computes it); the SVD rules need an operator with an SVD. All equal
      DDNM when sigma_y = 0. See ``noise_rules.py``.
    * ``travel_length``, ``travel_repeat``: time travel (:func:`travel_schedule`); repeat 1 = none.
    * ``travel_from``: what a jump re-noises. ``"x_t"``: the current sample, with q(x_{t+l} | x_t), as
      the paper's Algorithm 2 and the official ``hq_demo`` do. ``"x0_t"``: the model's latest
      *uncorrected* estimate, sqrt(alpha_bar) x0_t + sqrt(1 - alpha_bar) z, as the official
      ``simplified_ddnm_plus`` and ``svd_based_ddnm_plus`` do (``x0_preds.append(x0_t)``).
      ``"x0_hat"``: the same jump from the latest rectified estimate.
    """

    eta: float = 0.85
    kind: str = "ddim"
    clip_x0: bool = True
    noise_rule: str = "scalar"
    travel_length: int = 1
    travel_repeat: int = 1
    travel_from: str = "x_t"

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.eta) <= 1.0:
            raise DDNMInputError(f"eta must be in [0, 1], got {self.eta}.")
        if self.kind not in ("ddim", "ddim-paper", "ddpm"):
            raise DDNMInputError(f"unknown step kind {self.kind!r}; use 'ddim', 'ddim-paper' or 'ddpm'.")
        check_rule(self.noise_rule, self.kind)
        if self.travel_from not in TRAVEL_FROM:
            raise DDNMInputError(f"unknown travel_from {self.travel_from!r}; use one of {', '.join(TRAVEL_FROM)}.")


@dataclass
class Step:
    """What one denoising step t -> t_next saw, as the loop yields it (tensors on the sampling device)."""

    t: int  # timestep of x_t
    t_next: int  # timestep of the sample the step produced (-1 = clean data)
    x_t: Tensor  # (B, C, H, W)
    x0_t: Tensor  # the model's clean estimate (Algorithm 1, line 3)
    x0_hat: Tensor  # the rectified estimate (line 4)
    x_next: Tensor  # the step's result x_{t_next} (line 5)
    lam: float  # lambda_t (1 for DDNM; the mean over measured directions for the SVD rules)


@dataclass
class TraceStep:
    """One step of a trace (CPU float32 copies, for plots and the step viewer)."""

    t: int  # timestep of x_t
    t_next: int  # timestep of the sample it produced (-1 = clean)
    x_t: Tensor  # (B, C, H, W)
    x0_t: Tensor  # model's clean estimate (Algorithm 1 line 3)
    A_pinv_y: Tensor  # A^dagger y (the same at every step)
    null_part: Tensor  # (I - A^dagger A) x0_t
    x0_hat: Tensor  # rectified estimate (line 4)
    lam: float  # lambda_t (1 for DDNM)
    consistency: float  # ||A x0_hat - y|| / ||y||


@dataclass
class RestorationResult:
    x0_hat: Tensor  # (B, C, H, W), not clipped: clip with .clamp(-1, 1) for display
    nfe: int
    visited: list[int]  # the step indices visited, in order (travel_schedule)
    timesteps: list[int]  # timestep of each step index (index i -> timesteps[i])
    trace: list[TraceStep] | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- Algorithm 1 (and 2)
@torch.inference_mode()
def ddnm_plus_steps(
    model: Model,
    sched: NoiseSchedule,
    op: LinearOperator,
    y: Tensor,
    *,
    sigma_y: float = 0.0,
    steps: int = 100,
    settings: SamplerSettings | None = None,
    generator: Generator | None = None,
    seed: int | None = None,
    x_T: Tensor | None = None,
    progress: bool = False,
) -> Iterator[Step]:
    """DDNM+ as a generator: yields a :class:`Step` after every denoising step (smalldiffusion's
    ``samples``). The last step's ``x_next`` is the restoration; :func:`ddnm_plus` runs it to the end.

    Options as in :func:`ddnm_plus`. The loop below is Algorithm 1 line by line, with DDNM+'s
    eq. 17-19 at lines 4-5 and Algorithm 2's jumps back (time travel).
    """
    s = settings or SamplerSettings()
    y, x, gen, moves, sigma_y = _prepare(model, sched, op, y, sigma_y, steps, s, generator, seed, x_T)
    svd = s.noise_rule != "scalar" and sigma_y > 0  # Sigma_t = V diag(lambda_i) V^T (appendix)
    if svd:
        op = require_svd(op, f"noise_rule={s.noise_rule!r}")
        sv = op.singular_values(tuple(x.shape[1:])).to(x)  # s_i per coordinate of V^T x; 0 = null
        seen = sv > 0  # the measured directions
    elif sigma_y > 0:
        noise_rules.warn_if_scalar_fails(op, tuple(x.shape[1:]))
    x0_t = x0_hat = None  # the latest estimates (what a jump may re-noise)
    for t, t_next in tqdm(moves, disable=not progress, desc="sampling"):  # line 2
        z = randn(x.shape, gen, x.dtype, x.device)  # fresh noise, one draw per move
        if t_next > t:  # time travel: x_{t+l} ~ q(x_{t+l} | x_t) (Algorithm 2, line 4)
            if s.travel_from == "x_t":
                x = sched.forward_jump(x, t, t_next, z)
            else:  # re-noise the latest estimate, as the official samplers do
                src = x0_t if s.travel_from == "x0_t" else x0_hat
                x = sched.add_noise(src, z, t_next)
            continue
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = check_eps(model(x, t_batch), x)  # Z_theta(x_t, t)
        x0_t = sched.predict_x0(x, eps, t)  # line 3
        if s.clip_x0:
            x0_t = x0_t.clamp(-1, 1)
        c = sched.step_coefs(t, t_next, s.eta, s.kind)  # line 5's coefficients
        if not svd:  # Sigma_t = lambda_t I (eq. 19; lambda_t = 1 and DDNM when sigma_y = 0)
            lam, noise_scale = noise_rules.scalar_rule(c, sigma_y, s.kind)
            x0_hat = op.project(x0_t, y, lam)  # line 4: x0_t - lambda_t A^+ (A x0_t - y)
            x_next = c.apply(x0_hat, eps, x, z, noise_scale)  # line 5
        else:  # one lambda_{t,i} and one noise split per singular direction
            lam_i, d1, d2 = noise_rules.svd_rule(c, sv, sigma_y, s.noise_rule)
            x0_hat = x0_t - op.V(lam_i * op.Vt(op.A_pinv(op.A(x0_t) - y)))  # line 4
            x_next = c.c_x0 * x0_hat + op.V(d1 * op.Vt(z) + d2 * op.Vt(eps))  # line 5
            lam = float(lam_i[seen].mean()) if bool(seen.any()) else 1.0
        yield Step(t, t_next, x, x0_t, x0_hat, x_next, lam)
        x = x_next


def ddnm_plus(
    model: Model,
    sched: NoiseSchedule,
    op: LinearOperator,
    y: Tensor,
    *,
    sigma_y: float = 0.0,
    steps: int = 100,
    settings: SamplerSettings | None = None,
    generator: Generator | None = None,
    seed: int | None = None,
    x_T: Tensor | None = None,
    trace: bool = False,
    progress: bool = False,
) -> RestorationResult:
    """DDNM+ (noise scaling eq. 17-19, time travel), and DDNM when sigma_y = 0.

    * ``sigma_y``: the std of the noise in y = A x + sigma_y n, on the images' [-1, 1] scale.
    * ``settings`` (:class:`SamplerSettings`, default ``SamplerSettings()``): eta, the step kind,
      clipping, the noise rule and time travel.
    * ``generator``: a CPU ``torch.Generator``, or one per image (image b then gets exactly the
      noise of a run of that image alone with ``generator[b]``, and its result up to float rounding); or ``seed``
      (not both): ``torch.Generator().manual_seed(seed)``, seed 0 by default. x_T is drawn first,
      then one z per move.
    * ``trace``: keep every step (CPU copies, with A^dagger y, the null part and the consistency).

    Sampling runs on the model's device (CPU, CUDA or MPS) in ``torch.inference_mode()``;
    ``x0_hat`` comes back on the device of ``y`` as an ordinary tensor.
    """
    run = ddnm_plus_steps(
        model,
        sched,
        op,
        y,
        sigma_y=sigma_y,
        steps=steps,
        settings=settings,
        generator=generator,
        seed=seed,
        x_T=x_T,
        progress=progress,
    )
    kept, nfe = [], 0
    for st in run:  # each step once, in inference mode; a trace keeps CPU copies of what it saw
        x, nfe = st.x_next, nfe + 1
        if trace:
            if not kept:  # A^dagger y is the same at every step: computed once
                A_pinv_y = op.A_pinv(y.to(st.x0_hat)).detach().to("cpu", torch.float32)
            kept.append(_trace_step(op, y, A_pinv_y, st))
    s = settings or SamplerSettings()
    return RestorationResult(
        x0_hat=_finite(x).to(y.device).clone(),
        nfe=nfe,
        visited=travel_schedule(steps, s.travel_length, s.travel_repeat),
        timesteps=sched.timesteps(steps)[::-1],
        trace=[_clone(r) for r in kept] if trace else None,
    )


def _prepare(model, sched, op, y, sigma_y, steps, settings, generator, seed, x_T):
    """Check the inputs once; return y on the model's device, x_T there, the generator(s), the
    (t, t_next) moves of the run (t_next < t denoises, t_next > t jumps back, -1 = clean data) and
    sigma_y as a checked float."""
    sigma_y = check_sigma_y(sigma_y)
    steps = check_int_range(steps, "steps", 1, sched.T, f" Choose 1 <= steps <= T={sched.T}.")
    if not isinstance(settings, SamplerSettings):
        raise DDNMInputError(
            f"settings must be a SamplerSettings, got {type(settings).__name__}; "
            "e.g. settings=de.SamplerSettings(eta=0.5)."
        )
    if sigma_y > 0 and settings.kind == "ddpm" and settings.eta != 1:
        # eq. 19's budget with DDPM steps is the posterior std, which eta scales: eta = 0 would ignore y
        raise DDNMInputError(
            f"DDNM+ with kind='ddpm' budgets the noise with DDPM's posterior std, so it needs eta=1.0 "
            f"(got eta={settings.eta}; eta=0 would ignore y). Use eta=1.0, or kind='ddim' for other eta."
        )
    if not isinstance(y, torch.Tensor):
        raise DDNMInputError("y must be a torch.Tensor; load images with ddnm_edu.data or torch.as_tensor.")
    check_finite(y, "y")
    A_pinv_y = op.A_pinv(y)
    if x_T is not None and tuple(x_T.shape) != tuple(A_pinv_y.shape):
        raise DDNMInputError(f"x_T has shape {tuple(x_T.shape)}; it must match A^dagger y, {tuple(A_pinv_y.shape)}.")
    err = op.consistency_probe(A_pinv_y)
    if err > 1e-4:
        warn_user(
            f"{op!r}: A A^dagger A != A on random images (relative error {err:.1e}); the result "
            "will not be consistent with y. Check op.check_pinv(shape)."
        )
    check_channels(model, A_pinv_y.shape[1])
    device = model_device(model, y.device)
    dtype = y.dtype if y.dtype.is_floating_point else torch.float32
    gen = generators(generator, seed, A_pinv_y.shape[0])
    x = randn(A_pinv_y.shape, gen, dtype) if x_T is None else x_T.to(dtype)  # line 1
    return y.to(device, dtype), x.to(device), gen, _moves(sched, steps, settings), sigma_y


def _moves(sched: NoiseSchedule, steps: int, s: SamplerSettings) -> list[tuple[int, int]]:
    """The (t, t_next) pairs of a run: travel_schedule's step indices turned into timesteps."""
    ts = sched.timesteps(steps)[::-1]  # step index i -> timestep, ascending
    idx = travel_schedule(steps, s.travel_length, s.travel_repeat)
    return [(ts[i], ts[j] if j >= 0 else -1) for i, j in zip(idx[:-1], idx[1:])]


def randn(
    shape: tuple[int, ...],
    generator: Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """N(0, I) of ``shape`` (B, ...) drawn on the CPU, then moved to ``device``.

    One generator fills the whole batch; a list of B generators fills image b from generator b,
    which is then exactly what a batch of one image with that generator would draw (diffusers'
    ``randn_tensor`` does the same).
    """
    if isinstance(generator, torch.Generator):
        z = torch.randn(shape, generator=generator, dtype=dtype)
    else:
        z = torch.stack([torch.randn(shape[1:], generator=g, dtype=dtype) for g in generator])
    return z.to(device)


def _trace_step(op: LinearOperator, y: Tensor, A_pinv_y: Tensor, st: Step) -> TraceStep:
    """A step with what the viewer shows: A^dagger y, the null part, the consistency (CPU float32)."""
    y = y.to(st.x0_hat)
    cons = float((op.A(st.x0_hat) - y).norm()) / max(float(y.norm()), 1e-30)
    cpu = lambda v: v.detach().to("cpu", torch.float32)  # noqa: E731
    return TraceStep(
        st.t,
        st.t_next,
        cpu(st.x_t),
        cpu(st.x0_t),
        A_pinv_y,
        cpu(op.null_part(st.x0_t)),
        cpu(st.x0_hat),
        st.lam,
        cons,
    )


def _clone(r):
    """A copy made outside inference mode: the caller may modify it or use it with autograd."""
    return type(r)(**{k: v.clone() if isinstance(v, Tensor) else v for k, v in vars(r).items()})


def _finite(x: Tensor) -> Tensor:
    """The result is finite (the model's eps is checked at every step; x_T or the operator may still
    bring NaN or infinity in)."""
    if not bool(torch.isfinite(x).all()):
        raise DDNMInputError(
            "sampling produced NaN or infinite values although the model's noise predictions were finite: "
            "check x_T and the operator (A, A_pinv) for NaN or overflow."
        )
    return x


# --------------------------------------------------------------------------- no operator
@torch.inference_mode()
def sample_steps(
    model: Model,
    sched: NoiseSchedule,
    shape: tuple[int, int, int, int],
    *,
    steps: int = 100,
    eta: float = 0.0,
    kind: str = "ddim",
    clip_x0: bool = True,
    generator: Generator | None = None,
    seed: int | None = None,
    x_T: Tensor | None = None,
) -> Iterator[Step]:
    """Plain DDIM / DDPM sampling as a generator, one :class:`Step` per step (x0_hat = x0_t)."""
    SamplerSettings(eta=eta, kind=kind)  # checks eta and kind
    steps = check_int_range(steps, "steps", 1, sched.T, f" Choose 1 <= steps <= T={sched.T}.")
    check_channels(model, shape[1])
    gen = generators(generator, seed, shape[0])
    device = model_device(model, torch.device("cpu"))
    x = (randn(shape, gen) if x_T is None else x_T.float()).to(device)  # x_T ~ N(0, I)
    for t, t_next in sched.timestep_pairs(steps):
        z = randn(x.shape, gen, x.dtype, x.device)
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = check_eps(model(x, t_batch), x)
        x0_t = sched.predict_x0(x, eps, t)
        if clip_x0:
            x0_t = x0_t.clamp(-1, 1)
        x_next = sched.step_coefs(t, t_next, eta, kind).apply(x0_t, eps, x, z)
        yield Step(t, t_next, x, x0_t, x0_t, x_next, 1.0)
        x = x_next


def sample(
    model: Model,
    sched: NoiseSchedule,
    shape: tuple[int, int, int, int],
    *,
    steps: int = 100,
    eta: float = 0.0,
    kind: str = "ddim",
    generator: Generator | None = None,
    seed: int | None = None,
    x_T: Tensor | None = None,
) -> Tensor:
    """Unconditional samples (B, C, H, W): DDIM (eta = 0 is deterministic) or DDPM (``kind="ddpm"``).

    No operator is involved. For every step, iterate :func:`sample_steps` instead.
    """
    for st in sample_steps(
        model, sched, shape, steps=steps, eta=eta, kind=kind, generator=generator, seed=seed, x_T=x_T
    ):
        x = st.x_next
    return _finite(x).clone()


# --------------------------------------------------------------------------- the simple door
def ddnm(
    model: Model,
    sched: NoiseSchedule,
    op: LinearOperator,
    y: Tensor,
    *,
    steps: int = 100,
    eta: float = 0.85,
    clip_x0: bool = True,
    generator: Generator | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> Tensor:
    """DDNM, Algorithm 1 of Wang et al. (2023): x0_hat consistent with y (A x0_hat = y).

    :func:`ddnm_plus` with sigma_y = 0 and no time travel.
    """
    settings = SamplerSettings(eta=eta, clip_x0=clip_x0)
    return ddnm_plus(
        model, sched, op, y, steps=steps, settings=settings, generator=generator, seed=seed, progress=progress
    ).x0_hat
