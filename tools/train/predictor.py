"""Activation predictors `score = fc2 · relu(fc1 · h)` (no biases), one per layer (per expert).

h is the residual stream after attention, before ffn_norm; neuron i is computed iff
score_i >= threshold. A "unit" is one layer (dense) or one (layer, expert) pair (MoE, trained
only on the tokens routed to that expert).
"""

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def collect(model, windows):
    """Run windows [n, T] (fp32, eval) and return per unit (H [N_u, d], M [N_u, f] bool)."""
    cfg = model.cfg
    L, E = cfg.n_layer, max(cfg.n_expert, 1)
    model.eval()
    units = [([], []) for _ in range(L * E)]
    for chunk in windows.split(32):
        hs = [[] for _ in range(L)]
        hooks = [(lambda h, l=l, hs=hs: hs[l].append(h.reshape(-1, h.shape[-1])))
                 for l in range(L)]
        probes = [[] for _ in range(L)]
        model(chunk, hooks=hooks, probes=probes)
        for l in range(L):
            h = hs[l][0]
            if cfg.n_expert:
                a, w = probes[l][0]
                a = a.reshape(-1, E, cfg.n_ff)
                w = w.reshape(-1, E)
                for e in range(E):
                    sel = w[:, e] > 0
                    units[l * E + e][0].append(h[sel])
                    units[l * E + e][1].append(a[sel, e] != 0)
            else:
                a = probes[l][0].reshape(-1, cfg.n_ff)
                units[l][0].append(h)
                units[l][1].append(a != 0)
    return [(torch.cat(h), torch.cat(m)) for h, m in units]


def pad(units):
    """Stack variable-length units into H [U, Nmax, d], M [U, Nmax, f], counts [U]."""
    n = max(h.shape[0] for h, _ in units)
    U, d, f = len(units), units[0][0].shape[1], units[0][1].shape[1]
    H = torch.zeros(U, n, d, device=units[0][0].device)
    M = torch.zeros(U, n, f, dtype=torch.bool, device=units[0][0].device)
    for u, (h, m) in enumerate(units):
        H[u, :h.shape[0]] = h
        M[u, :m.shape[0]] = m
    counts = torch.tensor([h.shape[0] for h, _ in units], device=H.device)
    return H, M, counts


def fit(units, r, steps=2000, batch=4096, lr=3e-3, seed=0):
    """Train all units at once (batched matmuls). Returns fc1 [U, r, d], fc2 [U, f, r] as
    fp16-rounded fp32 (the exported precision)."""
    H, M, counts = pad(units)
    g = torch.Generator(device=H.device).manual_seed(seed)
    U, _, d = H.shape
    f = M.shape[2]
    rms = torch.stack([h.pow(2).mean().sqrt() for h, _ in units]).clamp_min(1e-3)
    fc1 = (torch.randn(U, r, d, device=H.device, generator=g) / (math.sqrt(d) * rms[:, None, None]))
    fc2 = torch.randn(U, f, r, device=H.device, generator=g) / math.sqrt(r)
    fc1.requires_grad_()
    fc2.requires_grad_()
    p = torch.stack([m.float().mean() for _, m in units]).clamp(1e-4, 1 - 1e-4)
    pos_weight = ((1 - p) / p).sqrt()[:, None, None]  # [U, 1, 1]
    opt = torch.optim.Adam([fc1, fc2], lr=lr)
    ar = torch.arange(U, device=H.device)[:, None]
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = (torch.rand(U, batch, device=H.device, generator=g) * counts[:, None]).long()
        hb, mb = H[ar, idx], M[ar, idx].float()  # [U, B, d], [U, B, f]
        z = torch.bmm(F.relu(torch.bmm(hb, fc1.transpose(1, 2))), fc2.transpose(1, 2))
        loss = F.binary_cross_entropy_with_logits(z, mb, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return fc1.detach().half().float(), fc2.detach().half().float()


def scores(h, fc1, fc2):
    """h [N, d], fc1 [r, d], fc2 [f, r] -> [N, f]."""
    return F.relu(h @ fc1.T) @ fc2.T


@torch.no_grad()
def calibrate(units, fc1, fc2, target=0.96):
    """Per unit: the largest threshold whose recall on these tokens is >= target."""
    out = []
    for u, (h, m) in enumerate(units):
        s = scores(h, fc1[u], fc2[u])
        act = s[m]
        k = max(1, int(math.floor((1 - target) * act.numel())))
        t = act.kthvalue(k).values.item() if act.numel() else 1e30  # never-active unit
        out.append(t)
    return out


@torch.no_grad()
def measure(units, fc1, fc2, thresholds):
    """Per unit: true active fraction, predicted fraction, recall, precision."""
    rows = []
    for u, (h, m) in enumerate(units):
        pred = scores(h, fc1[u], fc2[u]) >= thresholds[u]
        tp = (pred & m).sum().item()
        n_act, n_pred = m.sum().item(), pred.sum().item()
        rows.append({
            "tokens": h.shape[0],
            "active": n_act / max(m.numel(), 1),
            "predicted": n_pred / max(m.numel(), 1),
            "recall": tp / max(n_act, 1),
            "precision": tp / max(n_pred, 1),
        })
    return rows


def choose(cfg, fit_units, calib_units, ranks, log, steps=2000):
    """Train each rank, calibrate, and per unit keep the rank with the fewest weights read per
    token: r*(n_embd + n_ff) for the predictor plus predicted*3*n_embd*n_ff for the FFN."""
    d, f = cfg.n_embd, cfg.n_ff
    best = None
    for r in ranks:
        fc1, fc2 = fit(fit_units, r, steps=steps)
        thr = calibrate(calib_units, fc1, fc2)
        stats = measure(calib_units, fc1, fc2, thr)
        cost = [r * (d + f) + s["predicted"] * 3 * d * f for s in stats]
        log(f"  rank {r}: predicted " + " ".join(f"{s['predicted']:.3f}" for s in stats))
        cand = [(cost[u], r, fc1[u], fc2[u], thr[u]) for u in range(len(stats))]
        best = cand if best is None else [min(a, b, key=lambda c: c[0]) for a, b in zip(best, cand)]
    return [{"rank": c[1], "fc1": c[2], "fc2": c[3], "threshold": c[4]} for c in best]


def mask_fn(cfg, preds, layer):
    """A callable h -> mask for Model.forward: [..., n_ff] (dense) or [..., E, n_ff] (MoE)."""
    E = max(cfg.n_expert, 1)
    mine = preds[layer * E:(layer + 1) * E]

    def fn(h):
        ms = [scores(h.float(), p["fc1"], p["fc2"]) >= p["threshold"] for p in mine]
        return torch.stack(ms, dim=-2) if cfg.n_expert else ms[0]

    return fn
