"""Any diffusers DDPM as the prior (ddnm_edu/diffusers_prior.py), offline: tiny random UNet2DModels saved
with save_pretrained in a temporary folder, loaded back, and run through DDNM and ``ddnm-edu restore``."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import operators as ops
from ddnm_edu.diffusers_prior import DiffusersEps, load_diffusers
from ddnm_edu.errors import DDNMInputError
from test_sampling import reference_official_time_travel

diffusers = pytest.importorskip("diffusers")


def tiny_unet(channels=3, size=16, out_channels=None, seed=0):
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=out_channels or channels,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )


def save(folder: Path, unet=None, subfolders=False, **sched_kw) -> Path:
    unet = unet or tiny_unet()
    unet.save_pretrained(folder / "unet" if subfolders else folder)
    diffusers.DDPMScheduler(**sched_kw).save_pretrained(folder / "scheduler" if subfolders else folder)
    return folder


@pytest.mark.parametrize(
    "kw",
    [
        dict(beta_schedule="linear"),
        dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(num_train_timesteps=500),
    ],
)
def test_schedule_is_the_schedulers(tmp_path, kw):
    model, sched = load_diffusers(save(tmp_path / "m", **kw))
    ref = diffusers.DDPMScheduler(**kw)
    assert sched.T == ref.config.num_train_timesteps
    torch.testing.assert_close(sched.alphas_cumprod.float(), ref.alphas_cumprod, atol=2e-6, rtol=1e-5)
    assert model.config.image_size == 16 and model.config.in_channels == 3


def test_trained_betas_and_subfolder_layout(tmp_path):
    betas = torch.linspace(1e-4, 0.03, 200, dtype=torch.float64)
    model, sched = load_diffusers(
        save(tmp_path / "m", subfolders=True, num_train_timesteps=1000, trained_betas=betas.tolist())
    )
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, trained_betas=betas.tolist())
    assert sched.T == len(ref.betas) == 200  # the listed betas win over num_train_timesteps, as in diffusers
    torch.testing.assert_close(sched.betas, betas)


def test_eps_is_the_unets_output_and_learned_variance_keeps_the_first_half(tmp_path, gen):
    x, t = torch.randn(2, 3, 16, 16, generator=gen), torch.tensor([10, 700])
    unet = tiny_unet()
    model, _ = load_diffusers(save(tmp_path / "a", unet))
    torch.testing.assert_close(model(x, t), unet(x, t).sample)
    wide = tiny_unet(out_channels=6, seed=1)  # "learned_range": eps, then the variance channels
    model, _ = load_diffusers(save(tmp_path / "b", wide, variance_type="learned_range"))
    out = model(x, t)
    assert out.shape == x.shape
    torch.testing.assert_close(out, wide(x, t).sample[:, :3])


class Stub(torch.nn.Module):
    """A 'UNet' that returns a given tensor (the x0 or v of a known x_t)."""

    def __init__(self, value):
        super().__init__()
        self.value, self.config = value, SimpleNamespace(sample_size=8, in_channels=3)

    def forward(self, x, t):
        return SimpleNamespace(sample=self.value)


@pytest.mark.parametrize("kind", ["sample", "v_prediction"])
def test_x0_and_v_predictions_become_eps(sched, gen, kind):
    x0, eps, t = (
        torch.randn(2, 3, 8, 8, generator=gen),
        torch.randn(2, 3, 8, 8, generator=gen),
        torch.tensor([50, 900]),
    )
    x_t = sched.add_noise(x0, eps, t)
    ab = sched.alphas_cumprod[t].float().reshape(-1, 1, 1, 1)
    value = x0 if kind == "sample" else ab.sqrt() * eps - (1 - ab).sqrt() * x0  # v (Salimans & Ho 2022)
    ref = diffusers.DDPMScheduler(prediction_type=kind)
    if kind == "v_prediction":  # the same v as diffusers'
        torch.testing.assert_close(value, ref.get_velocity(x0, eps, t), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(DiffusersEps(Stub(value), sched, kind)(x_t, t), eps, atol=1e-4, rtol=1e-4)
    with pytest.raises(DDNMInputError, match="prediction_type"):
        DiffusersEps(Stub(value), sched, "mu")


def test_clear_errors(tmp_path):
    with pytest.raises(DDNMInputError, match="not found"):
        load_diffusers(tmp_path / "nowhere")
    tiny_unet().save_pretrained(tmp_path / "no-sched")
    with pytest.raises(DDNMInputError, match="no scheduler_config.json"):
        load_diffusers(tmp_path / "no-sched")
    save(tmp_path / "sigmoid", beta_schedule="linear")
    cfg = json.loads((tmp_path / "sigmoid" / "scheduler_config.json").read_text())
    (tmp_path / "sigmoid" / "scheduler_config.json").write_text(json.dumps({**cfg, "beta_schedule": "sigmoid"}))
    with pytest.raises(DDNMInputError, match="unsupported beta_schedule 'sigmoid'"):
        load_diffusers(tmp_path / "sigmoid")
    save(tmp_path / "vae")
    cfg = json.loads((tmp_path / "vae" / "config.json").read_text())
    (tmp_path / "vae" / "config.json").write_text(json.dumps({**cfg, "_class_name": "AutoencoderKL"}))
    with pytest.raises(DDNMInputError, match="not a UNet2DModel"):
        load_diffusers(tmp_path / "vae")


def edited(folder: Path, name: str, **changes) -> Path:
    """The saved folder with some keys of one of its config files changed."""
    path = folder / name
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return folder


@pytest.mark.parametrize(
    "name, changes, message",
    [
        (
            "scheduler_config.json",
            {"_class_name": "ScoreSdeVeScheduler"},
            "scheduler config is for ScoreSdeVeScheduler, not a DDPM-type",
        ),
        ("scheduler_config.json", {"rescale_betas_zero_snr": True}, "zero terminal SNR"),
        ("scheduler_config.json", {"beta_start": "x"}, "beta_start in the scheduler config must be a number, got 'x'"),
        ("scheduler_config.json", {"num_train_timesteps": 0}, "num_train_timesteps in the scheduler config must be 1"),
        (
            "scheduler_config.json",
            {"trained_betas": [0.1, 1.5]},
            "trained_betas in the scheduler config must be numbers",
        ),
        ("scheduler_config.json", {"prediction_type": "mu"}, "unsupported prediction_type 'mu'"),
        ("config.json", {"time_embedding_type": "fourier"}, "score-SDE (continuous-time) model, not a DDPM"),
        ("config.json", {"num_class_embeds": 10}, "the UNet is class-conditional"),
        ("config.json", {"sample_size": [16, 32]}, "sample_size must be one side (square images)"),
        ("config.json", {"out_channels": 5}, "out_channels 5 is neither in_channels 3"),
    ],
)
def test_models_it_cannot_use_are_refused_in_one_line(tmp_path, name, changes, message):
    folder = edited(save(tmp_path / "m"), name, **changes)
    with pytest.raises(DDNMInputError, match=re.escape(message)):
        load_diffusers(folder)


def test_a_broken_config_file_is_one_clear_line_in_the_command(tmp_path, capsys):
    from ddnm_edu.tools.cli import main
    from ddnm_edu.tools.images import write_image

    folder = save(tmp_path / "m")
    (folder / "scheduler_config.json").write_text("{not json")
    write_image(torch.rand(3, 4, 4) * 2 - 1, tmp_path / "small.png")
    assert (
        main(
            [
                "restore",
                str(tmp_path / "small.png"),
                "--task",
                "sr4",
                "--model",
                str(folder),
                "--out",
                str(tmp_path / "out.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "could not read" in err and "scheduler_config.json as JSON" in err and "Traceback" not in err


def test_ddnm_on_a_diffusers_model_is_consistent_and_is_the_official_loop(tmp_path, gen):
    model, sched = load_diffusers(save(tmp_path / "m"))
    op = ops.SuperResolution(4)
    y = op.A(torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1)
    ours = de.ddnm_plus(
        model, sched, op, y, steps=10, seed=3, settings=de.SamplerSettings(eta=0.85, clip_x0=False)
    ).x0_hat
    assert (op.A(ours) - y).abs().max() < 1e-5
    with torch.no_grad():
        ref = reference_official_time_travel(model, sched, op, y, 10, 1, 1, 0.85, 3)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_restore_command_with_a_diffusers_folder(tmp_path):
    from ddnm_edu.tools.cli import main, restore
    from ddnm_edu.tools.images import read_image, write_image

    folder = save(tmp_path / "ddpm-tiny")
    write_image(torch.rand(3, 4, 4) * 2 - 1, tmp_path / "small.png")
    assert (
        main(
            [
                "restore",
                str(tmp_path / "small.png"),
                "--task",
                "sr4",
                "--model",
                str(folder),
                "--steps",
                "3",
                "--out",
                str(tmp_path / "out.png"),
            ]
        )
        == 0
    )
    assert read_image(tmp_path / "out.png", 3, 0.0).shape == (1, 3, 16, 16)
    write_image(torch.rand(3, 8, 8) * 0.4 - 0.2, tmp_path / "bigger.png")  # 32 x 32 result: window by window
    assert (
        main(
            [
                "restore",
                str(tmp_path / "bigger.png"),
                "--task",
                "sr4",
                "--model",
                str(folder),
                "--steps",
                "3",
                "--out",
                str(tmp_path / "big.png"),
            ]
        )
        == 0
    )
    assert read_image(tmp_path / "big.png", 3, 0.0).shape == (1, 3, 32, 32)
    y = read_image(tmp_path / "bigger.png", 3, 0.0)  # the same route before the file clips to [-1, 1]:
    big = restore(y, "sr4", str(folder), steps=3).x0_hat  # a random UNet's x0_hat leaves that range
    assert big.shape == (1, 3, 32, 32) and (ops.SuperResolution(4).A(big) - y).abs().max() < 1e-5
    write_image(torch.rand(3, 2, 2) * 2 - 1, tmp_path / "tiny.png")
    assert (
        main(
            [
                "restore",
                str(tmp_path / "tiny.png"),
                "--task",
                "sr4",
                "--model",
                str(folder),
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )  # smaller than the model: one clear line


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_diffusers_prior_on_an_accelerator(tmp_path, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    if device == "mps" and not torch.backends.mps.is_available():
        pytest.skip("no MPS device on this machine")
    model, sched = load_diffusers(save(tmp_path / "m"), device=device)
    op = ops.SuperResolution(4)
    y = op.A(torch.rand(1, 3, 16, 16) * 2 - 1)
    out = de.ddnm_plus(model, sched, op, y.to(device), steps=4).x0_hat
    assert out.device.type == device and (op.A(out) - y.to(device)).abs().max() < 1e-4


def test_a_model_in_memory_with_its_scheduler(tmp_path, gen):
    unet, ref = tiny_unet(), diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    model, sched = de.load_diffusers(unet, scheduler=ref)
    torch.testing.assert_close(sched.alphas_cumprod.float(), ref.alphas_cumprod, atol=2e-6, rtol=1e-5)
    x, t = torch.randn(1, 3, 16, 16, generator=gen), torch.tensor([300])
    torch.testing.assert_close(model(x, t), unet(x, t).sample)
    same = load_diffusers(save(tmp_path / "m", unet, beta_schedule="squaredcos_cap_v2"))  # = the folder route
    torch.testing.assert_close(same[1].alphas_cumprod, sched.alphas_cumprod)
    with pytest.raises(DDNMInputError, match="needs its scheduler"):
        de.load_diffusers(unet)
    with pytest.raises(DDNMInputError, match="not a DDPM-type"):
        de.load_diffusers(unet, scheduler=diffusers.ScoreSdeVeScheduler())
    with pytest.raises(DDNMInputError, match="not a diffusers UNet2DModel"):
        de.load_diffusers(torch.nn.Linear(2, 2), scheduler=ref)
    with pytest.raises(DDNMInputError, match="brings its own"):
        de.load_diffusers(tmp_path / "m", scheduler=ref)


def test_the_core_library_does_not_import_diffusers():
    import subprocess
    import sys

    code = "import sys, ddnm_edu as de; de.load_diffusers; print('diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
