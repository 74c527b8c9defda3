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

from dataclasses import dataclass, field
from typing import Callable

import torch

from .errors import DDNMInputError, check_finite, check_int_range, check_sigma_y, tensor_checks_off, warn_user
from .operators import LinearOperator
from .noise_rules import NOISE_RULES, SVDRule, check_rule, lambda_and_std, rectified_step  # noqa: F401 (re-exported)
from .schedule import NoiseSchedule, StepCoefs

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


# --------------------------------------------------------------------------- results
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
    schedule: list[int]  # visited step indices (travel_schedule)
    timesteps: list[int]  # timestep of each step index (index i -> timesteps[i])
    trace: list[TraceStep] | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- helpers
def _check_model_output(eps: Tensor, x_t: Tensor) -> None:
    if eps.shape != x_t.shape:
        raise DDNMInputError(f"the model returned shape {tuple(eps.shape)} for x_t of shape {tuple(x_t.shape)}; "
                             "is it a model for this number of channels / image size?")


def _expected_channels(model) -> int | None:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "in_channels", None)


def _call(model: Model, x: Tensor, t: int, check: bool = False) -> Tensor:
    """eps_theta(x_t, t) in the model's preferred memory format (``load_pretrained`` sets it once)."""
    fmt = getattr(model, "memory_format", None)
    if fmt is not None:
        x = x.contiguous(memory_format=fmt)  # a no-op once x is in that format
    tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
    eps = model(x, tt)
    if check:  # the first call only: the loop itself stays free of checks
        _check_model_output(eps, x)
    return eps.to(x.dtype)


def _float_coefs(sched: NoiseSchedule, t: int, t_prev: int, eta: float, kind: str, dtype: torch.dtype) -> StepCoefs:
    """The step's coefficients as Python floats, computed once before the loop in the sample's dtype
    (so the multiplications are bit-for-bit those of ``NoiseSchedule.step``)."""
    c = sched.step_coefs(t, t_prev, eta, kind, like=torch.zeros(1, dtype=dtype))
    return StepCoefs(*(float(v.reshape(-1)[0]) for v in (c.c_x0, c.c_eps, c.c_xt, c.sigma)))


