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

# ---- evaluation: eval/knn.py (cdist, topk smallest 5, unique + argmax) --------------------------
def knn_reference(xb, yb, xq, k=5):
    d = torch.cdist(torch.tensor(xq, dtype=torch.float64), torch.tensor(xb, dtype=torch.float64))
    top = torch.topk(d, k=k, dim=1, largest=False)
    srt = torch.sort(d, dim=1).values
    assert (srt[:, k] - srt[:, k - 1]).min() > 1e-4, "near-tie at the k-th neighbour: change the seed"
    labels = torch.tensor(yb)[top.indices]
    pred = []
    for row in labels:
        u, c = row.unique(return_counts=True)
        pred.append(int(u[c.argmax()]))
    return np.array(pred, np.int32)


krng = np.random.default_rng(55)
nb_, nq_, d_, c_ = 41, 23, 7, 6
centers = krng.normal(0, 2.0, (c_, d_))
yb = krng.integers(0, c_, nb_).astype(np.int32)
xb = (centers[yb] + krng.normal(0, 1.5, (nb_, d_))).astype(np.float32)
yq = krng.integers(0, c_, nq_).astype(np.int32)
xq = (centers[yq] + krng.normal(0, 1.5, (nq_, d_))).astype(np.float32)
E["knn/bank"], E["knn/bank_labels"], E["knn/queries"], E["knn/query_labels"] = xb, yb, xq, yq
E["knn/classes"] = np.array([c_], np.int32)
E["knn/pred"] = knn_reference(xb.astype(np.float64), yb, xq.astype(np.float64))


# ---- evaluation: eval/sgd.py (Adam 1e-2, wd 5e-6, ExponentialLR to 1e-6), full batch in float64 ------
def linear_reference(x, y, xt, w0, b0, epochs, lr0=1e-2, lr1=1e-6, wd=5e-6):
    clf = torch.nn.Linear(x.shape[1], w0.shape[0]).double()
    with torch.no_grad():
        clf.weight.copy_(torch.tensor(w0, dtype=torch.float64))
        clf.bias.copy_(torch.tensor(b0, dtype=torch.float64))
    opt = torch.optim.Adam(clf.parameters(), lr=lr0, weight_decay=wd)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(lr1 / lr0) ** (1 / epochs))
    X, Y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.long)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(clf(X), Y).backward()  # one batch = all rows: order-free
        opt.step()
        sched.step()
    with torch.no_grad():
        logits = clf(torch.tensor(xt, dtype=torch.float64))
    top5 = logits.topk(min(5, logits.shape[1]), 1).indices
    return (clf.weight.detach().numpy().copy(), clf.bias.detach().numpy().copy(), logits.argmax(1).numpy(),
            top5.numpy())


lrng = np.random.default_rng(77)
n_, m_, d_, c_, ep_ = 60, 17, 7, 4, 30
cen = lrng.normal(0, 1.0, (c_, d_))
y = lrng.integers(0, c_, n_).astype(np.int32)
x = (cen[y] + lrng.normal(0, 1.2, (n_, d_))).astype(np.float32)
yt = lrng.integers(0, c_, m_).astype(np.int32)
xt = (cen[yt] + lrng.normal(0, 1.2, (m_, d_))).astype(np.float32)
w0 = lrng.uniform(-1 / np.sqrt(d_), 1 / np.sqrt(d_), (c_, d_)).astype(np.float32)
b0 = lrng.uniform(-1 / np.sqrt(d_), 1 / np.sqrt(d_), c_).astype(np.float32)
w, b, pred, top5 = linear_reference(x, y, xt, w0, b0, ep_)
E["lin/x"], E["lin/y"], E["lin/xt"], E["lin/yt"], E["lin/w0"], E["lin/b0"] = x, y, xt, yt, w0, b0
E["lin/ints"] = np.array([n_, m_, d_, c_, ep_], np.int32)
E["lin/w"], E["lin/b"] = w, b
E["lin/top1"] = np.array([100.0 * np.mean(pred == yt)], np.float64)
E["lin/top5"] = np.array([100.0 * np.mean((top5 == yt[:, None]).any(1))], np.float64)

write_fixture(os.path.join(OUT, "simclr_byol.bin"), E)
print("wrote simclr_byol.bin with", len(E), "entries")
