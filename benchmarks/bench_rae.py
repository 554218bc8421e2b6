"""RAE training throughput and the speed of batched augmentations.

    python benchmarks/bench_rae.py [--steps 5] [--device auto] [--threads N] [--out FILE]

Reports images per second of full training steps (forward, loss, backward,
Adam; batch 128) for the none, barlow and proto models on synthetic
drawings, and, in the same run, how many times faster `augment_batch` is than
the same transforms applied image by image with torchvision on PIL images.
Every figure is from the median time of its repeats, so that a burst of
other work on a shared machine skews it less.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from latentsketch.augment import augment_batch
from latentsketch.models.rae import RAE, RaeConfig, training_loss
from latentsketch.runtime import resolve_device

BATCH = 128
N_CLASSES = 100
MODELS = {"none": {}, "barlow-30": {"barlow": 30.0}, "proto-500": {"proto": 500.0}}


def synthetic_drawings(n: int, generator: torch.Generator, device) -> torch.Tensor:
    """Sparse ink (about 10% of the pixels), like an Omniglot character."""
    noise = torch.rand(n, 1, 48, 48, generator=generator, device=generator.device)
    return (noise > 0.9).float().to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(work: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of `repeats` calls of `work`, after one warm-up call."""
    work()  # allocations, kernel selection
    times = []
    for _ in range(repeats):
        synchronize(device)
        began = time.perf_counter()
        work()
        synchronize(device)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def training_throughput(betas: dict, steps: int, device: torch.device) -> float:
    generator = torch.Generator(device=device).manual_seed(0)
    rae = RAE(RaeConfig(latent_dim=64, betas=betas, n_classes=N_CLASSES)).to(device).train()
    optimizer = torch.optim.Adam(rae.parameters(), lr=1e-4, weight_decay=1e-5)
    images = synthetic_drawings(BATCH, generator, device)
    labels = torch.randint(N_CLASSES, (BATCH,), generator=generator, device=device)
    exemplars = synthetic_drawings(N_CLASSES, generator, device)

    def step():
        total, _ = training_loss(rae, images, labels, generator, exemplars)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    return BATCH / median_seconds(step, steps, device)


def per_image_pipeline() -> transforms.RandomChoice:
    """The paper's augmentations as torchvision applies them, one image at a time."""
    return transforms.RandomChoice([
        transforms.RandomResizedCrop(48, scale=(0.1, 0.9), ratio=(0.8, 1.2)),
        transforms.RandomAffine(15, translate=(5 / 48, 5 / 48), scale=(0.75, 1.25),
                                shear=10),
        transforms.RandomPerspective(distortion_scale=0.5, p=0.5),
    ])


def augmentation_speedup(repeats: int, device: torch.device) -> dict[str, float]:
    generator = torch.Generator(device=device).manual_seed(0)
    images = synthetic_drawings(BATCH, generator, device)
    batched = BATCH / median_seconds(lambda: augment_batch(images, generator), repeats,
                                     device)
    pipeline, to_tensor = per_image_pipeline(), transforms.ToTensor()
    pages = [Image.fromarray((image[0].cpu().numpy() * 255).astype(np.uint8))
             for image in images]

    def loop():
        return torch.stack([to_tensor(pipeline(page)) for page in pages]).to(device)

    looped = BATCH / median_seconds(loop, repeats, device)
    return {"batched_images_per_s": batched, "per_image_loop_images_per_s": looped,
            "speedup": batched / looped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="timed steps per model")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results = {"device": str(device), "threads": torch.get_num_threads(), "batch": BATCH,
               "training_images_per_s": {}}
    for name, betas in MODELS.items():
        rate = training_throughput(betas, args.steps, device)
        results["training_images_per_s"][name] = rate
        print(f"train {name:>10}: {rate:8.1f} images/s", flush=True)
    results["augmentation"] = augmentation_speedup(max(args.steps, 5), device)
    aug = results["augmentation"]
    print(f"augment batched {aug['batched_images_per_s']:.0f} images/s, per-image "
          f"torchvision {aug['per_image_loop_images_per_s']:.0f} images/s: "
          f"{aug['speedup']:.1f}× faster")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
