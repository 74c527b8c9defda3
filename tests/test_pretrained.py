"""Shipped weights load offline with their sha256 checked; a changed file is rejected."""

import shutil
from pathlib import Path

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError, pretrained
from ddnm_edu.tools import weights

CANDIDATES = Path(__file__).resolve().parents[1] / "data" / "candidates"  # trained, not shipped


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
    # With no hash given, the path alone must find the shipped file's recorded sha256 in the registry:
    # the lookup --init-from and load_pretrained(..., weights=path) rely on.
    with pytest.raises(DDNMInputError, match="corrupt or was changed: sha256"):
        pretrained.load_state_dict_checked(bad)
    with pytest.raises(DDNMInputError, match="corrupt or was changed: sha256"):
        de.load_pretrained("fashion-mnist-32", weights=bad)
    # the flipped byte alone does not stop torch.load: only the sha256 check catches it
    assert "out.2.weight" in torch.load(bad, map_location="cpu", weights_only=True)


def test_missing_weights_file(tmp_path):
    with pytest.raises(DDNMInputError, match="not found"):
        pretrained.load_state_dict_checked(tmp_path / "nothing.pt")


def test_unreadable_weights_file(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"not a torch file")
    with pytest.raises(DDNMInputError, match="could not read weights"):
        pretrained.load_state_dict_checked(p)


def test_interpolate_is_the_weight_line_between_two_recorded_files(tmp_path):
    """theta = (1 - alpha) theta_a + alpha theta_b, tensor by tensor: alpha 0 and 1 give the parents exactly,
    0.5 their midpoint; the written file is recorded beside it (sha256, both parents) and loads as the model."""
    from ddnm_edu.data import sha256

    a, b = pretrained.WEIGHTS_DIR / "emoji-32.pt", CANDIDATES / "emoji-32.pt"
    sa, sb = (torch.load(f, weights_only=True) for f in (a, b))
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)  # two different weight sets
    for alpha, want in ((0.0, sa), (1.0, sb), (0.5, {k: (sa[k] + sb[k]) / 2 for k in sa})):
        out = tmp_path / str(alpha)
        rec = weights.interpolate(a, b, alpha, out, "emoji-32")
        sd = torch.load(out / "emoji-32.pt", weights_only=True)
        assert sd.keys() == sa.keys()
        for k in sa:
            torch.testing.assert_close(sd[k], want[k], rtol=0, atol=0 if alpha in (0.0, 1.0) else 1e-6)
        assert rec["sha256"] == sha256(out / "emoji-32.pt")
        assert rec["interpolated"]["alpha"] == alpha
        assert (rec["interpolated"]["a"]["sha256"], rec["interpolated"]["b"]["sha256"]) == (sha256(a), sha256(b))
        assert pretrained.init_record(out / "emoji-32.pt") == rec  # found by sha256 in the weights.json beside it
    model = pretrained.load_pretrained("emoji-32", weights=tmp_path / "0.5" / "emoji-32.pt")
    assert model(torch.zeros(1, 3, 32, 32), torch.tensor([10])).shape == (1, 3, 32, 32)


def test_interpolate_rejects_bad_alpha_unrecorded_files_and_mixed_architectures(tmp_path):
    a = pretrained.WEIGHTS_DIR / "emoji-32.pt"
    with pytest.raises(DDNMInputError, match="alpha must be in"):
        weights.interpolate(a, a, 1.5, tmp_path, "emoji-32")
    stray = tmp_path / "stray.pt"
    sd = torch.load(a, weights_only=True)
    torch.save({k: v + 1e-3 for k, v in sd.items()}, stray)
    with pytest.raises(DDNMInputError, match="records its sha256"):
        weights.interpolate(a, stray, 0.5, tmp_path / "o", "emoji-32")
    with pytest.raises(DDNMInputError, match="different architectures"):
        weights.interpolate(a, pretrained.WEIGHTS_DIR / "fashion-mnist-32.pt", 0.5, tmp_path / "o", "emoji-32")
