"""Train the tiny epsilon-UNets: ``python -m ddnm_edu.tools.train --config fashion-mnist-32``
(and the supervised Restormer specialists of chapter 13: ``--config restormer-sr4``, whose loss is the
L1 distance between f(A^dagger y) and x0; see ``ddnm_edu.restormer``).

The DDPM objective (Ho et al. 2020, Algorithm 1): sample x_0 from the data,
t ~ U{0..T-1}, eps ~ N(0, I), and minimise || eps - eps_theta(sqrt(alpha_bar_t) x_0
+ sqrt(1 - alpha_bar_t) eps, t) ||^2. Linear beta schedule, T = 1000 (what the
samplers assume), AdamW, EMA of the weights (the EMA weights are what ships).

* Resumable: a checkpoint (model, EMA, optimiser, step, RNG) is written to
  ``--out`` every few minutes and at exit; running the same command resumes.
* ``--init-from weights.pt`` starts from shipped EMA weights when no checkpoint exists.
* Several processes: ``torchrun --nproc_per_node N -m ddnm_edu.tools.train ...``
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

from ..errors import DDNMInputError
from .command import CommandParser, run_command
from ..pretrained import arch_key, init_record
from ..losses import diffusion_loss, ema_update
from ..restormer import Restormer, RestormerConfig, supervised_loss
from ..rng import spawn
from ..schedule import NoiseSchedule
from ..book_scale import model_device
from ..unet import UNet, UNetConfig, count_parameters

CONFIGS: dict[str, dict] = {
    "fashion-mnist-32": dict(
        dataset="fashion-mnist",
        flip=True,
        unet=UNetConfig(
            in_channels=1, image_size=32, ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8,)
        ),
    ),
    "emoji-32": dict(
        dataset="emoji",
        flip=False,  # flags, arrows and text are not mirror-symmetric
        unet=UNetConfig(
            in_channels=3, image_size=32, ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8,)
        ),
    ),
    # supervised specialists (chapter 13): a tiny Restormer trained for one degradation, L1 loss
    "restormer-sr4": dict(dataset="fashion-mnist", flip=True, task="sr4", restormer=RestormerConfig()),
    "restormer-denoise": dict(
        dataset="fashion-mnist", flip=True, task="denoise-noisy0.2", restormer=RestormerConfig()
    ),
}


def build_model(cfg: dict) -> torch.nn.Module:
    """The network a config trains: an epsilon-UNet (diffusion) or a Restormer (supervised)."""
    return Restormer(cfg["restormer"]) if arch_key(cfg) == "restormer" else UNet(cfg["unet"])


def get_args(argv=None) -> argparse.Namespace:
    ap = CommandParser(prog="python -m ddnm_edu.tools.train", description=__doc__)
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/<config>)")
    ap.add_argument("--steps", type=int, default=60000, help="total optimiser steps to reach")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument(
        "--loss",
        choices=["mse", "min-snr"],
        default="mse",
        help="per-timestep weighting of the eps-MSE: 'mse' (DDPM's L_simple) or 'min-snr' "
        "(Min-SNR-gamma, Hang et al. 2023); see benchmarks/training.md",
    )
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
    from .. import data

    if dataset == "fashion-mnist":
        imgs, _ = data.fashion_mnist_raw("train")
    else:
        imgs = np.load(data.ASSETS / "emoji" / "train.npz")["images"]
    return torch.from_numpy(np.ascontiguousarray(imgs[:n]))


@torch.no_grad()
def sample_grid(
    model: torch.nn.Module,
    sched: NoiseSchedule,
    path: Path,
    n: int = 64,
    steps: int = 100,
    seed: int = 0,
    eta: float = 1.0,
) -> None:
    """Unconditional samples as a PNG grid: stochastic DDIM (eta=1) with x0_t clipped, as in the model cards."""
    from ..sampling import sample
    from .images import save_grid

    cfg = model.config
    x = sample(model, sched, (n, cfg.in_channels, cfg.image_size, cfg.image_size), steps=steps, eta=eta, seed=seed)
    save_grid(x, path, ncol=int(math.ceil(math.sqrt(n))))


# --------------------------------------------------------------------------- set-up
def setup_device(args) -> tuple[torch.device, int, int, bool]:
    """(device, rank, world size, distributed?): torchrun's processes join one DDP group (gloo on CPU)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device, 0, 1, False
    import torch.distributed as dist

    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device, dist.get_rank(), dist.get_world_size(), True


