"""Datasets: Fashion-MNIST (grayscale) and emoji in three art styles (RGB), all 32x32 in [-1, 1].

What ships, in the repository's ``data/`` (an installed wheel carries it as ``ddnm_edu/assets/``;
:data:`ASSETS` is whichever is there): the held-out test sets and the emoji training set (small).
The Fashion-MNIST training set is read from the Debian package ``dataset-fashion-mnist`` when
training. How the emoji set is made: :mod:`ddnm_edu.tools.emoji`.

Rebuild the shipped arrays from the package managers (Debian, PyPI, npm) with ``ddnm_edu.tools.datasets``::

    apt-get update && apt-get install -y dataset-fashion-mnist fonts-noto-color-emoji npm
    pip install -e ".[data]"
    python -m ddnm_edu.tools.datasets build   # writes data/

``load(name, split)`` returns a float32 tensor (N, C, 32, 32) in [-1, 1].
"""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from .errors import DDNMInputError


def _assets() -> Path:
    """The shipped data: ``ddnm_edu/assets/`` in an installed wheel (pyproject.toml maps the
    repository's ``data/`` there), else ``data/`` beside the package in a checkout."""
    installed = Path(str(files("ddnm_edu"))) / "assets"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "data"


#: the shipped data: datasets, manifest.json, and the shipped weights in weights/
ASSETS = _assets()
# DDNM_EDU_FASHION_DIR points elsewhere (e.g. a copy carried to a GPU machine without the Debian package)
FASHION_DIR = Path(os.environ.get("DDNM_EDU_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))
DATASETS = ("fashion-mnist", "emoji")
EMOJI_STYLES = ("noto", "openmoji", "fluent-flat")
EMOJI_TEST_FILES = {"noto": "test.npz", "openmoji": "test-openmoji.npz", "fluent-flat": "test-fluent-flat.npz"}
NPM_CACHE = Path(os.environ.get("DDNM_EDU_NPM_CACHE", Path.home() / ".cache" / "ddnm-edu" / "npm"))
FASHION_TEST_SHIPPED = 1000
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


# --------------------------------------------------------------------------- helpers
def to_unit(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 tensor in [-1, 1]."""
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] tensor -> uint8 array (clipped)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# --------------------------------------------------------------------------- Fashion-MNIST
def fashion_mnist_raw(split: str, src: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, 32, 32) zero-padded from 28x28, labels (N,)) from the Debian package."""
    prefix = {"train": "train", "test": "t10k"}[split]
    img_path = src / f"{prefix}-images-idx3-ubyte.gz"
    if not img_path.exists():
        raise DDNMInputError(
            f"Fashion-MNIST {split} images not found at {img_path}. Install them with "
            "`apt-get update && apt-get install -y dataset-fashion-mnist` (Debian), or use split='test', "
            "whose first 1,000 images ship in data/."
        )
    imgs = _read_idx(img_path)
    labels = _read_idx(src / f"{prefix}-labels-idx1-ubyte.gz")
    imgs = np.pad(imgs, ((0, 0), (2, 2), (2, 2)))[:, None]  # (N, 1, 32, 32), background 0 = black
    return imgs, labels


# --------------------------------------------------------------------------- load
def _shipped(path: Path, name: str, split: str) -> np.lib.npyio.NpzFile:
    if not path.exists():
        raise DDNMInputError(
            f"{name}/{split} is not in {path.parent}; rebuild the shipped arrays with "
            "`python -m ddnm_edu.tools.datasets build` (needs the Debian packages "
            "dataset-fashion-mnist and fonts-noto-color-emoji)."
        )
    return np.load(path)


def load(name: str, split: str = "test", n: int | None = None, with_labels: bool = False, style: str | None = None):
    """Images of dataset ``name`` ('fashion-mnist' or 'emoji') and ``split`` ('train' or 'test').

    Returns a float32 tensor (N, C, 32, 32) in [-1, 1] (and labels / texts with ``with_labels``).
    ``n`` keeps the first n images. Emoji come in art styles (:data:`EMOJI_STYLES`):
    ``style`` picks one; the default is every style for 'train' and Noto for 'test'
    (the held-out set the book uses); ``style="all"`` gives every style's test images.
    """
    if name not in DATASETS:
        raise DDNMInputError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}.")
    if split not in ("train", "test"):
        raise DDNMInputError(f"unknown split {split!r}; use 'train' or 'test'.")
    if style is not None and (name != "emoji" or style not in (*EMOJI_STYLES, "all")):
        raise DDNMInputError(
            f"unknown style {style!r} for {name!r}; emoji styles: "
            f"{', '.join(EMOJI_STYLES)} or 'all' (fashion-mnist has none)."
        )
    if name == "fashion-mnist":
        if split == "train":
            imgs, labels = fashion_mnist_raw("train")
        else:
            z = _shipped(ASSETS / "fashion-mnist" / "test.npz", name, split)
            imgs, labels = z["images"], z["labels"]
    elif split == "train":
        z = _shipped(ASSETS / "emoji" / "train.npz", name, split)
        imgs, labels = z["images"], z["texts"]
        if style not in (None, "all"):
            keep = z["styles"] == style
            imgs, labels = imgs[keep], labels[keep]
    else:
        styles = EMOJI_STYLES if style == "all" else (style or "noto",)
        zs = [_shipped(ASSETS / "emoji" / EMOJI_TEST_FILES[s], name, split) for s in styles]
        imgs = np.concatenate([z["images"] for z in zs])
        labels = np.concatenate([z["texts"] for z in zs])
    imgs, labels = imgs[:n], labels[:n]
    x = to_unit(imgs)
    return (x, labels) if with_labels else x
