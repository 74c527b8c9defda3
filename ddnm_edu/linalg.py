"""Small dense linear algebra for the pseudo-inverse chapters (float64 matrices).

* ``pinv_svd``: the Moore-Penrose inverse by SVD, A^+ = V diag(s_i^+) U^T (the book's eq-pinv-svd;
  singular values below rcond * max s_i are treated as zero).
* ``penrose_errors``: how far a candidate X is from each of the four Penrose conditions.
* ``min_norm_solution``: x = A^+ y, the least-squares solution of smallest norm.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def pinv_svd(A: Tensor, rcond: float = 1e-12) -> Tensor:
    """Moore-Penrose inverse of an (m, n) matrix: A = U diag(s_i) V^T  =>  A^+ = V diag(s_i^+) U^T."""
    U, s, Vh = torch.linalg.svd(A.double(), full_matrices=False)
    keep = s > rcond * s.max()
    s_pinv = torch.where(keep, 1.0 / s.clamp_min(1e-300), torch.zeros_like(s))  # 1/s_i, or 0
    return (Vh.T * s_pinv) @ U.T


def penrose_errors(A: Tensor, X: Tensor) -> dict[str, float]:
    """Max abs error of the four Penrose conditions for candidate inverse X of A."""
    AX, XA = A @ X, X @ A
    return {
        "A X A = A": float((AX @ A - A).abs().max()),
        "X A X = X": float((XA @ X - X).abs().max()),
        "(A X)^T = A X": float((AX.T - AX).abs().max()),
        "(X A)^T = X A": float((XA.T - XA).abs().max()),
    }


def min_norm_solution(A: Tensor, y: Tensor) -> Tensor:
    """argmin ||x|| among the minimisers of ||A x - y||: x = A^+ y."""
    return pinv_svd(A) @ y.double()
