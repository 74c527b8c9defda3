"""The model-card evaluation runs end to end (tiny settings) and the baselines behave."""
import json

import torch

from ddnm_edu import baselines, evaluate
from ddnm_edu import operators as ops


def test_evaluate_models_quick(tmp_path):
    r = evaluate.evaluate_model("emoji-32", n=4, steps=2, seed=0, out=tmp_path, n_samples=16, sample_steps=2, n_loss=32)
    assert set(r["restoration"]) == {"sr4", "inpaint-random50", "inpaint-box12", "colorize"}
    for task, methods in r["restoration"].items():
        assert methods["DDNM"]["consistency"][0] < 1e-5, task
    assert (tmp_path / "emoji-32.md").read_text().startswith("# Model card")
    assert json.loads((tmp_path / "emoji-32-eval.json").read_text())["n_images"] == 4
    assert (tmp_path / "emoji-32-samples.png").exists() and (tmp_path / "emoji-32-nearest.png").exists()


def test_bicubic_keeps_constant_images():
    y = torch.full((1, 1, 8, 8), 0.3)
    torch.testing.assert_close(baselines.bicubic_upsample(y, 4), torch.full((1, 1, 32, 32), 0.3))


def test_biharmonic_fills_a_smooth_ramp():
    x = torch.linspace(-1, 1, 16).repeat(16, 1)[None, None]  # a horizontal ramp
    op = ops.Inpainting(ops.Inpainting.box_mask(16, 4))
    out = baselines.biharmonic_inpaint(op.A(x), op)
    assert (out - x).abs().max() < 1e-3  # a linear ramp is biharmonic: recovered exactly


def test_wiener_inverts_mild_blur():
    x = torch.rand(1, 1, 16, 16)
    op = ops.Deblur(ops.gaussian_kernel(0.7, 5))
    out = baselines.wiener_deconvolve(op.A(x), op, nsr=1e-8)
    assert (out - x).abs().max() < 1e-3


def test_compare_runs_every_method(tmp_path):
    rows = evaluate.run_compare(n=2, steps=4, tasks=["sr4-noisy0.1", "colorize", "deblur-gauss1"], n_mean=2)
    methods = {(r["task"], r["method"]) for r in rows}
    assert ("sr4-noisy0.1", "DDRM") in methods and ("sr4-noisy0.1", "DPS") in methods
    assert ("sr4-noisy0.1", "DDNM+ (scaling)") in methods and ("deblur-gauss1", "Wiener") in methods
    assert ("deblur-gauss1", "DDRM") not in methods  # not covered: no real SVD form here
    nfe = {r["method"]: r["nfe"] for r in rows if r["task"] == "colorize"}
    assert nfe["DDNM+ (travel 3x2)"] == nfe["DDNM+ (7 steps, no travel)"] == 7  # compared at equal NFE
    for r in rows:
        if r["task"] == "colorize" and r["method"].startswith("DDNM"):
            assert r["consistency"][0] < 1e-5
    evaluate.write_compare(rows, tmp_path, "quick", 1.0)
    md = (tmp_path / "results-quick.md").read_text()
    assert "| colorize | DDNM |" in md and (tmp_path / "results-quick.csv").exists()
