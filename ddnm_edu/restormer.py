"""A tiny Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image
Restoration", CVPR 2022), written from the paper and scaled down to 32x32 images.

The paper's two ideas, one class each:

* **MDTA** (multi-Dconv head transposed attention, Sec. 3.1): queries, keys and values come
  from a 1x1 convolution followed by a 3x3 *depth-wise* convolution (local context), and attention is
  taken across **channels**, not pixels: per head, A = softmax(K^T Q / alpha) is a (C/h) x (C/h) matrix
  whatever the image size, so the cost grows linearly with the number of pixels, O(HW C^2), where
  spatial self-attention costs O((HW)^2 C).
* **GDFN** (gated-Dconv feed-forward network, Sec. 3.2): two parallel 1x1 + depth-wise 3x3
  paths, one passed through GELU and used as a gate (element-wise product) on the other.

Around them, the paper's 4-level encoder-decoder (Fig. 2): a 3x3 "overlapped patch embedding",
transformer blocks x <- x + MDTA(LN(x)); x <- x + GDFN(LN(x)), pixel-unshuffle down and pixel-shuffle
up, skip connections by concatenation (a 1x1 conv halves the channels, except at level 1), a
refinement stage, and a global residual: the network predicts a correction added to its input.

Here the input is A^dagger y (for average-pool super-resolution: y upsampled by replication), the same
size as x, and the output an estimate of x. ``SpatialSelfAttention`` is the ordinary ViT-style
attention over pixels, kept only to *measure* the cost difference (``ddnm_edu.tools.attention_cost``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .unet import count_parameters  # noqa: F401 (one home: the UNet's module; tests use R.count_parameters)


@dataclass
class RestormerConfig:
    """Sizes of a Restormer. The paper's model (Sec. 4, and the official code's defaults): dim=48,
    num_blocks=(4, 6, 6, 8), heads=(1, 2, 4, 8), 4 refinement blocks, expansion 2.66 -- 26.1 M parameters
    when built with this class for RGB (tests/test_restormer.py). Ours has 0.94 M, ~28x fewer."""

    in_channels: int = 1
    out_channels: int = 1
    dim: int = 16
    num_blocks: tuple[int, ...] = (1, 2, 2, 1)
    num_refinement_blocks: int = 1
    heads: tuple[int, ...] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    image_size: int = 32  # divisible by 8 (three 2x downsamplings)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RestormerConfig":
        d = dict(d)
        for k in ("num_blocks", "heads"):
            d[k] = tuple(d[k])
        return cls(**d)


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel (with bias), as in the paper's transformer block."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, x.shape[-1:], self.weight, self.bias, eps=1e-5)
        return x.permute(0, 3, 1, 2)


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention (Sec. 3.1).

    X_hat = W_p Attention(Q_hat, K_hat, V_hat) + X, with Q = W_d^Q W_p^Q Y, etc. (Y = LN(X); the
    residual + X is added by ``TransformerBlock``), and Attention = V_hat softmax(K_hat Q_hat / alpha),
    where the reshaped K_hat is (C x HW) and Q_hat is (HW x C): a C x C attention map (per head), with
    Q and K L2-normalised along the pixels and alpha a learned temperature per head.
    """

    def __init__(self, dim: int, heads: int, bias: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))  # 1 / alpha
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)  # W_p: pixel-wise
        self.qkv_dw = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)  # W_d: depth-wise 3x3
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)  # each (B, C, H, W)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))  # (B, h, C/h, HW)
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), v

    def attention(self, x: Tensor) -> Tensor:
        """The attention map softmax(Q K^T * temperature): (B, heads, C/heads, C/heads), independent of H, W."""
        q, k, _ = self._qkv(x)
        return (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H, W)
        b, c, h, w = x.shape
        q, k, v = self._qkv(x)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)  # (B, h, C/h, C/h)
        out = (attn @ v).reshape(b, c, h, w)  # (B, h, C/h, HW) -> (B, C, H, W)
        return self.project_out(out)


