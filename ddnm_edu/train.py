"""Train the tiny epsilon-UNets: ``python -m ddnm_edu.train --config fashion-mnist-32``
(and the supervised Restormer specialists of chapter 10: ``--config restormer-sr4``, whose loss is the
L1 distance between f(A^dagger y) and x0; see ``ddnm_edu.restormer``).

The DDPM objective (Ho et al. 2020, Algorithm 1): sample x_0 from the data,
t ~ U{0..T-1}, eps ~ N(0, I), and minimise || eps - eps_theta(sqrt(alpha_bar_t) x_0
+ sqrt(1 - alpha_bar_t) eps, t) ||^2. Linear beta schedule, T = 1000 (what the
samplers assume), AdamW, EMA of the weights (the EMA weights are what ships).

* Resumable: a checkpoint (model, EMA, optimiser, step, RNG) is written to
  ``--out`` every few minutes and at exit; running the same command resumes.
* ``--init-from weights.pt`` starts from shipped EMA weights when no checkpoint exists.
* Several processes: ``torchrun --nproc_per_node N -m ddnm_edu.train ...``
  (PyTorch DDP; gloo on CPU, NCCL on CUDA). The global batch is ``--batch``.
* CPU speed: channels_last always; ``--compile`` (torch.compile) was ~1.4x faster
  on our 2-core AVX2 CPU; bf16 autocast (``--amp auto``) is used on CUDA and on
  CPUs with native bf16 only (on AVX2-only CPUs it is ~15x *slower*).
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import CommandParser, DDNMInputError, run_command
from .pretrained import arch_key, init_record
from .restormer import Restormer, RestormerConfig, supervised_loss
from .schedule import NoiseSchedule
from .unet import UNet, UNetConfig, count_parameters

CONFIGS: dict[str, dict] = {
    "fashion-mnist-32": dict(dataset="fashion-mnist", flip=True,
                             unet=UNetConfig(in_channels=1, image_size=32, ch=32, ch_mult=(1, 2, 2),
                                             num_res_blocks=2, attn_resolutions=(8,))),
    "emoji-32": dict(dataset="emoji", flip=False,  # flags, arrows and text are not mirror-symmetric
                     unet=UNetConfig(in_channels=3, image_size=32, ch=32, ch_mult=(1, 2, 2),
                                     num_res_blocks=2, attn_resolutions=(8,))),
    # supervised specialists (chapter 10): a tiny Restormer trained for one degradation, L1 loss
    "restormer-sr4": dict(dataset="fashion-mnist", flip=True, task="sr4", restormer=RestormerConfig()),
    "restormer-denoise": dict(dataset="fashion-mnist", flip=True, task="denoise", restormer=RestormerConfig()),
}


def build_model(cfg: dict) -> torch.nn.Module:
    """The network a config trains: an epsilon-UNet (diffusion) or a Restormer (supervised)."""
    return Restormer(cfg["restormer"]) if arch_key(cfg) == "restormer" else UNet(cfg["unet"])


def get_args(argv=None) -> argparse.Namespace:
    ap = CommandParser(prog="python -m ddnm_edu.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/<config>)")
    ap.add_argument("--steps", type=int, default=60000, help="total optimiser steps to reach")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--loss", choices=["mse", "min-snr"], default="mse",
                    help="per-timestep weighting of the eps-MSE: 'mse' (DDPM's L_simple) or 'min-snr' "
                         "(Min-SNR-gamma, Hang et al. 2023); see benchmarks/training.md")
    ap.add_argument("--snr-gamma", type=float, default=5.0, help="gamma of --loss min-snr")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--sample-every", type=int, default=1000, help="write a sample grid every N steps (0: never)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--amp", choices=["auto", "bf16", "none"], default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--init-from", type=Path, default=None, help="EMA weights to start from (no checkpoint yet)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--n-train", type=int, default=None, help="use only the first N training images (tests)")
    return ap.parse_args(argv)


def _amp_dtype(mode: str, device: torch.device):
    if mode == "none":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def load_training_images(dataset: str, n: int | None = None) -> torch.Tensor:
    """uint8 (N, C, 32, 32) training images (kept as uint8 to save memory)."""
    from . import data

    if dataset == "fashion-mnist":
        imgs, _ = data.fashion_mnist_raw("train")
    else:
        imgs = np.load(data.REPO_DATA / "emoji" / "train.npz")["images"]
    return torch.from_numpy(np.ascontiguousarray(imgs[:n]))


def loss_weights(sched: NoiseSchedule, t: torch.Tensor, rule: str = "mse", gamma: float = 5.0) -> torch.Tensor:
    """Per-sample weight w_t of the eps-MSE, shape (B,).

    * ``"mse"``: w_t = 1 (DDPM's L_simple).
    * ``"min-snr"``: Min-SNR-gamma (Hang et al., ICCV 2023, eq. 9 for eps-prediction):
      w_t = min(SNR_t, gamma) / SNR_t with SNR_t = alpha_bar_t / (1 - alpha_bar_t). It down-weights the
      low-noise timesteps (SNR_t > gamma), whose eps-loss is large in gradient but easy.
    """
    if rule == "mse":
        return torch.ones(t.shape, dtype=torch.float32, device=t.device)
    if rule != "min-snr":
        raise ValueError(f"unknown loss rule {rule!r}; use 'mse' or 'min-snr'.")
    snr = sched.snr(t.cpu()).to(device=t.device, dtype=torch.float32)  # alpha_bar_t / (1 - alpha_bar_t)
    return snr.clamp(max=gamma) / snr


def diffusion_loss(model, sched: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator | None = None,
                   amp_dtype=None, rule: str = "mse", gamma: float = 5.0) -> torch.Tensor:
    """DDPM's simplified objective (Ho et al. 2020, Algorithm 1 / eq. 14):
    E_{t, eps} w_t || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2,
    w_t = 1 by default (see :func:`loss_weights` for Min-SNR-gamma)."""
    B = x0.shape[0]
    t = torch.randint(0, sched.T, (B,), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    if x0.ndim == 4:  # keep the channels_last layout of the batch (faster convolutions on CPU)
        eps = eps.contiguous(memory_format=torch.channels_last)
    x_t = sched.add_noise(x0, eps, t)
    with torch.autocast(x0.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        pred = model(x_t, t)
    if rule == "mse":
        return F.mse_loss(pred.float(), eps)
    per_sample = (pred.float() - eps).pow(2).flatten(1).mean(1)  # (B,)
    return (loss_weights(sched, t, rule, gamma) * per_sample).mean()


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1 - decay)


@torch.no_grad()
def sample_grid(model: torch.nn.Module, sched: NoiseSchedule, path: Path, n: int = 64, steps: int = 100,
                seed: int = 0, eta: float = 1.0) -> None:
    """Unconditional samples as a PNG grid: stochastic DDIM (eta=1) with x0_t clipped, as in the model cards."""
    from PIL import Image

    from .data import to_uint8
    from .sampling import sample

    cfg = model.config
    x = sample(model, sched, (n, cfg.in_channels, cfg.image_size, cfg.image_size), steps=steps, eta=eta, seed=seed)
    side = int(math.ceil(math.sqrt(n)))
    imgs = to_uint8(x)  # (n, C, H, W)
    H = cfg.image_size
    grid = np.full((cfg.in_channels, side * H, side * H), 255, np.uint8)
    for i, im in enumerate(imgs):
        r, c = divmod(i, side)
        grid[:, r * H:(r + 1) * H, c * H:(c + 1) * H] = im
    mode = "L" if cfg.in_channels == 1 else "RGB"
    Image.fromarray(grid[0] if mode == "L" else grid.transpose(1, 2, 0), mode).resize(
        (side * H * 2, side * H * 2), Image.NEAREST).save(path)


def main(argv=None) -> None:
    args = get_args(argv)
    cfg = CONFIGS[args.config]
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device:
        device = torch.device(args.device)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if distributed:
        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    if args.batch % world:
        raise DDNMInputError(f"--batch {args.batch} must be divisible by the number of processes ({world}).")
    out = args.out or Path("runs") / args.config
    out.mkdir(parents=True, exist_ok=True)
    amp = _amp_dtype(args.amp, device)

    torch.manual_seed(args.seed + rank)
    sched = NoiseSchedule.linear(1000)
    model = build_model(cfg).to(device)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    step, wall = 0, 0.0
    init_steps, init_wall = 0, 0.0  # training of the weights a run started from (--init-from)
    init_from: str | None = ""  # the file it started from ("": from scratch; None: an older checkpoint, unknown)
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, wall = int(ck["step"]), float(ck["wall_seconds"])
        init_steps, init_wall = int(ck.get("init_steps", 0)), float(ck.get("init_wall_seconds", 0.0))
        init_from = ck.get("init_from")
        if rank == 0:
            print(f"resumed from {ckpt_path} at step {step} ({wall / 60:.1f} min of training so far)", flush=True)
    elif args.init_from:
        from .pretrained import load_state_dict_checked

        sd = load_state_dict_checked(args.init_from)
        model.load_state_dict(sd)
        ema.load_state_dict(sd)
        # weights carry their own training: count it, so the exported card gives the total. Their record is
        # the one whose sha256 is the file's, in the weights.json beside it (data/candidates/, a GPU job's
        # OUT/weights/) or in the shipped registry; a file's *name* says nothing (every emoji run exports
        # an emoji-32.pt).
        rec = init_record(Path(args.init_from))
        init_from = str(args.init_from)
        if rec is not None:
            init_steps, init_wall = int(rec["steps"]), 60.0 * float(rec["train_wall_minutes"])
        if rank == 0:
            print(f"initialised model and EMA from {args.init_from}"
                  + (f" ({init_steps} steps already trained, by its record)" if rec is not None else
                     " (no weights.json records its sha256: its earlier steps are not counted; give them to "
                     "`python -m ddnm_edu.pretrained export --init-steps N`)"), flush=True)
    model = model.to(memory_format=torch.channels_last)
    ema = ema.to(memory_format=torch.channels_last)
    fwd = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(model)
    if args.compile:
        fwd = torch.compile(fwd)

    images = load_training_images(cfg["dataset"], args.n_train)  # uint8 (N, C, 32, 32)
    n_img = len(images)
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank + 7919 * step)
    local_batch = args.batch // world
    if rank == 0:
        meta = dict(config=args.config, **{arch_key(cfg): cfg[arch_key(cfg)].to_dict()},
                    task=cfg.get("task"), params=count_parameters(model),
                    n_train=n_img, batch=args.batch, world_size=world, lr=args.lr, ema=args.ema,
                    loss="l1" if "task" in cfg else args.loss,
                    snr_gamma=args.snr_gamma if args.loss == "min-snr" and "task" not in cfg else None,
                    amp=str(amp), compile=args.compile, device=str(device),
                    torch=torch.__version__, threads=torch.get_num_threads(), hardware=_hardware(device))
        (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(json.dumps(meta), flush=True)

    stop = {"flag": False}

    def _handler(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)

    def save() -> None:
        if rank != 0:
            return
        tmp = out / "checkpoint.tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "wall_seconds": wall, "config": args.config,
                    "init_steps": init_steps, "init_wall_seconds": init_wall, "init_from": init_from,
                    arch_key(cfg): cfg[arch_key(cfg)].to_dict()}, tmp)
        os.replace(tmp, ckpt_path)
        torch.save(ema.state_dict(), out / "ema.pt")

    log_f = open(out / "loss.csv", "a", newline="") if rank == 0 else None
    log = csv.writer(log_f) if log_f else None
    if log_f is not None and log_f.tell() == 0:
        log.writerow(["step", "loss", "lr", "wall_seconds"])
    t_start, t_ckpt = time.time(), time.time()
    wall0 = wall
    running, n_run = 0.0, 0
    try:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, disable=rank != 0, mininterval=30, dynamic_ncols=True)
        while step < args.steps and not stop["flag"]:
            idx = torch.randint(0, n_img, (local_batch,), generator=gen)
            x0 = images[idx].float().div_(127.5).sub_(1.0)
            if cfg["flip"]:
                flip = torch.rand(local_batch, generator=gen) < 0.5
                x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
            x0 = x0.to(device).contiguous(memory_format=torch.channels_last)
            lr = args.lr * min(1.0, (step + 1) / args.warmup)
            for grp in opt.param_groups:
                grp["lr"] = lr
            if "task" in cfg:  # a supervised specialist: L1 of f(A^dagger y) against x0
                loss = supervised_loss(fwd, cfg["task"], x0, gen, amp)
            else:
                loss = diffusion_loss(fwd, sched, x0, gen, amp, args.loss, args.snr_gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            ema_update(ema, model, min(args.ema, (1 + step) / (10 + step)))
            wall = wall0 + time.time() - t_start
            running += loss.item()
            n_run += 1
            bar.update(1)
            if rank == 0 and step % args.log_every == 0:
                log.writerow([step, f"{running / n_run:.5f}", f"{lr:.2e}", f"{wall:.1f}"])
                log_f.flush()
                bar.set_postfix(loss=f"{running / n_run:.4f}")
                running, n_run = 0.0, 0
            if rank == 0 and args.sample_every and step % args.sample_every == 0 and "task" not in cfg:
                save()
                sample_grid(ema, sched, out / f"samples_{step:06d}.png")
            if time.time() - t_ckpt > args.ckpt_minutes * 60:
                save()
                t_ckpt = time.time()
            done = args.max_minutes is not None and time.time() - t_start > args.max_minutes * 60
            if distributed:  # every process must stop at the same step, or the others hang in all-reduce
                import torch.distributed as dist

                flag = torch.tensor([float(done or stop["flag"])])
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                done = bool(flag.item())
                stop["flag"] = stop["flag"] or done
            if done:
                break
        bar.close()
    finally:
        save()
        if log_f:
            log_f.close()
        if rank == 0:
            print(f"stopped at step {step}; checkpoint {ckpt_path}", flush=True)
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(run_command("python -m ddnm_edu.train", main))
