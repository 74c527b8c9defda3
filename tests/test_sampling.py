"""DDNM / DDNM+ samplers: oracle recovery, consistency, DDNM+ variance rule, time travel, seeds, errors."""

from pathlib import Path

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError
from ddnm_edu import operators as ops
from ddnm_edu.unet import UNet, UNetConfig

ROOT = Path(__file__).resolve().parent.parent

S = de.SamplerSettings


def make_ops(size=32):
    return {
        "sr4": ops.SuperResolution(4),
        "sr2": ops.SuperResolution(2),
        "inpaint": ops.Inpainting(ops.Inpainting.random_mask(size, 0.5, seed=0)),
        "box": ops.Inpainting(ops.Inpainting.box_mask(size, size // 2)),
        "colorize": ops.Colorization(),
        "denoise": ops.Denoising(),
        "cs": ops.CompressedSensing(0.25, seed=0),
        # sigma = 1 blur: smallest |K| is ~5e-5 of the largest, so rcond=1e-6 keeps every frequency
        # (exact Moore-Penrose); the default rcond=1e-3 truncates a few and is only approximately consistent
        "deblur": ops.Deblur(ops.gaussian_kernel(1.0), rcond=1e-6),
        "colorize+sr2": ops.Composite([ops.Colorization(), ops.SuperResolution(2)]),
    }


def images(n=2, c=3, size=32, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def oracle(sched, x0):
    """eps computed from the true x0: the perfect denoiser for this one image."""
    return lambda x_t, t: sched.predict_eps(x_t, x0, t)


@pytest.mark.parametrize("name", list(make_ops()))
def test_oracle_model_recovers_x0(sched, name):
    op = make_ops()[name]
    x0 = images()
    out = de.ddnm(oracle(sched, x0), sched, op, op.A(x0), steps=20, eta=0.85, seed=1)
    torch.testing.assert_close(out, x0, atol=2e-4, rtol=0)


@pytest.mark.parametrize("kind", ["ddim", "ddim-paper", "ddpm"])
def test_oracle_recovery_for_every_step_kind(sched, kind):
    op = ops.SuperResolution(4)
    x0 = images(c=1)
    out = de.ddnm_plus(oracle(sched, x0), sched, op, op.A(x0), steps=10, settings=S(eta=1.0, kind=kind)).x0_hat
    torch.testing.assert_close(out, x0, atol=2e-4, rtol=0)


@pytest.mark.parametrize("name", list(make_ops()))
def test_any_model_gives_consistent_result(sched, random_unet, name):
    """Whatever the model predicts, A x0_hat = y to float32 precision (noise-free y)."""
    op = make_ops()[name]
    x0 = images(seed=3)
    y = op.A(x0)
    out = de.ddnm(random_unet, sched, op, y, steps=10, seed=0)  # x0_t clipped to [-1, 1] (the default)
    assert de.metrics.consistency(op, out, y).max() <= 1e-5
    if name not in ("denoise", "deblur"):  # (these two are invertible here: no null space, the answer is A^-1 y)
        assert (out - x0).abs().mean() > 1e-3  # the model filled the null space: the test is not vacuous
    # Without the clip an untrained model's x0_t reaches |x| ~ 100 (x_t / sqrt(alpha_bar) at t = T):
    # still consistent to float32 precision *relative to that scale*.
    raw = de.ddnm(random_unet, sched, op, y, steps=10, seed=0, clip_x0=False)
    scale = max(1.0, float(raw.abs().max()))
    assert de.metrics.consistency(op, raw, y).max() <= 1e-5 * scale


def test_ddnm_plus_without_noise_or_travel_is_ddnm(sched, random_unet):
    op = ops.SuperResolution(2)
    y = op.A(images(seed=4))
    a = de.ddnm(random_unet, sched, op, y, steps=15, eta=0.85, seed=7)
    b = de.ddnm_plus(
        random_unet,
        sched,
        op,
        y,
        sigma_y=0.0,
        steps=15,
        seed=7,
        settings=S(eta=0.85, travel_length=5, travel_repeat=1),
    ).x0_hat
    assert torch.equal(a, b)


def chapter_8_ddnm_by_hand(sched):
    """The ten-line Algorithm 1 that students read and write in chapter 8 (``ddnm_by_hand``), taken from the
    notebook itself: the library is tested against the book's loop, not against a copy kept here."""
    import ast
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).parent.parent / "book" / "08-ddnm.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    tree = ast.parse(next(c for c in cells if "def ddnm_by_hand" in c))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "ddnm_by_hand")
    ns = {"torch": torch, "sched": sched}
    exec(compile(ast.Module([fn], []), "08-ddnm.ipynb", "exec"), ns)
    return ns["ddnm_by_hand"]


@pytest.mark.parametrize("name", ["colorize", "sr4", "box"])
def test_matches_the_books_algorithm_1(sched, random_unet, name):
    op = make_ops()[name]
    y = op.A(images(seed=5))
    ours = de.ddnm(random_unet, sched, op, y, steps=12, eta=0.85, seed=3, clip_x0=False)  # Algorithm 1 has no clip
    with torch.no_grad():
        ref = chapter_8_ddnm_by_hand(sched)(random_unet, y, op, steps=12, eta=0.85, seed=3)
    # the book writes line 5 out in float32 (the library computes its coefficients in float64): rounding only
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # and the comparison can fail: another seed is another sample
        other = chapter_8_ddnm_by_hand(sched)(random_unet, y, op, steps=12, eta=0.85, seed=4)
    assert (other - ours).abs().max() > 1e-2


def test_same_seed_same_output_different_seed_different_output(sched, random_unet):
    op = ops.Inpainting(ops.Inpainting.box_mask(32, 16))
    y = op.A(images(seed=6))
    a = de.ddnm(random_unet, sched, op, y, steps=8, seed=0)
    b = de.ddnm(random_unet, sched, op, y, steps=8, seed=0)
    c = de.ddnm(random_unet, sched, op, y, steps=8, seed=1)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    # different seeds differ only in the null space: both are consistent
    torch.testing.assert_close(op.A(a), op.A(c), atol=1e-5, rtol=0)


# --- DDNM+ noise scaling ---------------------------------------------------------------------
@pytest.mark.parametrize("sigma_t,a_t,sigma_y", [(0.5, 0.9, 0.1), (0.05, 0.9, 0.1), (0.0, 1.0, 0.2), (0.3, 0.5, 0.0)])
def test_lambda_rule_keeps_total_variance(sigma_t, a_t, sigma_y):
    lam, std = de.lambda_and_std(sigma_t, a_t, sigma_y)
    assert 0 <= lam <= 1
    assert (a_t * lam * sigma_y) ** 2 + std**2 == pytest.approx(sigma_t**2, abs=1e-15)
    if sigma_t >= a_t * sigma_y:
        assert lam == 1.0
    else:
        assert lam == pytest.approx(sigma_t / (a_t * sigma_y)) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kind,t,t_next", [("ddpm", 40, 39), ("ddim", 300, 250), ("ddim", 40, 20)])
def test_ddnm_plus_step_variance_monte_carlo(sched, kind, t, t_next):
    """One DDNM+ step with noisy y: per-pixel variance of x_{t_next} equals the scheduled sigma_t^2."""
    n, sigma_y = 20_000, 0.2
    op = ops.SuperResolution(2)
    x_true = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    y = op.A(x_true) + sigma_y * torch.randn(n, 1, 2, 2, generator=gen, dtype=torch.float64)
    x_t = torch.full((n, 1, 4, 4), 0.3, dtype=torch.float64)
    eps = torch.full_like(x_t, 0.1)  # a fixed model output
    c = sched.step_coefs(t, t_next, 1.0, kind)
    sigma_t, a_t = c.sigma, c.c_x0
    lam, std = de.lambda_and_std(sigma_t, a_t, sigma_y)
    x0_t = sched.predict_x0(x_t, eps, t)
    x_prev = (
        c.c_x0 * op.project(x0_t, y, lam)
        + c.c_eps * eps
        + c.c_xt * x_t
        + std * torch.randn(x_t.shape, generator=gen, dtype=torch.float64)
    )
    var = x_prev.var(0).mean().item()
    assert var == pytest.approx(sigma_t**2, rel=0.05)
    # whereas plain DDNM (lambda = 1, full fresh noise) over-shoots by (a_t sigma_y)^2
    x_ddnm = (
        c.c_x0 * op.project(x0_t, y)
        + c.c_eps * eps
        + c.c_xt * x_t
        + sigma_t * torch.randn(x_t.shape, generator=gen, dtype=torch.float64)
    )
    assert x_ddnm.var(0).mean().item() == pytest.approx(sigma_t**2 + (a_t * sigma_y) ** 2, rel=0.05)


def test_ddnm_plus_noisy_y_runs_and_lambda_drops_at_the_end(sched, random_unet):
    op = ops.SuperResolution(4)
    y = op.A(images(seed=8)) + 0.1 * torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    res = de.ddnm_plus(random_unet, sched, op, y, sigma_y=0.1, steps=10, settings=S(eta=0.85), trace=True)
    lams = [s.lam for s in res.trace]
    assert lams[0] == 1.0 and lams[-1] == 0.0  # the last step (sigma_t = 0) does not copy the noise of y
    assert all(0 <= lam <= 1 for lam in lams)


# --- time travel -------------------------------------------------------------------------------
def test_travel_schedule_without_travel():
    assert de.travel_schedule(5) == [4, 3, 2, 1, 0, -1]
    assert de.nfe_count(5) == 5


def test_travel_schedule_jumps_back():
    ts = de.travel_schedule(6, travel_length=2, travel_repeat=2)
    # jump points at indices 0 and 2: after reaching them, go back 2 steps once
    assert ts == [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, -1]
    assert sum(1 for i, j in zip(ts, ts[1:]) if j < i) == de.nfe_count(6, 2, 2) == 6 + 2 * 1 * 2


@pytest.mark.parametrize("steps,L,R", [(20, 5, 3), (100, 10, 3), (10, 1, 2), (50, 49, 4), (7, 3, 1)])
def test_nfe_is_predictable_and_counted(sched, steps, L, R):
    calls = []
    x0 = images(n=1, c=1)
    orc = oracle(sched, x0)

    def counting(x, t):
        calls.append(int(t[0]))
        return orc(x, t)

    op = ops.SuperResolution(2)
    res = de.ddnm_plus(counting, sched, op, op.A(x0), steps=steps, settings=S(travel_length=L, travel_repeat=R))
    assert len(calls) == res.nfe == de.nfe_count(steps, L, R)
    # every call is at a timestep of the skipped schedule, and the run ends at t = 0
    assert set(calls) <= set(sched.timesteps(steps)) and calls[-1] == 0
    torch.testing.assert_close(res.x0_hat, x0, atol=2e-4, rtol=0)  # travel keeps the oracle exact


def test_trace_contents(sched, random_unet):
    op = ops.Inpainting(ops.Inpainting.random_mask(32, 0.5))
    y = op.A(images(seed=9))
    res = de.ddnm_plus(random_unet, sched, op, y, steps=6, trace=True)
    assert len(res.trace) == 6 == res.nfe
    assert [s.t for s in res.trace] == sched.timesteps(6)
    for s in res.trace:
        torch.testing.assert_close(s.x0_hat, s.A_pinv_y + s.null_part, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(s.A_pinv_y, op.A_pinv(y))
        assert s.consistency < 1e-5
    torch.testing.assert_close(res.trace[-1].x0_hat, res.x0_hat)


def test_unconditional_sample_shape_and_determinism(sched, random_unet):
    a = de.sample(random_unet, sched, (2, 3, 32, 32), steps=5, seed=3)
    b = de.sample(random_unet, sched, (2, 3, 32, 32), steps=5, seed=3)
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b)


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sigma_y=-0.1), "sigma_y must be a finite number >= 0"),
        (dict(sigma_y=float("nan")), "sigma_y must be a finite number"),
        (dict(steps=0), "steps must be between 1 and 1000"),
        (dict(steps=2000), "steps must be between 1 and 1000"),
        (dict(travel_repeat=0), "travel_repeat must be >= 1"),
        (dict(travel_repeat=2, travel_length=10, steps=10), "travel_length must be between 1 and 9"),
        (dict(travel_repeat=2, travel_length=0), "travel_length must be between"),
        (dict(eta=1.5), "eta must be in"),
    ],
)
def test_bad_sampler_settings(sched, kwargs, match):
    op = ops.SuperResolution(2)
    y = op.A(images(n=1, c=1))
    call = {k: kwargs.pop(k) for k in ("sigma_y", "steps") if k in kwargs}  # the rest are SamplerSettings
    with pytest.raises(DDNMInputError, match=match):
        de.ddnm_plus(lambda x, t: torch.zeros_like(x), sched, op, y, settings=S(**kwargs), **call)


