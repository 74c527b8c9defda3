"""The tiny Restormer (chapter 13): its equations, its size, MDTA's cost, the specialist's tasks and
null-space rectification."""

import pytest
import torch
import torch.nn.functional as F

import ddnm_edu as de
from ddnm_edu import operators as ops
from ddnm_edu import restormer as R
from ddnm_edu.errors import DDNMInputError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return R.Restormer(R.RestormerConfig()).eval()


def test_shapes_and_parameter_count(model):
    n = R.count_parameters(model)
    assert 300_000 <= n <= 1_000_000, n
    for size in (16, 32, 40):
        x = torch.randn(2, 1, size, size)
        with torch.no_grad():
            assert model(x).shape == (2, 1, size, size)
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.randn(1, 1, 30, 30))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.randn(1, 3, 32, 32))


def test_the_papers_configuration_has_its_26_million_parameters():
    paper = R.RestormerConfig(
        in_channels=3, out_channels=3, dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4, heads=(1, 2, 4, 8)
    )
    with torch.device("meta"):
        n = R.count_parameters(R.Restormer(paper))
    assert round(n / 1e6, 2) == 26.13, n


def test_global_residual_returns_the_input_when_the_correction_is_zero(model):
    m = R.Restormer(R.RestormerConfig())
    torch.nn.init.zeros_(m.output.weight)
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), x)


def test_mdta_attention_is_channels_by_channels_whatever_the_image_size():
    torch.manual_seed(1)
    attn = R.MDTA(dim=32, heads=4)
    for size in (8, 16, 48):
        a = attn.attention(torch.randn(2, 32, size, size))
        assert a.shape == (2, 4, 8, 8)  # (B, heads, C/heads, C/heads): no H*W anywhere
        assert torch.allclose(a.sum(-1), torch.ones(2, 4, 8))  # rows of a softmax


def test_mdta_forward_is_the_papers_attention_head_by_head():
    """Sec. 3.1: per head, out = softmax(Q_hat K_hat^T * tau) V_hat with Q, K L2-normalised over the pixels,
    then W_p; written here with explicit loops and einsum instead of the module's reshapes."""
    torch.manual_seed(2)
    m = R.MDTA(dim=12, heads=3)
    with torch.no_grad():
        m.temperature.copy_(torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1))
    x = torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        qkv = m.qkv_dw(m.qkv(x))
        q, k, v = qkv[:, :12], qkv[:, 12:24], qkv[:, 24:]
        heads = []
        for h in range(3):
            sl = slice(4 * h, 4 * h + 4)
            qh, kh, vh = (t[:, sl].flatten(2) for t in (q, k, v))  # (B, 4, 64)
            qh, kh = qh / qh.norm(dim=-1, keepdim=True), kh / kh.norm(dim=-1, keepdim=True)
            a = torch.softmax(torch.einsum("bip,bjp->bij", qh, kh) * m.temperature[h], dim=-1)
            heads.append(torch.einsum("bij,bjp->bip", a, vh))
        want = m.project_out(torch.cat(heads, 1).view(2, 12, 8, 8))
        assert torch.allclose(m(x), want, atol=1e-5)


def test_gdfn_is_the_papers_gating():
    """Sec. 3.2: Gating(X) = GELU(W_d^1 W_p^1 X) * (W_d^2 W_p^2 X), then W_p^0 (without the residual)."""
    torch.manual_seed(3)
    g = R.GDFN(dim=8, expansion=2.0)
    x = torch.randn(2, 8, 6, 6)
    hidden = 16
    wp, wd = g.project_in.weight, g.dw.weight

    def path(i):  # W_d^i W_p^i X: a 1x1 convolution, then the depth-wise 3x3 one
        rows = slice(i * hidden, (i + 1) * hidden)
        return F.conv2d(F.conv2d(x, wp[rows]), wd[rows], padding=1, groups=hidden)

    with torch.no_grad():
        want = g.project_out(F.gelu(path(0)) * path(1))
        assert torch.allclose(g(x), want, atol=1e-5)


def test_layer_norm_normalises_each_pixel_over_its_channels():
    ln = R.LayerNorm2d(6)
    x = 3 + 2 * torch.randn(2, 6, 5, 5)
    y = ln(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 5, 5), atol=1e-5)
    assert torch.allclose(y.var(1, unbiased=False), torch.ones(2, 5, 5), atol=1e-3)


def test_attention_cost_spatial_grows_quadratically_mdta_linearly():
    """Peak tensor memory of one forward pass (the profiler's allocation events): doubling the side
    quadruples H*W; spatial attention's (HW x HW) map grows ~16x, MDTA's memory ~4x."""
    from ddnm_edu.tools.attention_cost import attention_cost

    rows = attention_cost([16, 32], dim=16, repeats=1)
    small, big = rows
    assert big.pixels == 4 * small.pixels
    assert big.spatial_peak_mb / small.spatial_peak_mb > 10
    assert big.mdta_peak_mb / small.mdta_peak_mb < 6
    # the (HW)^2 attention map alone: 1024^2 float32 = 4 MiB at 32x32
    assert big.spatial_peak_mb >= 4.0
    assert all(r.mdta_ms > 0 and r.spatial_ms > 0 for r in rows)


def test_receptive_field_of_convolutions_is_local_and_of_mdta_global():
    torch.manual_seed(5)
    convs = torch.nn.Sequential(*[torch.nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)])
    rf = R.receptive_field(convs, (1, 4, 16, 16))
    assert int(rf.sum()) == 7 * 7  # three 3x3 layers: (2 * 3 + 1)^2 pixels around the centre
    assert rf[5:12, 5:12].all()
    assert int(R.receptive_field(R.MDTA(8, 2), (1, 8, 16, 16)).sum()) == 16 * 16  # every pixel


def test_task_measurements():
    x = de.data.load("fashion-mnist", "test", n=8)
    y, x_in = R.measure("sr4", x)
    assert y.shape == (8, 1, 8, 8) and x_in.shape == x.shape
    assert torch.allclose(x_in, ops.SuperResolution(4).A_pinv(ops.SuperResolution(4).A(x)))
    g = torch.Generator().manual_seed(0)
    big = de.data.load("fashion-mnist", "test", n=64)
    y, x_in = R.measure("denoise-noisy0.2", big, g)
    assert torch.equal(y, x_in)
    assert abs(float((y - big).std()) - 0.2) < 0.005  # sigma_y = 0.2 on [-1, 1] (Monte Carlo, 65k values)
    with pytest.raises(DDNMInputError, match="unknown task 'sr3'"):
        R.measure("sr3", x)


@pytest.mark.parametrize(
    "op",
    [ops.SuperResolution(4), ops.Inpainting(ops.Inpainting.box_mask(32, 12)), ops.CompressedSensing(0.25, seed=0)],
    ids=repr,
)
def test_rectification_makes_any_estimate_consistent(op):
    """x_hat = A^dagger y + (I - A^dagger A) f(y): A x_hat = y for any f, and a perfect f is unchanged."""
    torch.manual_seed(4)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    y = op.A(x)
    anything = torch.randn_like(x) * 5
    x_hat = de.operators.rectify(op, y, anything)
    assert float((op.A(x_hat) - y).norm() / y.norm()) < 1e-5
    # Moore-Penrose A^dagger (orthogonal projector A^dagger A), noiseless y: rectification removes the range
    # part of the error and keeps the null part, ||x_hat - x||^2 = ||f - x||^2 - ||A^dagger A (f - x)||^2
    err_f, err_hat = (anything - x).flatten(1), (x_hat - x).flatten(1)
    removed = op.range_part(anything - x).flatten(1)
    assert torch.allclose(err_hat.pow(2).sum(1), err_f.pow(2).sum(1) - removed.pow(2).sum(1), rtol=1e-4)
    # a perfect f (the true image): x - A^dagger (A x - y) = x, for any generalised inverse
    assert torch.allclose(de.operators.rectify(op, y, x), x, atol=1e-5)


@pytest.mark.parametrize("name,task", [("restormer-sr4", "sr4"), ("restormer-denoise", "denoise-noisy0.2")])
def test_shipped_specialists_load_offline_and_restore_their_task(name, task):
    from ddnm_edu import pretrained

    assert name in pretrained.available("specialist") and name not in pretrained.available("diffusion")
    rec = pretrained.registry()[name]
    assert rec["task"] == task and rec["sha256"] == de.data.sha256(pretrained.WEIGHTS_DIR / rec["file"])
    model = de.load_pretrained(name)
    assert isinstance(model, R.Restormer) and not model.training and R.count_parameters(model) == rec["params"]
    x = de.data.load("fashion-mnist", "test", n=16)
    y, x_in = R.measure(task, x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x_in)
    # trained: clearly better than its input on held-out images
    assert float(de.metrics.psnr(out, x).mean()) > float(de.metrics.psnr(x_in, x).mean()) + 3


def test_specialists_are_not_diffusion_priors(capsys):
    from ddnm_edu.tools.cli import main

    assert main(["restore", "nothing.png", "--task", "sr4", "--model", "restormer-sr4", "--out", "x.png"]) == 2
    assert (
        "'restormer-sr4' is a supervised specialist (chapter 13), not a diffusion prior; restore uses one of: "
        "emoji-32, fashion-mnist-32 (or a diffusers folder)." in capsys.readouterr().err
    )


def test_the_comparison_rows():
    from ddnm_edu.tools import evaluate

    rep = evaluate.run_specialist(n=2, steps=2, problems=["sr4", "inpaint-box12"], progress=False)
    rows = {(r["problem"], r["method"]): r for r in rep["rows"]}
    assert rows[("sr4", "restormer-sr4")]["own_task"] and not rows[("inpaint-box12", "restormer-sr4")]["own_task"]
    assert rows[("sr4", "DDNM")]["own_task"] and rows[("sr4", "DDNM")]["nfe"] == 2
    for p in ("sr4", "inpaint-box12"):  # rectified outputs and DDNM are consistent with noiseless y
        assert rows[(p, "restormer-sr4 rectified")]["consistency"][0] < 1e-5
        assert rows[(p, "DDNM")]["consistency"][0] < 1e-5
    assert "| sr4 | **restormer-sr4** | 1 |" in evaluate.specialist_markdown(rep)
