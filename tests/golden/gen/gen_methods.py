"""Golden fixtures for the MoCo and SwAV (+ Un-Mix) losses and gradients, computed in
float64 by a PyTorch transcription of the official Un-Mix code (unmix_c10.py for MoCo,
UnMix_SwAV/for_CIFAR/main_swav_unmix.py for SwAV, FIDELITY §2.5, §3.4-§3.5), at fixed lambda,
box and key permutations. Parameters, inputs and the queue come from the hash formula of
gen_models.py, so nothing large is stored. Run:
  /work/venv-torch/bin/python tests/golden/gen/gen_methods.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402
from gen_models import (SwavCifar, fill_params, grad_checksums, moco_cifar_encoder, pattern,  # noqa: E402
                        buffer_checksums, safety_ratio)

OUT = os.path.join(os.path.dirname(__file__), "..")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
N, S, K, DIM, T, M = 8, 32, 32, 128, 0.1, 0.99
MOCO_WIDTH, SWAV_WIDTH, SWAV_BS = 16, 4, 2  # narrow nets: well-conditioned float32 gradients (see gen_models)
SW = 32  # SwAV fixture image size


def images(n, size, stream):
    return torch.from_numpy(pattern(n * 3 * size * size, stream, 1.5).reshape(n, 3, size, size)).double()


def mix(x, glob, lam, box):
    if glob:
        return lam * x + (1 - lam) * torch.flip(x, (0,))
    r0, r1, c0, c1 = box
    m = x.clone()
    m[:, :, r0:r1, c0:c1] = torch.flip(x, (0,))[:, :, r0:r1, c0:c1]
    return m


def rand_bbox(size, lam, cx, cy):
    """utils.py of the reference (np.int = trunc)."""
    W, H = size[2], size[3]
    cut_rat = np.sqrt(1.0 - lam)
    cut_w, cut_h = int(W * cut_rat), int(H * cut_rat)
    bbx1 = int(np.clip(cx - cut_w // 2, 0, W)); bby1 = int(np.clip(cy - cut_h // 2, 0, H))
    bbx2 = int(np.clip(cx + cut_w // 2, 0, W)); bby2 = int(np.clip(cy + cut_h // 2, 0, H))
    lam2 = 1 - ((bbx2 - bbx1) * (bby2 - bby1) / (size[-1] * size[-2]))
    return (bbx1, bbx2, bby1, bby2), lam2


def relu_margin(model, batches):
    """Smallest |ReLU input| over forward passes of `batches` (float64)."""
    vals = []
    hooks = [mod.register_forward_pre_hook(lambda mod, inp: vals.append(inp[0].detach().abs().min().item()))
             for mod in model.modules() if isinstance(mod, torch.nn.ReLU)]
    with torch.no_grad():
        for b in batches:
            model(b)
    for h in hooks:
        h.remove()
    return min(vals)


def outside_tolerance(a, b, numel):
    """How many tensors' gradient sums of a (float32 run) miss b (float64) by more than the
    C test's tolerance (tests/support/golden.c): the fixture's conditioning certificate;
    0 means a correct float32 implementation can pass it."""
    s32, ss32, _ = a
    s64, ss64, _ = b
    floor = 1e-5 * np.sqrt(ss64.sum() / numel.sum())
    tol = 1e-3 * np.abs(s64) + 1e-3 * np.sqrt(ss64) + floor * np.sqrt(numel)
    return int((np.abs(s32 - s64) > tol).sum())


def numels(model):
    return np.array([p.numel() for p in model.parameters()], dtype=np.float64)


def fill_key_encoder(k):
    """Key encoder parameters differ from the query's (stream offset 500) so the EMA shows."""
    with torch.no_grad():
        for t, (name, p) in enumerate(k.named_parameters()):
            fan_in = int(np.prod(p.shape[1:])) if p.dim() > 1 else 1
            amp = np.sqrt(6.0 / fan_in) if p.dim() > 1 else 0.1
            off = 1.0 if (p.dim() == 1 and name.endswith("weight") and ("bn" in name or "downsample.1" in name)) else 0.0
            p.copy_(torch.from_numpy(pattern(p.numel(), 500 + t, amp * (0.2 if off else 1.0), off).reshape(p.shape)))


