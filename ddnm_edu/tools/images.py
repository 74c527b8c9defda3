"""Image files in and out: read a y (8/16-bit, alpha, masks), write results, and PNG grids of many images.

The conventions ``ddnm-edu restore --help`` states live here: values scaled by the file's bit depth,
transparent pixels composited onto a background, masks thresholded at mid-grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DDNMInputError


def _to_unit_array(im, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixel values of a Pillow image scaled to [0, 1] by the file's bit depth: (H, W, C) and alpha (H, W) or None.

    8-bit modes with alpha or a transparent colour key (LA, RGBA, P, tRNS) and LAB/HSV/RGBX divide by 255;
    16-bit grayscale (I;16*) and 32-bit integer
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
            raise DDNMInputError(
                f"{path} is a {mode} image with values {arr.min():.0f}..{arr.max():.0f}, outside "
                "the 16-bit range 0..65535; save it as an 8- or 16-bit PNG."
            )
        return (arr / 65535.0)[..., None], None
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise DDNMInputError(
                f"{path} is a floating-point (F) image with values outside [0, 1] "
                f"({np.nanmin(arr):.3g}..{np.nanmax(arr):.3g}); scale it to [0, 1] or save an "
                "8- or 16-bit PNG."
            )
        return arr[..., None], None
    if mode in ("LA", "La", "P", "PA", "RGBA", "RGBa"):
        im = im.convert("LA" if mode.startswith("L") else "RGBA")
        arr = np.asarray(im, dtype=np.float64) / 255.0
        return arr[..., :-1], arr[..., -1]
    if mode in ("LAB", "HSV", "RGBX"):  # other 8-bit colour modes (1, L, RGB, CMYK, YCbCr take read_image's path)
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0, None
    raise DDNMInputError(
        f"{path} has image mode {mode!r}, which restore does not read; save it as an 8- or "
        "16-bit grayscale or RGB(A) PNG."
    )


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
                # 8-bit without alpha: Pillow's own conversion to L or RGB
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
        raise DDNMInputError(
            f"the mask {path} is not black and white: {100 * grey:.0f} % of its pixels are grey "
            "(between 20 % and 80 % brightness). Save a mask with white = observed and black = "
            "missing (values are thresholded at mid-grey)."
        )
    mask = (m > 0.5).float()
    frac = mask.mean().item()
    if frac == 0.0 or frac == 1.0:
        what = "no pixel as observed (all black)" if frac == 0 else "every pixel as observed (all white)"
        raise DDNMInputError(
            f"the mask {path} marks {what}; white = observed, black = missing, and inpainting needs some of each."
        )
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
        raise DDNMInputError(
            f"{what} {path}: the folder {folder} does not exist; create it first "
            f"(mkdir -p {folder}) or choose another path."
        )
    if not os.access(folder, os.W_OK):
        raise DDNMInputError(f"{what} {path}: the folder {folder} is not writable; choose another path.")
    Image.init()
    if path.suffix.lower() not in Image.registered_extensions():
        raise DDNMInputError(f"{what} {path}: unknown image file extension {path.suffix!r}; use .png.")


def write_image(x: torch.Tensor, path: Path, scale: int = 1) -> None:
    """Save a (1, C, H, W) or (C, H, W) [-1, 1] tensor as PNG (nearest-neighbour enlarged by ``scale``)."""
    from PIL import Image

    from ..data import to_uint8

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


def check_output_folder(out: Path, inputs: list[Path], what: str = "--out") -> list[Path]:
    """The output folder for several inputs (created if its parent exists); returns one .png path per input."""
    import os

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DDNMInputError(f"{what} {out} is a file, but several inputs need a folder; give a folder path.")
    if not out.exists():
        if not out.parent.is_dir():
            raise DDNMInputError(f"{what} {out}: the folder {out.parent} does not exist; create it first.")
        out.mkdir()
    if not os.access(out, os.W_OK):
        raise DDNMInputError(f"{what} {out} is not writable; choose another folder.")
    names = [out / (p.stem + ".png") for p in inputs]
    if len(set(names)) < len(names):
        raise DDNMInputError("two inputs have the same file name (stem); their results would overwrite each other.")
    return names


def save_grid(images: torch.Tensor, path: Path, ncol: int = 8, scale: int = 2) -> None:
    """(N, C, H, W) in [-1, 1] -> PNG grid."""
    from PIL import Image

    from ..data import to_uint8

    arr = to_uint8(images)  # (N, C, H, W)
    N, C, H, W = arr.shape
    nrow = -(-N // ncol)
    grid = np.full((C, nrow * (H + 2) + 2, ncol * (W + 2) + 2), 255, np.uint8)
    for i, im in enumerate(arr):
        r, c = divmod(i, ncol)
        grid[:, 2 + r * (H + 2) : 2 + r * (H + 2) + H, 2 + c * (W + 2) : 2 + c * (W + 2) + W] = im
    img = Image.fromarray(grid[0] if C == 1 else grid.transpose(1, 2, 0))
    img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)
