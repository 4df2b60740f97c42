"""Golden fixtures for unmix-c models and optimisers, computed with PyTorch/torchvision.

Writes, under tests/golden/:
  resnet18_keys.txt, resnet50_keys.txt   torchvision state_dict names and shapes
  model_*.bin                            forward outputs, loss, per-parameter gradient
                                         checksums, running stats after the forward
  optim_sgd_larc.bin                     SGD (PyTorch) and LARC (apex semantics) steps

Parameters are NOT stored: both sides compute them from the formula in `fill_params`
(tensor number t in named_parameters() order, element i in torchvision layout), so the
fixtures stay small. Run: /work/venv-torch/bin/python tests/golden/gen/gen_models.py
"""
import copy
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def hash_uniform(n, stream):
    """u in [0,1) from an integer hash of (element index, stream): exact in numpy and C
    (tests/test_models_golden.c). A hash, unlike a slowly varying sine, gives weights with
    no structure, so BatchNorm sees healthy variances and the network is well conditioned."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(0x9E3779B1) + np.uint64(stream + 1) * np.uint64(0x85EBCA77)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(12)
    h = (h * np.uint64(0x297A2D39)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    return h.astype(np.float64) / 4294967296.0


def pattern(n, stream, amp, offset=0.0):
    return (offset + amp * (2.0 * hash_uniform(n, stream) - 1.0)).astype(np.float32)


def param_values(t, name, shape, fan_in):
    """The formula shared with tests/test_models_golden.c (keep in sync)."""
    n = int(np.prod(shape))
    if name.endswith("running_mean"):
        return pattern(n, 1000 + t, 0.1)
    if name.endswith("running_var"):
        return pattern(n, 1000 + t, 0.3, 1.0)
    is_bn = len(shape) == 1 and ("bn" in name or "downsample.1" in name or "projection_head.1" in name)
    if is_bn and name.endswith("weight"):
        return pattern(n, t, 0.2, 1.0)
    if len(shape) == 1:  # BN or linear bias
        return pattern(n, t, 0.1)
    return pattern(n, t, math.sqrt(6.0 / fan_in))


def fill_params(model):
    with torch.no_grad():
        for t, (name, p) in enumerate(model.named_parameters()):
            fan_in = int(np.prod(p.shape[1:])) if p.dim() > 1 else 1
            p.copy_(torch.from_numpy(param_values(t, name, tuple(p.shape), fan_in).reshape(p.shape)))
        for t, (name, b) in enumerate(model.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            b.copy_(torch.from_numpy(param_values(t, name, tuple(b.shape), 1).reshape(b.shape)))


def input_values(shape, stream=5000):
    return torch.from_numpy(pattern(int(np.prod(shape)), stream, 1.5).reshape(shape))


def loss_weights(shape):
    return torch.from_numpy(pattern(int(np.prod(shape)), 6000, 1.0).reshape(shape))


def relu_inputs(model, batches, out_fn=lambda y: y):
    """Every ReLU input of forward passes of `batches` (train mode), as float64 arrays."""
    vals = []
    hooks = [m.register_forward_pre_hook(lambda m, inp: vals.append(inp[0].detach().double().clone()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        for b in batches:
            out_fn(model(b))
    for h in hooks:
        h.remove()
    return vals


def safety_ratio(make_model, batches, out_fn=lambda y: y):
    """min over ReLU calls of (smallest |input|, float64) / (RMS float32 error of that input):
    how far, in units of typical float32 rounding error, the nearest ReLU input sits from
    its kink. A float32 implementation with errors of that size (ours or PyTorch's) flips
    no ReLU mask while this is well above ~5, so gradient checksums compare cleanly."""
    m64 = make_model().double()
    fill_params(m64)
    m64.train(True)
    m32 = make_model().float()
    fill_params(m32)
    m32.train(True)
    a = relu_inputs(m64, [b.double() for b in batches], out_fn)
    b = relu_inputs(m32, [b.float() for b in batches], out_fn)
    ratio = float("inf")
    for x64, x32 in zip(a, b):
        err = (x32 - x64).pow(2).mean().sqrt().item()
        ratio = min(ratio, x64.abs().min().item() / max(err, 1e-30))
    return ratio


def pick_input_stream(make_model, shape, out_fn, candidates=24, base=5000):
    """The input (hash stream) with the largest safety ratio (see safety_ratio)."""
    best, best_ratio = None, -1.0
    for stream in range(base, base + candidates):
        r = safety_ratio(make_model, [input_values(shape, stream)], out_fn)
        if r > best_ratio:
            best, best_ratio = stream, r
    print(f"  input stream {best}: ReLU safety ratio {best_ratio:.1f}")
    return best


class SplitBatchNorm(nn.BatchNorm2d):
    """The reference's SplitBatchNorm (unmix_c10.py:109-129)."""

    def __init__(self, num_features, num_splits, **kw):
        super().__init__(num_features, **kw)
        self.num_splits = num_splits

    def forward(self, input):
        N, C, H, W = input.shape
        if self.training or not self.track_running_stats:
            running_mean_split = self.running_mean.repeat(self.num_splits)
            running_var_split = self.running_var.repeat(self.num_splits)
            outcome = F.batch_norm(
                input.view(-1, C * self.num_splits, H, W), running_mean_split, running_var_split,
                self.weight.repeat(self.num_splits), self.bias.repeat(self.num_splits),
                True, self.momentum, self.eps).view(N, C, H, W)
            self.running_mean.data.copy_(running_mean_split.view(self.num_splits, C).mean(dim=0))
            self.running_var.data.copy_(running_var_split.view(self.num_splits, C).mean(dim=0))
            return outcome
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, False,
                            self.momentum, self.eps)


