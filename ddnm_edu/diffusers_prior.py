"""Any diffusers DDPM as the prior: ``model, sched = load_diffusers(folder)``.

The DDNM paper's CelebA-HQ and LSUN priors are the DDPM checkpoints of Ho et al. (2020), published in
the diffusers format (google/ddpm-celebahq-256, -church-256, -bedroom-256, -cat-256, -cifar10-32): a
``UNet2DModel`` (``config.json`` + weights) and a scheduler config (``scheduler_config.json``) in one
folder, or in its ``unet/`` and ``scheduler/`` subfolders. This module turns such a folder into the two
things every sampler here takes:

* ``model(x_t, t) -> eps``, the noise prediction Z_theta(x_t, t) of DDNM's Algorithm 1, line 3. A model
  trained to predict x_0 (``prediction_type="sample"``) or v (``"v_prediction"``) is converted to eps
  with the schedule: eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t), and
  eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t. A model that also outputs its variance
  (``out_channels = 2 C``, "learned_range") keeps its first C channels, the eps half.
* the :class:`NoiseSchedule` of the scheduler config, computed here in float64 from its
  ``beta_schedule`` (``linear``, ``scaled_linear``, ``squaredcos_cap_v2``) or ``trained_betas``.

Only local folders are read (``local_files_only=True``): nothing is downloaded. Fetching a checkpoint
is a separate step on a machine with internet (the appendix "From this book to real images").
diffusers is an optional extra (``pip install ddnm-edu[diffusers]``); the rest of the library never
imports it.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from .errors import DDNMInputError
from .schedule import NoiseSchedule

Tensor = torch.Tensor
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def schedule_from_config(cfg: dict) -> NoiseSchedule:
    """The :class:`NoiseSchedule` of a diffusers scheduler config (a dict read from its JSON)."""
    T = int(cfg.get("num_train_timesteps", 1000))
    if cfg.get("trained_betas") is not None:
        return NoiseSchedule(torch.tensor(cfg["trained_betas"], dtype=torch.float64))
    kind = cfg.get("beta_schedule", "linear")
    b0, b1 = float(cfg.get("beta_start", 1e-4)), float(cfg.get("beta_end", 0.02))
    if kind == "linear":
        return NoiseSchedule.linear(T, b0, b1)
    if kind == "scaled_linear":  # linear in sqrt(beta) (latent diffusion)
        return NoiseSchedule(torch.linspace(b0 ** 0.5, b1 ** 0.5, T, dtype=torch.float64) ** 2)
    if kind == "squaredcos_cap_v2":  # Nichol & Dhariwal's cosine, beta capped at 0.999 (as diffusers)
        return NoiseSchedule.cosine(T, s=0.008, max_beta=0.999)
    raise DDNMInputError(f"unsupported beta_schedule {kind!r} in the scheduler config; supported: "
                         f"{', '.join(BETA_SCHEDULES)} (or trained_betas).")


class DiffusersEps(nn.Module):
    """A diffusers ``UNet2DModel`` as ``model(x_t, t) -> eps`` (Algorithm 1, line 3's Z_theta)."""

    def __init__(self, unet: nn.Module, sched: NoiseSchedule, prediction_type: str = "epsilon"):
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise DDNMInputError(f"unsupported prediction_type {prediction_type!r}; supported: "
                                 f"{', '.join(PREDICTION_TYPES)}.")
        self.unet, self.sched, self.prediction_type = unet, sched, prediction_type
        c = unet.config
        size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
        # what the samplers and the CLI read from a model (as from the shipped UNets' config)
        self.config = SimpleNamespace(image_size=int(size), in_channels=int(c.in_channels))
        self.memory_format = None

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        out = self.unet(x_t, t).sample
        out = out[:, : x_t.shape[1]]  # learned variance: the first C channels are the prediction
        if self.prediction_type == "epsilon":
            return out
        ab = self.sched.alphas_cumprod.to(x_t.device, x_t.dtype)[t.long()].reshape(-1, 1, 1, 1)
        if self.prediction_type == "sample":  # out = x0
            return (x_t - ab.sqrt() * out) / (1 - ab).sqrt()
        return ab.sqrt() * out + (1 - ab).sqrt() * x_t  # out = v = sqrt(ab) eps - sqrt(1 - ab) x0


def _find(folder: Path, name: str, sub: str) -> Path | None:
    for p in (folder / name, folder / sub / name):
        if p.is_file():
            return p
    return None


def load_diffusers(folder: str | Path, device: str | torch.device = "cpu") -> tuple[DiffusersEps, NoiseSchedule]:
    """(model, sched) from a local diffusers folder: a ``UNet2DModel`` and its scheduler config.

    The folder is what ``save_pretrained`` writes, or a downloaded checkpoint such as
    google/ddpm-celebahq-256 (files at the top, or in ``unet/`` and ``scheduler/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DDNMInputError(f"model folder {folder} not found; give a folder with a diffusers UNet2DModel "
                             "(config.json and weights) and its scheduler_config.json.")
    unet_cfg = _find(folder, "config.json", "unet")
    sched_cfg = _find(folder, "scheduler_config.json", "scheduler")
    if unet_cfg is None or sched_cfg is None:
        missing = " and ".join(n for n, p in (("config.json", unet_cfg), ("scheduler_config.json", sched_cfg))
                               if p is None)
        raise DDNMInputError(f"{folder} is not a diffusers model folder: no {missing} (at the top or in "
                             "unet/ and scheduler/).")
    cls = json.loads(unet_cfg.read_text()).get("_class_name")
    if cls != "UNet2DModel":
        raise DDNMInputError(f"{unet_cfg} describes a {cls}, not a UNet2DModel; only unconditional pixel-space "
                             "DDPM UNets can be the prior here.")
    try:
        from diffusers import UNet2DModel
    except ImportError:
        raise DDNMInputError("loading a diffusers model needs the diffusers package: "
                             "pip install 'ddnm-edu[diffusers]'.") from None
    cfg = json.loads(sched_cfg.read_text())
    sched = schedule_from_config(cfg)
    try:
        unet = UNet2DModel.from_pretrained(unet_cfg.parent, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DDNMInputError(f"could not load the UNet in {unet_cfg.parent} ({first}).") from None
    model = DiffusersEps(unet, sched, cfg.get("prediction_type", "epsilon"))
    return model.to(device).eval().requires_grad_(False), sched
