"""Shipped weights load offline with their sha256 checked; a changed file is rejected."""
import shutil

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError, pretrained


@pytest.mark.parametrize("name,channels", [("fashion-mnist-32", 1), ("emoji-32", 3)])
def test_load_pretrained_on_cpu(name, channels):
    model = de.load_pretrained(name, device="cpu")
    assert not model.training
    assert next(model.parameters()).device.type == "cpu"
    rec = pretrained.registry()[name]
    assert sum(p.numel() for p in model.parameters()) == rec["params"]
    assert 1_000_000 <= rec["params"] <= 2_000_000
    with torch.no_grad():
        eps = model(torch.zeros(2, channels, 32, 32), torch.tensor([10, 900]))
    assert eps.shape == (2, channels, 32, 32) and torch.isfinite(eps).all()
    assert eps.abs().mean() > 0  # trained weights, not the zero-initialised output layer


def test_unknown_model_lists_available():
    with pytest.raises(DDNMInputError, match="unknown model 'imagenet'; available: emoji-32, fashion-mnist-32"):
        de.load_pretrained("imagenet")


def test_tampered_weights_rejected(tmp_path, monkeypatch):
    rec = pretrained.registry()["fashion-mnist-32"]
    bad = tmp_path / rec["file"]
    shutil.copy(pretrained.WEIGHTS_DIR / rec["file"], bad)
    with open(bad, "r+b") as f:  # flip one byte in the middle of the file
        f.seek(bad.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    shutil.copy(pretrained.REGISTRY, tmp_path / pretrained.REGISTRY.name)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / pretrained.REGISTRY.name)
    with pytest.raises(DDNMInputError, match="corrupt or was changed: sha256"):
        de.load_pretrained("fashion-mnist-32")


def test_missing_weights_file(tmp_path):
    with pytest.raises(DDNMInputError, match="not found"):
        pretrained.load_state_dict_checked(tmp_path / "nothing.pt")


def test_unreadable_weights_file(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"not a torch file")
    with pytest.raises(DDNMInputError, match="could not read weights"):
        pretrained.load_state_dict_checked(p)