class WidthResNet(torchvision.models.resnet.ResNet):
    """torchvision's ResNet with base width w instead of 64 (planes w, 2w, 4w, 8w): the
    same modules, names and order, so it mirrors unmix-c's `model.width`. Narrow nets keep
    gradient fixtures well conditioned (fewer activations near ReLU kinks)."""

    def __init__(self, block, layers, width=64, num_classes=1000, norm_layer=None):
        nn.Module.__init__(self)
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)


def moco_cifar_encoder(splits, width=64):
    """ModelBase of unmix_c10.py, kept as a torchvision ResNet so names stay torchvision's."""
    from functools import partial
    net = WidthResNet(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], width, 128,
                      norm_layer=partial(SplitBatchNorm, num_splits=splits))
    net.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net


def resnet50(width=64):
    return WidthResNet(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], width, 1000)


class SwavCifar(nn.Module):
    """SwAV-CIFAR "resnet18" (Bottleneck [2,2,2,2], ConstantPad2d(1) stem) + head + prototypes."""

    def __init__(self, width=64):
        super().__init__()
        r = WidthResNet(torchvision.models.resnet.Bottleneck, [2, 2, 2, 2], width)
        self.padding = nn.ConstantPad2d(1, 0.0)
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1, self.relu = r.bn1, r.relu
        self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.projection_head = nn.Sequential(nn.Linear(32 * width, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                                             nn.Linear(512, 128))
        self.prototypes = nn.Linear(128, 100, bias=False)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(self.padding(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        x = F.normalize(self.projection_head(x), dim=1, p=2)
        return x, self.prototypes(x)


def write_keys(model, path):
    with open(path, "w") as f:
        for name, t in model.state_dict().items():
            f.write(name + " " + " ".join(str(d) for d in t.shape) + "\n")


def grad_checksums(model):
    sums, sumsq, samples = [], [], []
    for name, p in model.named_parameters():
        g = p.grad.detach().double().flatten() if p.grad is not None else torch.zeros(p.numel(), dtype=torch.float64)
        sums.append(g.sum().item())
        sumsq.append((g * g).sum().item())
        n = g.numel()
        samples.append([g[0].item(), g[n // 3].item(), g[n - 1].item()])
    return np.array(sums), np.array(sumsq), np.array(samples)


def buffer_checksums(model):
    sums, samples = [], []
    for name, b in model.named_buffers():
        if name.endswith("num_batches_tracked"):
            continue
        v = b.detach().double().flatten()
        sums.append(v.sum().item())
        samples.append([v[0].item(), v[v.numel() - 1].item()])
    return np.array(sums), np.array(samples)


def model_fixture(path, model, x, train, out_fn=lambda y: y, stream=5000, grads=True):
    """Reference values in float64 (the C side runs float32); the float32 PyTorch result's
    distance from it is printed to show the fixture is well conditioned."""
    model = model.double()
    fill_params(model)
    model.train(train)
    y32 = out_fn(copy.deepcopy(model).float()(x)).detach().numpy()
    fill_params(model)
    y = out_fn(model(x.double()))
    cond = float(np.abs(y32 - y.detach().numpy()).max() / np.abs(y.detach().numpy()).max())
    w = loss_weights(tuple(y.shape))
    loss = (y.double() * w.double()).sum()
    entries = {"input_shape": np.array(x.shape, dtype=np.int32), "input_stream": np.array([stream], dtype=np.int32),
               "out": y.detach().float().numpy(),
               "loss": np.array([loss.item()])}
    if train and grads:
        model.zero_grad()
        loss.backward()
        s, ss, smp = grad_checksums(model)
        entries.update(grad_sum=s, grad_sumsq=ss, grad_samples=smp)
    entries["width"] = np.array([model.conv1.out_channels], dtype=np.int32)
    bs, bsmp = buffer_checksums(model)
    entries.update(buf_sum=bs, buf_samples=bsmp)
    write_fixture(path, entries)
    print("wrote", path, tuple(y.shape), "loss", loss.item(), "torch f32 vs f64 rel", cond)


def optim_fixture(path):
    """SGD (torch.optim.SGD) and LARC (apex semantics, FIDELITY §3.7) on four tensors, 3 steps."""
    shapes = [(7, 5), (13,), (3, 4, 2), (6,)]
    entries = {}
    for mode in ("sgd", "larc"):
        params = [nn.Parameter(torch.from_numpy(pattern(int(np.prod(s)), 7000 + t, 0.8).reshape(s)))
                  for t, s in enumerate(shapes)]
        with torch.no_grad():
            params[3].zero_()  # a zero-norm tensor: LARC leaves its gradient raw and without wd
        wd = 5e-4 if mode == "sgd" else 1e-6
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=wd)
        for step in range(3):
            for t, p in enumerate(params):
                p.grad = torch.from_numpy(pattern(p.numel(), 8000 + 10 * step + t, 0.5).reshape(p.shape)).clone()
            if mode == "larc":
                with torch.no_grad():
                    group = opt.param_groups[0]
                    weight_decay = group["weight_decay"]
                    group["weight_decay"] = 0
                    for p in group["params"]:
                        param_norm = torch.norm(p.data)
                        grad_norm = torch.norm(p.grad.data)
                        if param_norm != 0 and grad_norm != 0:
                            adaptive_lr = 0.001 * param_norm / (grad_norm + param_norm * weight_decay + 1e-8)
                            p.grad.data += weight_decay * p.data
                            p.grad.data *= adaptive_lr
                opt.step()
                opt.param_groups[0]["weight_decay"] = weight_decay
            else:
                opt.step()
            for t, p in enumerate(params):
                entries[f"{mode}_step{step}_p{t}"] = p.detach().numpy().copy()
    write_fixture(path, entries)
    print("wrote", path)


def main():
    write_keys(torchvision.models.resnet18(), os.path.join(OUT, "resnet18_keys.txt"))
    write_keys(torchvision.models.resnet50(), os.path.join(OUT, "resnet50_keys.txt"))
    assert [n for n, _ in resnet50(8).state_dict().items()] == [n for n, _ in torchvision.models.resnet50().state_dict().items()]
    ident = lambda y: y  # noqa: E731
    # Gradient fixtures use narrow nets (same structure and names as torchvision) so that
    # train-mode float32 gradients are well conditioned; full width is checked on the
    # forward pass (eval mode) and by the parameter counts in test_models.c.
    ident = lambda y: y  # noqa: E731
    specs = [("moco_cifar", lambda: moco_cifar_encoder(splits=4, width=16), (8, 3, 32, 32), ident, True),
             ("resnet50", lambda: resnet50(width=8), (4, 3, 64, 64), ident, True),
             ("swav_cifar", lambda: SwavCifar(width=8), (4, 3, 32, 32), lambda y: y[1], False)]
    for name, make, shape, out_fn, with_eval in specs:
        stream = pick_input_stream(make, shape, out_fn)
        x = input_values(shape, stream)
        model_fixture(os.path.join(OUT, f"model_{name}_train.bin"), make(), x, True, out_fn, stream)
        if with_eval:
            model_fixture(os.path.join(OUT, f"model_{name}_eval.bin"), make(), x, False, out_fn, stream)
    model_fixture(os.path.join(OUT, "model_resnet50_full_eval.bin"), resnet50(), input_values((2, 3, 64, 64)), False)
    optim_fixture(os.path.join(OUT, "optim_sgd_larc.bin"))


if __name__ == "__main__":
    main()
