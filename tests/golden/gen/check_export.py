"""Generator-side check of `unmix export CKPT --to torchvision OUT.safetensors` (no C test needs it).

  /work/venv-torch/bin/python tests/golden/gen/check_export.py OUT.safetensors [...]

For each exported file: builds the torchvision model its metadata names (unmix.arch, unmix.stem,
unmix.width), loads the file with load_state_dict(strict=False) and asserts that the only
missing keys are fc.weight / fc.bias and that nothing is unexpected; then checks that every
loaded tensor equals the file's (dtype and values) and runs one eval-mode forward.
  - resnet18 / resnet34 / resnet50: torchvision.models.resnetXX(width_per_group / planes scaled
    by width/64 when the width is not 64);
  - stem "cifar": conv1 = Conv2d(3, w, 3, 1, 1, bias=False), maxpool = Identity (MoCo CIFAR);
  - stem "swav-cifar" + resnet18-bottleneck: ResNet(Bottleneck, [2, 2, 2, 2]) with that conv1
    (the ConstantPad2d has no parameters).
Needs torch, torchvision and safetensors.
"""
import sys

import torch
import torch.nn as nn
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet


class _Scaled(ResNet):
    """torchvision's ResNet with base width w instead of 64 (the layers' planes scale with it)."""

    def __init__(self, block, layers, w):
        super().__init__(block, layers)
        if w == 64:
            return
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._make_layer(block, w, layers[0])
        self.layer2 = self._make_layer(block, 2 * w, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * w, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * w, layers[3], stride=2)
        self.fc = nn.Linear(8 * w * block.expansion, 1000)


def build(arch, stem, w):
    spec = {
        "resnet18": (BasicBlock, [2, 2, 2, 2]),
        "resnet34": (BasicBlock, [3, 4, 6, 3]),
        "resnet50": (Bottleneck, [3, 4, 6, 3]),
        "resnet18-bottleneck": (Bottleneck, [2, 2, 2, 2]),
    }[arch]
    if w == 64 and arch in ("resnet18", "resnet34", "resnet50"):
        m = getattr(torchvision.models, arch)()
    else:
        m = _Scaled(spec[0], spec[1], w)
    if stem in ("cifar", "swav-cifar"):
        m.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    return m


def check(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    arch, stem, w = meta.get("unmix.arch"), meta.get("unmix.stem"), int(meta.get("unmix.width", "64"))
    assert meta.get("unmix.format") == "torchvision-backbone", f"{path}: unmix.format = {meta.get('unmix.format')}"
    sd = load_file(path)
    m = build(arch, stem, w)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"], f"{path}: missing keys {missing}"
    assert not unexpected, f"{path}: unexpected keys {unexpected}"
    ref = m.state_dict()
    for k, v in sd.items():
        assert ref[k].dtype == v.dtype, f"{path}: {k} is {v.dtype}, torchvision has {ref[k].dtype}"
        assert torch.equal(ref[k], v), f"{path}: {k} differs after loading"
    m.eval()
    size = 224 if stem == "imagenet" else 32
    with torch.no_grad():
        y = m(torch.zeros(2, 3, size, size))
    assert y.shape == (2, 1000) and torch.isfinite(y).all()
    print(f"OK {path}: {arch} stem {stem} width {w}: {len(sd)} tensors load into torchvision "
          f"with only fc.weight/fc.bias missing")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        check(p)
