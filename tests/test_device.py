"""Sampling on every device this machine has: results agree with the CPU and come back where y lives.

On a CPU-only machine (CI) the CPU cases run; the CUDA cases run in the GPU job
(``benchmarks/gpu_job.py``) on a lent GPU machine.
"""

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import operators as ops
from ddnm_edu.ddrm import ddrm
from ddnm_edu.dps import dps

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def setup():
    sched = de.NoiseSchedule.linear(1000)
    x = de.data.load("fashion-mnist", "test", n=4)
    return sched, x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rule", ["scalar", "svd"])
def test_ddnm_plus_same_result_on_each_device(setup, device, rule):
    sched, x = setup
    op = ops.SuperResolution(4)
    y = op.A(x) + 0.1 * torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    settings = de.SamplerSettings(noise_rule=rule, travel_length=2, travel_repeat=2)
    ref = de.ddnm_plus(
        de.load_pretrained("fashion-mnist-32", "cpu"), sched, op, y, sigma_y=0.1, steps=10, settings=settings, seed=0
    ).x0_hat
    model = de.load_pretrained("fashion-mnist-32", device)
    out = de.ddnm_plus(model, sched, op, y, sigma_y=0.1, steps=10, settings=settings, seed=0).x0_hat
    assert out.device == y.device  # results come back where y lives
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=0)  # TF32/cuDNN differences only
    y_dev = y.to(device)
    out_dev = de.ddnm(model, sched, op, y_dev, steps=5, seed=0)
    assert out_dev.device == y_dev.device
    assert float(de.metrics.consistency(op, out_dev, y_dev).max()) < 1e-4


@pytest.mark.parametrize("device", DEVICES)
def test_peers_and_sampling_on_each_device(setup, device):
    sched, x = setup
    model = de.load_pretrained("fashion-mnist-32", device)
    op = ops.Inpainting(ops.Inpainting.box_mask(32, 12))
    y = op.A(x)
    for out in (
        ddrm(model, sched, op, y, steps=4),
        dps(model, sched, op, y, steps=4),
        de.sample(model, sched, (2, 1, 32, 32), steps=4).cpu(),
    ):
        assert out.device.type == "cpu" and torch.isfinite(out).all()
    trace = de.ddnm_plus(model, sched, op, y, steps=3, trace=True).trace
    assert all(s.x0_hat.device.type == "cpu" for s in trace)  # traces are CPU copies for plotting


@pytest.mark.parametrize("device", DEVICES)
def test_mask_shift_on_each_device(setup, device):
    """Window by window (mask-shift) on the model's device: the same image as on the CPU, consistent with y."""
    from ddnm_edu.mask_shift import restore_large

    sched, x = setup
    op = ops.SuperResolution(4)
    y = op.A(torch.nn.functional.interpolate(x[:2], scale_factor=2, mode="bilinear"))  # 64 x 64 results
    ref = restore_large(de.load_pretrained("fashion-mnist-32", "cpu"), sched, op, y, window=32, steps=4)
    y_dev = y.to(device)
    out = restore_large(de.load_pretrained("fashion-mnist-32", device), sched, op, y_dev, window=32, steps=4)
    assert out.device == y_dev.device and out.shape == (2, 1, 64, 64)
    assert float(de.metrics.consistency(op, out, y_dev).max()) < 1e-4
    torch.testing.assert_close(out.cpu(), ref, atol=2e-3, rtol=0)
