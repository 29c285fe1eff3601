"""Template-vs-search correlation operators shared by every head.

All three are batched: the search batch ``x`` has N items and the kernel batch either N
(one kernel per search item: several targets in one call) or 1 (one template serves the
whole batch, e.g. SiamFC's scale pyramid). None loops over the batch in Python. With a kernel
per item the correlation is one grouped convolution over the batch (the batch folded into
the channels). A grouped convolution's group count is a constant of an ONNX graph, so while
torch exports a graph (:func:`exporting`) the same sums are written as one matrix product over
the search windows instead (taken by one gather), which holds for any batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def exporting() -> bool:
    """Whether torch is recording a graph for export (ONNX or ``torch.export``)."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def _check(x: torch.Tensor, kernel: torch.Tensor, kernel_dims: int, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name}: x must be N x C x H x W, got shape {tuple(x.shape)}")
    if kernel.dim() != kernel_dims:
        raise ValueError(f"{name}: kernel must have {kernel_dims} dims, got {tuple(kernel.shape)}")
    if exporting():
        return
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
    if exporting():
        return _xcorr_by_windows(x, kernel)
    n, c, height, width = x.shape
    b, k = kernel.shape[:2]
    if b == 1:
        return F.conv2d(x, kernel[0])
    out = F.conv2d(x.reshape(1, n * c, height, width), kernel.reshape(n * k, c, *kernel.shape[3:]),
                   groups=n)
    return out.reshape(n, k, out.shape[2], out.shape[3])


def _windows(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Every kh x kw window of ``x`` (N x C x H x W) as N x C x (kh*kw) x (out_h*out_w), taken
    by one gather: an exported graph keeps a handful of nodes whatever the kernel size."""
    n, c, height, width = x.shape
    out_h, out_w = height - kh + 1, width - kw + 1
    taps = torch.arange(kh).reshape(kh, 1) * width + torch.arange(kw).reshape(1, kw)
    places = torch.arange(out_h).reshape(out_h, 1) * width + torch.arange(out_w).reshape(1, out_w)
    index = taps.reshape(kh * kw, 1) + places.reshape(1, out_h * out_w)
    return x.reshape(n, c, height * width)[:, :, index]


def _xcorr_by_windows(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """:func:`xcorr` as one batched matrix product over the windows (kernel batch = N)."""
    n, c = x.shape[:2]
    k, kh, kw = kernel.shape[1], kernel.shape[3], kernel.shape[4]
    out_h, out_w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    windows = _windows(x, kh, kw).reshape(n, c * kh * kw, out_h * out_w)
    out = torch.matmul(kernel.reshape(n, k, c * kh * kw), windows)
    return out.reshape(n, k, out_h, out_w)


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """Channel-by-channel cross-correlation (pysot's depthwise RPN, NanoTrack v3).

    ``x``: N x C x H x W, ``kernel``: B x C x h x w with B in {1, N}. Returns
    N x C x (H-h+1+2p) x (W-w+1+2p).
    """
    _check(x, kernel, 4, "xcorr_depthwise")
    if exporting():
        return _depthwise_by_windows(x, kernel, padding)
    n, c, height, width = x.shape
    b = kernel.shape[0]
    weight = kernel.reshape(b * c, 1, kernel.shape[2], kernel.shape[3])
    if b == 1:
        return F.conv2d(x, weight, padding=padding, groups=c)
    out = F.conv2d(x.reshape(1, n * c, height, width), weight, padding=padding, groups=n * c)
    return out.reshape(n, c, out.shape[2], out.shape[3])


def _depthwise_by_windows(x: torch.Tensor, kernel: torch.Tensor, padding: int) -> torch.Tensor:
    """:func:`xcorr_depthwise` as one batched product over the windows (kernel batch = N)."""
    if padding:
        x = F.pad(x, (padding,) * 4)
    n, c = x.shape[:2]
    kh, kw = kernel.shape[2:]
    out_h, out_w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = torch.matmul(kernel.reshape(n, c, 1, kh * kw), _windows(x, kh, kw))
    return out.reshape(n, c, out_h, out_w)


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
