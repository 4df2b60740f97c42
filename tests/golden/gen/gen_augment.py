"""Golden fixtures for the data pipeline, computed by the real torchvision + Pillow.

Writes tests/golden/augment.bin (transforms with fixed parameters, exhaustive colour
checksums, RandomResizedCrop histograms) and tests/golden/augment_jpeg.bin (JPEG bytes and
Pillow's decoded pixels). Read by tests/test_data_augment.c and tests/test_data_datasets.c.

    /work/venv-torch/bin/python tests/golden/gen/gen_augment.py
"""
import io
import os
import sys
import zlib

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, ImageFilter
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
rng = np.random.default_rng(20220222)

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


def test_image(h, w, c=3):
    """Smooth gradients plus noise, with saturated patches (0 and 255)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        base = 127 + 110 * np.sin(xx / (2.0 + k) + yy / (3.0 + 2 * k) + k)
        chans.append(base + rng.normal(0, 25, size=(h, w)))
    a = np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)
    a[: max(1, h // 6), : max(1, w // 5)] = 255
    a[-max(1, h // 7):, -max(1, w // 6):] = 0
    return a if c == 3 else a[..., 0]


def pil(a):
    return Image.fromarray(a, "RGB" if a.ndim == 3 else "L")


def arr(img):
    a = np.asarray(img, dtype=np.uint8)
    return a if a.ndim == 3 else a[..., None]


E = {}
E["meta/versions"] = np.array([int(x) for x in PIL.__version__.split(".")[:2]] +
                              [int(x) for x in torchvision.__version__.split("+")[0].split(".")[:2]], np.int32)

# ---- resize: crop (sx, sy, sw, sh) -> resize (rw, rh) [-> CenterCrop (ow, oh)] ----------------
inputs = {"a": test_image(29, 37), "b": test_image(32, 32), "g": test_image(23, 19, 1), "c": test_image(41, 33)}
for k, a in inputs.items():
    E[f"img/{k}"] = a if a.ndim == 3 else a[..., None]
resize_cases = [
    # img, sx, sy, sw, sh, rw, rh
    ("b", 3, 5, 20, 17, 32, 32),    # CIFAR-like upsample
    ("g", 0, 0, 19, 23, 19, 23),    # identity
    ("b", 7, 2, 25, 30, 32, 32),
    ("b", 0, 0, 9, 11, 32, 32),     # 8% crop, strong upsample
    ("a", 4, 0, 20, 29, 32, 29),  # one axis unchanged
    ("a", 0, 0, 37, 29, 23, 13),    # downscale (antialias)
    ("a", 5, 3, 30, 20, 7, 5),      # strong downscale
    ("a", 1, 2, 33, 25, 50, 9),     # mixed up/down
    ("c", 2, 1, 30, 37, 224 // 8, 224 // 8),
    ("g", 1, 1, 17, 21, 32, 32),    # L mode
    ("g", 0, 0, 19, 23, 6, 8),
]
for n, (k, sx, sy, sw, sh, rw, rh) in enumerate(resize_cases):
    im = pil(inputs[k] if inputs[k].ndim == 3 else inputs[k])
    out = F.resized_crop(im, sy, sx, sh, sw, [rh, rw], interpolation=InterpolationMode.BILINEAR)
    E[f"resize/{n}/img"] = np.frombuffer(k.encode(), np.uint8).astype(np.int32)
    E[f"resize/{n}/params"] = np.array([sx, sy, sw, sh, rw, rh], np.int32)
    E[f"resize/{n}/out"] = arr(out)

# ---- Resize(short side) + CenterCrop (lincls val), incl. padding when the crop is larger --------
eval_cases = [("a", 10, 8), ("a", 13, 13), ("c", 20, 17), ("g", 9, 8), ("b", 32, 30), ("a", 12, 16), ("a", 40, 31)]
for n, (k, size, crop) in enumerate(eval_cases):
    im = pil(inputs[k])
    r = F.resize(im, size, interpolation=InterpolationMode.BILINEAR)
    out = F.center_crop(r, [crop, crop])
    E[f"evalcrop/{n}/img"] = np.frombuffer(k.encode(), np.uint8).astype(np.int32)
    E[f"evalcrop/{n}/params"] = np.array([size, crop, r.size[0], r.size[1]], np.int32)
    E[f"evalcrop/{n}/out"] = arr(out)

# ---- colour ops, one at a time ------------------------------------------------------------------
col = test_image(12, 14)
E["color/img"] = col
colg = test_image(11, 13, 1)
E["color/img_l"] = colg[..., None]
ops = []
for f in (0.0, 0.37, 1.0, 1.3999999, 2.5):
    ops.append(("brightness", f))
    ops.append(("contrast", f))
    ops.append(("saturation", f))
for h in (-0.5, -0.0999, -0.003, 0.0, 0.004, 0.1, 0.5):
    ops.append(("hue", h))
ops.append(("gray", 0.0))
kind_id = {"brightness": 1, "contrast": 2, "saturation": 3, "hue": 4, "gray": 5, "blur": 6}


def apply_op(im, kind, v):
    if kind == "brightness":
        return F.adjust_brightness(im, v)
    if kind == "contrast":
        return F.adjust_contrast(im, v)
    if kind == "saturation":
        return F.adjust_saturation(im, v)
    if kind == "hue":
        return F.adjust_hue(im, v)
    if kind == "gray":
        return F.rgb_to_grayscale(im, 3) if im.mode == "RGB" else im
    if kind == "blur":
        return im.filter(ImageFilter.GaussianBlur(radius=v))
    raise ValueError(kind)


for n, (kind, v) in enumerate(ops):
    v32 = float(np.float32(v))
    E[f"op/{n}/kind"] = np.array([kind_id[kind]], np.int32)
    E[f"op/{n}/value"] = np.array([v32], np.float32)
    E[f"op/{n}/out"] = arr(apply_op(pil(col), kind, v32))
    if kind != "hue":
        E[f"op/{n}/out_l"] = arr(apply_op(pil(colg), kind, v32))
blur_img = test_image(15, 17)
E["blur/img"] = blur_img
blur_radii = [0.1, 0.5, 0.9, 1.0, 1.37, 1.9999, 2.0, 6.5]
E["blur/radii"] = np.array(blur_radii, np.float32)
for n, r in enumerate(blur_radii):
    r32 = float(np.float32(r))
    E[f"blur/{n}/out"] = arr(pil(blur_img).filter(ImageFilter.GaussianBlur(radius=r32)))
    E[f"blur/{n}/out_l"] = arr(pil(colg).filter(ImageFilter.GaussianBlur(radius=r32)))
tiny = test_image(2, 3)
E["blur/tiny"] = tiny
E["blur/tiny_out"] = arr(pil(tiny).filter(ImageFilter.GaussianBlur(radius=2.0)))

# ---- exhaustive: every 24-bit colour through the per-pixel ops (CRC32 of Pillow's bytes) ----------
allc = np.arange(1 << 24, dtype=np.uint32)
allrgb = np.stack([(allc >> 16) & 255, (allc >> 8) & 255, allc & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
allim = pil(allrgb)
exh = [("hue", -0.1), ("hue", 0.0), ("hue", 0.1), ("hue", -0.5), ("hue", 0.5), ("saturation", 0.6),
       ("saturation", 1.4), ("contrast", 0.6), ("contrast", 1.4), ("brightness", 1.4), ("gray", 0.0)]
crcs = []
for kind, v in exh:
    v32 = float(np.float32(v))
    crcs.append([kind_id[kind], float(v32), zlib.crc32(np.asarray(apply_op(allim, kind, v32)).tobytes())])
E["exhaustive/kind"] = np.array([c[0] for c in crcs], np.int32)
E["exhaustive/value"] = np.array([c[1] for c in crcs], np.float32)
E["exhaustive/crc"] = np.array([c[2] for c in crcs], np.int64).astype(np.uint32).view(np.int32)

# ---- ToTensor + Normalize ---------------------------------------------------------------------
nimg = test_image(6, 8)
E["norm/img"] = nimg
t = F.normalize(F.to_tensor(pil(nimg)), CIFAR_MEAN, CIFAR_STD)
E["norm/mean"] = np.array(CIFAR_MEAN, np.float32)
E["norm/std"] = np.array(CIFAR_STD, np.float32)
E["norm/out"] = t.permute(1, 2, 0).contiguous().numpy()
allv = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
E["norm/all"] = F.normalize(F.to_tensor(pil(allv)), CIFAR_MEAN, CIFAR_STD).permute(1, 2, 0).contiguous().numpy()

# ---- whole pipelines with fixed params (torchvision's op order; flip where torchvision puts it) ----
# params: sx sy sw sh out flip gray blur_on ; jitter: order[4] (-1 = no jitter), factors b c s h ; radius
pipes = [
    # MoCo CIFAR: RRC -> flip -> jitter -> gray
    ("moco", "b", (3, 5, 20, 17), 32, 1, (2, 0, 3, 1), (0.7, 1.3, 0.9, -0.05), 0, 0.0),
    ("moco", "b", (0, 0, 32, 32), 32, 0, (3, 2, 1, 0), (1.39, 0.61, 1.4, 0.1), 1, 0.0),
    ("moco", "b", (10, 1, 9, 14), 32, 1, None, None, 0, 0.0),
    ("moco", "b", (4, 6, 28, 21), 32, 0, (1, 3, 0, 2), (1.0, 0.6, 0.0, -0.1), 1, 0.0),
    # MoCo v1: RRC -> gray -> jitter (always) -> flip
    ("v1", "c", (2, 3, 30, 38), 24, 1, (0, 1, 2, 3), (0.8, 1.2, 0.75, 0.33), 1, 0.0),
    # MoCo v2: RRC -> jitter -> gray -> blur -> flip
    ("v2", "c", (5, 7, 25, 31), 28, 1, (3, 1, 0, 2), (1.2, 0.9, 1.3, 0.07), 0, 1.3),
    ("v2", "c", (0, 0, 33, 41), 20, 0, None, None, 1, 0.25),
]
for n, (kind, k, box, out, flip, order, fac, gray, radius) in enumerate(pipes):
    im = pil(inputs[k])
    sx, sy, sw, sh = box
    im = F.resized_crop(im, sy, sx, sh, sw, [out, out], interpolation=InterpolationMode.BILINEAR)
    fac32 = [float(np.float32(x)) for x in fac] if fac else [0.0] * 4

    def jitter(x):
        for f in order:
            x = apply_op(x, ["brightness", "contrast", "saturation", "hue"][f], fac32[f])
        return x

    if kind == "moco":
        if flip:
            im = F.hflip(im)
        if order:
            im = jitter(im)
        if gray:
            im = F.rgb_to_grayscale(im, 3)
    elif kind == "v1":
        if gray:
            im = F.rgb_to_grayscale(im, 3)
        im = jitter(im)
        if flip:
            im = F.hflip(im)
    else:
        if order:
            im = jitter(im)
        if gray:
            im = F.rgb_to_grayscale(im, 3)
        if radius > 0:
            im = im.filter(ImageFilter.GaussianBlur(radius=float(np.float32(radius))))
        if flip:
            im = F.hflip(im)
    E[f"pipe/{n}/kind"] = np.array([{"moco": 0, "v1": 1, "v2": 2}[kind]], np.int32)
    E[f"pipe/{n}/img"] = np.frombuffer(k.encode(), np.uint8).astype(np.int32)
    E[f"pipe/{n}/ints"] = np.array([sx, sy, sw, sh, out, flip, gray] + list(order if order else (-1, -1, -1, -1)),
                                   np.int32)
    E[f"pipe/{n}/floats"] = np.array(fac32 + [float(np.float32(radius))], np.float32)
    E[f"pipe/{n}/out"] = arr(im)  # the float output is norm/all applied to these bytes

# ---- RandomResizedCrop.get_params histograms (torch's own RNG) ------------------------------
torch.manual_seed(0)
N = 200000
for name, (H, W, scale) in {"c32_008": (32, 32, (0.08, 1.0)), "c32_014": (32, 32, (0.14, 1.0)),
                           "r17x40_02": (17, 40, (0.2, 1.0))}.items():
    hist = np.zeros((H + 1, W + 1), np.int32)
    dummy = torch.empty(3, H, W)
    for _ in range(N):
        i, j, h, w = RandomResizedCrop.get_params(dummy, scale, (3.0 / 4.0, 4.0 / 3.0))
        hist[h, w] += 1
    E[f"rrc/{name}/shape"] = np.array([H, W, N], np.int32)
    E[f"rrc/{name}/scale"] = np.array(scale, np.float32)
    E[f"rrc/{name}/hist"] = hist

write_fixture(os.path.join(OUT, "augment.bin"), E)

# ---- JPEG decoding: bytes + Pillow's pixels -----------------------------------------------------
J = {}
jimg = test_image(21, 27)
cases = [("q85_420", dict(quality=85, subsampling=2)), ("q95_444", dict(quality=95, subsampling=0)),
         ("q75_422", dict(quality=75, subsampling=1)), ("prog", dict(quality=80, progressive=True))]
jn = 0
for name, kw in cases:
    b = io.BytesIO()
    pil(jimg).save(b, "JPEG", **kw)
    J[f"jpeg/{jn}/bytes"] = np.frombuffer(b.getvalue(), np.uint8)
    J[f"jpeg/{jn}/out"] = arr(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
    # DCT-scaled decode (Pillow's draft mode picks scale 1/2 for this request)
    d = Image.open(io.BytesIO(b.getvalue()))
    d.draft("RGB", (jimg.shape[1] // 2, jimg.shape[0] // 2))
    J[f"jpeg/{jn}/scale"] = np.array([d.size[0], d.size[1]], np.int32)
    J[f"jpeg/{jn}/out_half"] = arr(d.convert("RGB"))
    jn += 1
b = io.BytesIO()
pil(test_image(21, 18, 1)).save(b, "JPEG", quality=90)
J[f"jpeg/{jn}/bytes"] = np.frombuffer(b.getvalue(), np.uint8)
J[f"jpeg/{jn}/out"] = arr(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
jn += 1
b = io.BytesIO()
Image.fromarray(np.concatenate([jimg, jimg[..., :1]], -1), "CMYK").save(b, "JPEG", quality=90)
J[f"jpeg/{jn}/bytes"] = np.frombuffer(b.getvalue(), np.uint8)
J[f"jpeg/{jn}/out"] = arr(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
jn += 1
J["jpeg/count"] = np.array([jn], np.int32)
write_fixture(os.path.join(OUT, "augment_jpeg.bin"), J)
print("wrote augment.bin and augment_jpeg.bin with", len(E), "and", len(J), "entries")
