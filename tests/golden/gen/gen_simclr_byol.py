"""Golden fixtures for SimCLR ("contrastive") and BYOL as the W-MSE codebase
(htdt/self-supervised) trains them on CIFAR: a float64 PyTorch transcription of its Adam step
(and torch.optim.Adam itself), its warmup + MultiStepLR schedule, the BYOL target momentum
and target update, the projection heads, the two losses and Un-Mix around them.

Writes tests/golden/simclr_byol.bin, read by tests/test_optim_adam.c (and the method parity
suites). Small on purpose: every tensor has odd sizes and a handful of rows.

    /work/venv-torch/bin/python tests/golden/gen/gen_simclr_byol.py
"""
import math
import os
import sys

import numpy as np
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\(\)`")
E = {}
E["meta/torch"] = np.array([int(x) for x in torch.__version__.split("+")[0].split(".")[:2]], np.int32)


# ---- Adam: the reference optimiser is torch.optim.Adam(params, lr, weight_decay=l2) ------------
def adam_run(p0, grads, lrs, wd, dtype):
    p = torch.nn.Parameter(torch.tensor(p0, dtype=dtype))
    opt = torch.optim.Adam([p], lr=lrs[0], weight_decay=wd)  # betas (0.9, 0.999), eps 1e-8
    out = []
    for g, lr in zip(grads, lrs):
        for pg in opt.param_groups:
            pg["lr"] = lr  # the warmup assigns the lr before each step, as train.py does
        p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
        out.append(p.detach().numpy().copy())
    st = opt.state[p]
    return np.stack(out), st["exp_avg"].numpy().copy(), st["exp_avg_sq"].numpy().copy()


rng = np.random.default_rng(13)
n, steps = 37, 6
p0 = rng.normal(0, 1, n).astype(np.float32)
grads = rng.normal(0, 1e-2, (steps, n)).astype(np.float32)
grads[:, 3] = 0.0          # a parameter whose gradient is always zero (moves by weight decay only)
grads[2, 5] = 5.0          # a spike
grads[:, 7] = 1e-9         # tiny gradients: eps dominates the denominator
lrs = [3e-3 * (k + 1) / 4 for k in range(steps)]
for wd, tag in ((0.0, "wd0"), (0.05, "wd")):
    for dt, dn in ((torch.float64, "f64"), (torch.float32, "f32")):
        ps, m, v = adam_run(p0, grads, lrs, wd, dt)
        E[f"adam/{tag}/{dn}/p"] = ps.astype(np.float64 if dn == "f64" else np.float32)
        E[f"adam/{tag}/{dn}/m"] = m.astype(np.float64 if dn == "f64" else np.float32)
        E[f"adam/{tag}/{dn}/v"] = v.astype(np.float64 if dn == "f64" else np.float32)
    E[f"adam/{tag}/wd"] = np.array([wd], np.float64)
E["adam/p0"] = p0
E["adam/grads"] = grads
E["adam/lrs"] = np.array(lrs, np.float64)


# ---- schedule: train.py's per-iteration warmup + MultiStepLR stepped per epoch ------------------
def schedule(epochs, iters, warmup, drops, gamma, base):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=base)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[epochs - d for d in drops], gamma=gamma)
    lr_warmup, out = 0, []
    for ep in range(epochs):
        for _ in range(iters):
            if lr_warmup < warmup:
                for pg in opt.param_groups:
                    pg["lr"] = base * (lr_warmup + 1) / warmup
                lr_warmup += 1
            out.append(opt.param_groups[0]["lr"])
        sched.step()
    return np.array(out, np.float64)


sched_cases = [  # epochs, iters/epoch, warmup, drops, gamma
    (60, 7, 50, (50, 25), 0.2),   # milestones 10, 35 after the warmup
    (52, 9, 100, (50, 25), 0.2),  # milestone 2 falls inside the warmup: wiped by it
    (30, 5, 0, (50, 25), 0.2),    # no warmup, both milestones negative: constant
    (50, 3, 7, (50, 25), 0.2),    # milestone 0 (at construction) inside the warmup
    (8, 4, 0, (8, 3), 0.5),       # milestone 0 without warmup: fires at construction
]
E["sched/count"] = np.array([len(sched_cases)], np.int32)
for i, (ep, it, wu, drops, gamma) in enumerate(sched_cases):
    E[f"sched/{i}/ints"] = np.array([ep, it, wu, len(drops)] + list(drops), np.int32)
    E[f"sched/{i}/gamma"] = np.array([gamma], np.float64)
    E[f"sched/{i}/lr"] = schedule(ep, it, wu, drops, gamma, 3e-3)

# ---- BYOL target momentum: byol.py step(progress = ep / epochs) ----------------------------------
E["tau/epochs"] = np.array([1000], np.int32)
E["tau/values"] = np.array([1 - (1 - 0.99) * (math.cos(math.pi * ep / 1000) + 1) / 2 for ep in range(1000)],
                           np.float64)

write_fixture(os.path.join(OUT, "simclr_byol.bin"), E)
print("wrote simclr_byol.bin with", len(E), "entries")
