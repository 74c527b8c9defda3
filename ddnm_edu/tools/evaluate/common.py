"""What the evaluation programs share: the statistics over images, the capped PSNR and the scores of a method."""

from __future__ import annotations

from pathlib import Path

import torch

from ... import metrics


def stats(v: torch.Tensor) -> list[float]:
    """[mean, std, median] over images."""
    v = v.double()
    return [float(v.mean()), float(v.std()) if len(v) > 1 else 0.0, float(v.median())]


def psnr_capped(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR capped at the 8-bit rounding limit (``metrics.PSNR_CAP_DB``), for every method alike:
    an exact reconstruction (a gray emoji colorized by A^dagger y, a white box region) would otherwise add
    ~206 dB to the mean."""
    return metrics.psnr(a, b, max_db=metrics.PSNR_CAP_DB)


def median_note(v: list[float]) -> str:
    return f" ({v[2]:.2f})" if len(v) > 2 else ""


BENCH_DIR = Path(__file__).resolve().parents[3] / "benchmarks"  # the repository's benchmarks/


def markdown_table(header: list[str], rows) -> list[str]:
    """The one table writer: a Markdown table as lines (header, rule, a line per row of formatted cells)."""
    line = lambda cells: "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"  # noqa: E731
    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def score_cells(v: dict) -> list[str]:
    """The cells of a method's :func:`scores`: PSNR mean ± std (median), SSIM mean ± std, consistency."""
    return [
        f"{v['psnr'][0]:.2f} ± {v['psnr'][1]:.2f}{median_note(v['psnr'])}",
        f"{v['ssim'][0]:.3f} ± {v['ssim'][1]:.3f}",
        f"{v['consistency'][0]:.1e}",
    ]


def scores(op, x_hat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    """The scores every table reports for a method, each as :func:`stats` over images: PSNR (capped),
    SSIM and consistency ||A x_hat - y|| / ||y||."""
    return {
        "psnr": stats(psnr_capped(x_hat, x)),
        "ssim": stats(metrics.ssim(x_hat, x)),
        "consistency": stats(metrics.consistency(op, x_hat, y)),
    }
