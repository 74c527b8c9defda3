"""Samplers: plain DDIM / DDPM, DDNM (Algorithm 1) and DDNM+ (noise scaling + time travel).

One loop serves them all. Line numbers are those of the DDNM paper's Algorithm 1
(1: x_T ~ N(0, I); 2: for t = T, ..., 1; 3: x_{0|t}; 4: x_hat_{0|t}; 5: x_{t-1} ~ p(.); 6: return x_0).
Each denoising step from timestep t to s < t (code timesteps are 0-indexed: paper t = code t + 1):

1. eps = model(x_t, t), the paper's Z_theta(x_t, t)                 (inside line 3)
2. x0_t = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)   (line 3; clipped to [-1, 1] by default)
3. x0_hat = x0_t - Sigma_t A^dagger (A x0_t - y)                  (line 4 with Sigma_t = I; DDNM+ eq. 17)
4. x_s = c_x0 x0_hat + c_eps eps + c_xt x_t + sigma_t z           (line 5, see NoiseSchedule.step_coefs)

Without an operator step 3 is skipped and this is plain DDIM (``kind="ddim"``) or
DDPM ancestral sampling (``kind="ddpm"``).

**The eta convention.** ``kind="ddim"`` (default) follows the DDNM / DDRM code:
the fresh-noise std is sigma_t = eta * sqrt(1 - alpha_bar_s) and the model's eps keeps
the rest, sqrt(1 - alpha_bar_s) * sqrt(1 - eta^2). This differs from the DDIM paper's
eta (``kind="ddim-paper"``), where eta = 1 means DDPM's posterior variance.

**DDNM+ noise scaling (paper eq. 17-19)** lives in ``noise_rules.py``: the scalar rule
(``noise_rule="scalar"``, lambda_t the same for all pixels, exact only for denoising) and the
per-singular-direction rule (``noise_rule="svd"``, exact for every operator with an SVD view).
Both budget the *whole* noise of the step, B_t = sqrt(1 - alpha_bar_s) for DDIM steps (the
posterior std for DDPM steps); budgeting only the fresh part eta * sqrt(1 - alpha_bar_s) would
give lambda_t = 0 at eta = 0, i.e. ignore y. With sigma_y = 0 both are DDNM.

**Time travel (DDNM+ / RePaint).** After every ``travel_length`` steps the sampler
jumps back ``travel_length`` steps and denoises again, ``travel_repeat`` times in all
(travel_repeat = 1: no travel) -- RePaint's jump schedule, which the official DDNM code uses.
:func:`travel_schedule` gives the visited step indices, :func:`nfe_count` the number of model
calls; :func:`paper_travel_schedule` is the paper's Algorithm 2 as printed (travel at every step).
``travel_from`` chooses what a jump re-noises (the current sample, as the paper, or the latest
x0_t, as the official samplers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

import torch

from .errors import DDNMInputError, check_finite, check_int_range, check_sigma_y, tensor_checks_off, warn_user
from .operators import LinearOperator
from .noise_rules import NOISE_RULES, check_rule, lambda_and_std, make_rule  # noqa: F401 (re-exported)
from .schedule import NoiseSchedule
from .settings import model_device

Tensor = torch.Tensor
Model = Callable[[Tensor, Tensor], Tensor]
TRAVEL_FROM = ("x_t", "x0_t", "x0_hat")


# --------------------------------------------------------------------------- time travel
def travel_schedule(steps: int, travel_length: int = 1, travel_repeat: int = 1) -> list[int]:
    """Step indices visited, from ``steps - 1`` down to -1 (clean), with RePaint-style jumps back.

    Index i stands for timestep ``NoiseSchedule.set_timesteps(steps)[::-1][i]``; -1 is clean data.
    A decrease i -> j is a denoising step (one model call); an increase i -> i + 1 is a forward
    (re-noising) step. Same construction as ``get_schedule_jump`` in the RePaint / DDNM code.
    """
    steps = check_int_range(steps, "steps", 1)
    travel_repeat = check_int_range(travel_repeat, "travel_repeat", 1, hint=" Use 1 for no time travel.")
    if travel_repeat > 1:
        travel_length = check_int_range(travel_length, "travel_length", 1, max(1, steps - 1),
                                        f" It must be smaller than steps={steps}.")
        if steps < 2:
            raise DDNMInputError("time travel needs steps >= 2.")
    jumps = {j: travel_repeat - 1 for j in range(0, steps - travel_length, travel_length)} if travel_repeat > 1 else {}
    t, ts = steps, []
    while t >= 1:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(travel_length):
                t += 1
                ts.append(t)
    ts.append(-1)
    return ts


def paper_travel_schedule(steps: int, travel_length: int) -> list[int]:
    """Step indices visited by the DDNM paper's Algorithm 2 as printed, in the same format as :func:`travel_schedule`.

    At *every* step index k (from ``steps - 1`` down to 0) it jumps forward L = min(steps - 1 - k, l),
    x_{k+L} ~ q(x_{k+L} | x_k) (line 4), then denoises L + 1 times down to k - 1 (lines 5-8). So every
    step travels, and NFE = sum_k (min(steps - 1 - k, l) + 1), about (l + 1) x steps. The library's
    :func:`travel_schedule` (RePaint's ``get_schedule_jump``, which the official code uses) travels only
    every ``travel_length`` steps, ``travel_repeat - 1`` times.
    """
    steps = check_int_range(steps, "steps", 1)
    travel_length = check_int_range(travel_length, "travel_length", 0)
    ts, k = [steps - 1], steps - 1
    while k >= 0:
        L = min(steps - 1 - k, travel_length)
        ts.extend(k + u for u in range(1, L + 1))  # re-noise, one level at a time
        ts.extend(k + u for u in range(L - 1, -2, -1))  # denoise back down to k - 1
        k -= 1
    return ts


def nfe_count(steps: int, travel_length: int = 1, travel_repeat: int = 1) -> int:
    """Model calls of a run: steps + travel_length * (travel_repeat - 1) * #jump points."""
    if travel_repeat <= 1:
        return steps
    return steps + travel_length * (travel_repeat - 1) * len(range(0, steps - travel_length, travel_length))


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
class TraceStep:
    """What one denoising step saw (CPU float32 copies, for plotting and widgets)."""

    t: int  # timestep of x_t
    t_prev: int  # timestep of the sample it produced (-1 = clean)
    x_t: Tensor  # (B, C, H, W)
    x0_t: Tensor  # model's clean estimate (Algorithm 1 line 3)
    range_part: Tensor  # A^dagger y
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
def ddnm_plus(model: Model, sched: NoiseSchedule, op: LinearOperator | None, y: Tensor | None,
              sigma_y: float = 0.0, steps: int = 100, settings: SamplerSettings | None = None,
              seed: int | Sequence[int] = 0,
              trace: bool = False, progress: bool = False, shape: tuple[int, ...] | None = None,
              x_T: Tensor | None = None) -> RestorationResult:
    """DDNM+ (noise scaling eq. 17-19, time travel) -- and DDNM, DDIM, DDPM as special cases.

    ``settings`` (:class:`SamplerSettings`, default ``SamplerSettings()``) says how to step: eta, the
    step kind, clipping, the noise rule and time travel. ``op=None, y=None`` with ``shape=(B, C, H, W)``
    (or ``x_T``) samples unconditionally. Noise is drawn on the CPU from
    ``torch.Generator().manual_seed(seed)``: the same seed gives the same result on the same device.
    ``seed`` may also be one seed per image: image b then gets exactly the noise, and the result, of a
    run of that image alone with ``seed[b]`` (how :func:`posterior.posterior_samples` batches K samples).
    Sampling runs on the model's device (CPU, CUDA or MPS); ``x0_hat`` comes back on the device of ``y``
    (the model's device when sampling unconditionally). Nothing needs gradients: the loop runs in
    ``torch.inference_mode()``, and the results are ordinary tensors.
    """
    run = _Run(model, sched, op, y, sigma_y, steps, settings or SamplerSettings(), seed, shape, x_T, trace)
    x, x0_t, x0_hat = run.x_T, None, None  # line 1: x_T ~ N(0, I)
    with torch.inference_mode(), tensor_checks_off():  # y and A were checked once, in _Run
        for t, t_prev in run.visited(progress):  # line 2, with Algorithm 2's jumps back
            z = run.noise.next()
            if t_prev > t:  # time travel: x_{t+l} ~ q(x_{t+l} | x_t) (Algorithm 2, line 4)
                x = run.jump(x, x0_t, x0_hat, t, t_prev, z)
                continue
            eps = run.eps(x, t)  # Z_theta(x_t, t)
            a, b = sched.float_x0_coefs(t, run.dtype)
            x0_t = (x - a * eps) / b  # line 3: x0|t = (x_t - sqrt(1 - alpha_bar_t) Z) / sqrt(alpha_bar_t)
            if run.settings.clip_x0:
                x0_t = x0_t.clamp(-1, 1)
            c = sched.float_coefs(t, t_prev, run.settings.eta, run.settings.kind, run.dtype)
            x0_hat, lam = run.rule.rectify(x0_t, c)  # line 4: x0_hat = x0|t - Sigma_t A^dagger (A x0|t - y)
            run.record(x, x0_t, x0_hat, lam, t, t_prev)
            x = run.rule.step(x0_hat, eps, x, z, c)  # line 5: x_{t-1} from x0_hat, eps and fresh z
    return run.result(x)  # line 6: return x_0


class NoiseStream:
    """The fresh noise z of each step, from one CPU generator (same seed, same numbers on every device),
    or from one generator per image (then image b's noise is that of a run of image b alone).

    Drawn in chunks of steps and moved to the device once per chunk (no host-to-device copy per step
    on CUDA). One randn of k steps gives the same numbers as k calls when what one generator fills has
    a multiple of 16 values (always for our images), so results do not depend on the chunking;
    otherwise one step is drawn at a time.
    """

    def __init__(self, gens: torch.Generator | list[torch.Generator], shape: tuple[int, ...],
                 dtype: torch.dtype, device, n: int):
        numel = math.prod(shape) if isinstance(gens, torch.Generator) else math.prod(shape[1:])
        self.chunk = max(1, min(n, (32 << 20) // max(math.prod(shape), 1))) if numel % 16 == 0 else 1
        self.gens, self.shape, self.dtype, self.device, self.left = gens, tuple(shape), dtype, device, n
        self.ready: list[Tensor] = []

    def next(self) -> Tensor:
        if not self.ready:
            k = min(self.chunk, self.left)
            z = standard_normal(self.gens, self.shape, self.dtype, steps=k).to(self.device)
            self.ready, self.left = list(z.unbind(0))[::-1], self.left - k
        return self.ready.pop()


def generators(seed: int | Sequence[int], batch: int) -> torch.Generator | list[torch.Generator]:
    """One CPU generator for the batch, or one per image when ``seed`` is a sequence of ``batch`` seeds."""
    if isinstance(seed, (int, np.integer)) or (isinstance(seed, Tensor) and seed.ndim == 0):
        return torch.Generator().manual_seed(int(seed))
    seeds = [int(s) for s in seed]
    if len(seeds) != batch:
        raise DDNMInputError(f"seed has {len(seeds)} values for a batch of {batch} images; give one seed, "
                             "or one per image.")
    return [torch.Generator().manual_seed(s) for s in seeds]


def standard_normal(gens, shape: tuple[int, ...], dtype: torch.dtype, steps: int | None = None) -> Tensor:
    """N(0, I) of ``shape`` (B, ...) -- ``(steps, B, ...)`` if ``steps`` -- from one generator, or
    stacked from one generator per image (each draws what a batch of one would)."""
    if isinstance(gens, torch.Generator):
        return torch.randn(shape if steps is None else (steps, *shape), generator=gens, dtype=dtype)
    one = shape[1:] if steps is None else (steps, *shape[1:])
    return torch.stack([torch.randn(one, generator=g, dtype=dtype) for g in gens], dim=0 if steps is None else 1)


class _Run:
    """One sampler run's preparation and bookkeeping: input checks, device, x_T, the visited steps,
    the noise stream, the rule for lines 4-5 and the trace. The loop in :func:`ddnm_plus` does the rest."""

    def __init__(self, model, sched, op, y, sigma_y, steps, settings, seed, shape, x_T, trace):
        self.sigma_y = check_sigma_y(sigma_y)
        steps = check_int_range(steps, "steps", 1, sched.T, f" Choose 1 <= steps <= T={sched.T}.")
        if not isinstance(settings, SamplerSettings):
            raise DDNMInputError(f"settings must be a SamplerSettings, got {type(settings).__name__}; "
                                 "e.g. settings=de.SamplerSettings(eta=0.5).")
        self.model, self.sched, self.op, self.settings = model, sched, op, settings
        self.visited_steps = travel_schedule(steps, settings.travel_length, settings.travel_repeat)
        self.timesteps = sched.set_timesteps(steps)[::-1]  # index i -> timestep (ascending)
        ref = self._check_inputs(op, y, shape, x_T)
        self.dtype = ref.dtype if ref.dtype.is_floating_point else torch.float32
        device = model_device(model, ref.device)
        self.out_device = y.device if y is not None else device  # results come back where y lives
        self.y = y.to(device) if y is not None else None
        self.range_part = ref.to(device) if op is not None else None  # A^dagger y, computed by _check_inputs
        gens = generators(seed, ref.shape[0])
        x = standard_normal(gens, tuple(ref.shape), self.dtype) if x_T is None else x_T.to(self.dtype)
        self.x_T = x.to(device)
        self.noise = NoiseStream(gens, tuple(ref.shape), self.dtype, device, len(self.visited_steps) - 1)
        self.rule = make_rule(op, self.y, self.sigma_y, settings.noise_rule, settings.kind, self.x_T)
        self.records: list[TraceStep] | None = [] if trace else None
        self.first_call = True

    def _check_inputs(self, op, y, shape, x_T) -> Tensor:
        """Check y, the operator and the model's channels once; return a tensor shaped like x (A^dagger y when
        there is an operator)."""
        if op is None:
            if shape is None and x_T is None:
                raise DDNMInputError("unconditional sampling needs shape=(B, C, H, W) (or x_T).")
            ref = x_T if x_T is not None else torch.empty(shape)
        else:
            if y is None:
                raise DDNMInputError("y is required when an operator is given.")
            if not isinstance(y, torch.Tensor):
                raise DDNMInputError("y must be a torch.Tensor; load images with ddnm_edu.data or torch.as_tensor.")
            check_finite(y, "y")
            ref = op.A_pinv(y)
            err = op.consistency_probe(ref)
            if err > 1e-4:
                warn_user(f"{op!r}: A A^dagger A != A on random images (relative error {err:.1e}); the result "
                          "will not be consistent with y. Check op.check_pinv(shape).")
        ch = getattr(getattr(self.model, "config", None), "in_channels", None)
        if ch is not None and ref.shape[1] != ch:
            raise DDNMInputError(f"the model works on {ch}-channel images but this task produces "
                                 f"{ref.shape[1]}-channel images; use a {ch}-channel model or task (e.g. "
                                 "colorization needs an RGB model).")
        return ref

    def visited(self, progress: bool):
        """(t, t_prev) for each move of the schedule: t_prev < t denoises, t_prev > t jumps back; -1 = clean."""
        from tqdm.auto import tqdm

        ts = self.timesteps
        pairs = [(ts[i], ts[j] if j >= 0 else -1) for i, j in zip(self.visited_steps[:-1], self.visited_steps[1:])]
        return tqdm(pairs, disable=not progress, desc="sampling")

    def eps(self, x: Tensor, t: int) -> Tensor:
        """eps_theta(x_t, t) in the model's preferred memory format (``load_pretrained`` sets it once)."""
        fmt = getattr(self.model, "memory_format", None)
        if fmt is not None:
            x = x.contiguous(memory_format=fmt)  # a no-op once x is in that format
        eps = self.model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
        if self.first_call and eps.shape != x.shape:  # the first call only: the loop stays free of checks
            raise DDNMInputError(f"the model returned shape {tuple(eps.shape)} for x_t of shape {tuple(x.shape)}; "
                                 "is it a model for this number of channels / image size?")
        self.first_call = False
        return eps.to(x.dtype)

    def jump(self, x: Tensor, x0_t: Tensor | None, x0_hat: Tensor | None, t: int, t_up: int, z: Tensor) -> Tensor:
        """Time travel from t back to the noisier t_up: re-noise x_t, or the latest x0_t / x0_hat."""
        r_sig, r_noise, a_sig, a_noise = self.sched.float_jump_coefs(t, t_up, self.dtype)
        if self.settings.travel_from == "x_t" or x0_t is None:
            return r_sig * x + r_noise * z  # q(x_{t_up} | x_t) (NoiseSchedule.forward_jump)
        src = x0_t if self.settings.travel_from == "x0_t" else x0_hat
        return a_sig * src + a_noise * z  # q(x_{t_up} | x_0) with x_0 = src (NoiseSchedule.add_noise)

    def record(self, x, x0_t, x0_hat, lam, t, t_prev) -> None:
        if self.records is None:
            return
        op, y = self.op, self.y
        null = op.null_part(x0_t) if op is not None else torch.zeros_like(x0_t)
        cons = float((op.A(x0_hat) - y).norm()) / max(float(y.norm()), 1e-30) if op is not None else 0.0
        rng = _cpu(self.range_part) if op is not None else torch.zeros(1)
        self.records.append(TraceStep(t, t_prev, _cpu(x), _cpu(x0_t), rng, _cpu(null), _cpu(x0_hat), lam, cons))

    def result(self, x: Tensor) -> RestorationResult:
        """The result as ordinary tensors (clones made outside inference mode: free to modify or differentiate)."""
        if not bool(torch.isfinite(x).all()):  # one check at the end instead of one per step
            raise DDNMInputError("sampling produced NaN or infinite values: the model returned non-finite noise "
                                 "predictions (check its weights and that x_t is in its expected range).")
        nfe = sum(1 for i, j in zip(self.visited_steps[:-1], self.visited_steps[1:]) if j < i)
        records = None if self.records is None else [
            TraceStep(**{k: (v.clone() if isinstance(v, Tensor) else v) for k, v in vars(r).items()})
            for r in self.records]
        return RestorationResult(x0_hat=x.to(self.out_device).clone(), nfe=nfe, visited=self.visited_steps,
                                 timesteps=self.timesteps, trace=records)


def _cpu(x: Tensor) -> Tensor:
    """A trace entry on the CPU in float32. No copy here: the loop never changes a tensor in place, and
    :meth:`_Run.result` clones every entry once, outside inference mode."""
    return x.detach().to("cpu", torch.float32)


# --------------------------------------------------------------------------- the simple doors
def ddnm(model: Model, sched: NoiseSchedule, op: LinearOperator, y: Tensor, steps: int = 100,
         eta: float = 0.85, seed: int = 0, clip_x0: bool = True, progress: bool = False, **others) -> Tensor:
    """DDNM, Algorithm 1 of Wang et al. (2023): x0_hat consistent with y (A x0_hat = y).

    The loop of :func:`ddnm_plus` with sigma_y = 0 and no time travel.
    """
    if others:
        raise DDNMInputError(f"ddnm() takes no {', '.join(others)}: DDNM+ settings (sigma_y, time travel, noise "
                             "rules) go to ddnm_plus(..., sigma_y=..., settings=SamplerSettings(...)).")
    settings = SamplerSettings(eta=eta, clip_x0=clip_x0)
    return ddnm_plus(model, sched, op, y, steps=steps, settings=settings, seed=seed, progress=progress).x0_hat


def sample(model: Model, sched: NoiseSchedule, shape: tuple[int, int, int, int], steps: int = 100,
           eta: float = 0.0, seed: int = 0, kind: str = "ddim", x_T: Tensor | None = None,
           progress: bool = False) -> Tensor:
    """Unconditional samples (B, C, H, W): DDIM (``kind="ddim"``, eta=0 deterministic) or DDPM (``"ddpm"``).

    No operator is involved: this is plain DDIM / DDPM. For the per-step trace, call
    ``ddnm_plus(model, sched, None, None, shape=shape, trace=True, ...)``.
    """
    settings = SamplerSettings(eta=eta, kind=kind)
    return ddnm_plus(model, sched, None, None, steps=steps, settings=settings, seed=seed, shape=shape, x_T=x_T,
                     progress=progress).x0_hat
