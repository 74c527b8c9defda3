"""Mask-shift restoration (ddnm_edu/mask_shift.py): windows, the known-pixel operator, consistency with y
over the whole image, and seams measured on an oracle prior (a smooth stationary Gaussian field, exact eps
for every window)."""

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import operators as ops
from ddnm_edu.errors import DDNMInputError
from ddnm_edu.mask_shift import WINDOWED, KnownPixels, restore_large, window_of, window_starts
from ddnm_edu.rng import spawn
from ddnm_edu.toy import StationaryGaussianPrior


def test_window_starts_slide_by_the_stride_and_end_at_the_border():
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(64, 32, 0) == [0, 32]
    assert window_starts(70, 32, 16, grid=2) == [0, 16, 32, 38]  # the last window moved back (official)
    assert window_starts(32, 32, 16) == [0]
    with pytest.raises(DDNMInputError, match="smaller than the window"):
        window_starts(16, 32, 8)
    with pytest.raises(DDNMInputError, match="multiple of 4"):
        window_starts(64, 32, 3, grid=4)
    for bad in (32, 40, -1, 8.5, True, "8"):  # overlap >= window, negative, not a whole number
        with pytest.raises(DDNMInputError, match=r"overlap must be a whole number of pixels in \[0, 32\)"):
            window_starts(64, 32, bad)
    with pytest.raises(DDNMInputError, match="window 32 is not a multiple of the operator's block side 3"):
        window_starts(96, 32, 8, grid=3)  # no start could hold whole 3 x 3 blocks at both ends


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
    gens = [spawn(2, "image", i, "window", 0) for i in range(2)]  # window 0 of images 0 and 1
    once = de.ddnm_plus(random_unet, sched, op, y, steps=5, generator=gens).x0_hat
    torch.testing.assert_close(restore_large(random_unet, sched, op, y, window=32, steps=5, seed=2), once)


def test_bad_requests_are_refused_before_any_window_runs(sched, random_unet):
    op = ops.Deblur(ops.gaussian_kernel(1.0))
    assert not isinstance(op, WINDOWED) and isinstance(ops.SuperResolution(2), WINDOWED)
    with pytest.raises(DDNMInputError, match="local operator"):
        restore_large(random_unet, sched, op, op.A(torch.zeros(1, 3, 64, 64)), window=32)
    sr4 = ops.SuperResolution(4)
    with pytest.raises(
        DDNMInputError,
        match="y is 4x4, which restores a 16x16 image, smaller than the window 32; y must be at least 8x8",
    ):
        restore_large(random_unet, sched, sr4, torch.zeros(1, 3, 4, 4), window=32)
    calls = []
    counting = lambda x, t: calls.append(1) or random_unet(x, t)  # noqa: E731
    with pytest.raises(DDNMInputError, match="noise_rule='scalar'"):  # KnownPixels has no SVD view
        restore_large(
            counting,
            sched,
            sr4,
            torch.zeros(1, 3, 16, 16),
            window=32,
            sigma_y=0.1,
            steps=3,
            settings=de.SamplerSettings(noise_rule="svd"),
        )
    assert not calls  # refused up front, not after the first window


def test_noisy_measurements_use_the_scalar_rule_in_every_window(sched, field):
    prior, x = field
    x, op, sigma_y = x[:8], ops.SuperResolution(4), 0.1
    y = op.measure(x, sigma_y=sigma_y, seed=1)
    st = de.SamplerSettings(clip_x0=False)  # the field is not confined to [-1, 1]
    r = restore_large(prior, sched, op, y, window=32, sigma_y=sigma_y, steps=20, settings=st)
    whole = de.ddnm_plus(
        StationaryGaussianPrior(sched, 64, length=3.0), sched, op, y, sigma_y=sigma_y, steps=20, settings=st
    ).x0_hat
    err = {k: float((v - x).pow(2).mean()) for k, v in (("windows", r), ("whole", whole), ("pinv", op.A_pinv(y)))}
    assert err["windows"] < 0.75 * err["pinv"]  # denoised and filled in, not A^dagger y
    assert err["windows"] < 1.3 * err["whole"]  # about as good as one DDNM+ run over the whole image


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
    assert jump_ratio(whole, [16, 32, 48]) < 1.05  # one run over the whole image: no seams
    assert jump_ratio(tiled, [32]) > 2.0  # independent windows: a visible seam
    assert jump_ratio(shifted, [16, 32, 48]) < 1.3  # mask-shift: no seam where any window begins or ends
    assert jump_ratio(whole, [16, 32, 48]) < jump_ratio(shifted, [16, 32, 48])  # though not all the way


