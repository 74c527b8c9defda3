"""Metrics against independent references (numpy, scikit-image)."""

import math

import numpy as np
import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError
from ddnm_edu import operators as ops


def pair(c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, c, 32, 32, generator=g) * 2 - 1
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    return a, b


def test_psnr_formula():
    a = torch.zeros(1, 1, 4, 4)
    b = torch.full((1, 1, 4, 4), 0.2)
    # MSE 0.04, range 2: 10 log10(4 / 0.04) = 20 dB
    assert de.metrics.psnr(a, b).item() == pytest.approx(20.0)
    # same as on [0, 1] images with range 1
    assert de.metrics.psnr(a, b).item() == pytest.approx(10 * math.log10(1 / 0.01))


def test_psnr_cap_is_the_8bit_rounding_error():
    # rounding uniform values to 256 levels on [-1, 1] leaves an error of variance (2/255)^2 / 12:
    # its PSNR is the cap (Monte Carlo, 1M pixels)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 500, 500, generator=g) * 2 - 1
    q = torch.round((x + 1) / 2 * 255) / 255 * 2 - 1
    assert de.metrics.psnr(q, x).mean().item() == pytest.approx(de.metrics.PSNR_CAP_DB, abs=0.05)
    assert de.metrics.PSNR_CAP_DB == pytest.approx(58.92, abs=0.01)


def test_psnr_cap_only_touches_exact_matches():
    a, b = pair(1)
    assert torch.equal(de.metrics.psnr(a, b, max_db=de.metrics.PSNR_CAP_DB), de.metrics.psnr(a, b))
    same = de.metrics.psnr(a, a.clone(), max_db=de.metrics.PSNR_CAP_DB)
    assert torch.allclose(same, torch.full_like(same, de.metrics.PSNR_CAP_DB))
    assert de.metrics.psnr(a, a.clone()).min() > 200  # uncapped: finite but huge
    with pytest.raises(de.DDNMInputError, match="max_db"):
        de.metrics.psnr(a, b, max_db=-1.0)


def test_psnr_from_mse_is_psnr_of_the_images_mse():
    a, b = pair(1)
    m = (a.clamp(-1, 1) - b.clamp(-1, 1)).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(de.metrics.psnr_from_mse(m), de.metrics.psnr(a, b), check_dtype=False)
    torch.testing.assert_close(
        de.metrics.psnr_from_mse(m, data_range=1.0), de.metrics.psnr(a, b) - 20 * math.log10(2), check_dtype=False
    )
    capped = de.metrics.psnr_from_mse(torch.tensor([0.0, 4.0]), max_db=de.metrics.PSNR_CAP_DB)
    torch.testing.assert_close(capped, torch.tensor([de.metrics.PSNR_CAP_DB, 0.0]))