def test_settings_must_be_sampler_settings(sched):
    op = ops.SuperResolution(2)
    with pytest.raises(DDNMInputError, match="settings must be a SamplerSettings"):
        de.ddnm_plus(lambda x, t: torch.zeros_like(x), sched, op, op.A(images(n=1)), settings={"eta": 0.5})
    with pytest.raises(DDNMInputError, match="unknown step kind"):
        S(kind="euler")
    with pytest.raises(DDNMInputError, match="written for the DDIM step"):
        S(kind="ddpm", noise_rule="svd")


def test_nan_in_y_rejected(sched):
    op = ops.SuperResolution(2)
    y = op.A(images(n=1, c=1))
    y[0, 0, 0, 0] = float("inf")
    with pytest.raises(DDNMInputError, match="NaN or infinite"):
        de.ddnm(lambda x, t: torch.zeros_like(x), sched, op, y)


def test_model_channel_mismatch(sched):
    model = UNet(UNetConfig(in_channels=1, ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=()))
    op = ops.Colorization()
    with pytest.raises(DDNMInputError, match="1-channel images .* 3-channel"):
        de.ddnm(model, sched, op, op.A(images(n=1)), steps=2)


def test_model_returning_wrong_shape(sched):
    op = ops.SuperResolution(2)
    with pytest.raises(DDNMInputError, match="model returned shape"):
        de.ddnm(lambda x, t: x[:, :1], sched, op, op.A(images(n=1)), steps=2)


