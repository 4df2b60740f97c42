#!/usr/bin/env python3
"""Writes PyTorch checkpoints in the layouts of the official repositories, for the test of
tools/pth2safetensors.py (tests/test_import.c runs this only where torch is installed):

  moco_cifar.pth     unmix_c10.py's ModelMoCo: {'epoch', 'state_dict', 'optimizer'} with
                     encoder_q.net = Sequential(conv1 3x3, SplitBatchNorm, relu, layer1..4, avgpool,
                     flatten, fc 512->128), encoder_k the same, queue (128, K)
  moco_imagenet.pth  main_moco_unmix.py (DistributedDataParallel): module.encoder_q.<torchvision>
                     with the MLP head fc.0/fc.2, module.encoder_k, module.queue (ResNet-18 here to
                     stay small; the names are those of the ResNet-50 runs)
  swav.pth           SwAV: a bare state dict, module.<torchvision> + projection_head + prototypes,
                     the CIFAR Bottleneck net [2,2,2,2] with a 3x3 stem
  torchvision.pth    torchvision resnet18 state dict
and expect.json: for each file, a few backbone tensors' sums (our names) to check the values.

  python3 tests/torch/make_ckpts.py OUTDIR
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet


def randomise_bn(model, gen):
    """Distinct running statistics so that a mix-up of tensors shows in the sums."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.num_batches_tracked.fill_(7)


class ModelBase(nn.Module):
    """unmix_c10.py's encoder: resnet18's children with a 3x3 conv1, no maxpool, Flatten before fc."""

    def __init__(self, gen):
        super().__init__()
        net = torchvision.models.resnet18(num_classes=128)
        self.net = []
        for name, module in net.named_children():
            if name == "conv1":
                module = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            if isinstance(module, nn.MaxPool2d):
                continue
            if isinstance(module, nn.Linear):
                self.net.append(nn.Flatten(1))
            self.net.append(module)
        self.net = nn.Sequential(*self.net)
        randomise_bn(self, gen)


class ModelMoCo(nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.encoder_q = ModelBase(gen)
        self.encoder_k = ModelBase(gen)
        self.register_buffer("queue", torch.randn(128, 64, generator=gen))


def sums(sd, names):
    return {n: float(sd[n].double().sum()) for n in names}


def main(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    expect = {}
    names = ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.running_var"]

    moco = ModelMoCo(gen)
    sd = moco.state_dict()
    torch.save({"epoch": 3, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}},
               os.path.join(out, "moco_cifar.pth"))
    m = {"conv1": "0", "bn1": "1", "layer1": "3", "layer4": "6"}
    expect["moco_cifar"] = {n: float(sd["encoder_q.net.%s.%s" % (m[n.split(".")[0]], n.split(".", 1)[1])]
                                     .double().sum()) for n in names}

    q = torchvision.models.resnet18(num_classes=128)
    q.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
    randomise_bn(q, gen)
    sd = {"module.encoder_q." + k: v for k, v in q.state_dict().items()}
    sd.update({"module.encoder_k." + k: v.clone() for k, v in q.state_dict().items()})
    sd["module.queue"] = torch.randn(128, 64, generator=gen)
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": sd, "optimizer": {}},
               os.path.join(out, "moco_imagenet.pth"))
    expect["moco_imagenet"] = sums(q.state_dict(), names)

    s = ResNet(Bottleneck, [2, 2, 2, 2])
    s.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    s.fc = nn.Identity()
    randomise_bn(s, gen)
    sd = {"module." + k: v for k, v in s.state_dict().items()}
    sd["module.projection_head.0.weight"] = torch.randn(512, 2048, generator=gen)
    sd["module.prototypes.weight"] = torch.randn(100, 128, generator=gen)
    torch.save(sd, os.path.join(out, "swav.pth"))
    expect["swav"] = sums(s.state_dict(), names)

    t = torchvision.models.resnet18()
    randomise_bn(t, gen)
    torch.save(t.state_dict(), os.path.join(out, "torchvision.pth"))
    expect["torchvision"] = sums(t.state_dict(), names)

    with open(os.path.join(out, "expect.json"), "w") as f:
        json.dump(expect, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
