"""External check: our forward process and one-step samplers agree with diffusers' schedulers."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")


@pytest.fixture
def inputs(gen):
    x0 = torch.randn(2, 3, 8, 8, generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    return x0, eps, noise


def test_add_noise_matches_ddpm_scheduler(sched, inputs):
    x0, eps, _ = inputs
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    t = torch.tensor([3, 611])
    torch.testing.assert_close(sched.add_noise(x0, eps, t), ref.add_noise(x0, eps, t), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sched.alphas_cumprod.float(), ref.alphas_cumprod, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("t", [999, 500, 17, 1])
def test_ddpm_step_matches(sched, inputs, t):
    x0, eps, noise = inputs
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, variance_type="fixed_small"
    )
    ref.set_timesteps(1000)
    x_t = sched.add_noise(x0, noise, t)
    # diffusers draws its variance noise from the generator: draw the same z and compare whole steps
    want = ref.step(eps, t, x_t, generator=torch.Generator().manual_seed(0)).prev_sample
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(0))
    got = sched.step(eps, t, x_t, kind="ddpm", eta=1.0, noise=z)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    c = sched.step_coefs(t, t - 1, 1.0, "ddpm")
    assert float(c.sigma) ** 2 == pytest.approx(float(ref._get_variance(t)), rel=1e-4)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches(sched, inputs, eta):
    x0, eps, noise = inputs
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing="leading",
    )
    ref.set_timesteps(20)
    assert list(ref.timesteps.tolist()) == sched.timesteps(20)
    for t, t_next in sched.timestep_pairs(20)[::6]:
        x_t = sched.add_noise(x0, noise, t)
        want = ref.step(eps, t, x_t, eta=eta, variance_noise=noise).prev_sample
        got = sched.step(eps, t, x_t, t_next=t_next, eta=eta, kind="ddim-paper", noise=noise)
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
