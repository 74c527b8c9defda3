"""``ddnm-edu restore``: restore a degraded image you already have (it *is* y).

    ddnm-edu restore INPUT.png --task sr4 --model fashion-mnist-32 --out OUT.png [--steps 100] [--seed 0]
    ddnm-edu restore small.png --task sr2 --model emoji-32 --out big.png --strip strip.png
    ddnm-edu restore holes.png --task inpaint --mask MASK.png --model fashion-mnist-32 --out filled.png
    ddnm-edu restore gray.png --task colorize --model emoji-32 --out colour.png
    ddnm-edu restore noisy.png --task denoise --sigma-y 0.1 --model fashion-mnist-32 --out clean.png

Tasks: sr2, sr4 (input is (32/s)x(32/s)), inpaint (--mask: white = observed, same size as the
input), colorize (grayscale input, RGB model), deblur (--blur-sigma, Gaussian), denoise. Any task
takes --sigma-y for noisy input (then DDNM+ is used). The same function is importable:
``ddnm_edu.cli.restore(y_image, task, model_name, ...)``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .errors import DDNMInputError

TASKS = ("sr2", "sr4", "inpaint", "colorize", "deblur", "denoise")


def read_image(path: Path, channels: int) -> torch.Tensor:
    """A PNG/JPEG file as a (1, C, H, W) tensor in [-1, 1] (C = 1 gray, 3 RGB)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im, dtype=np.float32)
    except FileNotFoundError:
        raise DDNMInputError(f"input file {path} does not exist.") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DDNMInputError(f"cannot read {path} as an image ({e}); give a PNG or JPEG file.") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr / 127.5 - 1.0)[None]


def write_image(x: torch.Tensor, path: Path, scale: int = 1) -> None:
    """Save a (1, C, H, W) or (C, H, W) [-1, 1] tensor as PNG (nearest-neighbour enlarged by ``scale``)."""
    from PIL import Image

    from .data import to_uint8

    arr = to_uint8(x.reshape(-1, *x.shape[-2:]))  # (C, H, W)
    im = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.save(path)


def make_operator(task: str, size: int, mask: torch.Tensor | None = None, blur_sigma: float = 1.0):
    """The operator for a task name (restore's --task)."""
    from . import operators as ops

    if task in ("sr2", "sr4"):
        return ops.SuperResolution(int(task[2:]))
    if task == "inpaint":
        if mask is None:
            raise DDNMInputError("--task inpaint needs --mask MASK.png (white = observed, black = missing).")
        return ops.Inpainting(mask)
    if task == "colorize":
        return ops.Colorization()
    if task == "deblur":
        return ops.Deblur(ops.gaussian_kernel(blur_sigma))
    if task == "denoise":
        return ops.Denoising()
    raise DDNMInputError(f"unknown task {task!r}; available: {', '.join(TASKS)}.")


def restore(y: torch.Tensor, task: str, model_name: str, mask: torch.Tensor | None = None,
            sigma_y: float = 0.0, steps: int = 100, eta: float = 0.85, seed: int = 0,
            blur_sigma: float = 1.0, device: str = "cpu", progress: bool = False):
    """Restore y (1, C, h, w) in [-1, 1]; returns (x0_hat, A_pinv(y), op)."""
    from .pretrained import load_pretrained
    from .sampling import ddnm_plus
    from .schedule import NoiseSchedule

    if task not in TASKS:
        raise DDNMInputError(f"unknown task {task!r}; available: {', '.join(TASKS)}.")
    model = load_pretrained(model_name, device)
    cfg = model.config
    size, ch = cfg.image_size, cfg.in_channels
    want_ch = 1 if task == "colorize" else ch
    if task == "colorize" and ch != 3:
        raise DDNMInputError(f"colorize needs an RGB model (e.g. emoji-32); {model_name} has {ch} channel(s).")
    if y.shape[1] != want_ch:
        raise DDNMInputError(f"the input has {y.shape[1]} channel(s) but {task} with {model_name} needs {want_ch}.")
    s = int(task[2:]) if task.startswith("sr") else 1
    if tuple(y.shape[-2:]) != (size // s, size // s):
        need = f"{size // s}x{size // s}"
        why = f" ({size}x{size} model, scale {s})" if s > 1 else f" (the {model_name} model's size)"
        raise DDNMInputError(f"the input is {y.shape[-1]}x{y.shape[-2]} but {task} needs {need}{why}; "
                             f"resize or crop it to {need} first.")
    op = make_operator(task, size, mask, blur_sigma)
    if task == "inpaint":  # whatever the file holds in the holes is not a measurement: y = A y_file
        y = op.A(y)
    res = ddnm_plus(model, NoiseSchedule.linear(1000), op, y.to(device), sigma_y=sigma_y, steps=steps, eta=eta,
                    seed=seed, progress=progress)
    return res.x0_hat.cpu(), op.A_pinv(y), op


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ddnm-edu", description="ddnm-edu command line")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("restore", help="restore a degraded image file (the file is y)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("input", type=Path)
    r.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    r.add_argument("--model", required=True, help="fashion-mnist-32 or emoji-32")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--mask", type=Path, help="inpainting mask, white = observed")
    r.add_argument("--sigma-y", type=float, default=0.0, help="noise std of the input on the [-1, 1] scale")
    r.add_argument("--blur-sigma", type=float, default=1.0, help="Gaussian blur std in pixels (deblur)")
    r.add_argument("--steps", type=int, default=100)
    r.add_argument("--eta", type=float, default=0.85)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    r.add_argument("--strip", type=Path, help="also save a strip: y (enlarged), A_pinv y, result")
    args = ap.parse_args(argv)
    try:
        from .pretrained import _record

        rec = _record(args.model)
        ch = rec["unet"]["in_channels"]
        y = read_image(args.input, 1 if args.task == "colorize" else ch)
        mask = None
        if args.mask is not None:
            mask = (read_image(args.mask, 1)[0, 0] > 0).float()
        x0_hat, pinv, _ = restore(y, args.task, args.model, mask, args.sigma_y, args.steps, args.eta, args.seed,
                                  args.blur_sigma, args.device, progress=sys.stderr.isatty())
        write_image(x0_hat, args.out)
        if args.strip:
            size = x0_hat.shape[-1]
            y_up = torch.nn.functional.interpolate(y, size=(size, size), mode="nearest")
            if y_up.shape[1] != x0_hat.shape[1]:
                y_up = y_up.repeat(1, x0_hat.shape[1] // y_up.shape[1], 1, 1)
            write_image(torch.cat([y_up[0], pinv[0], x0_hat[0]], dim=-1), args.strip, scale=4)
    except DDNMInputError as e:
        print(f"ddnm-edu restore: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}" + (f" and {args.strip}" if args.strip else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
