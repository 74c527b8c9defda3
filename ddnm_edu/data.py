"""Datasets: Fashion-MNIST (grayscale) and Noto Color Emoji (RGB), both 32x32 in [-1, 1].

What ships in ``data/`` (no Debian package needed): the held-out test sets and
the emoji training set (small). The Fashion-MNIST training set is read from the
Debian package ``dataset-fashion-mnist`` when training.

Rebuild the shipped arrays from the Debian packages with::

    apt-get update && apt-get install -y dataset-fashion-mnist fonts-noto-color-emoji
    python -m ddnm_edu.data build --out data

``load(name, split)`` returns a float32 tensor (N, C, 32, 32) in [-1, 1].
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from .errors import DDNMInputError

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
# DDNM_EDU_FASHION_DIR points elsewhere (e.g. a copy carried to a GPU machine without the Debian package)
FASHION_DIR = Path(os.environ.get("DDNM_EDU_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
DATASETS = ("fashion-mnist", "emoji")
FASHION_TEST_SHIPPED = 1000
EMOJI_TEST_FRACTION = 0.1
SPLIT_SEED = 0
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


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
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
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
            "whose first 1,000 images ship in data/.")
    imgs = _read_idx(img_path)
    labels = _read_idx(src / f"{prefix}-labels-idx1-ubyte.gz")
    imgs = np.pad(imgs, ((0, 0), (2, 2), (2, 2)))[:, None]  # (N, 1, 32, 32), background 0 = black
    return imgs, labels


# --------------------------------------------------------------------------- emoji
def emoji_sequences(font_path: Path = EMOJI_FONT) -> list[str]:
    """Every codepoint the font maps plus every ligature sequence (skin tones, ZWJ, flags, keycaps).

    Sequences come from the font's own tables: its cmap (single codepoints) and
    its GSUB ligature lookups (multi-codepoint sequences whose components all map
    back to codepoints).
    """
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path))
    cmap = font.getBestCmap()
    rev: dict[str, int] = {}
    for cp, g in sorted(cmap.items()):
        rev.setdefault(g, cp)
    seqs = {chr(cp) for cp in cmap if cp > 0x7F or chr(cp) in "#*0123456789"}
    for lookup in font["GSUB"].table.LookupList.Lookup:
        if lookup.LookupType != 4:
            continue
        for st in lookup.SubTable:
            for first, ligs in st.ligatures.items():
                for lig in ligs:
                    comps = [first, *lig.Component]
                    if all(c in rev for c in comps):
                        seqs.add("".join(chr(rev[c]) for c in comps))
    # fully-qualified forms render the same glyph: keep each text once
    return sorted(seqs)


def render_emoji(text: str, font, size: int = 32) -> np.ndarray | None:
    """Render one emoji (Pillow, embedded colour bitmaps) on white, downsampled to size x size RGB.

    Returns None for glyphs that are blank or that the font does not join into one glyph.
    """
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (400, 200), (255, 255, 255, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 10), text, font=font, embedded_color=True)
    bbox = canvas.getbbox()
    if bbox is None:
        return None
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    if w > 1.4 * 136 or w < 4 or h < 4:  # not joined into one glyph, or (nearly) empty
        return None
    glyph = canvas.crop(bbox)
    side = max(w, h)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - w) // 2, (side - h) // 2))
    rgb = square.convert("RGB").resize((size, size), Image.LANCZOS)
    arr = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)  # (3, H, W)
    if arr.min() > 245:  # practically white: nothing drawn
        return None
    return arr


def build_emoji(font_path: Path = EMOJI_FONT) -> tuple[np.ndarray, list[str]]:
    """Render all sequences, drop failures and exact duplicates. Returns (N, 3, 32, 32) uint8, texts."""
    from PIL import ImageFont

    if not font_path.exists():
        raise DDNMInputError(f"{font_path} not found; install it with "
                             "`apt-get update && apt-get install -y fonts-noto-color-emoji`.")
    font = ImageFont.truetype(str(font_path), 109)
    images, texts, seen = [], [], set()
    for text in emoji_sequences(font_path):
        arr = render_emoji(text, font)
        if arr is None:
            continue
        key = hashlib.sha1(arr.tobytes()).digest()
        if key in seen:
            continue
        seen.add(key)
        images.append(arr)
        texts.append(text)
    return np.stack(images), texts


# --------------------------------------------------------------------------- build + load
def build(out: Path = REPO_DATA) -> dict:
    """Write the shipped arrays into ``out`` and return a manifest (also written as manifest.json)."""
    out = Path(out)
    manifest = {}
    (out / "fashion-mnist").mkdir(parents=True, exist_ok=True)
    imgs, labels = fashion_mnist_raw("test")
    p = out / "fashion-mnist" / "test.npz"
    np.savez_compressed(p, images=imgs[:FASHION_TEST_SHIPPED], labels=labels[:FASHION_TEST_SHIPPED])
    manifest["fashion-mnist/test.npz"] = {"n": FASHION_TEST_SHIPPED, "sha256": sha256(p),
                                          "note": "first 1,000 images of the official test set"}
    images, texts = build_emoji()
    rng = np.random.default_rng(SPLIT_SEED)
    perm = rng.permutation(len(images))
    n_test = int(round(EMOJI_TEST_FRACTION * len(images)))
    (out / "emoji").mkdir(parents=True, exist_ok=True)
    for split, idx in (("test", np.sort(perm[:n_test])), ("train", np.sort(perm[n_test:]))):
        p = out / "emoji" / f"{split}.npz"
        np.savez_compressed(p, images=images[idx], texts=np.array([texts[i] for i in idx]))
        manifest[f"emoji/{split}.npz"] = {"n": int(len(idx)), "sha256": sha256(p)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _shipped(path: Path, name: str, split: str) -> np.lib.npyio.NpzFile:
    if not path.exists():
        raise DDNMInputError(f"{name}/{split} is not in {path.parent}; rebuild the shipped arrays with "
                             "`python -m ddnm_edu.data build` (needs the Debian packages "
                             "dataset-fashion-mnist and fonts-noto-color-emoji).")
    return np.load(path)


def load(name: str, split: str = "test", n: int | None = None, with_labels: bool = False):
    """Images of dataset ``name`` ('fashion-mnist' or 'emoji') and ``split`` ('train' or 'test').

    Returns a float32 tensor (N, C, 32, 32) in [-1, 1] (and labels / texts with ``with_labels``).
    ``n`` keeps the first n images.
    """
    if name not in DATASETS:
        raise DDNMInputError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}.")
    if split not in ("train", "test"):
        raise DDNMInputError(f"unknown split {split!r}; use 'train' or 'test'.")
    if name == "fashion-mnist":
        if split == "train":
            imgs, labels = fashion_mnist_raw("train")
        else:
            z = _shipped(REPO_DATA / "fashion-mnist" / "test.npz", name, split)
            imgs, labels = z["images"], z["labels"]
    else:
        z = _shipped(REPO_DATA / "emoji" / f"{split}.npz", name, split)
        imgs, labels = z["images"], z["texts"]
    imgs, labels = imgs[:n], labels[:n]
    x = to_unit(imgs)
    return (x, labels) if with_labels else x


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ddnm_edu.data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="rebuild the shipped arrays from the Debian packages")
    b.add_argument("--out", type=Path, default=REPO_DATA)
    args = ap.parse_args(argv)
    manifest = build(args.out)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
