"""The model-card evaluation runs end to end (tiny settings) and the baselines behave."""

import json

import pytest
import torch

import ddnm_edu as de

from ddnm_edu import baselines
from ddnm_edu.tools import evaluate
from ddnm_edu import operators as ops

pytestmark = pytest.mark.slow  # commands, training, evaluation: make test runs it, make check skips it


def test_evaluate_models_quick(tmp_path):
    r = evaluate.evaluate_model(
        "emoji-32", n=4, steps=2, seed=0, out=tmp_path, n_samples=16, sample_steps=2, n_loss=32, n_mean=2
    )
    assert set(r["restoration"]) == {"noto", "openmoji", "fluent-flat"}  # every held-out art style
    for style, table in r["restoration"].items():
        assert set(table) == {"sr4", "inpaint-random50", "inpaint-box12", "colorize"}
        for task, methods in table.items():
            assert methods["DDNM"]["consistency"][0] < 1e-5, (style, task)
            assert 0 <= methods["DDNM"]["beats_baseline"] <= 1
            assert methods[methods["_baseline"]]["beats_baseline"] == 0  # never ahead of itself
        assert "DDNM mean of 2" in table["inpaint-box12"]
    assert {t["style"] for t in r["targets"]} == {"noto", "openmoji", "fluent-flat"}
    card = (tmp_path / "emoji-32.md").read_text()
    assert card.startswith("# Model card") and "(fluent-flat style)" in card and "## Targets" in card
    assert json.loads((tmp_path / "emoji-32-eval.json").read_text())["n_images"] == {
        "noto": 4,
        "openmoji": 4,
        "fluent-flat": 4,
    }
    assert (tmp_path / "emoji-32-samples.png").exists() and (tmp_path / "emoji-32-nearest.png").exists()


def test_targets_read_the_table():
    row = lambda p, w=0.0: {"psnr": [p, 0, p], "beats_baseline": w}  # noqa: E731
    fashion = {"sr4": {"DDNM": row(21.4)}, "inpaint-box12": {"DDNM": row(26.9)}}
    assert [t["met"] for t in evaluate.targets("fashion-mnist-32", fashion)] == [True, False]
    table = {
        "colorize": {"_baseline": "A^dagger y", "A^dagger y": row(17.0), "DDNM": row(18.0, 0.4)},
        "sr4": {"_baseline": "bicubic", "bicubic": row(18.0), "DDNM": row(19.0, 0.6)},
    }
    got = {t["target"].split(":")[0]: t["met"] for t in evaluate.targets("emoji-32", {"noto": table})}
    assert got == {"colorize": False, "sr4": True}  # ahead on the mean but not on most images: not met


def test_evaluate_a_checkpoint_not_the_shipped_file(tmp_path):
    """--weights measures a run's EMA file; the card says it is not shipped."""
    from ddnm_edu.pretrained import WEIGHTS_DIR

    w = tmp_path / "ema.pt"
    sd = torch.load(WEIGHTS_DIR / "fashion-mnist-32.pt", weights_only=True)
    first = next(iter(sd))
    torch.save({k: v * 0.5 if k == first else v for k, v in sd.items()}, w)  # a different model
    r = evaluate.evaluate_model(
        "fashion-mnist-32", n=2, steps=2, seed=0, out=tmp_path, n_samples=4, sample_steps=2, n_loss=8, weights=w
    )
    assert r["n_images"] == 2 and [t["target"] for t in r["targets"]] == [
        "sr4: DDNM >= 21.3 dB",
        "inpaint-box12: DDNM >= 27.0 dB",
    ]
    card = (tmp_path / "fashion-mnist-32.md").read_text()
    assert f"not shipped: {w}" in card and de.data.sha256(w)[:16] in card
    with pytest.raises(evaluate.DDNMInputError, match="exactly one --name"):
        evaluate.main(["models", "--weights", str(w), "--out", str(tmp_path / "x")])


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
    assert ("deblur-gauss1", "DDRM") in methods  # the blur carries its SVD (the Fourier basis)
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
    assert [(r["task"], r["method"], r["nfe"], r["n"]) for r in back] == [
        (r["task"], r["method"], r["nfe"], r["n"]) for r in rows
    ]
    for a, b in zip(back, rows):
        assert abs(a["psnr"][0] - b["psnr"][0]) < 1e-3 and abs(a["psnr"][2] - b["psnr"][2]) < 1e-3


def _row(task, method, psnr, nfe=20, sigma_y=0.0):
    return {"task": task, "method": method, "psnr": [psnr, 0.0, psnr], "nfe": nfe, "sigma_y": sigma_y}


def test_headline_orders_the_zero_shot_peers():
    rows = [
        _row("a", "A^dagger y", 30.0, nfe=0),
        _row("a", "DDNM", 20.0),
        _row("a", "DDRM", 21.0),
        _row("a", "DPS", 19.0),
        _row("b", "DDNM", 22.0),
        _row("b", "DPS", 22.0),  # a tie counts for DDNM; no DDRM row
        _row("c", "DDNM", 15.0, sigma_y=0.1),
        _row("c", "DDNM+ (scaling)", 18.0, sigma_y=0.1),
        _row("c", "DPS", 17.0, sigma_y=0.1),
    ]
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


def test_model_cards_quote_the_posterior_benchmark(tmp_path):
    """Each diffusion model's card ends with benchmarks/posterior.json's rows for it, numbers as in the JSON;
    refreshing the section replaces it (idempotent) and leaves the rest of the card alone."""
    from ddnm_edu.pretrained import WEIGHTS_DIR

    report = json.loads((evaluate.BENCH_DIR / "posterior.json").read_text())
    for name in ("fashion-mnist-32", "emoji-32"):
        card = (WEIGHTS_DIR / f"{name}.md").read_text()
        section = "\n".join(evaluate.posterior_section(name))
        assert section and card.endswith(section + "\n"), f"{name}: run python benchmarks/posterior.py"
        rows = [r for r in report["rows"] if r["model"] == name]
        assert rows and all(f"| {r['task']} | {r['psnr_one']:.2f} |" in section for r in rows)
        assert all(f"{r['calibration_coverage']:.3f} ({r['calibration_expected']:.3f})" in section for r in rows)
        (tmp_path / f"{name}.md").write_text(card)
        evaluate.refresh_posterior_section(name, tmp_path)
        assert (tmp_path / f"{name}.md").read_text() == card
    bare = tmp_path / "bench"
    bare.mkdir()
    assert evaluate.posterior_section("fashion-mnist-32", bare) == []  # no benchmark file: no section
    fashion = (WEIGHTS_DIR / "fashion-mnist-32.md").read_text()
    evaluate.refresh_posterior_section("fashion-mnist-32", tmp_path, bare)
    assert (tmp_path / "fashion-mnist-32.md").read_text() == fashion.split("\n## What DDNM samples\n")[0].rstrip(
        "\n"
    ) + "\n"