def test_without_the_known_pixels_the_seams_come_back(sched, field, monkeypatch):
    """The seams are hidden by KnownPixels, not by the overlap alone: overlapping windows that ignore what
    their neighbours restored (each window sees only its part of y) leave seams again."""
    import copy

    import ddnm_edu.mask_shift as ms

    def ignore_known(base, known):
        plain = copy.copy(base)
        plain.measurement = lambda y_w, x_known: y_w
        return plain

    prior, x = field
    op = ops.SuperResolution(4)
    y = op.A(x)
    monkeypatch.setattr(ms, "KnownPixels", ignore_known)
    ignored = restore_large(prior, sched, op, y, window=32, steps=50)
    assert jump_ratio(ignored, [16, 32, 48]) > 1.5  # about 1.7 here, against < 1.3 with the known pixels


def test_mask_shift_inpainting_keeps_every_observed_pixel(sched, field):
    prior, x = field
    mask = ops.Inpainting.random_mask((64, 64), 0.7, seed=1)
    op = ops.Inpainting(mask)
    y = op.A(x[:4])
    r = restore_large(prior, sched, op, y, window=32, overlap=8, steps=20)
    assert (op.A(r) - y).abs().max() < 1e-6
    holes = (1 - mask).bool().expand_as(r)
    err, spread = (r - x[:4])[holes].pow(2).mean(), x[:4][holes].pow(2).mean()
    assert 0 < err < 0.5 * spread  # the holes are filled (not copied) with a plausible continuation
    # what a window restored is kept: later windows treat it as observed, so the first window's region is
    # exactly the first window restored alone (window w of image i draws from spawn(0, "image", i,
    # "window", w))
    op_0, y_0 = window_of(op, y, 0, 0, 32)
    gens = [spawn(0, "image", i, "window", 0) for i in range(4)]
    first = de.ddnm_plus(prior, sched, op_0, y_0, steps=20, generator=gens).x0_hat
    torch.testing.assert_close(r[..., :32, :32], first, atol=0, rtol=0)


def test_restore_command_enlarges_beyond_the_model(tmp_path):
    from ddnm_edu.tools.cli import main
    from ddnm_edu.tools.images import read_image, write_image

    write_image(torch.rand(1, 16, 16) * 0.8 - 0.4, tmp_path / "small.png")  # mid-greys: no clipping on writing
    assert (
        main(
            [
                "restore",
                str(tmp_path / "small.png"),
                "--task",
                "sr4",
                "--model",
                "fashion-mnist-32",
                "--steps",
                "4",
                "--overlap",
                "8",
                "--out",
                str(tmp_path / "big.png"),
            ]
        )
        == 0
    )
    big = read_image(tmp_path / "big.png", 1, 0.0)
    assert big.shape == (1, 1, 64, 64)
    small = read_image(tmp_path / "small.png", 1, 0.0)
    # consistent up to 8-bit rounding, in every 4x4 block the file did not clip to [-1, 1]
    unclipped = ops.SuperResolution(4).A((big.abs() < 0.99).float()) == 1
    assert unclipped.float().mean() > 0.5
    assert (ops.SuperResolution(4).A(big) - small)[unclipped].abs().max() < 2 / 255


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["small.png", "--task", "sr4", "--overlap", "6"],
            "overlap must be a whole number of pixels in [0, 32) with window - overlap a multiple of 4",
        ),
        (["small.png", "--task", "sr4", "--overlap", "32"], "e.g. 16; got 32"),
        (["exact.png", "--task", "sr4", "--overlap", "8"], "--overlap applies when the result is larger"),
        (["small.png", "--task", "deblur"], "deblur mixes pixels across the whole image"),
    ],
)
def test_restore_command_refuses_bad_window_requests(tmp_path, capsys, args, message):
    from ddnm_edu.tools.cli import main
    from ddnm_edu.tools.images import write_image

    write_image(torch.rand(1, 16, 16) * 2 - 1, tmp_path / "small.png")
    write_image(torch.rand(1, 8, 8) * 2 - 1, tmp_path / "exact.png")  # sr4 of 8x8: the model's 32x32
    argv = [
        "restore",
        str(tmp_path / args[0]),
        *args[1:],
        "--model",
        "fashion-mnist-32",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "x.png"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "x.png").exists()


def test_the_oracle_refuses_other_sizes(sched):
    prior = StationaryGaussianPrior(sched, 8)
    with pytest.raises(DDNMInputError, match="for 8x8 windows; x_t is 16x16"):
        prior(torch.zeros(1, 1, 16, 16), 10)
    with pytest.raises(DDNMInputError, match="length > 0"):
        StationaryGaussianPrior(sched, 8, length=0)