# --------------------------------------------------------------------------- the loop
@torch.no_grad()
def ddnm_plus(model: Model, sched: NoiseSchedule, op: LinearOperator | None, y: Tensor | None,
              sigma_y: float = 0.0, steps: int = 100, eta: float = 0.85, travel_length: int = 1,
              travel_repeat: int = 1, seed: int = 0, trace: bool = False, kind: str = "ddim",
              progress: bool = False, shape: tuple[int, ...] | None = None,
              x_T: Tensor | None = None, clip_x0: bool = True, noise_rule: str = "scalar",
              travel_from: str = "x_t") -> RestorationResult:
    """DDNM+ (noise scaling eq. 17-19, time travel) -- and DDNM, DDIM, DDPM as special cases.

    ``op=None, y=None`` with ``shape=(B, C, H, W)`` samples unconditionally.
    ``clip_x0`` (default True) clips x0_t to [-1, 1] before the projection. The paper's Algorithm 1
    has no clip; diffusers' DDPM/DDIM schedulers clip by default (``clip_sample=True``), and it keeps
    small, imperfect models from drifting far outside the data range. The projection comes *after*
    the clip, so consistency is unaffected. ``clip_x0=False`` is Algorithm 1 to the letter.
    ``noise_rule``: ``"scalar"`` (the paper's eq. 19, lambda_t the same for every pixel), ``"svd"`` (one
    lambda_{t,i} per singular direction, the paper's appendix) or ``"svd-official"`` (the same as the
    official SVD code computes it); the SVD rules need an operator with an SVD view. See
    ``noise_rules.py``; all equal DDNM when sigma_y = 0.
    ``travel_from``: what a time-travel jump re-noises. ``"x_t"`` (default): the current sample, with
    q(x_{t+l} | x_t), as the paper's Algorithm 2 and the official ``hq_demo`` do. ``"x0_t"``: the model's
    latest *uncorrected* estimate, x_{t+l} = sqrt(alpha_bar_{t+l}) x0_t + sqrt(1 - alpha_bar_{t+l}) z, as the
    official ``simplified_ddnm_plus`` and ``svd_based_ddnm_plus`` do (``x0_preds.append(x0_t)``).
    ``"x0_hat"``: the same jump from the latest rectified estimate.
    Noise is drawn on the CPU from ``torch.Generator().manual_seed(seed)``: the same seed gives
    the same result on the same device. Sampling runs on the model's device (CPU, CUDA or MPS);
    ``x0_hat`` comes back on the device of ``y`` (the model's device when sampling unconditionally).
    """
    sigma_y = check_sigma_y(sigma_y)
    steps = check_int_range(steps, "steps", 1, sched.T, f" Choose 1 <= steps <= T={sched.T}.")
    if not 0.0 <= float(eta) <= 1.0:
        raise DDNMInputError(f"eta must be in [0, 1], got {eta}.")
    check_rule(noise_rule, kind)
    if travel_from not in TRAVEL_FROM:
        raise DDNMInputError(f"unknown travel_from {travel_from!r}; use one of {', '.join(TRAVEL_FROM)}.")
    schedule = travel_schedule(steps, travel_length, travel_repeat)
    timesteps = sched.set_timesteps(steps)[::-1]  # index i -> timestep (ascending)

    if op is None:
        if shape is None and x_T is None:
            raise DDNMInputError("unconditional sampling needs shape=(B, C, H, W) (or x_T).")
        ref = x_T if x_T is not None else torch.empty(shape)
        range_part = None
    else:
        if y is None:
            raise DDNMInputError("y is required when an operator is given.")
        if not isinstance(y, torch.Tensor):
            raise DDNMInputError("y must be a torch.Tensor; load images with ddnm_edu.data or torch.as_tensor.")
        check_finite(y, "y")
        range_part = op.A_pinv(y)  # A^dagger y, (B, C, H, W)
        ref = range_part
        err = op.consistency_probe(range_part)
        if err > 1e-4:
            warn_user(f"{op!r}: A A^dagger A != A on random images (relative error {err:.1e}); the result "
                      "will not be consistent with y. Check op.check_pinv(shape).")
    ch = _expected_channels(model)
    if ch is not None and ref.shape[1] != ch:
        raise DDNMInputError(f"the model works on {ch}-channel images but this task produces {ref.shape[1]}-channel "
                             f"images; use a {ch}-channel model or task (e.g. colorization needs an RGB model).")
    device, dtype = ref.device, ref.dtype if ref.dtype.is_floating_point else torch.float32
    try:  # run where the model lives (CPU, CUDA or MPS)
        device = next(model.parameters()).device  # type: ignore[union-attr]
    except (AttributeError, StopIteration):
        pass
    out_device = y.device if y is not None else device  # results come back where y lives
    if op is not None:
        y = y.to(device)
        range_part = range_part.to(device)
    gen = torch.Generator().manual_seed(int(seed))
    x = (torch.randn(ref.shape, generator=gen, dtype=dtype) if x_T is None else x_T.to(dtype)).to(device)
    y_norm = float(y.norm()) if y is not None else 1.0
    records: list[TraceStep] = []
    svd = SVDRule(op, range_part) if (op is not None and noise_rule != "scalar" and sigma_y > 0) else None
    last_x0_t = last_x0_hat = None  # what the official samplers' time travel re-noises

    pairs = list(zip(schedule[:-1], schedule[1:]))
    # every coefficient the loop needs, as Python floats, before it starts: no per-step tensor work or syncs
    coefs: dict[tuple[int, int], StepCoefs] = {}
    jump: dict[tuple[int, int], tuple[float, float, float, float]] = {}
    x0_from: dict[int, tuple[float, float]] = {}  # t -> (sqrt(1 - alpha_bar_t), sqrt(alpha_bar_t))
    for i, j in pairs:
        t, t_prev = timesteps[i], (timesteps[j] if j >= 0 else -1)
        if j < i:
            coefs.setdefault((t, t_prev), _float_coefs(sched, t, t_prev, eta, kind, dtype))
            ab = sched.alphas_cumprod[t].to(dtype)
            x0_from.setdefault(t, (float((1 - ab).sqrt()), float(ab.sqrt())))
        else:
            ab_t, ab_s = sched.alphas_cumprod[t_prev].to(dtype), sched.alphas_cumprod[t].to(dtype)
            r = ab_t / ab_s
            jump[t, t_prev] = tuple(float(v) for v in (r.sqrt(), (1 - r).sqrt(), ab_t.sqrt(), (1 - ab_t).sqrt()))
    first = True
    # Noise for the steps, drawn from the CPU generator in chunks and moved to the device once per chunk
    # (no host-to-device copy per step on CUDA). One randn of k steps gives the same numbers as k calls
    # when an image batch has a multiple of 16 values (always for our images), so results do not depend on
    # the chunking; otherwise one step is drawn at a time. Same seed, same device -> same result; CPU and
    # CUDA see the same noise, so they differ only by float rounding in the model.
    numel = x.numel()
    chunk = max(1, min(len(pairs), (32 << 20) // max(numel, 1))) if numel % 16 == 0 else 1
    noise: list[Tensor] = []
    drawn = 0

    def next_z() -> Tensor:
        nonlocal noise, drawn
        if not noise:
            k = min(chunk, len(pairs) - drawn)
            noise = list(torch.randn((k, *x.shape), generator=gen, dtype=dtype).to(device).unbind(0))[::-1]
            drawn += k
        return noise.pop()

    from tqdm.auto import tqdm

    # y and the operator were checked above: the loop repeats no tensor checks (no syncs on CUDA)
    with tensor_checks_off():
        for i, j in tqdm(pairs, disable=not progress, desc="sampling"):
            t = timesteps[i]
            t_prev = timesteps[j] if j >= 0 else -1
            z = next_z()
            if j > i:  # time travel: re-noise to the level of t_prev
                r_sig, r_noise, a_sig, a_noise = jump[t, t_prev]
                if travel_from == "x_t" or last_x0_t is None:
                    x = r_sig * x + r_noise * z  # q(x_{t_prev} | x_t), the paper's Algorithm 2 (forward_jump)
                else:
                    src = last_x0_t if travel_from == "x0_t" else last_x0_hat
                    x = a_sig * src + a_noise * z
                continue
            eps = _call(model, x, t, check=first)
            first = False
            s_noise, s_signal = x0_from[t]
            x0_t = (x - s_noise * eps) / s_signal  # line 3 (NoiseSchedule.predict_x0 with precomputed floats)
            if clip_x0:
                x0_t = x0_t.clamp(-1, 1)
            c = coefs[t, t_prev]
            if op is not None:
                x_new, x0_hat, lam = rectified_step(x, eps, x0_t, op, y, c, sigma_y, z, kind, noise_rule, svd)
            else:
                lam, x0_hat = 1.0, x0_t
                x_new = c.c_x0 * x0_t + c.c_eps * eps + c.c_xt * x + c.sigma * z  # plain DDIM / DDPM step
            if trace:
                null = op.null_part(x0_t) if op is not None else torch.zeros_like(x0_t)
                cons = float((op.A(x0_hat) - y).norm()) / max(y_norm, 1e-30) if op is not None else 0.0
                records.append(TraceStep(t, t_prev, _cpu(x), _cpu(x0_t),
                                         _cpu(range_part) if op is not None else torch.zeros(1),
                                         _cpu(null), _cpu(x0_hat), lam, cons))
            last_x0_t, last_x0_hat = x0_t, x0_hat
            x = x_new
    if not bool(torch.isfinite(x).all()):  # one check at the end instead of one per step
        raise DDNMInputError("sampling produced NaN or infinite values: the model returned non-finite noise "
                             "predictions (check its weights and that x_t is in its expected range).")
    nfe = sum(1 for i, j in pairs if j < i)
    return RestorationResult(x0_hat=x.to(out_device), nfe=nfe, schedule=schedule, timesteps=timesteps,
                             trace=records if trace else None)


def _cpu(x: Tensor) -> Tensor:
    return x.detach().to("cpu", torch.float32).clone()


def ddnm(model: Model, sched: NoiseSchedule, op: LinearOperator, y: Tensor, steps: int = 100,
         eta: float = 0.85, seed: int = 0, **kwargs) -> Tensor:
    """DDNM, Algorithm 1 of Wang et al. (2023): x0_hat consistent with y (A x0_hat = y).

    The same loop as :func:`ddnm_plus` with sigma_y = 0 and no time travel.
    """
    for k in ("sigma_y", "travel_length", "travel_repeat"):
        if k in kwargs:
            raise DDNMInputError(f"{k} is a DDNM+ setting; call ddnm_plus(...) for it.")
    return ddnm_plus(model, sched, op, y, steps=steps, eta=eta, seed=seed, **kwargs).x0_hat


def sample(model: Model, sched: NoiseSchedule, shape: tuple[int, int, int, int], steps: int = 100,
           eta: float = 0.0, seed: int = 0, kind: str = "ddim", trace: bool = False,
           **kwargs) -> Tensor | RestorationResult:
    """Unconditional samples (B, C, H, W): DDIM (``kind="ddim"``, eta=0 deterministic) or DDPM (``"ddpm"``).

    With ``trace=True`` it returns the :class:`RestorationResult` (samples in ``.x0_hat``, the per-step
    ``.trace`` of x_t and x0_t) instead of the tensor. No operator is involved: this is plain DDIM / DDPM.
    """
    res = ddnm_plus(model, sched, None, None, steps=steps, eta=eta, seed=seed, kind=kind, shape=shape,
                    trace=trace, **kwargs)
    return res if trace else res.x0_hat