def moco_fixture(name, symmetric, unmix, glob, lam_drawn, cx, cy, perms):
    """Chooses the input streams with the largest ReLU margin, then writes the fixture."""
    best = None
    for c in range(16):
        st = (9100 + 2 * c, 9101 + 2 * c)
        im1 = images(N, S, st[0])
        box, lam = (0, 0, 0, 0), lam_drawn
        if unmix and not glob:
            box, lam = rand_bbox((N, 3, S, S), lam_drawn, cx, cy)
        batches = [im1, images(N, S, st[1])] + ([mix(im1, glob, lam, box)] if unmix else [])
        r = safety_ratio(lambda: moco_cifar_encoder(4, MOCO_WIDTH), batches)
        if best is None or r > best[0]:
            best = (r, st)
    r32 = moco_run(symmetric, unmix, glob, lam_drawn, cx, cy, perms, best[1], torch.float32)
    r64 = moco_run(symmetric, unmix, glob, lam_drawn, cx, cy, perms, best[1], torch.float64)
    entries, info = r64
    entries = {k: v for k, v in entries.items() if k != "grads"}
    entries["streams"] = np.array(best[1], dtype=np.int32)
    entries["width"] = np.array([MOCO_WIDTH if name.startswith("moco") else SWAV_WIDTH], dtype=np.int32)
    write_fixture(os.path.join(OUT, f"method_{name}.bin"), entries)
    print(f"{name}: {info}; ReLU safety ratio {best[0]:.1f}; torch float32 outside tolerance: "
          f"{outside_tolerance(r32[0]['grads'], r64[0]['grads'], numels(moco_cifar_encoder(4, MOCO_WIDTH)))} tensors")


def moco_run(symmetric, unmix, glob, lam_drawn, cx, cy, perms, streams, dtype):
    q_enc = moco_cifar_encoder(4, MOCO_WIDTH).to(dtype)
    k_enc = moco_cifar_encoder(4, MOCO_WIDTH).to(dtype)
    fill_params(q_enc)
    fill_params(k_enc)  # buffers as the formula; parameters overwritten below
    fill_key_encoder(k_enc)
    q_enc.train(True)
    k_enc.train(True)
    queue = torch.from_numpy(pattern(K * DIM, 9000, 1.0).reshape(K, DIM)).double()
    queue = F.normalize(queue, dim=1).to(dtype)  # rows are keys (the reference's columns)
    im1, im2 = images(N, S, streams[0]).to(dtype), images(N, S, streams[1]).to(dtype)
    box, lam = (0, 0, 0, 0), lam_drawn
    if unmix and not glob:
        box, lam = rand_bbox((N, 3, S, S), lam_drawn, cx, cy)
    mixed = mix(im1, glob, lam, box) if unmix else None
    # 1. momentum update
    with torch.no_grad():
        for pk, pq in zip(k_enc.parameters(), q_enc.parameters()):
            pk.data = pk.data * M + pq.data * (1.0 - M)
    ce = torch.nn.CrossEntropyLoss()

    def contrastive_loss(im_q, im_k, perm):
        q = F.normalize(q_enc(im_q), dim=1)
        if unmix:
            qm_raw = q_enc(mixed)
            qmf = F.normalize(torch.flip(qm_raw, (0,)), dim=1)
            qm = F.normalize(qm_raw, dim=1)
        with torch.no_grad():
            idx_unshuffle = torch.argsort(perm)
            k = F.normalize(k_enc(im_k[perm]), dim=1)[idx_unshuffle]

        def one(u):
            logits = torch.cat([(u * k).sum(1, keepdim=True), u @ queue.t()], dim=1) / T
            return ce(logits, torch.zeros(N, dtype=torch.long))
        ls = [one(q)]
        if unmix:
            ls += [one(qm), one(qmf)]
        else:
            ls += [torch.zeros((), dtype=dtype)] * 2
        return ls, k

    (l_a, lm_a, lmf_a), k2 = contrastive_loss(im1, im2, perms[0])
    if symmetric:
        (l_b, lm_b, lmf_b), k1 = contrastive_loss(im2, im1, perms[1])
        loss = l_a + l_b + lam * (lm_a + lm_b) + (1 - lam) * (lmf_a + lmf_b)
        keys = torch.cat([k1, k2], dim=0)
    else:
        l_b = lm_b = lmf_b = torch.zeros((), dtype=dtype)
        loss = l_a + lam * lm_a + (1 - lam) * lmf_a
        keys = k2
    q_enc.zero_grad()
    loss.backward()
    new_queue = queue.clone()
    new_queue[0:keys.shape[0]] = keys
    s, ss, smp = grad_checksums(q_enc)
    bq, _ = buffer_checksums(q_enc)
    bk, _ = buffer_checksums(k_enc)
    kp = np.array([p.detach().double().sum().item() for p in k_enc.parameters()])
    entries = {
        "symmetric": np.array([int(symmetric)], dtype=np.int32), "unmix": np.array([int(unmix)], dtype=np.int32),
        "global": np.array([int(glob)], dtype=np.int32), "lam": np.array([lam]),
        "box": np.array(box, dtype=np.int32), "perm_a": perms[0].numpy().astype(np.int32),
        "perm_b": perms[1].numpy().astype(np.int32),
        "losses": np.array([t.item() for t in (l_a, lm_a, lmf_a, l_b, lm_b, lmf_b, loss)]),
        "grad_sum": s, "grad_sumsq": ss, "grad_samples": smp, "q_buf_sum": bq, "k_buf_sum": bk,
        "k_param_sum": kp, "queue_after": new_queue.float().numpy()}
    entries["grads"] = (s, ss, smp)
    return entries, f"loss {loss.item():.6f} lam {lam} box {box}"


