"""A convolution over exactly one window of its kernel is one matrix product.

A vision tower's patch embedding is often written as a convolution whose stride is its
kernel, fed one patch at a time: Qwen2-VL's and Qwen2.5-VL's `Conv3d` over 2 x 14 x 14
patches, each flattened patch reshaped into one window. On the CPU, PyTorch's convolution
kernels take several times as long as the matrix product they amount to (`bench/RESULTS.md`:
about 5x for Qwen2-VL's patches, forward and backward). `as_products(model)` makes each such
convolution of a model take the product when its input is one window; any other input (a
whole image under CLIP's or SigLIP's patch convolution) runs the convolution as before.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn


def _one_window_forward(self, x: torch.Tensor) -> torch.Tensor:
    if tuple(x.shape[2:]) != self.kernel_size:
        return type(self).forward(self, x)
    y = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
    return y.view(*y.shape, *(1,) * len(self.kernel_size))


def _plain(conv: nn.Module) -> bool:
    """A convolution that, over one window of its kernel, is a product: no padding, no
    dilation, one group."""
    return (isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and conv.groups == 1
            and (conv.padding == "valid" or not isinstance(conv.padding, str)
                 and all(p == 0 for p in conv.padding)) and all(d == 1 for d in conv.dilation))


def as_products(model: nn.Module) -> int:
    """Make the model's plain convolutions run one-window inputs as a product (the module's
    own method, so copies of the model keep theirs); the number of convolutions changed."""
    n = 0
    for module in model.modules():
        if _plain(module):
            module.forward = types.MethodType(_one_window_forward, module)
            n += 1
    return n
