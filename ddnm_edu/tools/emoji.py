"""The emoji dataset: three openly licensed art styles rendered the same way, rebalanced, split.

Styles (licences in ``data/README.md``):

* ``noto``        -- Noto Color Emoji, Debian ``fonts-noto-color-emoji`` (OFL 1.1 / Apache 2.0);
* ``openmoji``    -- OpenMoji 17.0.0, npm ``openmoji`` (CC BY-SA 4.0), ``color/svg``;
* ``fluent-flat`` -- Microsoft's Fluent Emoji, *flat* style, npm ``fluentui-emoji`` 1.3.0 (MIT).

Every image is drawn large, cropped to what is drawn, centred on a white square and
resized to 32x32 with Lanczos, so the styles differ in drawing, not in framing.

**Rebalancing.** Skin-tone and gender variants of one emoji would otherwise dominate
(in Noto, 2,000 of the 3,916 glyphs are people). :func:`base_key` maps a sequence to its
base emoji (skin-tone modifiers and variation selectors removed; man / woman / person,
boy / girl / child and old man / old woman / older person merged; ZWJ gender signs
removed). Training keeps at most :data:`PER_GROUP` images of a base: the untoned one
when there is one, plus random others (seeded).

**Held-out splits.** ``noto`` keeps the split the project has used since its first
model (a seeded 10 % of the rendered glyphs), so old and new models are compared on the
same images. For ``openmoji`` and ``fluent-flat`` whole *base emoji* are held out (a
seeded 10 % of the base keys, the same keys in both styles): no variant of a held-out
emoji is trained on in those styles.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np

from ..data import EMOJI_STYLES as STYLES
from ..errors import DDNMInputError

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
NPM_PACKAGES = {"openmoji": "openmoji@17.0.0", "fluent-flat": "fluentui-emoji@1.3.0"}
SOURCES = {
    "noto": "Debian fonts-noto-color-emoji",
    "openmoji": "npm openmoji@17.0.0 (color/svg)",
    "fluent-flat": "npm fluentui-emoji@1.3.0 (icons/flat)",
}
TEST_FRACTION = 0.1
SPLIT_SEED = 0
PER_GROUP = 2
SIZE = 32

SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
ZWJ, VS16 = "\u200d", "\ufe0f"
# man / woman -> person, boy / girl -> child, old man / old woman -> older person
_MERGE = {
    "\U0001f468": "\U0001f9d1",
    "\U0001f469": "\U0001f9d1",
    "\U0001f466": "\U0001f9d2",
    "\U0001f467": "\U0001f9d2",
    "\U0001f474": "\U0001f9d3",
    "\U0001f475": "\U0001f9d3",
}
_GENDER_SIGNS = ("\u2640", "\u2642")
# Fluent's file names end in the skin tone: "thumbs-up-medium-dark"
_FLUENT_TONES = ("-medium-light", "-medium-dark", "-default", "-medium", "-light", "-dark")


def base_key(text: str) -> str:
    """The base emoji of a sequence: skin tones, VS16 and ZWJ gender signs removed, people merged.

    ``base_key("👍🏽") == base_key("👍")``; ``base_key("👩‍⚕️") == base_key("🧑‍⚕️")``;
    ``base_key("🏃‍♀️") == base_key("🏃")``. Non-emoji names (``":name:"``, Fluent files
    without a Unicode match) get the same treatment on their words.
    """
    if text.startswith(":"):  # a name, e.g. ":man-blonde-hair:"
        words = [w for w in text.strip(":").split("-") if w]
        merge = {
            "man": "person",
            "woman": "person",
            "men": "people",
            "women": "people",
            "boy": "child",
            "girl": "child",
            "mans": "persons",
            "womans": "persons",
            "mens": "peoples",
            "womens": "peoples",
        }
        return ":" + "-".join(merge.get(w, w) for w in words) + ":"
    t = "".join(_MERGE.get(c, c) for c in text if c not in SKIN_TONES and c != VS16)
    for sign in _GENDER_SIGNS:
        t = t.replace(ZWJ + sign, "")
    t = t.strip(ZWJ)
    return t or text


def rebalance(texts: list[str], rng: np.random.Generator, per_group: int = PER_GROUP) -> np.ndarray:
    """Indices to keep: at most ``per_group`` per :func:`base_key`, the untoned one first if present."""
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        groups.setdefault(base_key(t), []).append(i)
    keep: list[int] = []
    for key in sorted(groups):
        idx = groups[key]
        plain = [i for i in idx if not (SKIN_TONES & set(texts[i])) and not texts[i].endswith(("-tone:",))]
        first = plain[:1] or [idx[0]]
        rest = [i for i in idx if i not in first]
        extra = list(rng.permutation(rest)[: per_group - 1]) if rest else []
        keep += first + [int(i) for i in extra]
    return np.array(sorted(keep), dtype=np.int64)


def unseen_base(style: str = "noto") -> np.ndarray:
    """Indices of ``style``'s held-out images whose base emoji (:func:`base_key`) has no training image in
    that style.

    OpenMoji and Fluent flat hold out whole base emoji, so that is all of their held-out images. Noto keeps
    the first model's split, a random 10 % of glyphs: most held-out people have a sibling (another skin
    tone or gender) among the training images, which a model can nearly copy. This subset measures Noto
    without that help (the ``noto-unseen`` rows of ``benchmarks/prior_check.py``).
    """
    from ..data import load

    _, test = load("emoji", "test", style=style, with_labels=True)
    _, train = load("emoji", "train", style=style, with_labels=True)
    seen = {base_key(t) for t in train}
    return np.array([i for i, t in enumerate(test) if base_key(t) not in seen], dtype=np.int64)


# --------------------------------------------------------------------------- rendering
def square_on_white(rgba, size: int = SIZE) -> np.ndarray | None:
    """Crop an RGBA PIL image to what is drawn, centre it on a white square, Lanczos to size x size.

    Returns uint8 (3, size, size), or None when nothing (or nearly nothing) is drawn.
    """
    from PIL import Image

    bbox = rgba.getbbox()
    if bbox is None:
        return None
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    if w < 4 or h < 4:
        return None
    glyph = rgba.crop(bbox)
    side = max(w, h)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - w) // 2, (side - h) // 2))
    rgb = square.convert("RGB").resize((size, size), Image.LANCZOS)
    arr = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)  # (3, H, W)
    if arr.min() > 245:  # practically white: nothing drawn
        return None
    return arr


def render_svg(path: Path, size: int = SIZE, raster: int = 256) -> np.ndarray | None:
    """Rasterise an SVG with CairoSVG at raster x raster, then :func:`square_on_white`."""
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(url=str(path), output_width=raster, output_height=raster)
    return square_on_white(Image.open(io.BytesIO(png)).convert("RGBA"), size)


def noto_sequences(font_path: Path = EMOJI_FONT) -> list[str]:
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


def render_noto(text: str, font, size: int = SIZE) -> np.ndarray | None:
    """Render one emoji (Pillow, embedded colour bitmaps), then :func:`square_on_white`.

    Returns None for glyphs that are blank or that the font does not join into one glyph.
    """
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (400, 200), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((10, 10), text, font=font, embedded_color=True)
    bbox = canvas.getbbox()
    if bbox is not None and bbox[2] - bbox[0] > 1.4 * 136:  # not joined into one glyph
        return None
    return square_on_white(canvas, size)


# --------------------------------------------------------------------------- the three styles
def _dedup(items) -> tuple[np.ndarray, list[str]]:
    """Drop failed renders and exact duplicates (same 32x32 pixels), keeping the first."""
    images, texts, seen = [], [], set()
    for text, arr in items:
        if arr is None:
            continue
        key = hashlib.sha1(arr.tobytes()).digest()
        if key in seen:
            continue
        seen.add(key)
        images.append(arr)
        texts.append(text)
    return np.stack(images), texts


def build_noto(font_path: Path = EMOJI_FONT) -> tuple[np.ndarray, list[str]]:
    """Render every Noto sequence. Returns (N, 3, 32, 32) uint8 and the emoji texts."""
    from PIL import ImageFont

    if not font_path.exists():
        raise DDNMInputError(
            f"{font_path} not found; install it with `apt-get update && apt-get install -y fonts-noto-color-emoji`."
        )
    font = ImageFont.truetype(str(font_path), 109)
    return _dedup((t, render_noto(t, font)) for t in noto_sequences(font_path))


def fetch_npm(style: str, cache: Path) -> Path:
    """Unpack the pinned npm tarball of ``style`` into ``cache`` (``npm pack``: the registry only).

    Returns the package folder. Reuses an earlier download; records nothing else.
    """
    spec = NPM_PACKAGES[style]
    dest = cache / spec.replace("@", "-").replace("/", "-")
    if (dest / "package" / "package.json").exists():
        return dest / "package"
    dest.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(
            ["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise DDNMInputError(
            f"could not download {spec} with `npm pack` ({e}); install Node.js/npm "
            f"(`apt-get install -y npm`) or unpack the tarball into {dest}."
        ) from e
    tgz = dest / json.loads(out)[0]["filename"]
    import tarfile

    with tarfile.open(tgz) as tf:
        tf.extractall(dest, filter="data")
    return dest / "package"


def openmoji_entries(pkg: Path) -> list[dict]:
    """OpenMoji's own table (data/openmoji.json), standard Unicode emoji only.

    Dropped: OpenMoji's extras (its own designs, brand logos) and the 'component' group
    (bare skin-tone swatches and hair parts).
    """
    rows = json.loads((pkg / "data" / "openmoji.json").read_text())
    return [r for r in rows if not r["group"].startswith("extras") and r["group"] != "component"]


def build_openmoji(pkg: Path) -> tuple[np.ndarray, list[str]]:
    rows = openmoji_entries(pkg)
    return _dedup((r["emoji"], render_svg(pkg / "color" / "svg" / f"{r['hexcode']}.svg")) for r in rows)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def fluent_text(name: str, names_to_emoji: dict[str, str]) -> str:
    """Fluent's file name -> the emoji text (via CLDR names, as in OpenMoji's table), else ':name:'.

    ``thumbs-up-medium-dark`` -> 👍🏾 ; ``thumbs-up-default`` -> 👍.
    """
    tone = next((t for t in _FLUENT_TONES if name.endswith(t)), "")
    base = name[: len(name) - len(tone)] if tone else name
    if base not in names_to_emoji:
        return f":{name}:" if not tone or tone == "-default" else f":{base}:{tone[1:]}-tone:"
    text = names_to_emoji[base]
    if tone and tone != "-default":
        mod = {
            "-light": 0x1F3FB,
            "-medium-light": 0x1F3FC,
            "-medium": 0x1F3FD,
            "-medium-dark": 0x1F3FE,
            "-dark": 0x1F3FF,
        }[tone]
        text += chr(mod)  # stands for the toned variant (grouping only; not a valid ZWJ placement)
    return text


def build_fluent_flat(pkg: Path, openmoji_pkg: Path) -> tuple[np.ndarray, list[str]]:
    names_to_emoji = {_slug(r["annotation"]): r["emoji"] for r in openmoji_entries(openmoji_pkg)}
    files = sorted((pkg / "icons" / "flat").glob("*.svg"))
    return _dedup((fluent_text(f.stem, names_to_emoji), render_svg(f)) for f in files)


# --------------------------------------------------------------------------- splits
def split_noto(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The project's original Noto split: a seeded permutation, first 10 % held out."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(round(TEST_FRACTION * n))
    return np.sort(perm[:n_test]), np.sort(perm[n_test:])


def held_out_keys(keys: set[str]) -> set[str]:
    """A seeded 10 % of the base keys (the same keys for every style that uses them)."""
    ks = sorted(keys)
    perm = np.random.default_rng(SPLIT_SEED + 1).permutation(len(ks))
    return {ks[i] for i in perm[: int(round(TEST_FRACTION * len(ks)))]}


def build_all(cache: Path) -> dict[str, dict[str, tuple[np.ndarray, list[str]]]]:
    """Every style rendered, rebalanced and split: ``{style: {"train": (x, texts), "test": (x, texts)}}``."""
    om_pkg = fetch_npm("openmoji", cache)
    rendered = {
        "noto": build_noto(),
        "openmoji": build_openmoji(om_pkg),
        "fluent-flat": build_fluent_flat(fetch_npm("fluent-flat", cache), om_pkg),
    }
    keys = set()
    for style in ("openmoji", "fluent-flat"):
        keys |= {base_key(t) for t in rendered[style][1]}
    test_keys = held_out_keys(keys)
    out = {}
    for s, (x, texts) in rendered.items():
        rng = np.random.default_rng(SPLIT_SEED + 2 + STYLES.index(s))
        if s == "noto":
            te, tr = split_noto(len(x))
        else:
            is_test = np.array([base_key(t) in test_keys for t in texts])
            te, tr = np.flatnonzero(is_test), np.flatnonzero(~is_test)
            te = te[rebalance([texts[i] for i in te], rng)]  # the held-out set is balanced too
        tr = tr[rebalance([texts[i] for i in tr], rng)]
        out[s] = {split: (x[idx], [texts[i] for i in idx]) for split, idx in (("train", tr), ("test", te))}
        out[s]["rendered"] = len(x)
    return out
