"""Golden fixture for the composed swav-imagenet recipe (SwAV's src/multicropdataset.py as
UnMix_SwAV/for_ImageNet uses it, PyTorch 1.4-era Pillow blur), computed by the real torchvision
+ Pillow: for each of a few small images, every crop of the multi-crop list
    per crop group (count, size, scale): RandomResizedCrop(size, scale) -> RandomHorizontalFlip(0.5)
    -> RandomApply([ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8) -> RandomGrayscale(0.2)
    -> PILRandomGaussianBlur(p=0.5, radius U(0.1, 2)) -> ToTensor -> Normalize(mean, std (0.228, 0.224, 0.225))
at reduced sizes (2 x 24 px, scale .14-1, + 4 x 12 px, scale .05-.14). The random draws are
torchvision's own (RandomResizedCrop.get_params, ColorJitter.get_params, torch.rand for the
flip / apply / grayscale coins, numpy and random for the blur, as the dataset code draws
them), made once here and stored, so the C test applies the same draws through our recipe's
view specs, as the other recipe fixtures (augment.bin's pipe/*) fix theirs. The jitter factors
and the blur radius are rounded to float32 (our params' type) before Pillow applies them; a
crop drawn without jitter or blur is also checked here against the transform objects
themselves, replayed from the same RNG state.

Writes tests/golden/augment_swav_imagenet.bin, read by tests/test_data_augment.c.

    /work/venv-torch/bin/python tests/golden/gen/gen_swav_imagenet_recipe.py
"""
import os
import random
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, ImageFilter
from torchvision import transforms
from torchvision.transforms import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MEAN = [0.485, 0.456, 0.406]
STD = [0.228, 0.224, 0.225]
GROUPS = [(2, 24, 0.14, 1.0), (4, 12, 0.05, 0.14)]  # (nmb_crops, size_crops, min_scale, max_scale)

img_rng = np.random.default_rng(20210303)


def test_image(h, w):
    """Smooth gradients plus noise, with saturated patches (0 and 255)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [127 + 110 * np.sin(xx / (2.0 + k) + yy / (3.0 + 2 * k) + k) + img_rng.normal(0, 25, size=(h, w))
             for k in range(3)]
    a = np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)
    a[: h // 6, : w // 5] = 255
    a[-(h // 7):, -(w // 6):] = 0
    return a


class PILRandomGaussianBlur:
    """multicropdataset.py's Pillow blur (before SwAV moved to OpenCV)."""

    def __init__(self, p=0.5, radius_min=0.1, radius_max=2.0):
        self.prob, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img):
        if not np.random.rand() <= self.prob:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.radius_min, self.radius_max)))


def get_color_distortion(s=1.0):
    color_jitter = transforms.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    rnd_color_jitter = transforms.RandomApply([color_jitter], p=0.8)
    rnd_gray = transforms.RandomGrayscale(p=0.2)
    return transforms.Compose([rnd_color_jitter, rnd_gray])


# the dataset's transform list, as MultiCropDataset builds it
color_transform = [get_color_distortion(), PILRandomGaussianBlur()]
trans = []
for nmb, size, lo, hi in GROUPS:
    rrc = transforms.RandomResizedCrop(size, scale=(lo, hi))
    trans.extend([transforms.Compose([rrc, transforms.RandomHorizontalFlip(p=0.5), transforms.Compose(color_transform),
                                      transforms.ToTensor(), transforms.Normalize(mean=MEAN, std=STD)])] * nmb)
jit_apply, gray_t = color_transform[0].transforms
jitter = jit_apply.transforms[0]
blur_t = color_transform[1]


def f32(x):
    return float(np.float32(x))