def test_options_are_keyword_only(sched):
    """After (model, sched, op, y) every option is a keyword: swapping sigma_y and steps cannot pass."""
    op = ops.SuperResolution(2)
    y = op.A(images(n=1))
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(TypeError):
        de.ddnm_plus(zero, sched, op, y, 0.1, 10)
    with pytest.raises(TypeError):
        de.ddnm(zero, sched, op, y, 10)
    with pytest.raises(TypeError):
        de.ddnm(zero, sched, op, y, sigma_y=0.1)  # DDNM+ options belong to ddnm_plus
    with pytest.raises(TypeError):
        de.posterior_samples(zero, sched, op, y, 4)
    with pytest.raises(TypeError):
        de.mask_shift.restore_large(zero, sched, op, y, 32)
    with pytest.raises(TypeError):
        de.sample(zero, sched, (1, 3, 8, 8), 10)


def test_inconsistent_composite_warns(sched):
    mask = ops.Inpainting.random_mask(32, 0.3, seed=0)
    op = ops.Composite([ops.Inpainting(mask), ops.SuperResolution(2)])
    x0 = images(n=1, c=1)
    with pytest.warns(UserWarning, match="not be consistent"):
        de.ddnm(oracle(sched, x0), sched, op, op.A(x0), steps=3)


