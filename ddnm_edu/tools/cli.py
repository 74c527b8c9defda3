"""``ddnm-edu restore``: restore a degraded image you already have (it *is* y).

    ddnm-edu restore INPUT.png --task sr4 --model fashion-mnist-32 --out OUT.png [--steps 100] [--seed 0]
    ddnm-edu restore small.png --task sr2 --model emoji-32 --out big.png --strip strip.png
    ddnm-edu restore holes.png --task inpaint --mask MASK.png --model fashion-mnist-32 --out filled.png
    ddnm-edu restore gray.png --task colorize --model emoji-32 --out colour.png
    ddnm-edu restore noisy.png --task denoise --sigma-y 0.1 --model fashion-mnist-32 --out clean.png
    ddnm-edu restore small_dir/ more.png --task sr4 --model fashion-mnist-32 --out big_dir/ [--batch 64]

Tasks: sr2, sr4 (input is (32/s)x(32/s)), inpaint (--mask: white = observed, same size as the
input), colorize (grayscale input, RGB model), deblur (--blur-sigma, Gaussian), denoise. Any task
takes --sigma-y for noisy input (then DDNM+ is used). The same function is importable:
``ddnm_edu.tools.cli.restore(y_image, task, model_name, ...)``.

Input conventions:
  * values: 8-bit files are scaled by 255, 16-bit PNGs by 65,535, to [0, 1] and then to the
    models' [-1, 1]; float images must be in [0, 1]. Colour input to a gray model uses ITU-R 601 luma.
  * transparency (RGBA, LA, palette): composited onto the model's training background
    first -- white for emoji-32, black for fashion-mnist-32.
  * --mask: white = observed, black = missing, thresholded at mid-grey (JPEG noise is fine);
    a mask with many grey pixels, or with nothing (or everything) observed, is refused.
  * --sigma-y: on the [-1, 1] scale of the models; the DDNM paper and its code give sigma_y on
    [0, 1] (the code doubles it), so paper 0.1 = 0.2 here.
  * --out / --strip: the folder must exist; checked before sampling starts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .. import operators as ops
from ..errors import CommandParser, DDNMInputError, run_command
from .images import check_output_folder, check_output_path, expand_inputs, read_image, read_mask, write_image

TASKS = ("sr2", "sr4", "inpaint", "colorize", "deblur", "denoise")  # of operators.TASKS, for a file y


#: the background each model was trained on, in [0, 1]: transparent pixels are composited onto it
BACKGROUND = {"emoji": 1.0, "fashion-mnist": 0.0}  # emoji rendered on white; garments on black


def background_for(model_name: str) -> float:
    """The training background (0 = black, 1 = white) of a shipped model, from its dataset."""
    from ..pretrained import _record

    dataset = str(_record(model_name).get("dataset", ""))
    return next((v for k, v in BACKGROUND.items() if dataset.startswith(k)), 0.0)


def restore(y: torch.Tensor, task: str, model_name: str, mask: torch.Tensor | None = None,
            sigma_y: float = 0.0, steps: int = 100, eta: float = 0.85, seed: int = 0,
            blur_sigma: float = 1.0, device: str = "cpu", progress: bool = False):
    """Restore y (B, C, h, w) in [-1, 1] -- one image or a batch, in one sampling run; returns (x0_hat, A_pinv(y), op).

    The same y, seed and batch give the same result; an image restored inside a batch draws different
    noise than the same image restored alone (the noise of a batch is drawn together)."""
    from ..pretrained import load_pretrained
    from ..sampling import SamplerSettings, ddnm_plus
    from ..schedule import NoiseSchedule

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
    if task == "inpaint" and mask is None:
        raise DDNMInputError("--task inpaint needs --mask MASK.png (white = observed, black = missing).")
    op = ops.from_name(task, size, mask=mask, blur_sigma=blur_sigma)
    if task == "inpaint":  # whatever the file holds in the holes is not a measurement: y = A y_file
        y = op.A(y)
    res = ddnm_plus(model, NoiseSchedule.linear(1000), op, y.to(device), sigma_y=sigma_y, steps=steps,
                    settings=SamplerSettings(eta=eta), seed=seed, progress=progress)
    return res.x0_hat.cpu(), op.A_pinv(y), op


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["classroom"]:  # nbgrader assignments and the student edition: ddnm_edu.tools.classroom
        from . import classroom

        return run_command("ddnm-edu classroom", classroom.main, argv[1:])
    ap = CommandParser(prog="ddnm-edu", description="ddnm-edu command line")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("classroom", help="classroom edition: `ddnm-edu classroom export OUT/` (nbgrader), "
                                     "`ddnm-edu classroom student-book OUT/`", add_help=False)
    r = sub.add_parser("restore", help="restore a degraded image file (the file is y)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("input", type=Path, nargs="+", help="image file(s) or folder(s) of images: each is a y")
    r.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    r.add_argument("--model", required=True, help="fashion-mnist-32 or emoji-32")
    r.add_argument("--out", type=Path, required=True,
                   help="output file for one input; a folder (created if its parent exists) for several")
    r.add_argument("--batch", type=int, default=64, help="images per sampling run when restoring several")
    r.add_argument("--mask", type=Path, help="inpainting mask: white = observed, black = missing, thresholded at "
                                             "mid-grey; transparent = missing")
    r.add_argument("--sigma-y", type=float, default=0.0,
                   help="noise std of the input on the book's [-1, 1] scale (the DDNM paper's sigma_y is on [0, 1]: "
                        "paper 0.1 = 0.2 here)")
    r.add_argument("--blur-sigma", type=float, default=1.0, help="Gaussian blur std in pixels (deblur)")
    r.add_argument("--steps", type=int, default=100)
    r.add_argument("--eta", type=float, default=0.85)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    r.add_argument("--strip", type=Path, help="also save a strip: y (enlarged), A_pinv y, result")
    args = ap.parse_args(argv)
    return run_command("ddnm-edu restore", _restore_command, args)


def _restore_command(args: argparse.Namespace) -> int:
    """``ddnm-edu restore``: read y, restore it, write the result (bad input raises DDNMInputError)."""
    from ..pretrained import _record, arch_key, available

    rec = _record(args.model)
    if arch_key(rec) != "unet":
        raise DDNMInputError(f"{args.model!r} is a supervised specialist (chapter 11), not a diffusion prior; "
                             f"restore uses one of: {', '.join(available('diffusion'))}.")
    ch = rec["unet"]["in_channels"]
    inputs = expand_inputs(args.input)
    background = background_for(args.model)
    mask = read_mask(args.mask) if args.mask is not None else None
    want = 1 if args.task == "colorize" else ch
    if len(inputs) > 1 or args.input[0].is_dir():
        if args.strip:
            raise DDNMInputError("--strip works with one input file; drop it to restore several.")
        outs = check_output_folder(args.out, inputs)
        ys = [read_image(p, want, background) for p in inputs]
        if len({tuple(y.shape) for y in ys}) > 1:
            sizes = sorted({f"{y.shape[-1]}x{y.shape[-2]}" for y in ys})
            raise DDNMInputError(f"the inputs have different sizes ({', '.join(sizes)}); restore each size "
                                 "separately.")
        from tqdm.auto import tqdm

        y_all = torch.cat(ys)
        chunks = range(0, len(y_all), max(1, args.batch))
        for k in tqdm(chunks, desc=f"restoring {len(y_all)} images", disable=not sys.stderr.isatty()):
            x0_hat, _, _ = restore(y_all[k:k + args.batch], args.task, args.model, mask, args.sigma_y, args.steps,
                                   args.eta, args.seed + k, args.blur_sigma, args.device,
                                   progress=sys.stderr.isatty())
            for xh, out in zip(x0_hat, outs[k:k + args.batch]):
                try:
                    write_image(xh, out)
                except OSError as e:
                    raise DDNMInputError(f"could not write {out} ({e}).") from None
        print(f"wrote {len(outs)} images to {args.out}")
        return 0
    check_output_path(args.out, "--out")
    if args.strip:
        check_output_path(args.strip, "--strip")
    y = read_image(inputs[0], want, background)
    x0_hat, pinv, _ = restore(y, args.task, args.model, mask, args.sigma_y, args.steps, args.eta, args.seed,
                              args.blur_sigma, args.device, progress=sys.stderr.isatty())
    try:
        _write_outputs(x0_hat, y, pinv, args.out, args.strip)
    except OSError as e:
        raise DDNMInputError(f"could not write the result ({e}); check the --out / --strip paths.") from None
    print(f"wrote {args.out}" + (f" and {args.strip}" if args.strip else ""))
    return 0


def _write_outputs(x0_hat: torch.Tensor, y: torch.Tensor, pinv: torch.Tensor, out: Path, strip: Path | None) -> None:
    """Write the result, and optionally the strip y (enlarged) | A_pinv y | result."""
    write_image(x0_hat, out)
    if strip:
        size = x0_hat.shape[-1]
        y_up = torch.nn.functional.interpolate(y, size=(size, size), mode="nearest")
        if y_up.shape[1] != x0_hat.shape[1]:
            y_up = y_up.repeat(1, x0_hat.shape[1] // y_up.shape[1], 1, 1)
        write_image(torch.cat([y_up[0], pinv[0], x0_hat[0]], dim=-1), strip, scale=4)


if __name__ == "__main__":
    sys.exit(main())
