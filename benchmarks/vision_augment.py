"""Cost of cropping training images from the full image (issue 18 §5), per image, on this CPU.

Since the vision suite stores training images whole (the source's encoded bytes) and crops them
per batch as FourierFT's ``train_transforms`` do, a training batch decodes its images. This times
:func:`harness.suites.vision.images.random_resized_crop` (decode + crop + resize to 224 + flip) on
JPEG images of the typical sizes of the ViT datasets (median of ``--repeats``, one thread), and
what a batch of 64 costs one data-loader process.

    .venv/bin/python benchmarks/vision_augment.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.suites.vision.images import random_resized_crop  # noqa: E402

# (what, height, width): EuroSAT 64x64, RESISC45 256x256, a DTD/Pets-like 375x500, a Cars/FGVC-like 700x1000
SIZES = [("EuroSAT-like", 64, 64), ("RESISC45-like", 256, 256), ("Pets/DTD-like", 375, 500), ("Cars/FGVC-like", 700, 1000)]


def jpeg(h: int, w: int, seed: int = 0) -> bytes:
    """A smooth image with texture (gradients + noise), JPEG quality 90: sizes like photographs'."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch={torch.__version__} PIL={Image.__version__} threads=1 repeats={args.repeats}")
    print("| image | JPEG KB | decode + crop + resize + flip, ms per image | ms per batch of 64 |\n|---|---:|---:|---:|")
    for what, h, w in SIZES:
        data = jpeg(h, w)
        gen = torch.Generator().manual_seed(0)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            random_resized_crop(Image.open(io.BytesIO(data)), 224, gen)
            times.append(time.perf_counter() - t)
        ms = statistics.median(times) * 1e3
        print(f"| {what} {h}x{w} | {len(data) / 1024:.0f} | {ms:.2f} | {64 * ms:.0f} |")

if __name__ == "__main__":
    main()
