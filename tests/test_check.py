"""ddnm_edu.check: right answers pass, wrong ones fail with a message that says what is wrong."""

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import operators as ops
from ddnm_edu.check import CheckFailed


def test_close_reports_shape_and_the_worst_entry(capsys):
    assert de.check.close([1.0, 2.0], torch.tensor([1.0, 2.0]), "v")
    assert "OK: v is right" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"v has shape \(3,\) but should have shape \(2,\)"):
        de.check.close([1, 2, 3], [1, 2], "v")
    with pytest.raises(
        CheckFailed, match=r"off at 1 of 2 entries; the largest error is 0.5 \(you have 2.5, expected 2\)"
    ):
        de.check.close([1.0, 2.5], [1.0, 2.0], "v")
    with pytest.raises(CheckFailed, match="is None"):
        de.check.close(None, 1.0, "t_half")
    with pytest.raises(CheckFailed, match="NaN"):
        de.check.close([float("nan")], [1.0])


def test_pinv_names_the_failing_penrose_conditions():
    a = torch.full((1, 3), 1 / 3, dtype=torch.float64)
    assert de.check.pinv(torch.ones(3, 1), a, quiet=True)
    with pytest.raises(CheckFailed, match=r"must be 3 x 1"):
        de.check.pinv(torch.ones(1, 3), a)
    # a generalised inverse that is not Moore-Penrose: [3, 0, 0]^T satisfies A X A = A only
    with pytest.raises(CheckFailed) as e:
        de.check.pinv(torch.tensor([[3.0], [0.0], [0.0]]), a)
    msg = str(e.value)
    assert "condition 4, (X A)^T = X A: fails" in msg and "condition 1" not in msg.split("\n")[1]
    assert "generalised inverse (enough for consistency)" in msg
    # one wrong entry breaks condition 1 as well
    with pytest.raises(CheckFailed, match=r"condition 1, A X A = A: fails.*\n(.*\n)*.*not even a generalised inverse"):
        de.check.pinv(torch.tensor([[1.25], [1.0], [1.0]]), a)
    # an operator, with its shape
    sr = ops.SuperResolution(2)
    assert de.check.pinv(sr.pinv_matrix((1, 4, 4)), sr, shape=(1, 4, 4), quiet=True)


def test_null_basis():
    A = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float64) / 2
    good = torch.tensor([[1, -1, 0, 0], [0, 0, 1, -1]], dtype=torch.float64).T
    assert de.check.null_basis(good, A, quiet=True)
    with pytest.raises(CheckFailed, match="dimension 2"):
        de.check.null_basis(good[:, :1], A)
    with pytest.raises(CheckFailed, match="linearly dependent"):
        de.check.null_basis(torch.cat([good[:, :1], 2 * good[:, :1]], 1), A)
    with pytest.raises(CheckFailed, match="not in the null space"):
        de.check.null_basis(torch.tensor([[1, 1, 0, 0], [0, 0, 1, -1]], dtype=torch.float64).T, A)


def test_decomposition_and_operator_and_consistency():
    x = de.data.load("fashion-mnist", "test", n=2)
    mask = ops.Inpainting.random_mask(32, 0.5, seed=3)
    op = ops.Inpainting(mask)
    assert de.check.decomposition(op, x, mask * x, (1 - mask) * x, quiet=True)
    with pytest.raises(CheckFailed, match="your range part"):
        de.check.decomposition(op, x, (1 - mask) * x, mask * x)

    class Bad(de.LinearOperator):  # A right, A_pinv scaled wrong
        def A(self, v):
            return v[..., ::2]

        def A_pinv(self, y):
            out = torch.zeros(*y.shape[:-1], 2 * y.shape[-1], dtype=y.dtype)
            out[..., ::2] = 2 * y
            return out

    with pytest.raises(CheckFailed, match="A X A = A"):
        de.check.operator(Bad(), (1, 4, 4), reference=lambda v: v[..., ::2])
    sr = ops.SuperResolution(4)
    y = sr.A(x)
    assert de.check.consistent(sr, sr.A_pinv(y), y, quiet=True)
    with pytest.raises(CheckFailed, match="relative error"):
        de.check.consistent(sr, x.flip(-1), y)


def test_posterior_says_whether_mean_or_variance_is_off():
    sched = de.NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = (
        torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64),
        torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64),
    )
    t = 300
    x_t = sched.add_noise(x0, eps, t)
    mean, var = sched.posterior_mean(x0, x_t, t), float(sched.posterior_variance(t))
    assert de.check.posterior(mean, var, sched, x0, x_t, t, quiet=True)
    with pytest.raises(CheckFailed) as e:
        de.check.posterior(mean, float(sched.betas[t]), sched, x0, x_t, t)
    assert "the variance is off" in str(e.value) and "the mean is off" not in str(e.value)
    with pytest.raises(CheckFailed) as e:
        de.check.posterior(x_t, var, sched, x0, x_t, t)
    assert "the mean is off" in str(e.value) and "variance" not in str(e.value)
