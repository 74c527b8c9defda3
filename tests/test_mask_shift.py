"""Mask-shift restoration (ddnm_edu/mask_shift.py): windows, the known-pixel operator, consistency with y
over the whole image, and seams measured on an oracle prior (a smooth stationary Gaussian field, exact eps
for every window)."""
import pytest
import torch

import ddnm_edu as de
from ddnm_edu import operators as ops
from ddnm_edu.errors import DDNMInputError
from ddnm_edu.mask_shift import KnownPixels, restore_large, window_starts
from ddnm_edu.toy import StationaryGaussianPrior
from test_sampling import random_unet  # noqa: F401 (fixture)


def test_window_starts_slide_by_the_stride_and_end_at_the_border():
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(64, 32, 0) == [0, 32]
    assert window_starts(70, 32, 16, grid=2) == [0, 16, 32, 38]  # the last window moved back (official)
    assert window_starts(32, 32, 16) == [0]
    with pytest.raises(DDNMInputError, match="smaller than the window"):
        window_starts(16, 32, 8)
    with pytest.raises(DDNMInputError, match="multiple of 4"):
        window_starts(64, 32, 3, grid=4)


def test_known_pixels_is_an_orthogonal_projector_when_the_mask_holds_whole_blocks():
    known = torch.zeros(1, 8, 8)
    known[:, :, :4] = 1  # whole 4 x 4 blocks
    op = KnownPixels(ops.SuperResolution(4), known)
    P = op.as_matrix((1, 8, 8))
    torch.testing.assert_close(P @ P, P)
    torch.testing.assert_close(P, P.T)
    assert op.check_pinv((1, 8, 8), warn=False).moore_penrose
    known[:, :, :2] = 0  # half blocks: no longer a projector (the blocks must be whole)
    P = KnownPixels(ops.SuperResolution(4), known).as_matrix((1, 8, 8))
    assert (P @ P - P).abs().max() > 1e-3


def test_one_window_is_plain_ddnm(sched, random_unet):
    op = ops.SuperResolution(4)
    y = op.A(torch.rand(2, 3, 32, 32) * 2 - 1)
    once = de.ddnm_plus(random_unet, sched, op, y, steps=5, seed=2).x0_hat
    torch.testing.assert_close(restore_large(random_unet, sched, op, y, window=32, steps=5, seed=2), once)


def test_non_local_operators_are_refused(sched, random_unet):
    op = ops.Deblur(ops.gaussian_kernel(1.0))
    with pytest.raises(DDNMInputError, match="local operator"):
        restore_large(random_unet, sched, op, op.A(torch.zeros(1, 3, 64, 64)), window=32)


@pytest.fixture(scope="module")
def field(sched):
    prior = StationaryGaussianPrior(sched, 32, length=3.0)
    return prior, prior.draw(48, (1, 64, 64), seed=0)


def jump_ratio(r, seams):
    """Mean |difference| between neighbouring pixels across the seams, over that across the other 4-pixel
    block borders (1 = no seam; a seam is a discontinuity where two windows' restorations meet)."""
    def across(dim):
        d = r.diff(dim=dim).abs()
        return d.mean(dim=tuple(i for i in range(4) if i != dim % 4))
    jc, jr = across(-1), across(-2)
    others = [b for b in range(4, 64, 4) if b not in seams]
    mean = lambda bs: torch.stack([jc[b - 1] for b in bs] + [jr[b - 1] for b in bs]).mean()  # noqa: E731
    return float(mean(seams) / mean(others))


def test_mask_shift_is_consistent_and_hides_the_seams_that_tiling_shows(sched, field):
    prior, x = field
    op = ops.SuperResolution(4)
    y = op.A(x)
    shifted = restore_large(prior, sched, op, y, window=32, steps=50)  # overlap 16: windows at 0, 16, 32
    tiled = restore_large(prior, sched, op, y, window=32, overlap=0, steps=50)  # independent tiles
    whole = de.ddnm_plus(StationaryGaussianPrior(sched, 64, length=3.0), sched, op, y, steps=50).x0_hat
    for r in (shifted, tiled, whole):
        assert (op.A(r) - y).abs().max() < 1e-5  # consistent with y everywhere
    assert jump_ratio(whole, [32, 48]) < 1.05  # one run over the whole image: no seams
    assert jump_ratio(tiled, [32]) > 2.0  # independent windows: a visible seam
    assert jump_ratio(shifted, [16, 32, 48]) < 1.3  # mask-shift: no seam where any window begins or ends


def test_mask_shift_inpainting_keeps_every_observed_pixel(sched, field):
    prior, x = field
    mask = ops.Inpainting.random_mask((64, 64), 0.7, seed=1)
    op = ops.Inpainting(mask)
    y = op.A(x[:4])
    r = restore_large(prior, sched, op, y, window=32, overlap=8, steps=20)
    assert (op.A(r) - y).abs().max() < 1e-6
    assert (r * (1 - mask) - x[:4] * (1 - mask)).abs().max() > 0.1  # the holes are filled, not copied


def test_restore_command_enlarges_beyond_the_model(tmp_path):
    from ddnm_edu.tools.cli import main
    from ddnm_edu.tools.images import read_image, write_image

    write_image(torch.rand(1, 16, 16) * 2 - 1, tmp_path / "small.png")
    assert main(["restore", str(tmp_path / "small.png"), "--task", "sr4", "--model", "fashion-mnist-32",
                 "--steps", "4", "--overlap", "8", "--out", str(tmp_path / "big.png")]) == 0
    assert read_image(tmp_path / "big.png", 1, 0.0).shape == (1, 1, 64, 64)
    assert main(["restore", str(tmp_path / "small.png"), "--task", "sr4", "--model", "fashion-mnist-32",
                 "--overlap", "6", "--out", str(tmp_path / "x.png")]) == 2  # not whole 4 x 4 blocks