def sinkhorn_ref(out, eps, iters):
    """The old SwAV distributed_sinkhorn at world size 1 (FIDELITY §3.5)."""
    Q = torch.exp(out / eps).t()
    Q /= torch.sum(Q)
    Kp, B = Q.shape
    r, c = torch.ones(Kp, dtype=Q.dtype) / Kp, torch.ones(B, dtype=Q.dtype) / B
    for _ in range(iters):
        u = torch.sum(Q, dim=1)
        Q *= (r / u).unsqueeze(1)
        Q *= (c / torch.sum(Q, dim=0)).unsqueeze(0)
    return (Q / torch.sum(Q, dim=0, keepdim=True)).t()


def swav_fixture(name, unmix, glob, lam_drawn, cx, cy, paper):
    best = None
    for c in range(40):
        st = (9300 + 2 * c, 9301 + 2 * c)
        x0 = images(SWAV_BS, SW, st[0])
        box, lam = (0, 0, 0, 0), lam_drawn
        if unmix and not glob:
            box, lam = rand_bbox((SWAV_BS, 3, SW, SW), lam_drawn, cx, cy)
        batch = torch.cat([x0, images(SWAV_BS, SW, st[1])] + ([mix(x0, glob, lam, box)] if unmix else []))
        r = safety_ratio(lambda: SwavCifar(SWAV_WIDTH), [batch], lambda y: y[1])
        if best is None or r > best[0]:
            best = (r, st)
    r32 = swav_run(unmix, glob, lam_drawn, cx, cy, paper, best[1], torch.float32)
    r64 = swav_run(unmix, glob, lam_drawn, cx, cy, paper, best[1], torch.float64)
    entries, info = r64
    entries = {k: v for k, v in entries.items() if k != "grads"}
    entries["streams"] = np.array(best[1], dtype=np.int32)
    entries["width"] = np.array([MOCO_WIDTH if name.startswith("moco") else SWAV_WIDTH], dtype=np.int32)
    write_fixture(os.path.join(OUT, f"method_{name}.bin"), entries)
    print(f"{name}: {info}; ReLU safety ratio {best[0]:.1f}; torch float32 outside tolerance: "
          f"{outside_tolerance(r32[0]['grads'], r64[0]['grads'], numels(SwavCifar(SWAV_WIDTH)))} tensors; "
          f"dscores f32 rel err {np.abs(r32[0]['dscores'] - r64[0]['dscores']).max() / np.abs(r64[0]['dscores']).max():.2e}")


