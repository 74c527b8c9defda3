"""The model-card evaluation runs end to end (tiny settings) and the baselines behave."""
import json

import pytest
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
    assert "## Headline" in md
    back = evaluate.read_compare(tmp_path / "results-quick.csv")  # the CSV round-trips to the same rows
    assert [(r["task"], r["method"], r["nfe"], r["n"]) for r in back] == [(r["task"], r["method"], r["nfe"], r["n"])
                                                                         for r in rows]
    for a, b in zip(back, rows):
        assert abs(a["psnr"][0] - b["psnr"][0]) < 1e-3 and abs(a["psnr"][2] - b["psnr"][2]) < 1e-3


def _row(task, method, psnr, nfe=20, sigma_y=0.0):
    return {"task": task, "method": method, "psnr": [psnr, 0.0, psnr], "nfe": nfe, "sigma_y": sigma_y}


def test_headline_orders_the_zero_shot_peers():
    rows = [_row("a", "A^dagger y", 30.0, nfe=0), _row("a", "DDNM", 20.0), _row("a", "DDRM", 21.0),
            _row("a", "DPS", 19.0),
            _row("b", "DDNM", 22.0), _row("b", "DPS", 22.0),  # a tie counts for DDNM; no DDRM row
            _row("c", "DDNM", 15.0, sigma_y=0.1), _row("c", "DDNM+ (scaling)", 18.0, sigma_y=0.1),
            _row("c", "DPS", 17.0, sigma_y=0.1)]
    h = {r["task"]: r for r in evaluate.headline(rows)}
    assert h["a"]["best"] == "A^dagger y" and not h["a"]["ddnm_first"] and h["a"]["DDRM"] == 21.0
    assert h["b"]["ddnm_first"] and h["b"]["DDRM"] is None
    assert h["c"]["DDNM"] == 18.0 and h["c"]["ddnm_first"]  # noisy y: DDNM+ stands for DDNM
    assert h["c"]["ddnm_method"] == "DDNM+ (scaling)" and h["a"]["ddnm_method"] == "DDNM"
    md = "\n".join(evaluate.headline_markdown(rows))
    assert "| a | A^dagger y (30.00, 0) | 20.00 | 21.00 | 19.00 | **no** |" in md and "| — |" in md


def test_headline_refuses_unequal_nfe():
    with pytest.raises(ValueError, match="equal NFE"):
        evaluate.headline([_row("a", "DDNM", 20.0, nfe=20), _row("a", "DPS", 19.0, nfe=40)])
