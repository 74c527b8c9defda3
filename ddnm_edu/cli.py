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
``ddnm_edu.cli.restore(y_image, task, model_name, ...)``.

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

import numpy as np
import torch

from .errors import CommandParser, DDNMInputError, run_command

TASKS = ("sr2", "sr4", "inpaint", "colorize", "deblur", "denoise")


#: the background each model was trained on, in [0, 1]: transparent pixels are composited onto it
BACKGROUND = {"emoji": 1.0, "fashion-mnist": 0.0}  # emoji rendered on white; garments on black


def background_for(model_name: str) -> float:
    """The training background (0 = black, 1 = white) of a shipped model, from its dataset."""
    from .pretrained import _record

    dataset = str(_record(model_name).get("dataset", ""))
    return next((v for k, v in BACKGROUND.items() if dataset.startswith(k)), 0.0)


def _to_unit_array(im, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixel values of a Pillow image scaled to [0, 1] by the file's bit depth: (H, W, C) and alpha (H, W) or None.

    8-bit modes with alpha or a transparent colour key (LA, RGBA, P, tRNS) and LAB/HSV/RGBX divide by 255; 16-bit grayscale (I;16*) and 32-bit integer
    (I, which is how Pillow opens 16-bit PNGs) divide by 65,535; float images (F) must already be in [0, 1].
    Any other mode, or values outside the range of the mode, raise DDNMInputError naming the mode.
    """
    mode = im.mode
    if "transparency" in im.info and mode in ("1", "L", "P", "RGB"):  # a transparent colour key (PNG tRNS)
        im = im.convert("LA" if mode in ("1", "L") else "RGBA")
        mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        if arr.min() < 0 or arr.max() > 65535:
            raise DDNMInputError(f"{path} is a {mode} image with values {arr.min():.0f}..{arr.max():.0f}, outside "
                                 "the 16-bit range 0..65535; save it as an 8- or 16-bit PNG.")
        return (arr / 65535.0)[..., None], None
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise DDNMInputError(f"{path} is a floating-point (F) image with values outside [0, 1] "
                                 f"({np.nanmin(arr):.3g}..{np.nanmax(arr):.3g}); scale it to [0, 1] or save an "
                                 "8- or 16-bit PNG.")
        return arr[..., None], None
    if mode in ("LA", "La", "P", "PA", "RGBA", "RGBa"):
        im = im.convert("LA" if mode.startswith("L") else "RGBA")
        arr = np.asarray(im, dtype=np.float64) / 255.0
        return arr[..., :-1], arr[..., -1]
    if mode in ("LAB", "HSV", "RGBX"):  # other 8-bit colour modes (1, L, RGB, CMYK, YCbCr take read_image's path)
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0, None
    raise DDNMInputError(f"{path} has image mode {mode!r}, which restore does not read; save it as an 8- or "
                         "16-bit grayscale or RGB(A) PNG.")


def read_image(path: Path, channels: int, background: float = 1.0) -> torch.Tensor:
    """An image file as a (1, C, H, W) tensor in [-1, 1] (C = 1 gray, 3 RGB).

    Values are scaled by the file's bit depth (8-bit by 255, 16-bit by 65,535). Transparent pixels
    (RGBA, LA, palette transparency) are composited onto ``background`` (0 black .. 1 white), the
    background the model was trained on. Colour to gray uses ITU-R 601 luma, as Pillow's ``convert("L")``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("1", "L", "RGB", "CMYK", "YCbCr") and "transparency" not in im.info:
                # 8-bit without alpha: Pillow's conversion, exactly as before
                arr8 = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
                arr8 = arr8[None] if arr8.ndim == 2 else arr8.transpose(2, 0, 1)
                return torch.from_numpy(arr8 / 127.5 - 1.0)[None]
            arr, alpha = _to_unit_array(im, path)
    except FileNotFoundError:
        raise DDNMInputError(f"input file {path} does not exist.") from None
    except IsADirectoryError:
        raise DDNMInputError(f"input {path} is a folder; give an image file.") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DDNMInputError(f"cannot read {path} as an image ({e}); give a PNG or JPEG file.") from None
    if alpha is not None:  # composite onto the training background
        arr = arr * alpha[..., None] + background * (1.0 - alpha[..., None])
    if channels == 1 and arr.shape[-1] == 3:
        arr = arr @ np.array([0.299, 0.587, 0.114])[:, None]  # ITU-R 601 luma, as Pillow's convert("L")
    elif channels == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()  # (C, H, W) in [0, 1]
    return (x * 2.0 - 1.0)[None]


def read_mask(path: Path) -> torch.Tensor:
    """An inpainting mask file as a (H, W) float tensor of 0 (missing) and 1 (observed).

    White = observed, black = missing; transparent pixels count as missing. Values are thresholded
    at mid-grey (0.5), so JPEG noise and antialiased edges do not flip pixels. Refused, with the
    reason: a mask with more than 5 % of its pixels far from black or white (between 0.2 and 0.8: a
    photo or a gradient, not a mask), or one that observes nothing or everything.
    """
    m = read_image(path, 1, background=0.0)[0, 0].double().add(1).div(2)  # (H, W) in [0, 1]
    grey = ((m > 0.2) & (m < 0.8)).double().mean().item()
    if grey > 0.05:
        raise DDNMInputError(f"the mask {path} is not black and white: {100 * grey:.0f} % of its pixels are grey "
                             "(between 20 % and 80 % brightness). Save a mask with white = observed and black = "
                             "missing (values are thresholded at mid-grey).")
    mask = (m > 0.5).float()
    frac = mask.mean().item()
    if frac == 0.0 or frac == 1.0:
        what = "no pixel as observed (all black)" if frac == 0 else "every pixel as observed (all white)"
        raise DDNMInputError(f"the mask {path} marks {what}; white = observed, black = missing, and inpainting "
                             "needs some of each.")
    return mask


def check_output_path(path: Path, what: str = "--out") -> None:
    """Refuse, before any sampling, an output path whose folder is missing or not writable, or a non-image name."""
    import os

    from PIL import Image

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DDNMInputError(f"{what} {path} is a folder; give a file name such as {path / 'out.png'}.")
    if not folder.is_dir():
        raise DDNMInputError(f"{what} {path}: the folder {folder} does not exist; create it first "
                             f"(mkdir -p {folder}) or choose another path.")
    if not os.access(folder, os.W_OK):
        raise DDNMInputError(f"{what} {path}: the folder {folder} is not writable; choose another path.")
    Image.init()
    if path.suffix.lower() not in Image.registered_extensions():
        raise DDNMInputError(f"{what} {path}: unknown image file extension {path.suffix!r}; use .png.")


def write_image(x: torch.Tensor, path: Path, scale: int = 1) -> None:
    """Save a (1, C, H, W) or (C, H, W) [-1, 1] tensor as PNG (nearest-neighbour enlarged by ``scale``)."""
    from PIL import Image

    from .data import to_uint8

    arr = to_uint8(x.reshape(-1, *x.shape[-2:]))  # (C, H, W)
    im = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.save(path)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given, folders replaced by their image files (sorted by name)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise DDNMInputError(f"the folder {p} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
            out += found
        else:
            out.append(p)
    return out


def check_output_folder(out: Path, inputs: list[Path]) -> list[Path]:
    """The output folder for several inputs (created if its parent exists); returns one .png path per input."""
    import os

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DDNMInputError(f"--out {out} is a file, but several inputs need a folder; give a folder path.")
    if not out.exists():
        if not out.parent.is_dir():
            raise DDNMInputError(f"--out {out}: the folder {out.parent} does not exist; create it first.")
        out.mkdir()
    if not os.access(out, os.W_OK):
        raise DDNMInputError(f"--out {out} is not writable; choose another folder.")
    names = [out / (p.stem + ".png") for p in inputs]
    if len(set(names)) < len(names):
        raise DDNMInputError("two inputs have the same file name (stem); their results would overwrite each other.")
    return names


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
    """Restore y (B, C, h, w) in [-1, 1] -- one image or a batch, in one sampling run; returns (x0_hat, A_pinv(y), op).

    The same y, seed and batch give the same result; an image restored inside a batch draws different
    noise than the same image restored alone (the noise of a batch is drawn together)."""
    from .pretrained import load_pretrained
    from .sampling import SamplerSettings, ddnm_plus
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
    res = ddnm_plus(model, NoiseSchedule.linear(1000), op, y.to(device), sigma_y=sigma_y, steps=steps,
                    settings=SamplerSettings(eta=eta), seed=seed, progress=progress)
    return res.x0_hat.cpu(), op.A_pinv(y), op


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["classroom"]:  # nbgrader assignments and the student edition: ddnm_edu.classroom
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
    from .pretrained import _record, arch_key, available

    rec = _record(args.model)
    if arch_key(rec) != "unet":
        raise DDNMInputError(f"{args.model!r} is a supervised specialist (chapter 10), not a diffusion prior; "
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