# --- the eta = 0 bug (issue 11 B): DDNM+ must use y whatever eta is ------------------------------
def test_ddnm_plus_at_eta_zero_uses_y(sched, random_unet):
    """Budgeting only the fresh noise eta * sqrt(1 - alpha_bar_s) gave lambda_t = 0 at eta = 0: y was ignored."""
    op = ops.SuperResolution(4)
    gen = torch.Generator().manual_seed(1)
    x = images(seed=9)
    sigma_y = 0.05
    y = op.A(x) + sigma_y * torch.randn(op.A(x).shape, generator=gen)
    res = de.ddnm_plus(random_unet, sched, op, y, sigma_y=sigma_y, steps=20, settings=S(eta=0.0), trace=True)
    rms = float((op.A(res.x0_hat) - y).pow(2).mean().sqrt())
    assert rms < 2 * sigma_y  # consistent with y to within its noise
    assert max(s.lam for s in res.trace) == 1.0  # early steps project fully
    free = de.sample(random_unet, sched, x.shape, steps=20, eta=0.0)  # what the bug returned
    assert float((op.A(free) - y).pow(2).mean().sqrt()) > 5 * rms


# --- the SVD noise rule: per-direction noise by Monte Carlo ---------------------------------------
from ddnm_edu.noise_rules import noise_by_direction  # noqa: E402


@pytest.mark.parametrize("t,t_next", [(300, 250), (30, 20)])  # lambda = 1 early; lambda < 1 in places late
@pytest.mark.parametrize("name", ["sr4", "colorize", "cs", "inpaint", "denoise", "deblur"])
@pytest.mark.parametrize("rule", ["svd", "svd-official"])
def test_noise_per_direction_svd_rule_exact(sched, name, t, t_next, rule):
    op, shape = {
        "sr4": (ops.SuperResolution(4), (1, 8, 8)),
        "colorize": (ops.Colorization(), (3, 4, 4)),
        "cs": (ops.CompressedSensing(0.25, block=8), (1, 8, 8)),
        "inpaint": (ops.Inpainting(ops.Inpainting.random_mask(8, 0.5)), (1, 8, 8)),
        "denoise": (ops.Denoising(), (1, 4, 4)),
        # the Fourier basis: one group per distinct |K(w)|, and the dropped frequencies as "null"
        "deblur": (ops.Deblur(ops.gaussian_kernel(1.0)), (1, 8, 8)),
    }[name]
    out = noise_by_direction(op, sched, shape, t, t_next, sigma_y=0.2, eta=0.85, noise_rule=rule, n=4000)
    for group, (var, target) in out.items():
        assert var == pytest.approx(target, rel=0.06), (group, var, target)


