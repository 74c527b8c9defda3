"""Rebuild the shipped datasets in ``data/`` from Debian, PyPI and npm: ``python -m ddnm_edu.tools.datasets build``.

Needs the Debian packages dataset-fashion-mnist and fonts-noto-color-emoji, npm, and the ``data`` extra.
Loading what ships is ``ddnm_edu.data.load``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data import EMOJI_TEST_FILES, FASHION_TEST_SHIPPED, NPM_CACHE, ASSETS, fashion_mnist_raw, sha256
from .command import CommandParser, run_command


def build(out: Path = ASSETS, cache: Path = NPM_CACHE) -> dict:
    """Write the shipped arrays into ``out`` and return a manifest (also written as manifest.json).

    Emoji: see :mod:`ddnm_edu.tools.emoji` (three styles, rebalanced, per-style held-out sets);
    ``cache`` holds the npm tarballs it downloads.
    """
    from . import emoji

    out = Path(out)
    manifest = {}
    (out / "fashion-mnist").mkdir(parents=True, exist_ok=True)
    imgs, labels = fashion_mnist_raw("test")
    p = out / "fashion-mnist" / "test.npz"
    np.savez_compressed(p, images=imgs[:FASHION_TEST_SHIPPED], labels=labels[:FASHION_TEST_SHIPPED])
    manifest["fashion-mnist/test.npz"] = {
        "n": FASHION_TEST_SHIPPED,
        "sha256": sha256(p),
        "note": "first 1,000 images of the official test set",
    }
    sets = emoji.build_all(Path(cache))
    (out / "emoji").mkdir(parents=True, exist_ok=True)
    for style in emoji.STYLES:
        x, texts = sets[style]["test"]
        p = out / "emoji" / EMOJI_TEST_FILES[style]
        np.savez_compressed(p, images=x, texts=np.array(texts))
        manifest[f"emoji/{p.name}"] = {
            "n": len(x),
            "sha256": sha256(p),
            "style": style,
            "source": emoji.SOURCES[style],
        }
    train = [(style, *sets[style]["train"]) for style in emoji.STYLES]
    p = out / "emoji" / "train.npz"
    np.savez_compressed(
        p,
        images=np.concatenate([x for _, x, _ in train]),
        texts=np.array([t for _, _, ts in train for t in ts]),
        styles=np.array([s for s, x, _ in train for _ in range(len(x))]),
    )
    manifest["emoji/train.npz"] = {
        "n": sum(len(x) for _, x, _ in train),
        "sha256": sha256(p),
        "per_style": {s: len(x) for s, x, _ in train},
        "rendered_per_style": {s: sets[s]["rendered"] for s in emoji.STYLES},
        "source": [emoji.SOURCES[s] for s in emoji.STYLES],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = CommandParser(prog="python -m ddnm_edu.tools.datasets", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="rebuild the shipped arrays from the Debian packages")
    b.add_argument("--out", type=Path, default=ASSETS)
    b.add_argument("--npm-cache", type=Path, default=NPM_CACHE, help="where the npm tarballs are unpacked")
    args = ap.parse_args(argv)
    manifest = build(args.out, args.npm_cache)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    raise SystemExit(run_command("python -m ddnm_edu.tools.datasets", main))
