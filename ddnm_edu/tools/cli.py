"""``ddnm-edu restore``: restore a degraded image you already have (it *is* y).

    ddnm-edu restore INPUT.png --task sr4 --model fashion-mnist-32 --out OUT.png [--steps 100] [--seed 0]
    ddnm-edu restore small.png --task sr2 --model emoji-32 --out big.png --strip strip.png
    ddnm-edu restore holes.png --task inpaint --mask MASK.png --model fashion-mnist-32 --out filled.png
    ddnm-edu restore gray.png --task colorize --model emoji-32 --out colour.png
    ddnm-edu restore noisy.png --task denoise --sigma-y 0.1 --model fashion-mnist-32 --out clean.png
    ddnm-edu restore small_dir/ more.png --task sr4 --model fashion-mnist-32 --out big_dir/ [--batch 64]
    ddnm-edu restore small.png --task sr4 --model fashion-mnist-32 --samples 8 --out mean.png --uncertainty std.png
    ddnm-edu restore small16.png --task sr4 --model fashion-mnist-32 --out big64.png [--overlap 16]
    ddnm-edu restore photo64.png --task sr4 --model path/to/ddpm-ema-celebahq-256 --device cuda --out photo256.png

Tasks: sr2, sr4 (input is (32/s)x(32/s) for a 32x32 model; a larger input is restored window by
window, see --overlap), inpaint (--mask: white = observed, same size as the
input), colorize (grayscale input, RGB model), deblur (--blur-sigma, Gaussian), denoise. Any task
takes --sigma-y for noisy input (then DDNM+ is used; --noise-rule svd where A^dagger amplifies
noise, e.g. noisy deblur). The same function is importable:
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
  * --out / --strip / --uncertainty: the folder must exist; checked before sampling starts.
  * --samples K: K restorations drawn as one batch (each from its own random stream); --out gets
    their mean and --uncertainty their per-pixel std as a colour map (0 black to 0.5 or more pale
    yellow, on the images' [-1, 1] scale). Every noise-free sample is consistent with y, so the
    spread lies in what y does not determine.
  * --model FOLDER: a diffusers DDPM (UNet2DModel + scheduler config, e.g. google/ddpm-ema-celebahq-256
    downloaded beforehand); nothing is downloaded here. Transparent pixels go onto black.
  * a result larger than the model (e.g. a 16x16 input, sr4, 32x32 model: 64x64) is restored window
    by window (mask-shift, ddnm_edu/mask_shift.py): windows of the model's size, --overlap pixels
    shared (default half a window), the shared pixels of each new window treated as observed.
    Local tasks only (not deblur, which mixes the whole image), one sample (no --samples).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .. import operators as ops
from ..errors import DDNMInputError, check_int_range, check_sigma_y
from ..noise_rules import NOISE_RULES
from .command import CommandParser, run_command
from ..rng import image_streams, stream_ids
from ..viz import UNCERTAINTY_VMAX, colour_map  # the std that --uncertainty maps to the top of its scale
from .images import check_output_folder, check_output_path, expand_inputs, read_image, read_mask, write_image

TASKS = tuple(name for name, task in ops.TASKS.items() if task.restores_files)  # y read from a file
MAX_SAMPLES = 256  # K samples of B images are one batch of B K images


#: the background each model was trained on, in [0, 1]: transparent pixels are composited onto it
BACKGROUND = {"emoji": 1.0, "fashion-mnist": 0.0}  # emoji rendered on white; garments on black


def background_for(model_name: str) -> float:
    """The training background (0 = black, 1 = white) of a shipped model, from its dataset."""
    from ..pretrained import _record

    dataset = str(_record(model_name).get("dataset", ""))
    return next((v for k, v in BACKGROUND.items() if dataset.startswith(k)), 0.0)


def is_folder(model: str) -> bool:
    """Whether ``--model`` names a folder (a diffusers checkpoint) rather than a shipped prior."""
    return Path(model).is_dir() or "/" in model or "\\" in model


def check_model_name(model: str) -> None:
    from ..pretrained import registry

    if not is_folder(model) and model not in registry():
        raise DDNMInputError(
            f"unknown model {model!r}: neither a shipped model ({', '.join(sorted(registry()))}) "
            "nor a folder holding a diffusers DDPM."
        )


def load_prior(model: str, device: str = "cpu"):
    """(eps model, schedule) for ``--model``: a shipped prior's name, or a local diffusers folder."""
    from ..pretrained import load_pretrained
    from ..schedule import NoiseSchedule

    if is_folder(model):
        from ..diffusers_prior import load_diffusers

        return load_diffusers(model, device)
    check_model_name(model)
    return load_pretrained(model, device), NoiseSchedule.linear(1000)