class SpatialSelfAttention(nn.Module):
    """Ordinary multi-head self-attention over the H*W pixels (ViT / SAGAN style): the attention map is
    (HW x HW) per head, so time and memory grow with (HW)^2. Only for the cost comparison."""

    def __init__(self, dim: int, heads: int, bias: bool = False):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        b, c, h, w = x.shape
        q, k, v = (
            t.reshape(b, self.heads, c // self.heads, h * w).transpose(-2, -1)  # (B, h, HW, C/h)
            for t in self.qkv(x).chunk(3, dim=1)
        )
        attn = (q @ k.transpose(-2, -1) / math.sqrt(c // self.heads)).softmax(dim=-1)  # (B, h, HW, HW)
        out = (attn @ v).transpose(-2, -1).reshape(b, c, h, w)
        return self.project_out(out)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network (Sec. 3.2). X_hat = W_p^0 Gating(X) + X with
    Gating(X) = phi(W_d^1 W_p^1 LN(X)) * W_d^2 W_p^2 LN(X), phi = GELU, hidden width gamma * C."""

    def __init__(self, dim: int, expansion: float = 2.66, bias: bool = False):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)  # W_p^1 and W_p^2 side by side
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)  # W_d^1, W_d^2
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)  # W_p^0

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        gate, value = self.dw(self.project_in(x)).chunk(2, dim=1)  # each (B, gamma C, H, W)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """x <- x + MDTA(LN(x)); x <- x + GDFN(LN(x))  (Fig. 2)."""

    def __init__(self, dim: int, heads: int, expansion: float, bias: bool):
        super().__init__()
        self.norm1, self.attn = LayerNorm2d(dim), MDTA(dim, heads, bias)
        self.norm2, self.ffn = LayerNorm2d(dim), GDFN(dim, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stage(n: int, dim: int, heads: int, cfg: RestormerConfig) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(dim, heads, cfg.ffn_expansion_factor, cfg.bias) for _ in range(n)])


class Restormer(nn.Module):
    """The 4-level encoder-decoder of Fig. 2. ``forward(x_in)``: (B, C_in, H, W) -> (B, C_out, H, W),
    with H, W divisible by 8; the output is x_in + a learned correction (global residual)."""

    def __init__(self, config: RestormerConfig | None = None):
        super().__init__()
        cfg = self.config = config or RestormerConfig()
        d, nb, hd = cfg.dim, cfg.num_blocks, cfg.heads
        self.embed = nn.Conv2d(cfg.in_channels, d, 3, padding=1, bias=cfg.bias)  # overlapped patch embedding
        self.enc1 = _stage(nb[0], d, hd[0], cfg)
        self.down12 = self._down(d)
        self.enc2 = _stage(nb[1], 2 * d, hd[1], cfg)
        self.down23 = self._down(2 * d)
        self.enc3 = _stage(nb[2], 4 * d, hd[2], cfg)
        self.down34 = self._down(4 * d)
        self.latent = _stage(nb[3], 8 * d, hd[3], cfg)
        self.up43, self.reduce3 = self._up(8 * d), nn.Conv2d(8 * d, 4 * d, 1, bias=cfg.bias)
        self.dec3 = _stage(nb[2], 4 * d, hd[2], cfg)
        self.up32, self.reduce2 = self._up(4 * d), nn.Conv2d(4 * d, 2 * d, 1, bias=cfg.bias)
        self.dec2 = _stage(nb[1], 2 * d, hd[1], cfg)
        self.up21 = self._up(2 * d)  # level 1 keeps the 2d channels of the concatenation (no 1x1 reduce)
        self.dec1 = _stage(nb[0], 2 * d, hd[0], cfg)
        self.refine = _stage(cfg.num_refinement_blocks, 2 * d, hd[0], cfg)
        self.output = nn.Conv2d(2 * d, cfg.out_channels, 3, padding=1, bias=cfg.bias)

    @staticmethod
    def _down(c: int) -> nn.Module:  # (B, c, H, W) -> (B, 2c, H/2, W/2)
        return nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    @staticmethod
    def _up(c: int) -> nn.Module:  # (B, c, H, W) -> (B, c/2, 2H, 2W)
        return nn.Sequential(nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x_in: Tensor) -> Tensor:  # (B, C_in, H, W)
        if x_in.ndim != 4 or x_in.shape[1] != self.config.in_channels or x_in.shape[-1] % 8 or x_in.shape[-2] % 8:
            raise ValueError(
                f"Restormer expects (B, {self.config.in_channels}, H, W) with H and W divisible by 8, "
                f"got {tuple(x_in.shape)}"
            )
        e1 = self.enc1(self.embed(x_in))  # (B, d, H, W)
        e2 = self.enc2(self.down12(e1))  # (B, 2d, H/2, W/2)
        e3 = self.enc3(self.down23(e2))  # (B, 4d, H/4, W/4)
        z = self.latent(self.down34(e3))  # (B, 8d, H/8, W/8)
        d3 = self.dec3(self.reduce3(torch.cat([self.up43(z), e3], 1)))  # (B, 4d, H/4, W/4)
        d2 = self.dec2(self.reduce2(torch.cat([self.up32(d3), e2], 1)))  # (B, 2d, H/2, W/2)
        d1 = self.dec1(torch.cat([self.up21(d2), e1], 1))  # (B, 2d, H, W)
        out = self.output(self.refine(d1))  # (B, C_out, H, W)
        if self.config.out_channels == self.config.in_channels:
            out = out + x_in  # global residual
        return out


def receptive_field(
    module: nn.Module, shape: tuple[int, int, int, int], pixel: tuple[int, int] | None = None, seed: int = 0
) -> Tensor:
    """Bool (H, W): the input pixels that output pixel ``pixel`` (default: the centre) depends on, found as
    the nonzero entries of the gradient of that output pixel with respect to a random input."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).requires_grad_(True)  # (1, C, H, W)
    i, j = pixel if pixel is not None else (shape[-2] // 2, shape[-1] // 2)
    module(x)[..., i, j].sum().backward()
    return x.grad.abs().sum(dim=(0, 1)) > 0


# --------------------------------------------------------------------------- the specialist's task
def measure(task: str, x0: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(y, network input A^dagger y) for clean images x0 (B, C, H, W) in [-1, 1]: y = A x0 + sigma_y n,
    with A and sigma_y from the task table (``operators.TASKS``; the shipped specialists' tasks are
    ``sr4`` and ``denoise-noisy0.2``). For denoising A^dagger y = y; for 4x SR, y replicated 4 x 4."""
    from . import operators as ops

    sigma_y = ops.get_task(task).sigma_y
    op = ops.from_name(task, x0.shape[-1])
    y = op.measure(x0, sigma_y, generator=generator if generator is not None else torch.default_generator)
    return y, op.A_pinv(y)


def supervised_loss(model: nn.Module, task: str, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The paper's training loss: L1 between the restored image f(A^dagger y) and the clean x0."""
    _, x_in = measure(task, x0, generator)
    return F.l1_loss(model(x_in).float(), x0)
