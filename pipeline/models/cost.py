"""Inference cost of zoo models on CPU: measured milliseconds per megapixel and counted
multiply-adds (MACs) per input pixel.

Run as a script to print the table for the enhancement models at default settings:

    .venv/bin/python -m pipeline.models.cost --threads 1 --side 256
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from pipeline.models import MODELS, build, count_parameters, model_inputs


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _inputs(channels: int, side: int, needs_sigma: bool, needs_mask: bool) -> tuple[torch.Tensor, ...]:
    x = torch.rand(1, channels, side, side, generator=torch.Generator().manual_seed(0))
    return model_inputs(x, needs_sigma=needs_sigma, needs_mask=needs_mask)


def ms_per_megapixel(model: nn.Module, channels: int, side: int = 256, repeats: int = 3, threads: int = 2,
                     *, needs_sigma: bool = False, needs_mask: bool = False) -> float:
    """Median wall time of one eval forward on a 1 x channels x side x side input, in ms per
    input megapixel (after one warm-up run), with `threads` intra-op threads."""
    inputs = _inputs(channels, side, needs_sigma, needs_mask)
    model.eval()
    times = []
    with _threads(threads), torch.inference_mode():
        model(*inputs)
        for _ in range(repeats):
            start = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 / (side * side / 1e6)


def _module_macs(module: nn.Module, inputs: tuple, output: object) -> int:
    """Multiply-adds of one call of a Conv2d / ConvTranspose2d / Linear / attention block."""
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return output.numel() * k
    if isinstance(module, nn.ConvTranspose2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        return inputs[0].numel() * k
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    # Attention matmuls (NonLocalBlock) are invisible to conv/linear hooks: ask the block.
    h, w = inputs[0].shape[-2:]
    return inputs[0].shape[0] * module.attention_macs(h, w)


def macs_per_pixel(model: nn.Module, channels: int, side: int = 64, *, needs_sigma: bool = False,
                   needs_mask: bool = False) -> float:
    """Multiply-adds per input pixel of one forward on a side x side input, counted by forward
    hooks on Conv2d, ConvTranspose2d and Linear (plus blocks exposing `attention_macs`).
    Shared-weight recurrent modules count once per call, as they cost. Element-wise ops,
    pooling and resampling are not counted."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        total += _module_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) or hasattr(m, "attention_macs")]
    try:
        model.eval()
        with torch.inference_mode():
            model(*_inputs(channels, side, needs_sigma, needs_mask))
    finally:
        for handle in handles:
            handle.remove()
    return total / (side * side)


ENHANCE_KINDS = ("denoise", "restore", "sr", "autoencoder", "inpaint")


def report(side: int = 256, threads: int = 1, repeats: int = 3) -> list[dict[str, object]]:
    """Cost rows for every enhancement model in MODELS at default settings."""
    rows = []
    for name, s in MODELS.items():
        if s.kind not in ENHANCE_KINDS:
            continue
        model = build(name)
        flags = {"needs_sigma": s.needs_sigma, "needs_mask": s.needs_mask}
        cost_side = 28 if name == "dense_ae" else side  # fixed input size
        rows.append({
            "name": name, "parameters": count_parameters(model),
            "ms_per_mp": ms_per_megapixel(model, s.channels, cost_side, repeats, threads, **flags),
            "macs_per_pixel": macs_per_pixel(model, s.channels, 28 if name == "dense_ae" else 64, **flags),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'model':<14} {'params':>10} {'ms/MP':>10} {'MACs/px':>10}")
    for row in report(args.side, args.threads, args.repeats):
        print(f"{row['name']:<14} {row['parameters']:>10,} {row['ms_per_mp']:>10.0f} {row['macs_per_pixel']:>10,.0f}")


if __name__ == "__main__":
    main()