@dataclass
class Restoration:
    """What :func:`restore` returns (CPU tensors)."""

    x0_hat: torch.Tensor  # (B, C, H, W): the restoration, or the mean of K samples
    A_pinv_y: torch.Tensor  # A^dagger y, the range part every restoration shares
    op: ops.LinearOperator  # the task's operator
    std: torch.Tensor | None  # per-pixel std of K samples; None for one sample


def _check_size(y, task: str, model_name: str, op, size: int, samples: int, overlap: int | None) -> bool:
    """Refuse an input of the wrong size for the task and the model (one line naming the size to use);
    return whether the result is larger than the model (then it is restored window by window)."""
    from ..mask_shift import WINDOWED

    s = int(task[2:]) if task.startswith("sr") else 1
    H, W = y.shape[-2] * s, y.shape[-1] * s  # the restored image's size
    local = isinstance(op, WINDOWED)  # restored window by window when larger than the model
    if H < size or W < size or (not local and (H, W) != (size, size)):
        need = f"{size // s}x{size // s}"
        why = f" ({size}x{size} model, scale {s})" if s > 1 else f" (the {model_name} model's size)"
        more = (
            " or larger: larger images are restored window by window"
            if local
            else f"; {task} mixes pixels across the whole image, so it works at the model's size only"
        )
        raise DDNMInputError(
            f"the input is {y.shape[-1]}x{y.shape[-2]} but {task} needs {need}{why}; resize it to {need}{more}."
        )
    large = (H, W) != (size, size)
    if large and samples > 1:
        raise DDNMInputError(
            f"--samples works at the model's size ({size // s}x{size // s} inputs for {task}); "
            "this input is restored window by window: drop --samples."
        )
    if overlap is not None and not large:
        raise DDNMInputError(
            f"--overlap applies when the result is larger than the model ({size}x{size}); this "
            "one is exactly its size: drop --overlap."
        )
    return large


def restore(
    y: torch.Tensor,
    task: str,
    model_name: str,
    *,
    mask: torch.Tensor | None = None,
    sigma_y: float = 0.0,
    steps: int = 100,
    eta: float = 0.85,
    noise_rule: str = "scalar",
    seed: int = 0,
    image_ids: Sequence[int] | None = None,
    blur_sigma: float = 1.0,
    device: str = "cpu",
    progress: bool = False,
    samples: int = 1,
    overlap: int | None = None,
    prior=None,
) -> Restoration:
    """Restore y (B, C, h, w) in [-1, 1] -- one image or a batch, in one sampling run.

    ``model_name``: a shipped prior or a diffusers folder (:func:`load_prior`). When the restored image
    is larger than the prior, it is restored window by window (mask-shift, ``ddnm_edu.mask_shift``;
    ``overlap`` pixels between windows, half a window by default). ``prior``: the (model, sched) of
    ``model_name`` already loaded (the command loads a checkpoint once for all its batches).
    Image i draws its noise from its own stream, ``rng.spawn(seed, "image", image_ids[i])`` (and
    children of it for samples and windows; ``image_ids`` default 0..B-1, the command passes each
    file's index): an image gives the same result in any batch, and no two images, samples or
    windows share noise. With ``samples=K > 1``, x0_hat is the mean of K samples (drawn as one
    batch) and std their per-pixel std (B, C, H, W); with one sample std is None."""
    from ..mask_shift import restore_large
    from ..posterior import posterior_samples
    from ..sampling import SamplerSettings, ddnm_plus

    if task not in TASKS:
        raise DDNMInputError(f"unknown task {task!r}; available: {', '.join(TASKS)}.")
    model, sched = prior if prior is not None else load_prior(model_name, device)
    cfg = model.config
    size, ch = cfg.image_size, cfg.in_channels
    want_ch = 1 if task == "colorize" else ch
    if task == "colorize" and ch != 3:
        raise DDNMInputError(f"colorize needs an RGB model (e.g. emoji-32); {model_name} has {ch} channel(s).")
    if y.shape[1] != want_ch:
        raise DDNMInputError(f"the input has {y.shape[1]} channel(s) but {task} with {model_name} needs {want_ch}.")
    if task == "inpaint" and mask is None:
        raise DDNMInputError("--task inpaint needs --mask MASK.png (white = observed, black = missing).")
    op = ops.from_name(task, size, mask=mask, blur_sigma=blur_sigma)
    large = _check_size(y, task, model_name, op, size, samples, overlap)
    if task == "inpaint":  # whatever the file holds in the holes is not a measurement: y = A y_file
        y = op.A(y)
    ids = stream_ids(image_ids, len(y))
    settings = SamplerSettings(eta=eta, noise_rule=noise_rule)  # DDNM+'s rule when sigma_y > 0 (chapter 9)
    run = dict(sigma_y=sigma_y, steps=steps, settings=settings, progress=progress)
    if large:
        out = restore_large(
            model, sched, op, y.to(device), window=size, overlap=overlap, seed=seed, image_ids=ids, **run
        )
        return Restoration(out.cpu(), op.A_pinv(y), op, None)
    if samples > 1:
        drawn = posterior_samples(model, sched, op, y.to(device), k=samples, seed=seed, image_ids=ids, **run)
        return Restoration(drawn.mean.cpu(), op.A_pinv(y), op, drawn.std.cpu())
    res = ddnm_plus(model, sched, op, y.to(device), generator=image_streams(seed, ids), **run)
    return Restoration(res.x0_hat.cpu(), op.A_pinv(y), op, None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["classroom"]:  # nbgrader assignments and the student edition: ddnm_edu.tools.classroom
        from . import classroom

        return run_command("ddnm-edu classroom", classroom.main, argv[1:])
    ap = CommandParser(prog="ddnm-edu", description="ddnm-edu command line")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "classroom",
        help="classroom edition: `ddnm-edu classroom export OUT/` (nbgrader), `ddnm-edu classroom student-book OUT/`",
        add_help=False,
    )
    _restore_options(sub)
    args = ap.parse_args(argv)
    return run_command("ddnm-edu restore", _restore_command, args)