@pytest.mark.parametrize("c", [1, 3])
def test_ssim_matches_scikit_image(c):
    skm = pytest.importorskip("skimage.metrics")
    a, b = pair(c)
    ours = de.metrics.ssim(a, b)
    for i in range(2):
        ref = skm.structural_similarity(
            a[i].numpy(),
            b[i].numpy(),
            channel_axis=0,
            data_range=2.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert ours[i].item() == pytest.approx(ref, abs=1e-6)


def test_psnr_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    a, b = pair()
    for i in range(2):
        ref = skm.peak_signal_noise_ratio(
            a[i].numpy().astype(np.float64), b[i].numpy().astype(np.float64), data_range=2.0
        )
        assert de.metrics.psnr(a, b)[i].item() == pytest.approx(ref, abs=1e-6)


def test_ssim_identity_is_one():
    a, _ = pair()
    torch.testing.assert_close(de.metrics.ssim(a, a), torch.ones(2, dtype=torch.float64))


def test_consistency():
    op = ops.SuperResolution(2)
    x = torch.rand(2, 1, 8, 8)
    y = op.A(x)
    assert de.metrics.consistency(op, x, y).max() == 0
    r = de.metrics.consistency(op, x + 1.0, y, relative=False)
    torch.testing.assert_close(r, torch.full((2,), 4.0, dtype=torch.float64))  # ||1||_2 over 16 low-res pixels


def test_metric_shape_mismatch():
    with pytest.raises(DDNMInputError, match="same shape"):
        de.metrics.psnr(torch.zeros(1, 1, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(DDNMInputError, match="at least 11x11"):
        de.metrics.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_trace_viewer_data():
    """The viewer shows exactly the trace's tensors, and its static HTML holds one frame per step."""
    import re

    from ddnm_edu import viz

    sched = de.NoiseSchedule.linear(1000)
    x0 = torch.rand(1, 1, 32, 32) * 2 - 1
    op = ops.SuperResolution(4)
    res = de.ddnm_plus(lambda x, t: sched.predict_eps(x, x0, t) * 0.5, sched, op, op.A(x0), steps=5, trace=True)
    frame = viz.trace_frame(res.trace[2], zoom=1, gap=0)
    assert frame.shape == (32, 5 * 32, 3)
    # panel 5 (x0_hat) is the trace's x0_hat, mapped to 0..255 (to within rounding: one gray level)
    want = ((res.trace[2].x0_hat[0, 0].clamp(-1, 1) + 1) * 127.5).round().numpy()
    assert np.abs(frame[:, 4 * 32 :, 0] - want).max() <= 1
    # panel 1 (x_t) is noisy: drawn on the wider NOISY_VRANGE, as chapters 2, 4 and 8 draw x_t
    lo, hi = viz.NOISY_VRANGE
    x_t = res.trace[2].x_t[0, 0]
    want = ((x_t.clamp(lo, hi) - lo) * (255 / (hi - lo))).round().numpy()
    assert np.abs(frame[:, :32, 0] - want).max() <= 1
    assert x_t.abs().max() > 1  # so the range matters here
    # the null panel has one scale for the whole run (issue 39): the largest |null part| over the steps
    m = viz.null_scale(res)
    assert m == max(float(s.null_part.abs().max()) for s in res.trace)
    frame = viz.trace_frame(res.trace[2], zoom=1, gap=0, null_scale=m)
    want = (viz.signed_rgb(res.trace[2].null_part[0], m) * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(frame[:, 3 * 32 : 4 * 32], want)
    html = viz.trace_html(res)
    assert f"full colour = ±{m:.2f}" in html and "max |null| = " in html
    assert html.count("data:image/png;base64,") == 1 + 5 == 1 + res.nfe  # the first frame, then all five
    first = re.search(r'<img id="ddnm[0-9a-f]+-img" src="([^"]+)"', html).group(1)
    assert first.startswith("data:image/png;base64,") and "," not in first.split(",", 1)[1]  # a whole data URL
    assert 'type="range" min="1" max="5" value="1"' in html and ">step 1 / 5<" in html and "consistency" in html
    titled = viz.trace_frame(res.trace[2], zoom=4, gap=4, titles=True)
    assert titled.shape[1] == 5 * 128 + 16 and titled.shape[0] > 128  # the titles are drawn above the panels
    explorer = viz.TraceExplorer(lambda x, t: torch.zeros_like(x), sched, x0, {"sr4": op}, steps=3)
    r1, frames = explorer.run("sr4", 0.1, 0)
    assert explorer.run("sr4", 0.1, 0)[0] is r1 and len(frames) == 3  # cached


def test_trace_viewer_spread_panel():
    """samples=K adds a sixth panel: the std of x̂0|t over the K samples, in the CLI's colour map; it is
    black (std 0) on the pixels that inpainting observes, and the runs are K seeded samples of one y."""
    from ddnm_edu import viz

    sched = de.NoiseSchedule.linear(1000)
    x0 = torch.rand(1, 1, 32, 32) * 2 - 1
    op = ops.Inpainting(ops.Inpainting.box_mask(32, 12))
    model = lambda x, t: sched.predict_eps(x, x0, t) * 0.5  # noqa: E731  a wrong but smooth model
    explorer = viz.TraceExplorer(model, sched, x0, {"box": op}, steps=4, samples=3)
    res, frames = explorer.run("box", 0.0, 5)
    assert res.x0_hat.shape[0] == 3 and len(frames) == 4
    gen = de.rng.spawn(5, "sample", 1)  # sample 1 of seed 5
    alone = de.ddnm_plus(model, sched, op, op.A(x0), steps=4, generator=gen, trace=True)
    assert torch.allclose(res.x0_hat[1], alone.x0_hat[0], atol=1e-5)
    step = res.trace[1]
    frame = viz.trace_frame(step, zoom=1, gap=0, spread=True)
    assert frame.shape == (32, 6 * 32, 3)
    want = viz._rgb(viz.colour_map(step.x0_hat.std(0), viz.UNCERTAINTY_VMAX))
    np.testing.assert_array_equal(frame[:, 5 * 32 :], want)
    seen = op.mask[0].bool().numpy()  # (H, W): 1 where observed
    assert (frame[:, 5 * 32 :][seen] == [0, 0, 4]).all()  # observed: no spread, the map's black
    assert (frame[:, 5 * 32 :][~seen] != [0, 0, 4]).any(axis=-1).mean() > 0.9  # the hole: spread
    html = viz.trace_html(res, spread=True)
    assert "std of x̂0|t over K samples" in html and f"width:{6 * 128 + 5 * 4}px" in html
    with pytest.raises(ValueError, match="K >= 2"):
        viz.trace_frame(alone.trace[0], spread=True)  # one sample has no spread
    with pytest.raises(DDNMInputError, match="samples"):
        viz.TraceExplorer(model, sched, x0, {"box": op}, samples=0)


def test_static_viewer_slider_in_a_browser(tmp_path):
    """The built book's viewer works without a kernel: moving the slider swaps the frame (headless Chromium)."""
    import re
    import subprocess

    from ddnm_edu import viz

    from browser import chromium_path

    browser = chromium_path()  # skips locally without Chromium; CI installs it and requires it
    sched = de.NoiseSchedule.linear(1000)
    x0 = torch.rand(1, 1, 32, 32) * 2 - 1
    op = ops.SuperResolution(4)
    res = de.ddnm_plus(lambda x, t: torch.zeros_like(x), sched, op, op.A(x0), steps=6, trace=True)
    html = viz.trace_html(res)
    uid = re.search(r'id="(ddnm[0-9a-f]+)"', html).group(1)
    page = tmp_path / "viewer.html"
    page.write_text(
        f"<html><body>{html}<script>var s = document.getElementById('{uid}-slider'); s.value = 4;"
        f"s.dispatchEvent(new Event('input'));</script></body></html>"
    )  # steps are numbered 1..6
    out = subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "step 4 / 6" in out
    assert f"t = {res.trace[3].t} → {res.trace[3].t_next}" in out


def test_colourfulness():
    gray = torch.rand(2, 1, 4, 4).repeat(1, 3, 1, 1)
    assert de.metrics.colourfulness(gray).abs().max() < 1e-7
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0  # (1, 0, 0): mean 1/3, distances 2/3, 1/3, 1/3
    assert de.metrics.colourfulness(red).item() == pytest.approx(4 / 9)
    with pytest.raises(de.DDNMInputError, match="RGB"):
        de.metrics.colourfulness(torch.zeros(1, 1, 2, 2))


def test_a_colour_null_part_is_drawn_in_colour():
    """Colorization's null part x - gray(x) has channel mean 0: drawn through the channel mean it was
    amplified rounding error. show_decomposition and the step viewer now draw it as the residual."""
    import matplotlib

    matplotlib.use("Agg")
    from ddnm_edu import viz

    x = de.data.load("emoji", "test")[60:61]
    op = ops.Colorization()
    nul = op.null_part(x)[0]
    assert float(nul.mean(0).abs().max()) < 1e-5 < float(nul.abs().max())  # the trap
    fig = viz.show_decomposition(op, x)
    drawn = np.asarray(fig.axes[3].images[0].get_array())
    want = (0.5 + nul / (2 * nul.abs().max())).permute(1, 2, 0).numpy()
    assert drawn.shape == (32, 32, 3)
    np.testing.assert_allclose(drawn, want, atol=1e-6)
    assert drawn.std(axis=(0, 1)).max() > 0.1  # a picture, not a flat gray square
    # the panel's own scale and its size are in its title (a student can compare panels)
    share = float(nul.norm() / x.norm())
    assert fig.axes[3].get_title() == f"(I − A†A) x: ±{float(nul.abs().max()):.2f}\n{share:.0%} of ‖x‖"
    np.testing.assert_array_equal(viz._rgb(nul, signed=True), (want * 255).round().astype(np.uint8))
    gray = viz.signed_rgb(nul[:1])  # one channel: the red/blue map, white at 0
    assert gray.shape == (32, 32, 3)
    np.testing.assert_allclose(viz.signed_rgb(torch.zeros(1, 2, 2)), 1.0, atol=0.05)
