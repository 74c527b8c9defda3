"""Any diffusers DDPM as the prior: ``model, sched = load_diffusers(folder)``.

The official DDNM code's LSUN priors are the DDPM checkpoints of Ho et al. (2020), EMA weights
(``guided_diffusion/diffusion.py`` loads ``ema_lsun_<category>``); its CelebA-HQ prior is SDEdit's
model of the same architecture and schedule (``configs/celeba_hq.yml``). Ho et al.'s checkpoints are
published in the diffusers format (google/ddpm-ema-celebahq-256, google/ddpm-ema-bedroom-256,
google/ddpm-cifar10-32, ...): a ``UNet2DModel`` (``config.json`` + weights) and a scheduler config
(``scheduler_config.json``) in one folder, or in its ``unet/`` and ``scheduler/`` subfolders. This
module turns such a folder into the two things every sampler here takes:

* ``model(x_t, t) -> eps``, the noise prediction Z_theta(x_t, t) of DDNM's Algorithm 1, line 3. A model
  trained to predict x_0 (``prediction_type="sample"``) or v (``"v_prediction"``) is converted to eps
  with the schedule: eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t), and
  eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t. A model that also outputs its variance
  (``out_channels = 2 C``, "learned_range") keeps its first C channels, the eps half.
* the :class:`NoiseSchedule` of the scheduler config, computed here in float64 from its
  ``beta_schedule`` (``linear``, ``scaled_linear``, ``squaredcos_cap_v2``) or ``trained_betas``.
  Only the discrete variance-preserving schedulers (DDPM, DDIM, PNDM, ...: x_t = sqrt(alpha_bar_t) x_0 +
  sqrt(1 - alpha_bar_t) eps) are read; score-SDE "variance exploding" models, zero-terminal-SNR
  rescaling and class-conditional UNets are refused with one line each.

The scheduler's own ``clip_sample`` / ``thresholding`` settings are not used: the samplers' ``clip_x0``
(on by default: x0_t clipped to [-1, 1] before line 4) decides, as for every other prior in the book.

Only local folders are read (``local_files_only=True``): nothing is downloaded. Fetching a checkpoint
is a separate step on a machine with internet (the appendix "From this book to real images").
diffusers is optional (the project's ``[diffusers]`` extra, or ``pip install diffusers``); the rest of
the library never imports it.
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


#: scheduler classes whose config describes x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps with
#: the betas below (all of diffusers' discrete DDPM-family schedulers share these fields)
VP_SCHEDULERS = (
    "DDPMScheduler",
    "DDIMScheduler",
    "PNDMScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "LMSDiscreteScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
    "DDPMParallelScheduler",
    "DDIMParallelScheduler",
)


def _number(cfg: dict, key: str, default, kind=float):
    value = cfg.get(key, default)
    try:
        if isinstance(value, bool):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise DDNMInputError(
            f"{key} in the scheduler config must be a number, got {value!r}; fix or re-download the file."
        ) from None


def schedule_from_config(cfg: dict) -> NoiseSchedule:
    """The :class:`NoiseSchedule` of a diffusers scheduler config (a dict read from its JSON)."""
    cls = cfg.get("_class_name", "DDPMScheduler")
    if cls not in VP_SCHEDULERS:
        raise DDNMInputError(
            f"the scheduler config is for {cls}, not a DDPM-type (variance-preserving) "
            f"scheduler; DDNM here needs one of {', '.join(VP_SCHEDULERS[:3])}, ..."
        )
    if cfg.get("rescale_betas_zero_snr"):
        raise DDNMInputError(
            "the scheduler config rescales the betas to zero terminal SNR "
            "(rescale_betas_zero_snr), which is not supported here; use a DDPM checkpoint "
            "without it."
        )
    T = _number(cfg, "num_train_timesteps", 1000, int)
    if cfg.get("trained_betas") is not None:  # as diffusers: the listed betas, whatever T says
        try:
            betas = torch.tensor(cfg["trained_betas"], dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise DDNMInputError("trained_betas in the scheduler config must be a list of numbers.") from None
        if len(betas) == 0 or not bool(((betas > 0) & (betas < 1)).all()):
            raise DDNMInputError("trained_betas in the scheduler config must be numbers in (0, 1).")
        return NoiseSchedule(betas)
    if T < 1:
        raise DDNMInputError(f"num_train_timesteps in the scheduler config must be 1 or more, got {T}.")
    kind = cfg.get("beta_schedule", "linear")
    b0, b1 = _number(cfg, "beta_start", 1e-4), _number(cfg, "beta_end", 0.02)
    if kind == "linear":
        return NoiseSchedule.linear(T, b0, b1)
    if kind == "scaled_linear":  # linear in sqrt(beta) (latent diffusion)
        return NoiseSchedule(torch.linspace(b0**0.5, b1**0.5, T, dtype=torch.float64) ** 2)
    if kind == "squaredcos_cap_v2":  # Nichol & Dhariwal's cosine, beta capped at 0.999 (as diffusers)
        return NoiseSchedule.cosine(T, s=0.008, max_beta=0.999)
    raise DDNMInputError(
        f"unsupported beta_schedule {kind!r} in the scheduler config; supported: "
        f"{', '.join(BETA_SCHEDULES)} (or trained_betas)."
    )


def check_unet_config(c: dict, where: str = "config.json") -> None:
    """Refuse, in one line, the UNet2DModels that are not an unconditional eps/x0/v network of x_t."""
    if c.get("time_embedding_type", "positional") != "positional":
        raise DDNMInputError(
            f"{where}: time_embedding_type {c['time_embedding_type']!r} is a score-SDE "
            "(continuous-time) model, not a DDPM; use a DDPM checkpoint such as "
            "google/ddpm-ema-celebahq-256."
        )
    if c.get("num_class_embeds") is not None or c.get("class_embed_type") is not None:
        raise DDNMInputError(f"{where}: the UNet is class-conditional; the prior here must be unconditional.")
    size = c.get("sample_size")
    sides = size if isinstance(size, (list, tuple)) else [size]
    if not sides or len(set(sides)) != 1 or not isinstance(sides[0], int) or sides[0] < 1:
        raise DDNMInputError(f"{where}: sample_size must be one side (square images), got {size!r}.")
    cin, cout = c.get("in_channels", 3), c.get("out_channels", 3)
    if cout not in (cin, 2 * cin):
        raise DDNMInputError(
            f"{where}: out_channels {cout} is neither in_channels {cin} (the prediction) nor "
            f"{2 * cin} (prediction and learned variance)."
        )


class DiffusersEps(nn.Module):
    """A diffusers ``UNet2DModel`` as ``model(x_t, t) -> eps`` (Algorithm 1, line 3's Z_theta)."""

    def __init__(self, unet: nn.Module, sched: NoiseSchedule, prediction_type: str = "epsilon"):
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise DDNMInputError(
                f"unsupported prediction_type {prediction_type!r}; supported: {', '.join(PREDICTION_TYPES)}."
            )
        self.unet, self.sched, self.prediction_type = unet, sched, prediction_type
        c = unet.config
        check_unet_config(dict(c) if hasattr(c, "keys") else vars(c), type(unet).__name__)
        size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
        # what the samplers and the CLI read from a model (as from the shipped UNets' config)
        self.config = SimpleNamespace(image_size=int(size), in_channels=int(c.in_channels))

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        out = self.unet(x_t, t).sample
        out = out[:, : x_t.shape[1]]  # learned variance: the first C channels are the prediction
        if self.prediction_type == "epsilon":
            return out
        ab = self.sched.alphas_cumprod.to(x_t.device, x_t.dtype)[t.long()].reshape(-1, 1, 1, 1)
        if self.prediction_type == "sample":  # out = x0
            return (x_t - ab.sqrt() * out) / (1 - ab).sqrt()
        return ab.sqrt() * out + (1 - ab).sqrt() * x_t  # out = v = sqrt(ab) eps - sqrt(1 - ab) x0


def _from_objects(unet: nn.Module, scheduler, device) -> tuple[DiffusersEps, NoiseSchedule]:
    if type(unet).__name__ != "UNet2DModel":
        raise DDNMInputError(
            f"the model is a {type(unet).__name__}, not a diffusers UNet2DModel; only "
            "unconditional pixel-space DDPM UNets can be the prior here."
        )
    if scheduler is None:
        raise DDNMInputError(
            "a UNet2DModel given directly needs its scheduler: load_diffusers(unet, "
            "scheduler=DDPMScheduler(...)) (or the scheduler's config dict)."
        )
    if hasattr(scheduler, "config"):  # a scheduler object: its config, and its class for the check
        cfg = {**dict(scheduler.config), "_class_name": type(scheduler).__name__}
    elif isinstance(scheduler, dict):
        cfg = scheduler
    else:
        raise DDNMInputError(
            f"scheduler must be a diffusers scheduler or its config dict, got {type(scheduler).__name__}."
        )
    return _wrap(unet, schedule_from_config(cfg), cfg, device)


def _wrap(unet: nn.Module, sched: NoiseSchedule, cfg: dict, device) -> tuple[DiffusersEps, NoiseSchedule]:
    """The UNet as ``model(x_t, t) -> eps`` on ``device`` (eval mode, frozen), with ``sched``, the schedule
    of the scheduler config ``cfg``."""
    model = DiffusersEps(unet, sched, cfg.get("prediction_type", "epsilon"))
    return model.to(device).eval().requires_grad_(False), sched


def _read_json(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DDNMInputError(
            f"could not read {path} as JSON ({type(e).__name__}); fix or re-download the file."
        ) from None
    if not isinstance(cfg, dict):
        raise DDNMInputError(f"{path} must hold a JSON object (a diffusers config).")
    return cfg


def _find(folder: Path, name: str, sub: str) -> Path | None:
    for p in (folder / name, folder / sub / name):
        if p.is_file():
            return p
    return None


def load_diffusers(source, device: str | torch.device = "cpu", scheduler=None) -> tuple[DiffusersEps, NoiseSchedule]:
    """(model, sched) from a diffusers DDPM: a local folder holding a ``UNet2DModel`` and its scheduler
    config, or a ``UNet2DModel`` already in memory with its ``scheduler`` (a diffusers scheduler or its
    config dict).

    The folder is what ``save_pretrained`` writes, or a downloaded checkpoint such as
    google/ddpm-ema-celebahq-256 (files at the top, or in ``unet/`` and ``scheduler/``). A model given
    directly is moved to ``device``, put in eval mode and frozen in place."""
    if isinstance(source, nn.Module):
        return _from_objects(source, scheduler, device)
    if scheduler is not None:
        raise DDNMInputError(
            "scheduler= goes with a UNet2DModel given directly; a folder brings its own scheduler_config.json."
        )
    folder = Path(source)
    if not folder.is_dir():
        raise DDNMInputError(
            f"model folder {folder} not found; give a folder with a diffusers UNet2DModel "
            "(config.json and weights) and its scheduler_config.json."
        )
    unet_cfg = _find(folder, "config.json", "unet")
    sched_cfg = _find(folder, "scheduler_config.json", "scheduler")
    if unet_cfg is None or sched_cfg is None:
        missing = " and ".join(
            n for n, p in (("config.json", unet_cfg), ("scheduler_config.json", sched_cfg)) if p is None
        )
        raise DDNMInputError(
            f"{folder} is not a diffusers model folder: no {missing} (at the top or in unet/ and scheduler/)."
        )
    ucfg = _read_json(unet_cfg)
    cls = ucfg.get("_class_name")
    if cls != "UNet2DModel":
        raise DDNMInputError(
            f"{unet_cfg} describes a {cls}, not a UNet2DModel; only unconditional pixel-space "
            "DDPM UNets can be the prior here."
        )
    check_unet_config(ucfg, str(unet_cfg))
    cfg = _read_json(sched_cfg)
    sched = schedule_from_config(cfg)
    if cfg.get("prediction_type", "epsilon") not in PREDICTION_TYPES:
        raise DDNMInputError(
            f"{sched_cfg}: unsupported prediction_type {cfg['prediction_type']!r}; supported: "
            f"{', '.join(PREDICTION_TYPES)}."
        )
    try:
        from diffusers import UNet2DModel
    except ImportError:
        raise DDNMInputError(
            "loading a diffusers model needs the diffusers package: "
            "pip install 'diffusers>=0.25' (the project's [diffusers] extra)."
        ) from None
    try:
        unet = UNet2DModel.from_pretrained(
            unet_cfg.parent, local_files_only=True, low_cpu_mem_usage=False
        )  # no accelerate needed
    except (OSError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DDNMInputError(f"could not load the UNet in {unet_cfg.parent} ({first}).") from None
    return _wrap(unet, sched, cfg, device)
