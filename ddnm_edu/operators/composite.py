"""Composite operators A = A_n ... A_1, with the reverse-order pseudo-inverse of the DDNM paper."""

from __future__ import annotations

import torch

from ..errors import DDNMInputError
from .base import LinearOperator

Tensor = torch.Tensor


class Composite(LinearOperator):
    """A = A_n ... A_2 A_1 (``ops[0]`` is applied first), with the reverse-order rule
    A^dagger = A_1^dagger A_2^dagger ... A_n^dagger used by the DDNM paper and code.

    That rule is *not* the Moore-Penrose inverse in general, and it can even break
    A A^dagger A = A (e.g. a pixel mask followed by pooling): call :meth:`check_pinv`
    on a small shape, or rely on the samplers' consistency probe, which warns.
    """

    def __init__(self, ops: list[LinearOperator]):
        if len(ops) < 1 or not all(isinstance(o, LinearOperator) for o in ops):
            raise DDNMInputError(
                "Composite needs a non-empty list of operators, e.g. Composite([Colorization(), SuperResolution(2)])."
            )
        self.ops = list(ops)

    def A(self, x: Tensor) -> Tensor:
        for op in self.ops:
            x = op.A(x)
        return x

    def A_pinv(self, y: Tensor) -> Tensor:
        for op in reversed(self.ops):
            y = op.A_pinv(y)
        return y

    def A_adjoint(self, y: Tensor) -> Tensor:
        for op in reversed(self.ops):
            y = op.A_adjoint(y)
        return y

    def __repr__(self) -> str:
        return f"Composite([{', '.join(map(repr, self.ops))}])"