def crop(pil_img, t):
    """One crop through t's ops, drawing as they draw; returns (decisions, uint8 HWC, float HWC)."""
    rrc_t, flip_t = t.transforms[0], t.transforms[1]
    i, j, h, w = transforms.RandomResizedCrop.get_params(pil_img, rrc_t.scale, rrc_t.ratio)
    im = F.resized_crop(pil_img, i, j, h, w, rrc_t.size, rrc_t.interpolation)
    flip = bool(torch.rand(1) < flip_t.p)
    if flip:
        im = F.hflip(im)
    applied = not (jit_apply.p < torch.rand(1))
    order, fac = [-1, -1, -1, -1], [0.0, 0.0, 0.0, 0.0]
    if applied:
        fn_idx, b, c, s, hu = transforms.ColorJitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation,
                                                                jitter.hue)
        order = [int(k) for k in fn_idx]
        fac = [f32(b), f32(c), f32(s), f32(hu)]
        ops = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
        for k in order:
            im = ops[k](im, fac[k])
    gray = bool(torch.rand(1) < gray_t.p)
    if gray:
        im = F.rgb_to_grayscale(im, num_output_channels=3)
    blur = bool(np.random.rand() <= blur_t.prob)
    radius = 0.0
    if blur:
        radius = f32(random.uniform(blur_t.radius_min, blur_t.radius_max))
        im = im.filter(ImageFilter.GaussianBlur(radius=radius))
    u8 = np.asarray(im, dtype=np.uint8)
    flt = F.normalize(F.to_tensor(im), MEAN, STD).permute(1, 2, 0).contiguous().numpy()
    return [j, i, w, h, int(flip), int(applied)] + order + [int(gray), int(blur)], fac + [radius], u8, flt


E = {}
E["meta/versions"] = np.array([int(x) for x in PIL.__version__.split(".")[:2]] +
                              [int(x) for x in torchvision.__version__.split("+")[0].split(".")[:2]], np.int32)
E["groups/ints"] = np.array([[g[0], g[1]] for g in GROUPS], np.int32)
E["groups/scale"] = np.array([[g[2], g[3]] for g in GROUPS], np.float32)
E["norm/mean"] = np.array(MEAN, np.float32)
E["norm/std"] = np.array(STD, np.float32)
# the constants of the transforms as built above (probabilities, jitter strengths, blur range)
E["consts"] = np.array([trans[0].transforms[1].p, jit_apply.p, gray_t.p, blur_t.prob, 0.8, 0.8, 0.8, 0.2,
                        blur_t.radius_min, blur_t.radius_max], np.float32)

shapes = [(40, 52), (48, 36), (33, 45)]
seed, replayed = 0, 0
while True:  # the first seed whose draws cover every branch (flip, jitter, gray, blur both ways)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    img_rng = np.random.default_rng(20210303)
    rows, outs = [], []
    for n, (h, w) in enumerate(shapes):
        a = test_image(h, w)
        for t in trans:
            state = (torch.get_rng_state(), np.random.get_state(), random.getstate())
            ints, floats, u8, flt = crop(Image.fromarray(a, "RGB"), t)
            if not ints[5] and not ints[11]:  # no jitter, no blur: the transform objects must agree
                after = (torch.get_rng_state(), np.random.get_state(), random.getstate())
                torch.set_rng_state(state[0]), np.random.set_state(state[1]), random.setstate(state[2])
                want = t(Image.fromarray(a, "RGB")).permute(1, 2, 0).contiguous().numpy()
                assert np.array_equal(want, flt), "functional replay differs from the transforms"
                torch.set_rng_state(after[0]), np.random.set_state(after[1]), random.setstate(after[2])
                replayed += 1
            rows.append((n, ints, floats, u8, flt))
        outs.append(a)
    flags = np.array([r[1][4:6] + r[1][10:12] for r in rows])
    if all(0 < flags[:, k].sum() < len(rows) for k in range(4)) and replayed > 0:
        break
    seed, replayed = seed + 1, 0
E["meta/seed"] = np.array([seed, replayed], np.int32)
for n, a in enumerate(outs):
    E[f"img/{n}"] = a
for q, (n, ints, floats, u8, flt) in enumerate(rows):
    E[f"crop/{q}/ints"] = np.array([n] + ints, np.int32)  # img sx sy sw sh flip jitter order[4] gray blur
    E[f"crop/{q}/floats"] = np.array(floats, np.float32)  # b c s h radius
    E[f"crop/{q}/out"] = u8
    E[f"crop/{q}/float"] = flt
write_fixture(os.path.join(OUT, "augment_swav_imagenet.bin"), E)
print(f"seed {seed}: {len(rows)} crops, {replayed} replayed through the transform objects")
