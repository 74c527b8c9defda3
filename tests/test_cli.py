"""`ddnm-edu restore` end to end on files, and its error messages."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddnm_edu import cli, data
from ddnm_edu import operators as ops

ROOT = Path(__file__).resolve().parent.parent


def save(x, path):
    cli.write_image(x, path)
    return path


def run(*args):
    return subprocess.run([sys.executable, "-m", "ddnm_edu.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_restore_sr4_file_end_to_end(tmp_path):
    x = data.load("fashion-mnist", "test", n=1)
    y = ops.SuperResolution(4).A(x)  # 8x8
    inp = save(y, tmp_path / "small.png")
    r = run("restore", inp, "--task", "sr4", "--model", "fashion-mnist-32", "--out", tmp_path / "out.png",
            "--steps", "5", "--strip", tmp_path / "strip.png")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (32, 32)
    strip = Image.open(tmp_path / "strip.png")
    assert strip.size == (3 * 32 * 4, 32 * 4)
    # the same restoration through the importable function is consistent with the file's y
    y_file = cli.read_image(inp, 1)
    x_hat, _, op = cli.restore(y_file, "sr4", "fashion-mnist-32", steps=5)
    assert (op.A(x_hat) - y_file).abs().max() < 1e-5
    np.testing.assert_array_equal(out, data.to_uint8(x_hat)[0, 0])  # and it is what the command wrote


def test_restore_function_inpaint_and_colorize():
    x = data.load("emoji", "test", n=1)
    mask = ops.Inpainting.box_mask(32, 12)
    x_hat, pinv, op = cli.restore(x * mask, "inpaint", "emoji-32", mask=mask, steps=3)
    assert x_hat.shape == (1, 3, 32, 32)
    assert (op.A(x_hat) - op.A(x)).abs().max() < 1e-5
    gray = ops.Colorization().A(x)
    x_hat, _, op = cli.restore(gray, "colorize", "emoji-32", steps=3)
    assert (op.A(x_hat) - gray).abs().max() < 1e-5


@pytest.mark.parametrize("args,match", [
    (["--task", "sr4"], "is 32x32 but sr4 needs 8x8"),
    (["--task", "sr3"], "unknown task 'sr3'"),
    (["--task", "inpaint"], "needs --mask"),
    (["--task", "colorize"], "colorize needs an RGB model"),
    (["--task", "denoise", "--sigma-y", "-1"], "sigma_y must be a finite number >= 0"),
])
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
    mask = save(torch.ones(1, 1, 16, 16), tmp_path / "mask.png")
    r = run("restore", inp, "--task", "inpaint", "--mask", mask, "--model", "fashion-mnist-32",
            "--out", tmp_path / "o.png", "--steps", "2")
    assert r.returncode == 2 and "mask shape" in r.stderr and "Traceback" not in r.stderr
    r = run("restore", inp, "--task", "denoise", "--model", "nope", "--out", tmp_path / "o.png")
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr
