"""Golden fixtures for the W-MSE codebase's CIFAR augmentation (the SimCLR / BYOL recipe),
computed by the real torchvision + Pillow: Pillow's BICUBIC resize on crops of every shape
class (up, down, mixed, identity, L mode, Pillow 13's vertical-first order, overshoot that
must clip) and whole pipelines with fixed params in that codebase's order
    ColorJitter(0.4, 0.4, 0.4, 0.1) -> RandomGrayscale -> RandomResizedCrop(32, BICUBIC) -> HFlip
    -> ToTensor -> Normalize (CIFAR-10 and CIFAR-100 statistics).

Writes tests/golden/augment_wmse.bin, read by tests/test_data_augment.c.

    /work/venv-torch/bin/python tests/golden/gen/gen_augment_wmse.py
"""
import os
import sys

import numpy as np
import PIL
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
rng = np.random.default_rng(20200930)

CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100 = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))


def test_image(h, w, c=3):
    """Gradients plus noise with saturated patches and a hard black/white edge (bicubic rings)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        base = 127 + 110 * np.sin(xx / (2.0 + k) + yy / (3.0 + 2 * k) + k)
        chans.append(base + rng.normal(0, 25, size=(h, w)))
    a = np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)
    a[: max(1, h // 6), : max(1, w // 5)] = 255
    a[-max(1, h // 7):, -max(1, w // 6):] = 0
    a[h // 2: h // 2 + 3, :] = 255
    a[h // 2 + 3: h // 2 + 6, :] = 0
    return a if c == 3 else a[..., 0]


def pil(a):
    return Image.fromarray(a, "RGB" if a.ndim == 3 else "L")


def arr(img):
    a = np.asarray(img, dtype=np.uint8)
    return a if a.ndim == 3 else a[..., None]


E = {}
E["meta/versions"] = np.array([int(x) for x in PIL.__version__.split(".")[:2]] +
                              [int(x) for x in torchvision.__version__.split("+")[0].split(".")[:2]], np.int32)
inputs = {"b": test_image(32, 32), "g": test_image(23, 19, 1), "a": test_image(29, 37), "c": test_image(41, 33),
          "L": test_image(45, 70)}
for k, a in inputs.items():
    E[f"img/{k}"] = a if a.ndim == 3 else a[..., None]

resize_cases = [
    # img, sx, sy, sw, sh, rw, rh
    ("b", 3, 5, 20, 17, 32, 32),    # CIFAR RRC: upsample
    ("b", 0, 0, 15, 14, 32, 32),    # scale 0.2: strongest upsample
    ("b", 0, 0, 32, 32, 32, 32),    # identity
    ("b", 2, 0, 30, 32, 32, 32),    # one axis unchanged
    ("b", 11, 9, 21, 23, 32, 32),
    ("a", 0, 0, 37, 29, 23, 13),    # downscale (wider support)
    ("a", 5, 3, 30, 20, 7, 5),      # strong downscale
    ("a", 1, 2, 33, 25, 50, 9),     # mixed up/down
    ("c", 0, 0, 33, 41, 30, 9),     # height shrinks > 2x the width's: vertical pass first (Pillow >= 13)
    ("g", 1, 1, 17, 21, 32, 32),    # L mode
    ("g", 0, 0, 19, 23, 6, 8),
    ("L", 3, 7, 60, 30, 90, 50),    # larger: the transposed horizontal pass by default
    ("L", 0, 0, 70, 45, 31, 17),
]
for n, (k, sx, sy, sw, sh, rw, rh) in enumerate(resize_cases):
    out = F.resized_crop(pil(inputs[k]), sy, sx, sh, sw, [rh, rw], interpolation=InterpolationMode.BICUBIC)
    E[f"resize/{n}/img"] = np.frombuffer(k.encode(), np.uint8).astype(np.int32)
    E[f"resize/{n}/params"] = np.array([sx, sy, sw, sh, rw, rh], np.int32)
    E[f"resize/{n}/out"] = arr(out)

ops = ["brightness", "contrast", "saturation", "hue"]


def adjust(im, f, v):
    return [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue][f](im, v)


# jitter order (-1: not applied), factors b c s h, gray, box (sx sy sw sh), flip, stats
pipes = [
    ((2, 0, 3, 1), (0.7, 1.3, 0.9, -0.05), 0, (3, 5, 20, 17), 1, "c10"),
    ((3, 2, 1, 0), (1.39, 0.61, 1.4, 0.1), 1, (0, 0, 32, 32), 0, "c10"),
    (None, None, 0, (10, 1, 15, 19), 1, "c100"),
    ((1, 3, 0, 2), (1.0, 0.6, 0.6001, -0.1), 1, (4, 6, 28, 21), 0, "c100"),
    (None, None, 1, (0, 0, 15, 14), 1, "c10"),
    ((0, 1, 2, 3), (0.61, 1.39, 1.2, 0.099), 0, (17, 13, 15, 19), 0, "c100"),
]
for n, (order, fac, gray, box, flip, stats) in enumerate(pipes):
    im = pil(inputs["b"])
    fac32 = [float(np.float32(x)) for x in fac] if fac else [0.0] * 4
    if order:
        for f in order:  # the colour ops run on the whole 32x32 image, before the crop
            im = adjust(im, f, fac32[f])
    if gray:
        im = F.rgb_to_grayscale(im, 3)
    sx, sy, sw, sh = box
    im = F.resized_crop(im, sy, sx, sh, sw, [32, 32], interpolation=InterpolationMode.BICUBIC)
    if flip:
        im = F.hflip(im)
    E[f"pipe/{n}/ints"] = np.array([sx, sy, sw, sh, flip, gray] + list(order if order else (-1, -1, -1, -1)), np.int32)
    E[f"pipe/{n}/floats"] = np.array(fac32, np.float32)
    E[f"pipe/{n}/stats"] = np.array([10 if stats == "c10" else 100], np.int32)
    E[f"pipe/{n}/out"] = arr(im)

# ToTensor + Normalize of every byte value per channel (a pipeline's float output is this table
# applied to its bytes; torchvision computes it per element with the same float32 operations)
allv = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
for tag, (mean, std) in (("c10", CIFAR10), ("c100", CIFAR100)):
    E[f"norm/{tag}/mean"] = np.array(mean, np.float32)
    E[f"norm/{tag}/std"] = np.array(std, np.float32)
    E[f"norm/{tag}/all"] = F.normalize(F.to_tensor(pil(allv)), mean, std).permute(1, 2, 0).contiguous().numpy()

write_fixture(os.path.join(OUT, "augment_wmse.bin"), E)
print("wrote augment_wmse.bin with", len(E), "entries")