@pytest.mark.parametrize("name", ["sr4", "colorize", "cs", "inpaint"])
def test_noise_per_direction_scalar_rule_is_only_approximate(sched, name):
    """The paper's scalar rule: right for denoising, wrong per direction for the others (but see svd)."""
    op, shape = {
        "sr4": (ops.SuperResolution(4), (1, 8, 8)),
        "colorize": (ops.Colorization(), (3, 4, 4)),
        "cs": (ops.CompressedSensing(0.25, block=8), (1, 8, 8)),
        "inpaint": (ops.Inpainting(ops.Inpainting.random_mask(8, 0.5)), (1, 8, 8)),
    }[name]
    out = noise_by_direction(op, sched, shape, 150, 100, sigma_y=0.2, eta=0.85, noise_rule="scalar", n=4000)
    var, target = out["null"]
    assert var < 0.8 * target  # null directions get too little noise ((a sigma_y / B)^2 = 0.34 at this step)
    measured = [v for g, (v, _) in out.items() if g != "null"]
    if name in ("sr4", "colorize"):  # block means / (1,1,1)/sqrt3 get sigma_y^2 / s^2 > sigma_y^2
        assert min(measured) > 1.05 * target
    else:  # orthonormal rows / observed pixels: exact there
        assert measured[0] == pytest.approx(target, rel=0.06)
    den = noise_by_direction(ops.Denoising(), sched, (1, 4, 4), 300, 250, sigma_y=0.2, noise_rule="scalar", n=4000)
    assert den["s=1"][0] == pytest.approx(den["s=1"][1], rel=0.06)  # exact when A^dagger A^dagger^T = I


@pytest.mark.filterwarnings("ignore:.*A A\\^dagger A != A")
def test_svd_rule_runs_and_stays_consistent_when_noise_free(sched, random_unet):
    op = ops.SuperResolution(4)
    y = op.A(images(seed=2))
    a = de.ddnm_plus(random_unet, sched, op, y, sigma_y=0.0, steps=6, settings=S(noise_rule="svd")).x0_hat
    b = de.ddnm(random_unet, sched, op, y, steps=6)
    torch.testing.assert_close(a, b)  # sigma_y = 0: both rules are DDNM
    yn = y + 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    c = de.ddnm_plus(random_unet, sched, op, yn, sigma_y=0.1, steps=6, settings=S(noise_rule="svd")).x0_hat
    d = de.ddnm_plus(random_unet, sched, op, yn, sigma_y=0.1, steps=6, settings=S(noise_rule="scalar")).x0_hat
    e = de.ddnm_plus(random_unet, sched, op, yn, sigma_y=0.1, steps=6, settings=S(noise_rule="svd-official")).x0_hat
    assert (c - d).abs().max() > 1e-3 and (c - e).abs().max() > 1e-3
    blur = ops.Deblur(ops.gaussian_kernel(1.0))  # its SVD is the Fourier basis: the SVD rules run on it too
    yb = blur.A(images(seed=2)) + 0.1 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    f, g = (
        de.ddnm_plus(random_unet, sched, blur, yb, sigma_y=0.1, steps=6, settings=S(noise_rule=r)).x0_hat
        for r in ("svd", "scalar")
    )
    assert f.dtype == torch.float32 and torch.isfinite(f).all() and (f - g).abs().max() > 1e-3
    composite = ops.Composite([ops.Colorization(), ops.SuperResolution(2)])
    with pytest.raises(DDNMInputError, match="has no closed-form SVD"):
        de.ddnm_plus(
            random_unet,
            sched,
            composite,
            composite.A(images(seed=2)),
            sigma_y=0.1,
            steps=2,
            settings=S(noise_rule="svd"),
        )
    with pytest.raises(DDNMInputError, match="unknown noise_rule"):
        S(noise_rule="exact")


# --- time travel: the paper's re-noising vs the official code's ------------------------------------
def reference_official_time_travel(model, sched, op, y, steps, L, R, eta, seed):
    """functions/svd_ddnm.py ``ddnm_diffusion`` of wyhuai/DDNM, written out: jumps re-noise x0_preds[-1]
    (the *uncorrected* x0_t) with sqrt(at_next) x0_t + sqrt(1 - at_next) z. Same random draws as ours."""
    gen = torch.Generator().manual_seed(seed)
    ts = sched.timesteps(steps)[::-1]
    x = torch.randn(op.A_pinv(y).shape, generator=gen)
    x0_preds = []
    sch = de.travel_schedule(steps, L, R)
    for i, j in zip(sch[:-1], sch[1:]):
        t, s = ts[i], (ts[j] if j >= 0 else -1)
        z = torch.randn(x.shape, generator=gen)
        ab_s = sched.alphas_cumprod[s].float() if s >= 0 else torch.tensor(1.0)
        if j < i:
            ab_t = sched.alphas_cumprod[t].float()
            eps = model(x, torch.full((x.shape[0],), t))
            x0_t = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
            x0_hat = x0_t - op.A_pinv(op.A(x0_t) - y)
            c1, c2 = (1 - ab_s).sqrt() * eta, (1 - ab_s).sqrt() * (1 - eta**2) ** 0.5
            x = ab_s.sqrt() * x0_hat + c1 * z + c2 * eps
            x0_preds.append(x0_t)
        else:
            x = ab_s.sqrt() * x0_preds[-1] + z * (1 - ab_s).sqrt()
    return x


