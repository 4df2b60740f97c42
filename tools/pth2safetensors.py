#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth / .pth.tar / .pt) into the safetensors backbone file that
`unmix knn | lincls | tsne | hist` read, so released weights are evaluated exactly like ours.

  python3 tools/pth2safetensors.py IN.pth OUT.safetensors [--layout auto|moco-cifar|moco|swav|torchvision]
                                  [--dataset cifar10|cifar100|imagefolder] [--unsafe-load]

Layouts (auto-detected from the names; --layout forces one):
  moco-cifar   the official MoCo/Un-Mix CIFAR demo (unmix_c10.py): ModelMoCo with
               encoder_q.net = Sequential(conv1, bn1, relu, layer1..4, avgpool, flatten, fc);
               encoder_q.net.0 -> conv1, .1 -> bn1, .3..6 -> layer1..4 (.9, the 128-d fc, dropped)
  moco         MoCo / Un-Mix ImageNet (main_moco_unmix.py): module.encoder_q.<torchvision name>
  swav         SwAV / Un-Mix SwAV: module.<torchvision name>; projection_head / prototypes dropped
  torchvision  torchvision ResNet names as they are (fc dropped)
The key encoder, the queue, heads and optimiser state are left out: the output holds the
backbone only, under torchvision names (float32; num_batches_tracked as int64), with metadata
naming the architecture, stem and width (detected from the tensors) and a small manifest, so
`unmix knn OUT.safetensors` needs no --arch. Needs torch (not torchvision, not safetensors).
Exit status: 0 done, 1 the input cannot be converted (the message says why), 2 usage.
"""
import argparse
import json
import os
import re
import struct
import sys
import zlib

LAYOUTS = ("auto", "moco-cifar", "moco", "swav", "torchvision")
HEADS = ("fc.", "projection_head.", "prototypes.")


def fail(msg):
    print("pth2safetensors: " + msg, file=sys.stderr)
    sys.exit(1)


def load(path, unsafe):
    try:
        import torch
    except ImportError:
        fail("this tool needs PyTorch (pip install torch); unmix itself does not")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not unsafe)
    except Exception as e:  # torch raises many kinds; the message is what matters
        hint = "" if unsafe else (" (if you trust the file, --unsafe-load lets torch unpickle arbitrary objects)")
        fail("%s: torch.load failed: %s%s" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__, hint))
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(hasattr(v, "shape") for v in obj.values()):
        fail("%s: no state dict of tensors found (looked at the file and its 'state_dict' / 'model' entries)" % path)
    return {k: v for k, v in obj.items() if hasattr(v, "shape")}


def detect(sd):
    keys = list(sd)
    if any(re.match(r"(module\.)?encoder_q\.net\.\d+\.", k) for k in keys):
        return "moco-cifar"
    if any(re.match(r"(module\.)?encoder_q\.", k) for k in keys):
        return "moco"
    if any(k.startswith(("module.projection_head.", "module.prototypes.", "projection_head.", "prototypes."))
           for k in keys):
        return "swav"
    if all(k.startswith("module.") for k in keys) and "module.conv1.weight" in sd:
        return "swav"
    if "conv1.weight" in sd:
        return "torchvision"
    return None


MOCO_CIFAR_NET = {"0": "conv1", "1": "bn1", "3": "layer1", "4": "layer2", "5": "layer3", "6": "layer4"}


def rename(sd, layout):
    """torchvision backbone name -> tensor, heads and everything else left out."""
    out = {}
    for k, v in sd.items():
        name = None
        if layout == "moco-cifar":
            m = re.match(r"(?:module\.)?encoder_q\.net\.(\d+)\.(.*)", k)
            if m and m.group(1) in MOCO_CIFAR_NET:
                name = MOCO_CIFAR_NET[m.group(1)] + "." + m.group(2)
        elif layout == "moco":
            m = re.match(r"(?:module\.)?encoder_q\.(.*)", k)
            name = m.group(1) if m else None
        elif layout == "swav":
            name = k[len("module."):] if k.startswith("module.") else k
        else:
            name = k
        if name is None or name.startswith(HEADS):
            continue
        out[name] = v
    return out


def describe(sd):
    """(arch, stem, width) of a torchvision-named backbone, from its tensors."""
    if "conv1.weight" not in sd:
        fail("no conv1.weight after renaming: not a ResNet backbone in this layout (try --layout)")
    w = sd["conv1.weight"]
    if len(w.shape) != 4:
        fail("conv1.weight has shape %s, expected (K, C, R, S)" % (tuple(w.shape),))
    width, k = int(w.shape[0]), int(w.shape[2])
    bottleneck = "layer1.0.conv3.weight" in sd
    blocks = [len({n.split(".")[1] for n in sd if n.startswith("layer%d." % l)}) for l in range(1, 5)]
    if blocks == [2, 2, 2, 2]:
        arch = "resnet18-bottleneck" if bottleneck else "resnet18"
    elif blocks == [3, 4, 6, 3]:
        arch = "resnet50" if bottleneck else "resnet34"
    else:
        fail("blocks per stage %s match none of resnet18/34/50 and the SwAV-CIFAR bottleneck net" % blocks)
    if k == 7:
        stem = "imagenet"
    elif k == 3:
        stem = "swav-cifar" if arch == "resnet18-bottleneck" else "cifar"
    else:
        fail("conv1 has a %dx%d kernel: neither the ImageNet (7x7) nor the CIFAR (3x3) stem" % (k, k))
    return arch, stem, width


def manifest(name, arch, stem, width, dataset):
    recipe, protocol = {"imagenet": ("mocov2-imagenet", "imagenet"), "cifar": ("moco-cifar", "moco-cifar"),
                        "swav-cifar": ("swav-cifar", "swav-cifar")}[stem]
    if dataset is None:
        dataset = "imagefolder" if stem == "imagenet" else "cifar10"
    return ("name: %s\nmethod: moco\nmodel: {arch: %s, stem: %s, width: %d}\n"
            "data: {dataset: %s, recipe: %s}\nlinear: {protocol: %s}\n"
            % (name, arch, stem, width, dataset, recipe, protocol))


def write_safetensors(path, tensors, metadata):
    """The safetensors format: u64 LE header length, JSON header, raw little-endian data."""
    import torch
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu()
        if name.endswith("num_batches_tracked"):
            t, dt = t.to(torch.int64).reshape(()), "I64"
        else:
            t, dt = t.to(torch.float32), "F32"
        a = t.contiguous().numpy()
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    # unmix.crc32, as core/io/checkpoint.c writes and checks it: CRC-32 of the data region, then of
    # each tensor's name, dtype and shape in file order (a file with unmix.* keys must carry it)
    crc = 0
    for b in blobs:
        crc = zlib.crc32(b, crc)
    for name in sorted(tensors):
        e = header[name]
        crc = zlib.crc32(name.encode() + b"\0" + e["dtype"].encode() + b"\0", crc)
        crc = zlib.crc32("".join("%d," % d for d in e["shape"]).encode() + b"\n", crc)
    metadata["unmix.crc32"] = "%08x" % crc
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: python3 tools/pth2safetensors.py moco_c10.pth moco_c10.safetensors "
                                        "&& build/unmix knn moco_c10.safetensors --data-root data/cifar10")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--layout", choices=LAYOUTS, default="auto")
    ap.add_argument("--dataset", choices=("cifar10", "cifar100", "imagefolder"), default=None,
                    help="the dataset written into the file's manifest (default: cifar10 for CIFAR stems)")
    ap.add_argument("--unsafe-load", action="store_true",
                    help="let torch.load unpickle arbitrary objects (only for files you trust)")
    a = ap.parse_args(argv)
    sd = load(a.input, a.unsafe_load)
    layout = detect(sd) if a.layout == "auto" else a.layout
    if layout is None:
        fail("%s: cannot tell the layout from its names (first: %s); pass --layout" % (a.input, ", ".join(list(sd)[:4])))
    bb = rename(sd, layout)
    arch, stem, width = describe(bb)
    stem_name = re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(a.input).split(".")[0]) or "converted"
    meta = {"unmix.format": "torchvision-backbone", "unmix.arch": arch, "unmix.stem": stem,
            "unmix.width": str(width), "unmix.source": a.input, "unmix.source_layout": layout,
            "unmix.source_manifest": manifest(stem_name[:100], arch, stem, width, a.dataset)}
    write_safetensors(a.output, bb, meta)
    print("%s: %s layout -> %d tensors of a %s (stem %s, width %d) in %s"
          % (a.input, layout, len(bb), arch, stem, width, a.output))


if __name__ == "__main__":
    main(sys.argv[1:])
