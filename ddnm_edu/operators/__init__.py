"""Linear degradation operators y = A x and their pseudo-inverses A^dagger.

Every operator implements two maps on batches ``(B, C, H, W)``:

* ``A(x)``      -- the degradation (DDNM eq. 1 without noise),
* ``A_pinv(y)`` -- a generalised inverse with A A^dagger A = A (DDNM eq. 2).

Everything else derives from those two, once, in :class:`LinearOperator` (``base.py``):
``range_part(x) = A^dagger A x``, ``null_part(x) = (I - A^dagger A) x`` (eq. 3),
the DDNM rectification ``project(x0_t, y)`` (eq. 13), the dense matrix
``as_matrix(shape)`` for small shapes, and ``check_pinv(shape)`` which reports
which of the four Penrose conditions hold.

An operator whose SVD A = U diag(s) V^T is known in closed form is an :class:`SVDOperator` and
carries it: ``singular_values(shape)``, ``Vt(x)`` and ``V(c)``. The DDRM-style sampler and DDNM+'s
per-direction noise rule use only these, so they work for any operator that has them.

* ``pixels.py``: Denoising, Inpainting, Colorization (an SVD per pixel)
* ``blocks.py``: SuperResolution (average pooling), CompressedSensing (an SVD per block)
* ``blur.py``: Deblur (circular convolution; its SVD is the Fourier basis)
* ``composite.py``: Composite (a product, with the reverse-order pseudo-inverse; no SVD)
* ``tasks.py``: the one task table (``TASKS["sr4-noisy0.1"]``: A, sigma_y, what it is) that the CLI,
  the evaluation, the specialists and the tests share
"""

from .base import LinearOperator, PinvReport, SVDOperator, orthonormal_basis_with_ones, rectify, require_svd
from .blocks import CompressedSensing, SuperResolution, hadamard
from .blur import Deblur, gaussian_kernel
from .composite import Composite
from .pixels import Colorization, Denoising, Inpainting
from .tasks import TASKS, Task, from_name, get_task

__all__ = [
    "LinearOperator",
    "SVDOperator",
    "require_svd",
    "PinvReport",
    "rectify",
    "orthonormal_basis_with_ones",
    "Denoising",
    "Inpainting",
    "Colorization",
    "SuperResolution",
    "CompressedSensing",
    "hadamard",
    "Deblur",
    "gaussian_kernel",
    "Composite",
    "TASKS",
    "Task",
    "get_task",
    "from_name",
]