def test_travel_from_official_matches_reference_and_variants_differ(sched, random_unet):
    op = ops.Inpainting(ops.Inpainting.box_mask(32, 12))
    y = op.A(images(seed=4))
    kw = dict(travel_length=2, travel_repeat=2, eta=0.85, clip_x0=False)
    official = de.ddnm_plus(random_unet, sched, op, y, steps=8, seed=5, settings=S(travel_from="x0_t", **kw)).x0_hat
    ref = reference_official_time_travel(random_unet, sched, op, y, 8, 2, 2, 0.85, 5)
    torch.testing.assert_close(official, ref, atol=1e-4, rtol=1e-4)  # float64 vs float32 coefficients
    paper = de.ddnm_plus(random_unet, sched, op, y, steps=8, seed=5, settings=S(**kw)).x0_hat  # re-noise x_t (Alg. 2)
    hat = de.ddnm_plus(random_unet, sched, op, y, steps=8, seed=5, settings=S(travel_from="x0_hat", **kw)).x0_hat
    assert (paper - official).abs().max() > 1e-3 and (hat - official).abs().max() > 1e-3
    for r in (paper, official, hat):  # all three stay consistent
        assert (op.A(r) - y).abs().max() < 1e-4
    with pytest.raises(DDNMInputError, match="unknown travel_from"):
        S(travel_from="x0", **kw)


def literal_algorithm_2(steps, length):
    """The paper's Algorithm 2, lines 2-8, transcribed with t = steps .. 1 (paper) = index t - 1 (ours)."""
    visited, T = [steps - 1], steps
    for t in range(T, 0, -1):
        L = min(T - t, length)  # line 3 (the paper's l)
        visited += [t - 1 + u for u in range(1, L + 1)]  # line 4: x_{t+L} ~ q(x_{t+L} | x_t)
        for j in range(L, -1, -1):  # line 5: for j = L..0
            visited.append(t + j - 2)  # line 8: x_{t+j-1}, as an index
    return visited


@pytest.mark.parametrize("steps,length", [(1, 3), (5, 0), (6, 2), (20, 5)])
def test_paper_algorithm_2_schedule(steps, length):
    ts = de.paper_travel_schedule(steps, length)
    assert ts == literal_algorithm_2(steps, length)
    assert ts[0] == steps - 1 and ts[-1] == -1
    assert all(abs(a - b) == 1 for a, b in zip(ts, ts[1:]))
    nfe = sum(1 for a, b in zip(ts, ts[1:]) if b < a)
    assert nfe == sum(min(steps - 1 - k, length) + 1 for k in range(steps))
    if length == 0:
        assert ts == de.travel_schedule(steps)


def test_sample_steps_are_plain_ddim(sched, random_unet):
    """The unconditional loop yields one step per model call, each the DDIM step of the schedule."""
    steps = list(de.sample_steps(random_unet, sched, (1, 3, 32, 32), steps=4, eta=0.0, seed=3))
    assert [st.t for st in steps] == sched.timesteps(4) and steps[-1].t_next == -1
    for st in steps:
        with torch.inference_mode():
            eps = random_unet(st.x_t, torch.full((1,), st.t))
        want = sched.step(eps, st.t, st.x_t, t_next=st.t_next, eta=0.0, x0=st.x0_t)
        torch.testing.assert_close(st.x_next, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        steps[-1].x_next, de.sample(random_unet, sched, (1, 3, 32, 32), steps=4, eta=0.0, seed=3)
    )


def test_one_ddnm_plus_step_reads_like_the_algorithm(sched):
    """A denoising step runs at most 8 library functions in at most 3 files (the loop's own file
    included; operator maps, input checks and the model not counted): the loop calls the book's
    functions (predict_x0, step_coefs, project, eq. 19), not a private engine."""
    import sys

    x = images(n=1, c=1)
    op = ops.SuperResolution(4)
    y = op.measure(x, 0.1)
    for rule in ("scalar", "svd"):
        run = de.ddnm_plus_steps(
            lambda x_t, t: 0.5 * x_t, sched, op, y, sigma_y=0.1, steps=10, settings=S(noise_rule=rule)
        )
        next(run)
        seen = set()

        def hook(frame, event, arg):
            f = frame.f_code.co_filename.replace("\\", "/")
            if (
                event == "call"
                and "/ddnm_edu/" in f
                and not any(k in f for k in ("/operators/", "errors.py", "unet.py"))
            ):
                seen.add((f.split("/ddnm_edu/")[1], frame.f_code.co_name))

        sys.setprofile(hook)
        try:
            next(run)
        finally:
            sys.setprofile(None)
        called = {fn for fn in seen if fn[1] not in ("ddnm_plus_steps", "check_eps", "<lambda>")}
        assert len(called) <= 8 and len({f for f, _ in seen}) <= 3, (rule, sorted(seen))
        assert ("schedule.py", "predict_x0") in called and ("schedule.py", "step_coefs") in called