def _restore_options(sub) -> None:
    """The ``restore`` subcommand and its options."""
    r = sub.add_parser(
        "restore",
        help="restore a degraded image file (the file is y)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("input", type=Path, nargs="+", help="image file(s) or folder(s) of images: each is a y")
    r.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    r.add_argument(
        "--model",
        required=True,
        help="fashion-mnist-32, emoji-32, or a folder holding a diffusers "
        "DDPM (UNet2DModel and scheduler config; needs the diffusers package)",
    )
    r.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="pixels shared by neighbouring windows when the result is larger than the model "
        "(mask-shift; default half the model's size)",
    )
    r.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output file for one input; a folder (created if its parent exists) for several",
    )
    r.add_argument("--batch", type=int, default=64, help="images per sampling run when restoring several")
    r.add_argument(
        "--mask",
        type=Path,
        help="inpainting mask: white = observed, black = missing, thresholded at mid-grey; transparent = missing",
    )
    r.add_argument(
        "--sigma-y",
        type=float,
        default=0.0,
        help="noise std of the input on the book's [-1, 1] scale (the DDNM paper's sigma_y is on [0, 1]: "
        "paper 0.1 = 0.2 here)",
    )
    r.add_argument("--blur-sigma", type=float, default=1.0, help="Gaussian blur std in pixels (deblur)")
    r.add_argument("--steps", type=int, default=100)
    r.add_argument("--eta", type=float, default=0.85)
    r.add_argument(
        "--noise-rule",
        choices=NOISE_RULES,
        default="scalar",
        help="DDNM+'s noise scaling when --sigma-y > 0: 'scalar' (one lambda_t, eq. 19) or 'svd' "
        "(one per singular direction; needed where A^dagger amplifies noise, e.g. noisy deblur)",
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    r.add_argument("--strip", type=Path, help="also save a strip: y (enlarged), A_pinv y, result")
    r.add_argument(
        "--samples",
        type=int,
        default=1,
        help=f"draw K restorations (1 to {MAX_SAMPLES}, as one batch) and write their mean to --out; "
        "1 (default) writes one sample",
    )
    r.add_argument(
        "--uncertainty",
        type=Path,
        help="with --samples >= 2: also write the per-pixel std of the samples as a colour map, "
        f"black = 0 to pale yellow = {UNCERTAINTY_VMAX} or more (std on the images' [-1, 1] "
        "scale; a file for one input, a folder for several)",
    )


def _restore_command(args: argparse.Namespace) -> int:
    """``ddnm-edu restore``: read y, restore it, write the result (bad input raises DDNMInputError)."""
    from ..pretrained import _record, arch_key, available

    # the numbers first, before a model is loaded or an image read; the checked values go on
    args.sigma_y = check_sigma_y(args.sigma_y)
    args.seed = check_int_range(args.seed, "--seed", 0, hint=" Use a whole number >= 0.")
    if not is_folder(args.model):  # a shipped model: a diffusion prior, not the specialist
        check_model_name(args.model)
        if arch_key(_record(args.model)) != "unet":
            raise DDNMInputError(
                f"{args.model!r} is a supervised specialist (chapter 13), not a diffusion prior; "
                f"restore uses one of: {', '.join(available('diffusion'))} (or a diffusers "
                "folder)."
            )
    prior = load_prior(args.model, args.device)  # once, for every batch
    ch = prior[0].config.in_channels
    # transparent pixels onto the training background (a diffusers model's: black)
    background = 0.0 if is_folder(args.model) else background_for(args.model)
    inputs = expand_inputs(args.input)
    mask = read_mask(args.mask) if args.mask is not None else None
    want = 1 if args.task == "colorize" else ch
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise DDNMInputError(
            f"--samples must be between 1 and {MAX_SAMPLES} (the samples are drawn as one batch), got {args.samples}."
        )
    if args.uncertainty is not None and args.samples < 2:
        raise DDNMInputError(
            "--uncertainty needs --samples 2 or more (the spread of several samples); e.g. --samples 8."
        )
    if len(inputs) > 1 or args.input[0].is_dir():
        if args.strip:
            raise DDNMInputError("--strip works with one input file; drop it to restore several.")
        outs = check_output_folder(args.out, inputs)
        stds = check_output_folder(args.uncertainty, inputs, "--uncertainty") if args.uncertainty else None
        ys = [read_image(p, want, background) for p in inputs]
        if len({tuple(y.shape) for y in ys}) > 1:
            sizes = sorted({f"{y.shape[-1]}x{y.shape[-2]}" for y in ys})
            raise DDNMInputError(
                f"the inputs have different sizes ({', '.join(sizes)}); restore each size separately."
            )
        from tqdm.auto import tqdm

        y_all = torch.cat(ys)
        chunks = range(0, len(y_all), max(1, args.batch))
        for k in tqdm(chunks, desc=f"restoring {len(y_all)} images", disable=not sys.stderr.isatty()):
            batch = y_all[k : k + args.batch]
            got = restore(
                batch, args.task, args.model, image_ids=range(k, k + len(batch)), **_options(args, mask), prior=prior
            )
            for i, out in enumerate(outs[k : k + args.batch]):
                _write(got.x0_hat[i], out)
                if stds:
                    _write(colour_map(got.std[i], UNCERTAINTY_VMAX), stds[k + i])
        print(f"wrote {len(outs)} images to {args.out}" + (f" and {args.uncertainty}" if stds else ""))
        return 0
    check_output_path(args.out, "--out")
    for path, what in ((args.strip, "--strip"), (args.uncertainty, "--uncertainty")):
        if path:
            check_output_path(path, what)
    y = read_image(inputs[0], want, background)
    got = restore(y, args.task, args.model, **_options(args, mask), prior=prior)
    try:
        _write_outputs(got.x0_hat, y, got.A_pinv_y, args.out, args.strip)
    except OSError as e:
        raise DDNMInputError(f"could not write the result ({e}); check the --out / --strip paths.") from None
    if args.uncertainty:
        _write(colour_map(got.std[0], UNCERTAINTY_VMAX), args.uncertainty)
    wrote = [p for p in (args.out, args.strip, args.uncertainty) if p]
    print("wrote " + " and ".join(str(p) for p in wrote))
    return 0


def _options(args: argparse.Namespace, mask: torch.Tensor | None) -> dict:
    """The command's options as :func:`restore`'s keywords."""
    return dict(
        mask=mask,
        sigma_y=args.sigma_y,
        steps=args.steps,
        eta=args.eta,
        noise_rule=args.noise_rule,
        seed=args.seed,
        blur_sigma=args.blur_sigma,
        device=args.device,
        progress=sys.stderr.isatty(),
        samples=args.samples,
        overlap=args.overlap,
    )


def _write(image: torch.Tensor, out: Path) -> None:
    try:
        write_image(image, out)
    except OSError as e:
        raise DDNMInputError(f"could not write {out} ({e}).") from None


def _write_outputs(x0_hat: torch.Tensor, y: torch.Tensor, pinv: torch.Tensor, out: Path, strip: Path | None) -> None:
    """Write the result, and optionally the strip y (enlarged) | A_pinv y | result."""
    write_image(x0_hat, out)
    if strip:
        y_up = torch.nn.functional.interpolate(y, size=tuple(x0_hat.shape[-2:]), mode="nearest")
        if y_up.shape[1] != x0_hat.shape[1]:
            y_up = y_up.repeat(1, x0_hat.shape[1] // y_up.shape[1], 1, 1)
        write_image(torch.cat([y_up[0], pinv[0], x0_hat[0]], dim=-1), strip, scale=4)


if __name__ == "__main__":
    sys.exit(main())
