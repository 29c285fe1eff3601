"""Template-vs-search correlation operators shared by every head.

All three are batched: the search batch ``x`` has N items and the kernel batch either N
(one kernel per search item) or 1 (one template serves the whole batch, e.g. SiamFC's
scale pyramid). None loops over the batch in Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(x: torch.Tensor, kernel: torch.Tensor, kernel_dims: int, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name}: x must be N x C x H x W, got shape {tuple(x.shape)}")
    if kernel.dim() != kernel_dims:
        raise ValueError(f"{name}: kernel must have {kernel_dims} dims, got {tuple(kernel.shape)}")
    if kernel.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"{name}: kernel batch {kernel.shape[0]} must be 1 or the search batch {x.shape[0]}"
        )


def xcorr(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Plain (all-channel) cross-correlation, no padding.

    ``x``: N x C x H x W. ``kernel``: B x K x C x h x w with B in {1, N}, or B x C x h x w
    (K = 1). Returns N x K x (H-h+1) x (W-w+1); output channel k correlates kernel k with
    all channels of x (SiamFC's response, DaSiamRPN's up-channel RPN).
    """
    if kernel.dim() == 4:
        kernel = kernel.unsqueeze(1)
    _check(x, kernel, 5, "xcorr")
    n, c, height, width = x.shape
    b, k = kernel.shape[:2]
    if b == 1:
        return F.conv2d(x, kernel[0])
    out = F.conv2d(x.reshape(1, n * c, height, width), kernel.reshape(n * k, c, *kernel.shape[3:]),
                   groups=n)
    return out.reshape(n, k, out.shape[2], out.shape[3])


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """Channel-by-channel cross-correlation (pysot's depthwise RPN, NanoTrack v3).

    ``x``: N x C x H x W, ``kernel``: B x C x h x w with B in {1, N}. Returns
    N x C x (H-h+1+2p) x (W-w+1+2p).
    """
    _check(x, kernel, 4, "xcorr_depthwise")
    n, c, height, width = x.shape
    b = kernel.shape[0]
    weight = kernel.reshape(b * c, 1, kernel.shape[2], kernel.shape[3])
    if b == 1:
        return F.conv2d(x, weight, padding=padding, groups=c)
    out = F.conv2d(x.reshape(1, n * c, height, width), weight, padding=padding, groups=n * c)
    return out.reshape(n, c, out.shape[2], out.shape[3])


def xcorr_pointwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Pixel-wise correlation (NanoTrack): one output channel per template position.

    ``x``: N x C x H x W, ``kernel``: B x C x h x w with B in {1, N}. Returns
    N x (h*w) x H x W where channel ``i*w + j`` is sum_c kernel[c, i, j] * x[c].
    """
    _check(x, kernel, 4, "xcorr_pointwise")
    n, c, height, width = x.shape
    b = kernel.shape[0]
    positions = kernel.reshape(b, c, -1).transpose(1, 2)
    out = torch.matmul(positions, x.reshape(n, c, height * width))
    return out.reshape(n, positions.shape[1], height, width)