def test_measurement_noise_is_not_the_samplers_noise(sched):
    """With default seeds, n in y = A x + sigma_y n and the sampler's x_T are independent draws."""
    x = torch.zeros(1, 3, 32, 32)
    op = ops.Denoising()
    n = op.measure(x, 1.0)  # = n itself
    first = next(de.ddnm_plus_steps(lambda x_t, t: torch.zeros_like(x_t), sched, op, n, sigma_y=1.0, steps=5))
    corr = float(torch.corrcoef(torch.stack([n.flatten(), first.x_t.flatten()]))[0, 1])
    assert abs(corr) < 0.05  # 3072 numbers: an independent draw is within 0.05 with p > 0.99
    sr = ops.SuperResolution(4)
    n_sr = sr.measure(x, 1.0).flatten()
    x_T = next(
        de.ddnm_plus_steps(
            lambda x_t, t: torch.zeros_like(x_t), sched, sr, n_sr.reshape(1, 3, 8, 8), sigma_y=1.0, steps=5
        )
    ).x_t.flatten()
    assert not torch.equal(n_sr, x_T[: n_sr.numel()])


def test_seed_or_generator_not_both(sched):
    op = ops.SuperResolution(2)
    y = op.A(images(n=1))
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(DDNMInputError, match="not both"):
        de.ddnm(zero, sched, op, y, steps=2, seed=1, generator=torch.Generator())
    with pytest.raises(DDNMInputError, match="seed must be"):
        de.rng.spawn(-1, "image", 0)


def test_child_streams_never_collide():
    """Images of a folder, their samples and their windows each draw their own numbers."""
    from ddnm_edu.rng import image_streams, spawn, spawn_many

    keys = [("image", i) for i in range(4)] + [("image", i, "sample", j) for i in range(4) for j in range(4)]
    keys += [("image", i, "window", w) for i in range(4) for w in range(4)] + [("measure",), ("sample", 1)]
    first = {k: torch.randn(8, generator=spawn(0, *k)) for k in keys}
    firsts = torch.stack(list(first.values()))
    assert len({tuple(v.tolist()) for v in firsts}) == len(keys)
    root = torch.randn(8, generator=torch.Generator().manual_seed(0))  # the samplers' default stream
    root1 = torch.randn(8, generator=torch.Generator().manual_seed(1))
    assert not any(torch.equal(v, root) or torch.equal(v, root1) for v in firsts)
    torch.testing.assert_close(torch.randn(8, generator=spawn(0, "image", 2)), first[("image", 2)])
    assert [torch.randn(3, generator=g).tolist() for g in spawn_many(0, 2, "image")] == [
        torch.randn(3, generator=spawn(0, "image", i)).tolist() for i in range(2)
    ]
    window3 = [torch.randn(3, generator=g).tolist() for g in image_streams(0, [5, 7], "window", 3)]
    assert window3 == [torch.randn(3, generator=spawn(0, "image", i, "window", 3)).tolist() for i in (5, 7)]


# --- speed work must not change results (issue 17) -------------------------------------------------
def test_sampler_results_identical_to_before_for_the_same_seed(sched):
    """tests/data/sampler_reference.pt was written by the sampler as it was before the speed work
    (commit 6115c3f: its ddnm_edu, run on the shipped fashion-mnist-32 weights in the default memory format):
    the flat loop of today (coefficients computed at each step) must reproduce it. When the
    weights are re-exported the reference is rewritten the same way, with the old sampler (last: the
    6,177-step weights, session 10, on an Intel Xeon). Another CPU's convolution kernels round differently
    (up to 8e-7 between an AMD EPYC and an Intel Xeon with AMX), so the check allows 1e-5 absolute. It guards the
    loop's logic: a wrong coefficient
    formula, a skipped or repeated step or other noise moves pixels by far more than that. A change that only
    rounds differently (say, coefficients kept in float32 instead of float64) may well pass: this test does
    not guard float precision."""
    from pathlib import Path

    ref = torch.load(Path(__file__).parent / "data" / "sampler_reference.pt", weights_only=True)
    m = de.load_pretrained("fashion-mnist-32").to(memory_format=torch.contiguous_format)
    x = de.data.load("fashion-mnist", "test", n=2)
    op, box = ops.SuperResolution(4), ops.Inpainting(ops.Inpainting.box_mask(32, 12))
    y = op.A(x)
    now = {
        "ddnm_sr4": de.ddnm(m, sched, op, y, steps=8, seed=0),
        "ddnm_box_travel": de.ddnm_plus(
            m, sched, box, box.A(x), steps=8, seed=1, settings=S(travel_length=2, travel_repeat=2)
        ).x0_hat,
        "ddpm_sr4": de.ddnm_plus(m, sched, op, y, steps=8, settings=S(kind="ddpm", eta=1.0), seed=2).x0_hat,
        "ddim_sample": de.sample(m, sched, (2, 1, 32, 32), steps=8, eta=0.85, seed=3),
    }
    for k in ref:
        torch.testing.assert_close(now[k], ref[k], rtol=0, atol=1e-5, msg=k)
    # the shipped model runs channels_last on the CPU (faster); the result differs only by float rounding
    fast = de.load_pretrained("fashion-mnist-32")
    assert fast.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(de.ddnm(fast, sched, op, y, steps=8, seed=0), ref["ddnm_sr4"], atol=1e-4, rtol=0)


