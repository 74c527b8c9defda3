"""Shipped datasets: present, in range, checksummed; the loader explains what is missing."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ddnm_edu import DDNMInputError, data


def test_manifest_checksums_match():
    manifest = json.loads((data.ASSETS / "manifest.json").read_text())
    for rel, info in manifest.items():
        assert data.sha256(data.ASSETS / rel) == info["sha256"], rel


def test_fashion_mnist_test_split():
    x, labels = data.load("fashion-mnist", "test", with_labels=True)
    assert x.shape == (1000, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert (x[:, :, :2] == -1).all() and (x[:, :, -2:] == -1).all()  # the 2-pixel zero padding
    assert set(labels.tolist()) == set(range(10))


def test_emoji_splits_are_disjoint_rgb():
    tr, te = data.load("emoji", "train", style="noto"), data.load("emoji", "test")
    assert tr.shape[1:] == te.shape[1:] == (3, 32, 32)
    trs = {bytes(data.to_uint8(t)) for t in data.load("emoji", "train")}
    for style in data.EMOJI_STYLES:  # no held-out image of any style is trained on
        assert not any(bytes(data.to_uint8(t)) in trs for t in data.load("emoji", "test", style=style)), style


def test_emoji_styles_and_held_out_bases():
    from ddnm_edu.tools.emoji import base_key

    manifest = json.loads((data.ASSETS / "manifest.json").read_text())
    per_style = manifest["emoji/train.npz"]["per_style"]
    assert set(per_style) == set(data.EMOJI_STYLES) and min(per_style.values()) > 1000
    _, styles_texts = data.load("emoji", "train", with_labels=True)
    assert len(styles_texts) == sum(per_style.values())
    for style in ("openmoji", "fluent-flat"):  # whole base emoji are held out in the new styles
        _, tr = data.load("emoji", "train", style=style, with_labels=True)
        x, te = data.load("emoji", "test", style=style, with_labels=True)
        assert len(x) == manifest[f"emoji/test-{style}.npz"]["n"] > 100
        assert not {base_key(t) for t in te} & {base_key(t) for t in tr}, style
    assert len(data.load("emoji", "test", style="all")) == sum(
        manifest[f"emoji/{f}"]["n"] for f in data.EMOJI_TEST_FILES.values()
    )


def test_emoji_training_set_is_rebalanced():
    """At most PER_GROUP images of one base emoji per style: skin tones and genders no longer dominate."""
    import collections

    from ddnm_edu.tools.emoji import PER_GROUP, base_key

    _, texts = data.load("emoji", "train", with_labels=True)
    styles = np.load(data.ASSETS / "emoji" / "train.npz")["styles"]
    counts = collections.Counter((s, base_key(t)) for s, t in zip(styles, texts))
    assert max(counts.values()) <= PER_GROUP
    toned = sum(any(0x1F3FB <= ord(c) <= 0x1F3FF for c in t) for t in texts)
    assert toned / len(texts) < 0.25  # Noto alone was 2,000 of 3,916 before


@pytest.mark.parametrize(
    "a, b",
    [
        ("👍🏽", "👍"),
        ("👩‍⚕️", "🧑‍⚕️"),
        ("👨🏿‍⚕️", "🧑‍⚕️"),
        ("🏃‍♀️", "🏃"),
        ("👨‍👩‍👧", "🧑‍🧑‍🧒"),
        (":man-blonde-hair:", ":person-blonde-hair:"),
    ],
)
def test_base_key_merges_variants(a, b):
    from ddnm_edu.tools.emoji import base_key

    assert base_key(a) == base_key(b)


def test_base_key_keeps_different_emoji_apart():
    from ddnm_edu.tools.emoji import base_key

    assert len({base_key(t) for t in ["👍", "👎", "🧑‍⚕️", "🧑‍🍳", "🏃", "🚶", "😀", ":person-elf:"]}) == 8


def test_rebalance_keeps_the_untoned_one_first():
    from ddnm_edu.tools.emoji import rebalance

    texts = ["👍🏿", "👍🏻", "👍", "👍🏽", "😀"]
    keep = rebalance(texts, np.random.default_rng(0), per_group=2)
    assert 2 in keep and 4 in keep and len(keep) == 3


def test_fluent_names_map_to_emoji():
    from ddnm_edu.tools.emoji import fluent_text

    names = {"thumbs-up": "👍"}
    assert fluent_text("thumbs-up-default", names) == "👍"
    assert fluent_text("thumbs-up-medium-dark", names) == "👍🏾"
    assert fluent_text("person-elf-light", names) == ":person-elf:light-tone:"
    assert fluent_text("blackbird", names) == ":blackbird:"


def test_load_n_and_unknown_names():
    assert data.load("emoji", "test", n=5).shape[0] == 5
    with pytest.raises(DDNMInputError, match="unknown dataset 'mnist'; available: fashion-mnist, emoji"):
        data.load("mnist")
    with pytest.raises(DDNMInputError, match="unknown split"):
        data.load("emoji", "val")
    with pytest.raises(DDNMInputError, match="unknown style 'twemoji'.*noto, openmoji, fluent-flat"):
        data.load("emoji", style="twemoji")
    with pytest.raises(DDNMInputError, match="fashion-mnist has none"):
        data.load("fashion-mnist", style="noto")


def test_missing_training_set_explains_how_to_get_it(tmp_path):
    with pytest.raises(DDNMInputError, match="apt-get install -y dataset-fashion-mnist"):
        data.fashion_mnist_raw("train", src=tmp_path)


def test_settings_switch(monkeypatch):
    import ddnm_edu as de

    monkeypatch.setenv("DDNM_EDU_SCALE", "cpu")
    small = de.settings()
    monkeypatch.setenv("DDNM_EDU_SCALE", "full")
    big = de.settings()
    assert big.steps > small.steps and big.n_images > small.n_images
    monkeypatch.setenv("DDNM_EDU_SCALE", "huge")
    with pytest.raises(DDNMInputError, match="'cpu' or 'full'"):
        de.settings()


def test_unseen_base_subset():
    """emoji.unseen_base: held-out images whose base emoji has no training image in the same style. All of
    OpenMoji's and Fluent's (whole base emoji are held out); fewer than half of Noto's (random glyph split)."""
    from ddnm_edu.tools.emoji import base_key, unseen_base

    for style in data.EMOJI_STYLES:
        _, test = data.load("emoji", "test", style=style, with_labels=True)
        _, train = data.load("emoji", "train", style=style, with_labels=True)
        seen = {base_key(t) for t in train}
        idx = unseen_base(style)
        assert sorted(idx.tolist()) == [i for i, t in enumerate(test) if base_key(t) not in seen]
        if style == "noto":
            assert 0 < len(idx) < len(test) / 2
            assert any(base_key(t) in seen for t in test)
        else:
            assert len(idx) == len(test)


def test_the_training_slice_for_the_tests_reads_like_the_full_set():
    """tests/data/fashion-mnist holds the first 256 training images in the official idx format, read by the
    same loader as the Debian package's 60,000 (the training tests point DDNM_EDU_FASHION_DIR there)."""
    imgs, labels = data.fashion_mnist_raw("train", src=Path(__file__).parent / "data" / "fashion-mnist")
    assert imgs.shape == (256, 1, 32, 32) and imgs.dtype == np.uint8 and labels.shape == (256,)
    assert set(labels.tolist()) == set(range(10))  # every class is in the slice
    assert imgs[:, :, :2].max() == 0 and imgs[:, :, 2:30, 2:30].max() == 255  # 28x28 padded to 32x32
