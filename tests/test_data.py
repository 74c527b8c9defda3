"""Shipped datasets: present, in range, checksummed; the loader explains what is missing."""
import json
from pathlib import Path

import pytest
import torch

from ddnm_edu import DDNMInputError, data


def test_manifest_checksums_match():
    manifest = json.loads((data.REPO_DATA / "manifest.json").read_text())
    for rel, info in manifest.items():
        assert data.sha256(data.REPO_DATA / rel) == info["sha256"], rel


def test_fashion_mnist_test_split():
    x, labels = data.load("fashion-mnist", "test", with_labels=True)
    assert x.shape == (1000, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert (x[:, :, :2] == -1).all() and (x[:, :, -2:] == -1).all()  # the 2-pixel zero padding
    assert set(labels.tolist()) == set(range(10))


def test_emoji_splits_are_disjoint_rgb():
    tr, te = data.load("emoji", "train"), data.load("emoji", "test")
    assert tr.shape[1:] == te.shape[1:] == (3, 32, 32)
    assert 0.08 < len(te) / (len(tr) + len(te)) < 0.12
    trs = {bytes(data.to_uint8(t)) for t in tr}
    assert not any(bytes(data.to_uint8(t)) in trs for t in te)  # deduplicated before the split


def test_load_n_and_unknown_names():
    assert data.load("emoji", "test", n=5).shape[0] == 5
    with pytest.raises(DDNMInputError, match="unknown dataset 'mnist'; available: fashion-mnist, emoji"):
        data.load("mnist")
    with pytest.raises(DDNMInputError, match="unknown split"):
        data.load("emoji", "val")


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