def test_a_broken_model_is_reported_in_one_line(sched):
    """A model that returns NaN, or the wrong shape, is named as the problem (not the operator's input)."""
    op = ops.SuperResolution(4)
    y = op.A(images(seed=3))
    with pytest.raises(DDNMInputError, match="model returned NaN"):
        de.ddnm(lambda x, t: torch.full_like(x, float("nan")), sched, op, y, steps=3, clip_x0=False)
    with pytest.raises(DDNMInputError, match="model returned shape"):
        de.ddnm(lambda x, t: x[:, :1], sched, op, y, steps=3)
    with pytest.raises(DDNMInputError, match="model returned NaN"):
        de.sample(lambda x, t: torch.full_like(x, float("nan")), sched, (1, 1, 8, 8), steps=3)


def test_the_sampler_runs_in_inference_mode_and_returns_ordinary_tensors(sched, random_unet, monkeypatch):
    """No autograd bookkeeping inside the loop (the model is called in inference mode), but the result and
    the trace are ordinary tensors a reader can modify in place or use with autograd."""
    modes = []
    model = lambda x, t: (modes.append(torch.is_inference_mode_enabled()), random_unet(x, t))[1]  # noqa: E731
    op = ops.SuperResolution(4)
    res = de.ddnm_plus(model, sched, op, op.A(images(seed=1)), steps=3, trace=True)
    assert modes == [True, True, True]
    assert not res.x0_hat.is_inference() and not res.trace[0].x0_t.is_inference()
    res.x0_hat.mul_(2)  # in place: allowed on an ordinary tensor
    res.trace[0].x0_hat.add_(1)
    assert not torch.is_inference_mode_enabled()


def test_bad_streams_and_shapes_get_one_clear_line(random_unet):
    """Review of issue 38: keys and ids that would share or break streams, a wrong x_T, seed beside
    generator, DDNM+ with DDPM steps at eta < 1 (its budget would shrink, and eta = 0 would ignore y)."""
    from ddnm_edu.rng import spawn, stream_ids

    with pytest.raises(DDNMInputError, match="stream keys must be"):
        spawn(0, "image", -1)
    with pytest.raises(DDNMInputError, match="repeats an id"):
        stream_ids([0, 3, 3], 3)
    op, sched = ops.SuperResolution(2), de.NoiseSchedule.linear(50)
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(DDNMInputError, match="not both"):
        op.measure(x, 0.1, seed=1, generator=torch.Generator())
    with pytest.raises(DDNMInputError, match="sigma_y must be"):
        op.measure(x, -0.1)
    y = op.A(x)
    with pytest.raises(DDNMInputError, match=r"x_T has shape \(1, 3, 4, 4\)"):
        de.ddnm_plus(random_unet, sched, op, y, steps=2, x_T=torch.zeros(1, 3, 4, 4))
    with pytest.raises(DDNMInputError, match="needs eta=1.0"):
        de.ddnm_plus(random_unet, sched, op, y, sigma_y=0.1, steps=2, settings=de.SamplerSettings(kind="ddpm", eta=0))
    de.ddnm_plus(random_unet, sched, op, y, sigma_y=0.1, steps=2, settings=de.SamplerSettings(kind="ddpm", eta=1.0))
    assert sched.snr(-1) == float("inf") and torch.isclose(sched.snr(0), sched.alphas_cumprod[0] / sched.betas[0])


def test_between_calls_benchmark_times_every_method():
    """benchmarks/between_calls.py (speed.md quotes it) runs and times the same calls for each method."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("between_calls", ROOT / "benchmarks" / "between_calls.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    got = mod.measure(1, runs=1, steps=2)
    assert set(got) == {"unet", "ddim", "ddnm", "ddnm_plus"}
    assert all(r["call_ms"] > 0 and r["between_ms"] > 0 for r in got.values())