class Run:
    """A training run's state and its checkpoint: the model, its EMA, the optimiser, the step and wall time,
    and the training of the weights it started from (``--init-from``), so that exports give totals."""

    def __init__(self, args, cfg: dict, device: torch.device, rank: int):
        self.args, self.cfg, self.rank = args, cfg, rank
        self.out = args.out or Path("runs") / args.config
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt_path = self.out / "checkpoint.pt"
        self.model = build_model(cfg).to(device)
        self.ema = copy.deepcopy(self.model).eval()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=args.lr, weight_decay=0.0)
        self.step, self.wall = 0, 0.0
        self.init_steps, self.init_wall = 0, 0.0  # training of the weights a run started from (--init-from)
        self.init_from: str | None = ""  # the file it started from ("": from scratch; None: unknown, older checkpoint)
        if self.ckpt_path.exists():
            self.resume(device)
        elif args.init_from:
            self.start_from(Path(args.init_from))
        self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = self.ema.to(memory_format=torch.channels_last)

    def say(self, text: str) -> None:
        if self.rank == 0:
            print(text, flush=True)

    def resume(self, device: torch.device) -> None:
        ck = torch.load(self.ckpt_path, map_location=device, weights_only=True)
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.wall = int(ck["step"]), float(ck["wall_seconds"])
        self.init_steps, self.init_wall = int(ck.get("init_steps", 0)), float(ck.get("init_wall_seconds", 0.0))
        self.init_from = ck.get("init_from")
        self.say(f"resumed from {self.ckpt_path} at step {self.step} ({self.wall / 60:.1f} min of training so far)")

    def start_from(self, path: Path) -> None:
        """Start model and EMA from recorded weights. They carry their own training: count it, so the exported
        card gives the total. Their record is the one whose sha256 is the file's, in the weights.json beside it
        (data/candidates/, a GPU job's OUT/weights/) or in the shipped registry; a file's *name* says nothing
        (every emoji run exports an emoji-32.pt)."""
        from ..pretrained import load_state_dict_checked

        sd = load_state_dict_checked(path)
        self.model.load_state_dict(sd)
        self.ema.load_state_dict(sd)
        rec = init_record(path)
        self.init_from = str(path)
        if rec is not None:
            self.init_steps, self.init_wall = int(rec["steps"]), 60.0 * float(rec["train_wall_minutes"])
        self.say(
            f"initialised model and EMA from {path}"
            + (
                f" ({self.init_steps} steps already trained, by its record)"
                if rec is not None
                else " (no weights.json records its sha256: its earlier steps are not counted; give them to "
                "`python -m ddnm_edu.tools.weights export --init-steps N`)"
            )
        )

    def save(self) -> None:
        """checkpoint.pt (written atomically) and ema.pt, by the first process only."""
        if self.rank != 0:
            return
        key = arch_key(self.cfg)
        tmp = self.out / "checkpoint.tmp"
        torch.save(
            {
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "opt": self.opt.state_dict(),
                "step": self.step,
                "wall_seconds": self.wall,
                "config": self.args.config,
                "init_steps": self.init_steps,
                "init_wall_seconds": self.init_wall,
                "init_from": self.init_from,
                key: self.cfg[key].to_dict(),
            },
            tmp,
        )
        os.replace(tmp, self.ckpt_path)
        torch.save(self.ema.state_dict(), self.out / "ema.pt")

    def write_meta(self, n_img: int, world: int, amp, device: torch.device) -> None:
        if self.rank != 0:
            return
        args, cfg = self.args, self.cfg
        meta = dict(
            config=args.config,
            **{arch_key(cfg): cfg[arch_key(cfg)].to_dict()},
            task=cfg.get("task"),
            params=count_parameters(self.model),
            n_train=n_img,
            batch=args.batch,
            world_size=world,
            lr=args.lr,
            ema=args.ema,
            loss="l1" if "task" in cfg else args.loss,
            snr_gamma=args.snr_gamma if args.loss == "min-snr" and "task" not in cfg else None,
            amp=str(amp),
            compile=args.compile,
            device=str(device),
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            hardware=_hardware(device),
        )
        (self.out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(json.dumps(meta), flush=True)


# --------------------------------------------------------------------------- the loop
def training_batch(images: torch.Tensor, cfg: dict, n: int, gen: torch.Generator, device) -> torch.Tensor:
    """n training images in [-1, 1] (uint8 -> float), mirrored at random where the dataset allows it."""
    x0 = images[torch.randint(0, len(images), (n,), generator=gen)].float().div_(127.5).sub_(1.0)
    if cfg["flip"]:
        flip = torch.rand(n, generator=gen) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
    return x0.to(device).contiguous(memory_format=torch.channels_last)


def _all_stop(done: bool, distributed: bool) -> bool:
    """Every process must stop at the same step, or the others hang in all-reduce."""
    if not distributed:
        return done
    import torch.distributed as dist

    flag = torch.tensor([float(done)])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def train_loop(
    run: Run, fwd, images: torch.Tensor, sched: NoiseSchedule, amp, world: int, distributed: bool, stop: dict
) -> None:
    """Steps until --steps, --max-minutes or a signal: loss (DDPM's, or L1 for a specialist), AdamW with warm-up
    and gradient clipping, the EMA, the loss log, sample grids and timed checkpoints."""
    from tqdm import tqdm

    args, cfg = run.args, run.cfg
    gen = spawn(args.seed, "rank", run.rank, "from step", run.step)  # a resumed run draws a fresh stream
    log_f = open(run.out / "loss.csv", "a", newline="") if run.rank == 0 else None
    log = csv.writer(log_f) if log_f else None
    if log_f is not None and log_f.tell() == 0:
        log.writerow(["step", "loss", "lr", "wall_seconds"])
    t_start = t_ckpt = time.time()
    wall0, running, n_run = run.wall, 0.0, 0
    bar = tqdm(total=args.steps, initial=run.step, disable=run.rank != 0, mininterval=30, dynamic_ncols=True)
    try:
        while run.step < args.steps and not stop["flag"]:
            x0 = training_batch(images, cfg, args.batch // world, gen, model_device(run.model))
            lr = args.lr * min(1.0, (run.step + 1) / args.warmup)
            for grp in run.opt.param_groups:
                grp["lr"] = lr
            # bf16 autocast where it pays (--amp); the losses themselves are the book's, in float32
            with torch.autocast(x0.device.type, dtype=amp or torch.float32, enabled=amp is not None):
                if "task" in cfg:  # a supervised specialist: L1 of f(A^dagger y) against x0
                    loss = supervised_loss(fwd, cfg["task"], x0, gen)
                else:
                    loss = diffusion_loss(fwd, sched, x0, gen, args.loss, args.snr_gamma)
            run.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
            run.opt.step()
            run.step += 1
            ema_update(run.ema, run.model, min(args.ema, (1 + run.step) / (10 + run.step)))
            run.wall = wall0 + time.time() - t_start
            running, n_run = running + loss.item(), n_run + 1
            bar.update(1)
            if log is not None and run.step % args.log_every == 0:
                log.writerow([run.step, f"{running / n_run:.5f}", f"{lr:.2e}", f"{run.wall:.1f}"])
                log_f.flush()
                bar.set_postfix(loss=f"{running / n_run:.4f}")
                running, n_run = 0.0, 0
            if run.rank == 0 and args.sample_every and run.step % args.sample_every == 0 and "task" not in cfg:
                run.save()
                sample_grid(run.ema, sched, run.out / f"samples_{run.step:06d}.png")
            if time.time() - t_ckpt > args.ckpt_minutes * 60:
                run.save()
                t_ckpt = time.time()
            done = args.max_minutes is not None and time.time() - t_start > args.max_minutes * 60
            if _all_stop(done or stop["flag"], distributed):
                break
    finally:
        bar.close()
        if log_f:
            log_f.close()


def main(argv=None) -> None:
    args = get_args(argv)
    cfg = CONFIGS[args.config]
    device, rank, world, distributed = setup_device(args)
    if args.batch % world:
        raise DDNMInputError(f"--batch {args.batch} must be divisible by the number of processes ({world}).")
    amp = _amp_dtype(args.amp, device)
    torch.manual_seed(spawn(args.seed, "rank", rank, "init").initial_seed())
    run = Run(args, cfg, device, rank)
    fwd = run.model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(run.model)
    if args.compile:
        fwd = torch.compile(fwd)
    images = load_training_images(cfg["dataset"], args.n_train)  # uint8 (N, C, 32, 32)
    run.write_meta(len(images), world, amp, device)
    stop = {"flag": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.update(flag=True))
    try:
        train_loop(run, fwd, images, NoiseSchedule.linear(1000), amp, world, distributed, stop)
    finally:
        run.save()
        run.say(f"stopped at step {run.step}; checkpoint {run.ckpt_path}")
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(run_command("python -m ddnm_edu.tools.train", main))
