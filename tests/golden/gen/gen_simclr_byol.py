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

# ---- losses: methods/contrastive.py contrastive_loss (norm=True) and methods/norm_mse.py -------------
def contrastive_loss(x0, x1, tau):
    bsize = x0.shape[0]
    target = torch.arange(bsize)
    eye_mask = torch.eye(bsize, dtype=x0.dtype) * 1e9
    x0 = torch.nn.functional.normalize(x0, p=2, dim=1)
    x1 = torch.nn.functional.normalize(x1, p=2, dim=1)
    logits00 = x0 @ x0.t() / tau - eye_mask
    logits11 = x1 @ x1.t() / tau - eye_mask
    logits01 = x0 @ x1.t() / tau
    logits10 = x1 @ x0.t() / tau
    ce = torch.nn.functional.cross_entropy
    return (ce(torch.cat([logits01, logits00], dim=1), target) + ce(torch.cat([logits10, logits11], dim=1), target)) / 2


def norm_mse_loss(x0, x1):
    x0 = torch.nn.functional.normalize(x0, dim=-1)
    x1 = torch.nn.functional.normalize(x1, dim=-1)
    return 2 - 2 * (x0 * x1).sum(dim=-1).mean()


lossrng = np.random.default_rng(91)
for tag, (n, d) in {"a": (6, 5), "b": (2, 9), "c": (13, 64)}.items():
    z0 = torch.tensor(lossrng.normal(0, 1, (n, d)).astype(np.float32), dtype=torch.float64, requires_grad=True)
    z1 = torch.tensor(lossrng.normal(0, 1, (n, d)).astype(np.float32), dtype=torch.float64, requires_grad=True)
    loss = contrastive_loss(z0, z1, 0.5)
    loss.backward()
    E[f"ntxent/{tag}/z0"], E[f"ntxent/{tag}/z1"] = z0.detach().numpy().astype(np.float32), z1.detach().numpy().astype(np.float32)
    E[f"ntxent/{tag}/loss"] = np.array([loss.item()], np.float64)
    E[f"ntxent/{tag}/dz0"], E[f"ntxent/{tag}/dz1"] = z0.grad.numpy().copy(), z1.grad.numpy().copy()
    # BYOL: loss = nmse(p0, t1) + nmse(p1, t0), gradients reach p only
    p0 = torch.tensor(lossrng.normal(0, 1, (n, d)).astype(np.float32), dtype=torch.float64, requires_grad=True)
    p1 = torch.tensor(lossrng.normal(0, 1, (n, d)).astype(np.float32), dtype=torch.float64, requires_grad=True)
    t0 = torch.tensor(lossrng.normal(0, 1, (n, d)).astype(np.float32), dtype=torch.float64)
    t1 = torch.tensor(lossrng.normal(0, 1, (n, d)).astype(np.float32), dtype=torch.float64)
    loss = norm_mse_loss(p0, t1) + norm_mse_loss(p1, t0)
    loss.backward()
    for k, v in {"p0": p0, "p1": p1, "t0": t0, "t1": t1}.items():
        E[f"nmse/{tag}/{k}"] = v.detach().numpy().astype(np.float32)
    E[f"nmse/{tag}/loss"] = np.array([loss.item()], np.float64)
    E[f"nmse/{tag}/dp0"], E[f"nmse/{tag}/dp1"] = p0.grad.numpy().copy(), p1.grad.numpy().copy()

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

# ---- whole steps: encoder (gen_models' CIFAR ResNet-18 at width 4) + heads + loss + Un-Mix ---------
# Parameters come from the hash formula shared with tests/support/golden.c (encoder) and the one
# below (heads), so only the results are stored. Float64 throughout (the C side runs float32).
from gen_methods import images, mix, rand_bbox  # noqa: E402
from gen_models import buffer_checksums, fill_params, grad_checksums, moco_cifar_encoder, pattern  # noqa: E402

SW, SN, SH, SD = 4, 6, 16, 8  # width, batch, head hidden, embedding dim


def fill_head(mods, base):
    """Head stores: tensor t (registration order) = pattern(numel, base + t, amp) with amp
    sqrt(6/fan_in) for weights, (0.2, offset 1) for BN weights, 0.1 for biases."""
    t = 0
    with torch.no_grad():
        for mod in mods:
            for name, p in mod.named_parameters():
                n = p.numel()
                if p.dim() == 2:
                    v = pattern(n, base + t, math.sqrt(6.0 / p.shape[1]))
                elif isinstance(mod, torch.nn.BatchNorm1d) and name == "weight":
                    v = pattern(n, base + t, 0.2, 1.0)
                else:
                    v = pattern(n, base + t, 0.1)
                p.copy_(torch.from_numpy(v.astype(np.float64)).reshape(p.shape))
                t += 1