def swav_run(unmix, glob, lam_drawn, cx, cy, paper, streams, dtype):
    bs, P, eps, temp = SWAV_BS, 100, 0.05, 0.1
    model = SwavCifar(SWAV_WIDTH).to(dtype)
    fill_params(model)
    model.train(True)
    with torch.no_grad():
        model.prototypes.weight.copy_(F.normalize(model.prototypes.weight, dim=1, p=2))
    x0, x1 = images(bs, SW, streams[0]).to(dtype), images(bs, SW, streams[1]).to(dtype)
    box, lam = (0, 0, 0, 0), lam_drawn
    if unmix and not glob:
        box, lam = rand_bbox((bs, 3, SW, SW), lam_drawn, cx, cy)
    inputs = [x0, x1] + ([mix(x0, glob, lam, box)] if unmix else [])
    _, scores = model(torch.cat(inputs))
    scores.retain_grad()
    z = [scores[i * bs:(i + 1) * bs] for i in range(len(inputs))]

    def swav_loss(crops, reverse):
        loss = 0
        for crop_id in (0, 1):
            with torch.no_grad():
                out = crops[crop_id].detach()
                if reverse and crop_id == 0:
                    out = torch.flip(out, (0,))
                q = sinkhorn_ref(out, eps, 3)
            subloss = 0
            for v in range(len(crops)):
                if v == crop_id:
                    continue
                pred = crops[v]
                if paper and reverse and v == 0:
                    pred = torch.flip(pred, (0,))
                subloss -= torch.mean(torch.sum(q * F.log_softmax(pred / temp, dim=1), dim=1))
            loss += subloss / (len(crops) - 1)
        return loss / 2

    l0 = swav_loss([z[0], z[1]], False)
    l1 = swav_loss([z[2], z[1]], False) if unmix else torch.zeros((), dtype=dtype)
    l2 = swav_loss([z[2], z[1]], True) if unmix else torch.zeros((), dtype=dtype)
    loss = l0 + lam * l1 + (1 - lam) * l2
    model.zero_grad()
    loss.backward()
    # d loss / d scores is the method's own gradient; all parameter gradients are compared too.
    s, ss, smp = grad_checksums(model)
    entries = {
        "dscores": scores.grad.detach().numpy().astype(np.float64), "bs": np.array([SWAV_BS], dtype=np.int32),
        "unmix": np.array([int(unmix)], dtype=np.int32), "global": np.array([int(glob)], dtype=np.int32),
        "paper": np.array([int(paper)], dtype=np.int32), "lam": np.array([lam]),
        "box": np.array(box, dtype=np.int32), "losses": np.array([l0.item(), l1.item(), l2.item(), loss.item()]),
        "grad_sum": s, "grad_sumsq": ss, "grad_samples": smp}
    entries["grads"] = (s, ss, smp)
    return entries, f"loss {loss.item():.6f} lam {lam} box {box}"


def sinkhorn_fixture():
    scores = torch.from_numpy(pattern(13 * 7, 9500, 1.0).reshape(13, 7)).double()
    write_fixture(os.path.join(OUT, "sinkhorn.bin"), {"scores": scores.float().numpy(),
                                                      "q": sinkhorn_ref(scores.float().double(), 0.05, 3).numpy()})


def main():
    only_swav = "--swav" in sys.argv
    if only_swav:
        for args in SWAV_CASES:
            swav_fixture(*args)
        return
    g = torch.Generator().manual_seed(3)
    perms = (torch.randperm(N, generator=g), torch.randperm(N, generator=g))
    moco_fixture("moco_sym_global", True, True, True, 0.3, 0, 0, perms)
    moco_fixture("moco_sym_region", True, True, False, 0.3, 5, 20, perms)  # the FIDELITY §1.3 example box
    moco_fixture("moco_asym_global", False, True, True, 0.7, 0, 0, perms)
    moco_fixture("moco_asym_region", False, True, False, 0.5, 30, 2, perms)
    moco_fixture("moco_sym_nomix", True, False, True, 1.0, 0, 0, perms)
    for args in SWAV_CASES:
        swav_fixture(*args)
    sinkhorn_fixture()


SWAV_CASES = [("swav_nomix", False, True, 1.0, 0, 0, False),
              ("swav_global", True, True, 0.4, 0, 0, False),
              ("swav_region", True, False, 0.3, 5, 20, False),
              ("swav_region_paper", True, False, 0.3, 5, 20, True)]


if __name__ == "__main__":
    main()
