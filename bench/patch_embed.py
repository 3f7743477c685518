"""A Qwen2-VL patch embedding as PyTorch's convolution and as the product it amounts to.

    python bench/patch_embed.py [--patches 2304] [--repeats 5]

The patch embedding is a `Conv3d` over 2 x 14 x 14 windows, each patch fed as one window
(`harness.backends.patch_embedding`). Timed here: the module as transformers builds it, and the
same module after `patch_embedding.as_products`, forward alone (a rollout's or an evaluation's
prefill) and forward with the weight's gradient (a training step), best of `--repeats`, for
the vision widths of the bundled small model (128) and of Qwen2-VL-2B and -7B (1280). The
patch count defaults to 16 images of 168 x 168 pixels (144 patches each).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from harness.backends import patch_embedding


def best(module: nn.Module, x: torch.Tensor, grad: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        module.zero_grad()
        t = time.perf_counter()
        with torch.set_grad_enabled(grad):
            y = module(x)
            if grad:
                y.square().sum().backward()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=16 * 144)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.patches, 3, 2, 14, 14)
    print(f"{args.patches} patches of 3 x 2 x 14 x 14, {torch.get_num_threads()} threads, "
          f"best of {args.repeats}\n")
    print("| width | pass | Conv3d, ms | as a product, ms | ratio | max difference |\n"
          "| ---: | --- | ---: | ---: | ---: | ---: |")
    for width in (128, 1280):
        conv = nn.Conv3d(3, width, (2, 14, 14), stride=(2, 14, 14), bias=False)
        product = copy.deepcopy(conv)
        patch_embedding.as_products(product)
        diff = (conv(x) - product(x)).abs().max().item()
        for grad in (False, True):
            a, b = best(conv, x, grad, args.repeats), best(product, x, grad, args.repeats)
            print(f"| {width} | {'forward + weight gradient' if grad else 'forward'} | "
                  f"{1000 * a:.1f} | {1000 * b:.1f} | {a / b:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
