#!/usr/bin/env python3
"""The official CIFAR MoCo + Un-Mix training step (unmix_c10.py: ModelMoCo, SplitBatchNorm(8),
symmetric loss, the mixed batch forwarded twice, SGD lr 0.06 momentum 0.9 wd 5e-4), timed in
PyTorch on the same device as `unmix bench step`, so the ratio ours / PyTorch is measured side
by side (tools/device-check.sh runs both). Synthetic batches, no data loading.

  python3 tools/bench_pytorch.py [--device cpu|cuda] [--batch 512] [--width 64] [--steps 10]
                                 [--amp] [--channels-last] [--threads N]

Prints: images/s, ms/step (mean and best). Needs torch and torchvision.
"""
import argparse
import time
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class SplitBatchNorm(nn.BatchNorm2d):
    def __init__(self, num_features, num_splits, **kw):
        super().__init__(num_features, **kw)
        self.num_splits = num_splits

    def forward(self, input):
        N, C, H, W = input.shape
        if self.training or not self.track_running_stats:
            running_mean_split = self.running_mean.repeat(self.num_splits)
            running_var_split = self.running_var.repeat(self.num_splits)
            # The reference uses .view, which fails on channels_last tensors ("view size is not
            # compatible with input tensor's size and stride"): the official code cannot run in
            # that layout. .reshape is the same on contiguous tensors and copies otherwise.
            outcome = F.batch_norm(input.reshape(-1, C * self.num_splits, H, W), running_mean_split,
                                   running_var_split, self.weight.repeat(self.num_splits),
                                   self.bias.repeat(self.num_splits), True, self.momentum,
                                   self.eps).reshape(N, C, H, W)
            self.running_mean.data.copy_(running_mean_split.view(self.num_splits, C).mean(dim=0))
            self.running_var.data.copy_(running_var_split.view(self.num_splits, C).mean(dim=0))
            return outcome
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, False,
                            self.momentum, self.eps)


class WidthResNet(torchvision.models.resnet.ResNet):
    def __init__(self, width, num_classes, norm_layer):
        nn.Module.__init__(self)
        self._norm_layer = norm_layer
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        block = torchvision.models.resnet.BasicBlock
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(block, width, 2)
        self.layer2 = self._make_layer(block, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(block, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(block, 8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)


class ModelMoCo(nn.Module):
    """unmix_c10.py's ModelMoCo, symmetric, with the Un-Mix terms."""

    def __init__(self, width, dim=128, K=4096, m=0.99, T=0.1, bn_splits=8):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        make = partial(WidthResNet, width, dim, partial(SplitBatchNorm, num_splits=bn_splits))
        self.encoder_q, self.encoder_k = make(), make()
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data = pk.data * self.m + pq.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        ptr = int(self.queue_ptr)
        self.queue[:, ptr:ptr + keys.shape[0]] = keys.t()
        self.queue_ptr[0] = (ptr + keys.shape[0]) % self.K

    def contrastive_loss(self, im_q, im_k, mixed):
        q = F.normalize(self.encoder_q(im_q), dim=1)
        qm_raw = self.encoder_q(mixed)
        qmf = F.normalize(torch.flip(qm_raw, (0,)), dim=1)
        qm = F.normalize(qm_raw, dim=1)
        with torch.no_grad():
            idx = torch.randperm(im_k.shape[0], device=im_k.device)
            k = F.normalize(self.encoder_k(im_k[idx]), dim=1)[torch.argsort(idx)]
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)

        def ce(u):
            logits = torch.cat([(u * k).sum(1, keepdim=True), u @ self.queue.clone().detach()], dim=1) / self.T
            return F.cross_entropy(logits, labels)
        return ce(q), ce(qm), ce(qmf), k

    def forward(self, im1, im2, mixed, lam):
        with torch.no_grad():
            self._momentum_update_key_encoder()
        l12, l12m, l12mf, k2 = self.contrastive_loss(im1, im2, mixed)
        l21, l21m, l21mf, k1 = self.contrastive_loss(im2, im1, mixed)
        loss = l12 + l21 + lam * (l12m + l21m) + (1 - lam) * (l12mf + l21mf)
        self._dequeue_and_enqueue(torch.cat([k1, k2], dim=0))
        return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--amp", action="store_true", help="torch.autocast (bf16 on CUDA/CPU)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmul/conv on CUDA")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    model = ModelMoCo(a.width).to(dev)
    mf = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=mf)
    opt = torch.optim.SGD(model.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    im1 = torch.randn(a.batch, 3, 32, 32, device=dev).to(memory_format=mf)
    im2 = torch.randn(a.batch, 3, 32, 32, device=dev).to(memory_format=mf)
    rng = np.random.default_rng(0)

    def step():
        lam = float(rng.beta(1.0, 1.0))
        if rng.random() < 0.5:
            mixed = lam * im1 + (1 - lam) * torch.flip(im1, (0,))
        else:
            mixed = im1.clone()
            mixed[:, :, 4:20, 6:22] = torch.flip(im1, (0,))[:, :, 4:20, 6:22]
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.amp):
            loss = model(im1, im2, mixed, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    mean, best = float(np.mean(times)), float(np.min(times))
    tag = f"pytorch {torch.__version__} {a.device} width {a.width} batch {a.batch}" + (" amp" if a.amp else "") + \
        (" channels_last" if a.channels_last else "") + (" tf32" if a.tf32 else "")
    print(f"{tag}: ms/step mean {mean * 1e3:.2f} best {best * 1e3:.2f}; images/s {a.batch / mean:.1f}")
    if dev.type == "cuda":
        print(f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