def mlp(fin, hidden, out):
    return torch.nn.Sequential(torch.nn.Linear(fin, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, out)).double()


def encoder():
    enc = moco_cifar_encoder(1, SW).double()
    enc.fc = torch.nn.Identity()
    fill_params(enc)
    enc.train()
    return enc


def layer_mods(seq):
    return [m for m in seq if len(list(m.parameters()))]


def step_case(method, unmix, glob, lam_drawn, cx, cy, mix_target=True):
    x0, x1 = images(SN, 32, 7100).double(), images(SN, 32, 7101).double()
    enc = encoder()
    feat = 8 * SW
    head = mlp(feat, SH, SD)
    mods = layer_mods(head)
    bn_last = torch.nn.BatchNorm1d(SD).double() if method == "simclr" else None
    fill_head(mods + ([bn_last] if bn_last is not None else []), 3000)
    pred = tgt = head_t = None
    if method == "byol":
        pred = mlp(SD, SH, SD)
        fill_head(layer_mods(pred), 4000)
        tgt = encoder()
        head_t = mlp(feat, SH, SD)
        with torch.no_grad():
            for a, b in zip(list(tgt.parameters()) + list(head_t.parameters()),
                            list(enc.parameters()) + list(head.parameters())):
                a.copy_(b)

    def fwd(a, b, online_only=False):
        if method == "simclr":
            z = bn_last(head(torch.cat([enc(a), enc(b)])))
            return contrastive_loss(z[:SN], z[SN:], 0.5)
        if online_only:  # loss(x1, mixed) through the online branch only: nmse(p(mixed), t(x1))
            p = pred(head(enc(b)))
            with torch.no_grad():
                t = head_t(tgt(a))
            return norm_mse_loss(p, t)
        p = [pred(head(enc(x))) for x in (a, b)]
        with torch.no_grad():
            t = [head_t(tgt(x)) for x in (a, b)]
        return norm_mse_loss(p[0], t[1]) + norm_mse_loss(p[1], t[0])

    box, lam = (0, 0, 0, 0), lam_drawn
    if unmix and not glob:
        box, lam = rand_bbox((SN, 3, 32, 32), lam_drawn, cx, cy)
    l0 = fwd(x0, x1)
    l1 = l2 = torch.zeros((), dtype=torch.float64)
    if unmix:
        mixed = mix(x0, glob, lam, box)
        l1 = fwd(x1, mixed, not mix_target)
        l2 = fwd(x1, torch.flip(mixed, (0,)), not mix_target)
    total = l0 + lam * l1 + (1 - lam) * l2
    total.backward()
    name = f"method_{method}_{'nomix' if not unmix else ('global' if glob else 'region')}{'' if mix_target else '_online'}"
    F = {"dims": np.array([SW, SN, SH, SD], np.int32)}
    F["draw"] = np.array([1 if glob else 0, lam_drawn, lam, cx, cy] + list(box), np.float64)
    F["loss"] = np.array([total.item(), l0.item(), l1.item(), l2.item()], np.float64)
    s, sq, smp = grad_checksums(enc)
    F["grad_sum"], F["grad_sumsq"], F["grad_samples"] = s, sq, smp
    F["buffer_sums"] = buffer_checksums(enc)[0]
    heads = mods + ([bn_last] if bn_last is not None else [])
    F["head_grad"] = np.concatenate([p.grad.numpy().ravel() for m in heads for p in m.parameters()])
    F["head_buffers"] = np.concatenate(
        [b.numpy().ravel() for m in heads for n_, b in m.named_buffers() if not n_.endswith("tracked")])
    if pred is not None:
        F["pred_grad"] = np.concatenate([p.grad.numpy().ravel() for m in layer_mods(pred) for p in m.parameters()])
    write_fixture(os.path.join(OUT, name + ".bin"), F)
    print("wrote", name + ".bin")


for meth in ("simclr", "byol"):
    step_case(meth, False, True, 0.0, 0, 0)
    step_case(meth, True, True, 0.3, 0, 0)
    step_case(meth, True, False, 0.6, 11, 20)
step_case("byol", True, True, 0.3, 0, 0, mix_target=False)

write_fixture(os.path.join(OUT, "simclr_byol.bin"), E)
print("wrote simclr_byol.bin with", len(E), "entries")
