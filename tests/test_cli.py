"""`ddnm-edu restore` end to end on files, and its error messages."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddnm_edu import data
from ddnm_edu.tools import cli
from ddnm_edu import operators as ops

pytestmark = pytest.mark.slow  # commands, training, evaluation: make test runs it, make check skips it

ROOT = Path(__file__).resolve().parent.parent


def save(x, path):
    cli.write_image(x, path)
    return path


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "ddnm_edu.tools.cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_restore_sr4_file_end_to_end(tmp_path):
    x = data.load("fashion-mnist", "test", n=1)
    y = ops.SuperResolution(4).A(x)  # 8x8
    inp = save(y, tmp_path / "small.png")
    r = run(
        "restore",
        inp,
        "--task",
        "sr4",
        "--model",
        "fashion-mnist-32",
        "--out",
        tmp_path / "out.png",
        "--steps",
        "5",
        "--strip",
        tmp_path / "strip.png",
    )
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (32, 32)
    strip = Image.open(tmp_path / "strip.png")
    assert strip.size == (3 * 32 * 4, 32 * 4)
    # the same restoration through the importable function is consistent with the file's y
    y_file = cli.read_image(inp, 1)
    got = cli.restore(y_file, "sr4", "fashion-mnist-32", steps=5)
    x_hat, op = got.x0_hat, got.op
    assert (op.A(x_hat) - y_file).abs().max() < 1e-5
    np.testing.assert_array_equal(out, data.to_uint8(x_hat)[0, 0])  # and it is what the command wrote


def test_restore_function_inpaint_and_colorize():
    x = data.load("emoji", "test", n=1)
    mask = ops.Inpainting.box_mask(32, 12)
    got = cli.restore(x * mask, "inpaint", "emoji-32", mask=mask, steps=3)
    assert got.x0_hat.shape == (1, 3, 32, 32)
    assert got.std is None  # one sample: no spread
    assert (got.op.A(got.x0_hat) - got.op.A(x)).abs().max() < 1e-5
    torch.testing.assert_close(got.A_pinv_y, got.op.A_pinv(got.op.A(x)))
    gray = ops.Colorization().A(x)
    got = cli.restore(gray, "colorize", "emoji-32", steps=3)
    assert (got.op.A(got.x0_hat) - gray).abs().max() < 1e-5


@pytest.mark.parametrize(
    "args,match",
    [
        (["--task", "sr4", "--samples", "2"], "--samples works at the model"),  # 128x128: window by window
        (["--task", "sr3"], "unknown task 'sr3'"),
        (["--task", "inpaint"], "needs --mask"),
        (["--task", "colorize"], "colorize needs an RGB model"),
        (["--task", "denoise", "--sigma-y", "-1"], "sigma_y must be a finite number >= 0"),
        (["--task", "denoise", "--sigma-y", "nan"], "sigma_y must be a finite number >= 0"),
        (["--task", "denoise", "--seed", "-1"], "--seed must be >= 0"),
    ],
)
def test_restore_errors_are_clear(tmp_path, args, match):
    inp = save(data.load("fashion-mnist", "test", n=1), tmp_path / "in.png")
    r = run("restore", inp, "--model", "fashion-mnist-32", "--out", tmp_path / "o.png", "--steps", "2", *args)
    assert r.returncode == 2
    assert match in r.stderr
    assert "Traceback" not in r.stderr


def test_restore_unreadable_file_and_mask_mismatch(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    r = run("restore", junk, "--task", "denoise", "--model", "fashion-mnist-32", "--out", tmp_path / "o.png")
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    inp = save(data.load("fashion-mnist", "test", n=1), tmp_path / "in.png")
    mask = save(ops.Inpainting.box_mask(16, 4)[None, None] * 2 - 1, tmp_path / "mask.png")
    r = run(
        "restore",
        inp,
        "--task",
        "inpaint",
        "--mask",
        mask,
        "--model",
        "fashion-mnist-32",
        "--out",
        tmp_path / "o.png",
        "--steps",
        "2",
    )
    assert r.returncode == 2 and "mask shape" in r.stderr and "Traceback" not in r.stderr
    r = run("restore", inp, "--task", "denoise", "--model", "nope", "--out", tmp_path / "o.png")
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr


# ---------------------------------------------------------------- files people really have (issue 16)
def _outputs_equal(a, b, tol=1):
    """Two written PNGs differ by at most ``tol`` grey levels anywhere."""
    A = np.asarray(Image.open(a), dtype=int)
    B = np.asarray(Image.open(b), dtype=int)
    assert A.shape == B.shape
    return np.abs(A - B).max() <= tol


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    x = data.load("fashion-mnist", "test", n=1)
    y = ops.SuperResolution(4).A(x)  # (1, 1, 8, 8)
    p8 = save(y, tmp_path / "y8.png")
    v8 = np.asarray(Image.open(p8), dtype=np.uint16)
    p16 = tmp_path / "y16.png"
    Image.fromarray(v8 * 257).save(p16)  # the same image at 16 bits (255 * 257 = 65535)
    assert Image.open(p16).mode in ("I;16", "I")
    np.testing.assert_allclose(cli.read_image(p16, 1), cli.read_image(p8, 1), atol=1e-6)
    for name, inp in (("o8.png", p8), ("o16.png", p16)):
        r = run(
            "restore", inp, "--task", "sr4", "--model", "fashion-mnist-32", "--out", tmp_path / name, "--steps", "3"
        )
        assert r.returncode == 0, r.stderr
    assert _outputs_equal(tmp_path / "o8.png", tmp_path / "o16.png")
    # a mid-grey 16-bit image arrives mid-grey (not clipped to white)
    Image.fromarray(np.full((8, 8), 32000, np.uint16)).save(tmp_path / "grey16.png")
    v = cli.read_image(tmp_path / "grey16.png", 1)
    assert abs(float(v.mean()) - (32000 / 65535 * 2 - 1)) < 1e-6


def test_other_pillow_modes(tmp_path):
    rgb = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).quantize(16).save(tmp_path / "pal.png")  # palette P
    want = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    np.testing.assert_allclose(cli.read_image(tmp_path / "pal.png", 3)[0], want / 127.5 - 1, atol=1e-6)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert cli.read_image(tmp_path / "cmyk.jpg", 3).shape == (1, 3, 8, 8)
    Image.fromarray(np.full((8, 8), 0.25, np.float32), mode="F").save(tmp_path / "f.tiff")
    assert abs(float(cli.read_image(tmp_path / "f.tiff", 1).mean()) - (-0.5)) < 1e-6
    Image.fromarray(np.full((8, 8), 3.0, np.float32), mode="F").save(tmp_path / "bad.tiff")
    with pytest.raises(cli.DDNMInputError, match="outside \\[0, 1\\]"):
        cli.read_image(tmp_path / "bad.tiff", 1)


def test_transparent_png_is_composited_on_the_training_background(tmp_path):
    x = data.load("emoji", "test", n=2)[1:]  # on white (63 % background)
    v = data.to_uint8(x)[0].transpose(1, 2, 0)  # (32, 32, 3)
    bg = v.min(axis=-1) >= 250  # the white background
    assert 0.1 < bg.mean() < 0.9
    rgba = np.dstack([np.where(bg[..., None], 0, v), np.where(bg, 0, 255)]).astype(np.uint8)  # black under alpha 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    flat = np.where(bg[..., None], 255, v).astype(np.uint8)  # the same, pre-composited onto white
    Image.fromarray(flat).save(tmp_path / "flat.png")
    np.testing.assert_allclose(
        cli.read_image(tmp_path / "rgba.png", 3, 1.0), cli.read_image(tmp_path / "flat.png", 3), atol=1e-6
    )
    # gray model (black background), LA file: transparent pixels become black
    la = np.dstack([np.full((32, 32), 200, np.uint8), np.where(bg, 0, 255).astype(np.uint8)])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    g = cli.read_image(tmp_path / "la.png", 1, cli.background_for("fashion-mnist-32"))[0, 0]
    assert (g[torch.from_numpy(bg)] == -1).all() and (g[torch.from_numpy(~bg)] > 0.5).all()
    # through the command: the transparent file restores to the same image as the pre-composited one
    mask = ops.Inpainting.box_mask(32, 12)
    m = save(mask[None, None] * 2 - 1, tmp_path / "mask.png")
    for name, inp in (("o_rgba.png", "rgba.png"), ("o_flat.png", "flat.png")):
        r = run(
            "restore",
            tmp_path / inp,
            "--task",
            "inpaint",
            "--mask",
            m,
            "--model",
            "emoji-32",
            "--out",
            tmp_path / name,
            "--steps",
            "3",
        )
        assert r.returncode == 0, r.stderr
    assert _outputs_equal(tmp_path / "o_rgba.png", tmp_path / "o_flat.png")


def test_jpeg_mask_is_thresholded_and_bad_masks_refused(tmp_path):
    x = data.load("fashion-mnist", "test", n=1)
    inp = save(x, tmp_path / "in.png")
    mask = ops.Inpainting.box_mask(32, 12)  # 1 = observed
    png = save(mask[None, None] * 2 - 1, tmp_path / "mask.png")
    Image.open(png).save(tmp_path / "mask.jpg", quality=70)
    jpg_vals = np.asarray(Image.open(tmp_path / "mask.jpg"), dtype=int)
    assert ((jpg_vals > 0) & (jpg_vals < 255)).any()  # the JPEG really is noisy
    assert torch.equal(cli.read_mask(tmp_path / "mask.jpg"), mask)
    for name, m in (("o_png.png", png), ("o_jpg.png", tmp_path / "mask.jpg")):
        r = run(
            "restore",
            inp,
            "--task",
            "inpaint",
            "--mask",
            m,
            "--model",
            "fashion-mnist-32",
            "--out",
            tmp_path / name,
            "--steps",
            "3",
        )
        assert r.returncode == 0, r.stderr
    assert _outputs_equal(tmp_path / "o_png.png", tmp_path / "o_jpg.png", tol=0)
    # a photo is not a mask; all-white / all-black masks are refused
    save(x, tmp_path / "photo.png")
    save(torch.ones(1, 1, 32, 32), tmp_path / "white.png")
    save(-torch.ones(1, 1, 32, 32), tmp_path / "black.png")
    for m, match in (
        ("photo.png", "is not black and white"),
        ("white.png", "every pixel as observed"),
        ("black.png", "no pixel as observed"),
    ):
        r = run(
            "restore",
            inp,
            "--task",
            "inpaint",
            "--mask",
            tmp_path / m,
            "--model",
            "fashion-mnist-32",
            "--out",
            tmp_path / "o.png",
            "--steps",
            "2",
        )
        assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_missing_output_folder_is_refused_before_sampling(tmp_path):
    inp = save(data.load("fashion-mnist", "test", n=1), tmp_path / "in.png")
    for flag in ("--out", "--strip"):
        out = tmp_path / "o.png" if flag == "--strip" else tmp_path / "no" / "such" / "o.png"
        extra = ["--strip", tmp_path / "nope" / "s.png"] if flag == "--strip" else []
        # 1000 steps would take half a minute: the check must come first
        r = run(
            "restore", inp, "--task", "denoise", "--model", "fashion-mnist-32", "--out", out, "--steps", "1000", *extra
        )
        assert r.returncode == 2 and "does not exist" in r.stderr and flag in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert not out.exists()
    r = run("restore", inp, "--task", "denoise", "--model", "fashion-mnist-32", "--out", tmp_path / "o.xyz")
    assert r.returncode == 2 and "extension" in r.stderr


def test_help_states_the_input_conventions():
    r = run("restore", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for phrase in (
        "65,535",
        "white for emoji-32, black for fashion-mnist-32",
        "white = observed",
        "thresholded at mid-grey",
        "[-1, 1]",
        "paper 0.1 = 0.2 here",
    ):
        assert phrase in text, phrase


def test_noisy_restore_at_eta_zero_stays_consistent_with_y(tmp_path):
    """Issue 11 B through the command: --eta 0 --sigma-y 0.05 used to return an unconditional sample."""
    x = data.load("fashion-mnist", "test", n=1)
    op = ops.SuperResolution(4)
    y = op.A(x) + 0.05 * torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    inp = save(y, tmp_path / "noisy.png")
    y_file = cli.read_image(inp, 1)
    r = run(
        "restore",
        inp,
        "--task",
        "sr4",
        "--model",
        "fashion-mnist-32",
        "--out",
        tmp_path / "o.png",
        "--steps",
        "20",
        "--eta",
        "0",
        "--sigma-y",
        "0.05",
    )
    assert r.returncode == 0, r.stderr
    out = cli.read_image(tmp_path / "o.png", 1)
    rms = float((op.A(out) - y_file).pow(2).mean().sqrt())
    assert rms < 2 * 0.05, rms


def test_restore_a_folder_in_one_batched_run(tmp_path):
    x = data.load("fashion-mnist", "test", n=5)
    op = ops.SuperResolution(4)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        save(op.A(x[i : i + 1]), src / f"g{i}.png")
    (src / "notes.txt").write_text("not an image")  # ignored
    r = run(
        "restore",
        src,
        "--task",
        "sr4",
        "--model",
        "fashion-mnist-32",
        "--out",
        tmp_path / "out",
        "--steps",
        "3",
        "--batch",
        "2",
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 5 images" in r.stdout
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in outs] == [f"g{i}.png" for i in range(5)]
    # each result is consistent with its own file, and the API gives the same batch result
    ys = torch.cat([cli.read_image(src / f"g{i}.png", 1) for i in range(5)])
    x_hat = cli.restore(ys, "sr4", "fashion-mnist-32", steps=3, seed=0).x0_hat  # all five in one batch
    assert (op.A(x_hat) - ys).abs().max() < 1e-5  # consistent with each file's y
    for i in range(5):  # image i has its own stream: the same result in batches of 2 as in one of 5
        wrote = np.asarray(Image.open(outs[i])).astype(int)  # (up to the batch size's float rounding)
        assert np.abs(wrote - np.asarray(data.to_uint8(x_hat[i : i + 1])[0, 0]).astype(int)).max() <= 1
    alone = cli.restore(ys[3:4], "sr4", "fashion-mnist-32", steps=3, seed=0, image_ids=[3]).x0_hat
    torch.testing.assert_close(alone, x_hat[3:4], atol=1e-5, rtol=0)
    other = cli.restore(ys[3:4], "sr4", "fashion-mnist-32", steps=3, seed=0).x0_hat  # as image 0
    assert (other - x_hat[3:4]).abs().max() > 1e-3
    # several files given one by one work too; mixed sizes and --strip are refused clearly
    r = run(
        "restore",
        src / "g0.png",
        src / "g1.png",
        "--task",
        "sr4",
        "--model",
        "fashion-mnist-32",
        "--out",
        tmp_path / "out2",
        "--steps",
        "2",
    )
    assert r.returncode == 0 and len(list((tmp_path / "out2").glob("*.png"))) == 2
    save(x[:1], src / "big.png")
    r = run("restore", src, "--task", "sr4", "--model", "fashion-mnist-32", "--out", tmp_path / "o3", "--steps", "2")
    assert r.returncode == 2 and "different sizes" in r.stderr
    r = run(
        "restore",
        src / "g0.png",
        src / "g1.png",
        "--task",
        "sr4",
        "--model",
        "fashion-mnist-32",
        "--out",
        tmp_path / "o4",
        "--strip",
        tmp_path / "s.png",
    )
    assert r.returncode == 2 and "--strip works with one input" in r.stderr


def test_transparent_colour_key_is_composited(tmp_path):
    """Gray and RGB PNGs can mark one colour transparent (tRNS) instead of an alpha channel."""
    g = np.full((8, 8), 200, np.uint8)
    g[:4] = 0  # the transparent key colour
    Image.fromarray(g).save(tmp_path / "key.png", transparency=0)
    assert "transparency" in Image.open(tmp_path / "key.png").info
    v = cli.read_image(tmp_path / "key.png", 1, background=1.0)[0, 0]
    assert (v[:4] == 1).all() and torch.allclose(v[4:], torch.tensor(200 / 255 * 2 - 1))
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[4:] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "keyrgb.png", transparency=(0, 0, 0))
    v = cli.read_image(tmp_path / "keyrgb.png", 3, background=1.0)[0]
    assert (v[:, :4] == 1).all() and torch.allclose(v[:, 4, 0], torch.tensor([10, 20, 30]) / 255 * 2 - 1)


def test_samples_and_uncertainty_through_the_console_script(tmp_path):
    """``ddnm-edu restore --samples K --uncertainty STD.png``: the mean of K samples and their spread as a
    colour map, through the installed console script; bad values get one line and exit 2."""
    script = Path(sys.executable).parent / "ddnm-edu"
    assert script.exists(), "the package installs the ddnm-edu console script (pip install -e .)"
    y = ops.SuperResolution(4).A(data.load("fashion-mnist", "test", n=1))
    inp = save(y, tmp_path / "small.png")
    cmd = [
        str(script),
        "restore",
        str(inp),
        "--task",
        "sr4",
        "--model",
        "fashion-mnist-32",
        "--steps",
        "5",
        "--out",
        str(tmp_path / "mean.png"),
    ]
    r = subprocess.run(
        cmd + ["--samples", "4", "--uncertainty", str(tmp_path / "std.png")], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    y_file = cli.read_image(inp, 1)
    got = cli.restore(y_file, "sr4", "fashion-mnist-32", steps=5, samples=4)
    mean, op, std = got.x0_hat, got.op, got.std
    assert (op.A(mean) - y_file).abs().max() < 1e-5  # the mean of consistent samples is consistent
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "mean.png")), data.to_uint8(mean)[0, 0])
    shown = np.asarray(Image.open(tmp_path / "std.png"))
    assert shown.shape == (32, 32, 3)
    np.testing.assert_array_equal(
        shown, data.to_uint8(cli.colour_map(std[0], cli.UNCERTAINTY_VMAX)).transpose(1, 2, 0)
    )
    assert std.max() > 0.01 and shown.std() > 1  # the samples differ, and the map shows where
    for extra, says in (
        (["--samples", "0"], "--samples must be between 1 and 256"),
        (["--uncertainty", str(tmp_path / "s.png")], "--uncertainty needs --samples 2 or more"),
    ):
        r = subprocess.run(cmd + extra, capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and says in r.stderr, r.stderr


def test_noise_rule_option_reaches_the_sampler(tmp_path):
    """Noisy deblurring: the scalar rule warns (A^dagger amplifies noise), --noise-rule svd does
    not and gives another restoration; a rule the large-image path cannot use is one clear line."""
    x = data.load("fashion-mnist", "test", n=1)
    inp = save(ops.from_name("deblur", 32).measure(x, 0.1), tmp_path / "blurred.png")
    common = ("--task", "deblur", "--model", "fashion-mnist-32", "--steps", "5", "--sigma-y", "0.1")
    scalar = run("restore", inp, *common, "--out", tmp_path / "scalar.png")
    svd = run("restore", inp, *common, "--noise-rule", "svd", "--out", tmp_path / "svd.png")
    assert scalar.returncode == 0 and svd.returncode == 0, scalar.stderr + svd.stderr
    assert "--noise-rule svd" in scalar.stderr and "amplifies" not in svd.stderr
    a, b = (cli.read_image(tmp_path / f, 1) for f in ("scalar.png", "svd.png"))
    assert not torch.equal(a, b)
    bad = run("restore", inp, *common, "--noise-rule", "exact", "--out", tmp_path / "x.png")
    assert bad.returncode == 2 and "invalid choice: 'exact'" in bad.stderr
