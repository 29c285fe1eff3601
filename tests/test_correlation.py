"""Correlation ops against naive loops written here, on odd sizes and batches > 1."""

from __future__ import annotations

import pytest
import torch

from tracker.models.correlation import xcorr, xcorr_depthwise, xcorr_pointwise


def _naive_correlate(x, k, padding=0):
    """Slide 2-D kernel k (h x w) over 2-D map x without flipping."""
    x = torch.nn.functional.pad(x, (padding,) * 4)
    h, w = k.shape
    out = torch.empty(x.shape[0] - h + 1, x.shape[1] - w + 1, dtype=x.dtype)
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = (x[r:r + h, c:c + w] * k).sum()
    return out


def _data(n, c, size, ksize, kernel_batch, k_out=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *size, generator=g, dtype=torch.float64)
    shape = (kernel_batch,) + ((k_out,) if k_out else ()) + (c,) + ksize
    return x, torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kernel_batch", [1, 3])
def test_xcorr_matches_naive_loop(kernel_batch):
    x, kernel = _data(3, 5, (11, 9), (3, 5), kernel_batch, k_out=4)
    out = xcorr(x, kernel)
    assert out.shape == (3, 4, 9, 5)
    for i in range(3):
        kb = kernel[i if kernel_batch > 1 else 0]
        for k in range(4):
            expected = sum(_naive_correlate(x[i, ch], kb[k, ch]) for ch in range(5))
            torch.testing.assert_close(out[i, k], expected)


def test_xcorr_accepts_single_output_kernels():
    x, kernel = _data(2, 3, (7, 7), (3, 3), 2)
    out = xcorr(x, kernel)
    assert out.shape == (2, 1, 5, 5)
    expected = sum(_naive_correlate(x[1, ch], kernel[1, ch]) for ch in range(3))
    torch.testing.assert_close(out[1, 0], expected)


@pytest.mark.parametrize("kernel_batch,padding", [(1, 0), (2, 0), (2, 1)])
def test_xcorr_depthwise_matches_naive_loop(kernel_batch, padding):
    x, kernel = _data(2, 3, (9, 13), (3, 4), kernel_batch)
    out = xcorr_depthwise(x, kernel, padding=padding)
    assert out.shape == (2, 3, 7 + 2 * padding, 10 + 2 * padding)
    for i in range(2):
        for ch in range(3):
            kb = kernel[i if kernel_batch > 1 else 0, ch]
            torch.testing.assert_close(out[i, ch], _naive_correlate(x[i, ch], kb, padding))


@pytest.mark.parametrize("kernel_batch", [1, 2])
def test_xcorr_pointwise_matches_naive_loop(kernel_batch):
    x, kernel = _data(2, 5, (7, 9), (3, 5), kernel_batch)
    out = xcorr_pointwise(x, kernel)
    assert out.shape == (2, 15, 7, 9)
    for i in range(2):
        kb = kernel[i if kernel_batch > 1 else 0]
        for r in range(3):
            for c in range(5):
                expected = (kb[:, r, c, None, None] * x[i]).sum(0)
                torch.testing.assert_close(out[i, r * 5 + c], expected)


def test_kernel_batch_must_be_one_or_the_search_batch():
    x, kernel = _data(3, 2, (8, 8), (3, 3), 2)
    for op in (xcorr, xcorr_depthwise, xcorr_pointwise):
        with pytest.raises(ValueError, match="kernel batch 2"):
            op(x, kernel)


def test_search_must_be_four_dimensional():
    with pytest.raises(ValueError, match="x must be N x C x H x W"):
        xcorr_pointwise(torch.zeros(3, 8, 8), torch.zeros(1, 3, 2, 2))
