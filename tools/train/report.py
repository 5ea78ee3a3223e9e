"""Measurements for docs/sparsity.md: per-layer activation sparsity, text samples, the plot."""

import torch

# |act| below these counts as zero for SwiGLU (which has no exact zeros); ReLU-family
# activations are counted as exactly zero.
EPS = (1e-3, 1e-2, 1e-1)


@torch.no_grad()
def layer_sparsity(model, x) -> list:
    """Per layer: fraction of FFN activations exactly 0 and below each EPS, over the windows
    x [n, T]; MoE counts only (token, expert) pairs the router chose."""
    cfg = model.cfg
    model.eval()
    zero = [0.0] * cfg.n_layer
    small = [[0.0] * len(EPS) for _ in range(cfg.n_layer)]
    total = [0.0] * cfg.n_layer
    for chunk in x.split(32):
        probes = [[] for _ in range(cfg.n_layer)]
        model(chunk, probes=probes)
        for l in range(cfg.n_layer):
            if cfg.n_expert:
                a, w = probes[l][0]
                a = a[w > 0]  # [pairs, n_ff]
            else:
                a = probes[l][0].reshape(-1, cfg.n_ff)
            zero[l] += (a == 0).sum().item()
            for j, eps in enumerate(EPS):
                small[l][j] += (a.abs() < eps).sum().item()
            total[l] += a.numel()
    return [{"zero": zero[l] / total[l],
             **{f"abs_below_{eps:g}": small[l][j] / total[l] for j, eps in enumerate(EPS)}}
            for l in range(cfg.n_layer)]


@torch.no_grad()
def sample(model, sp, prompt: str, n: int = 80, temperature: float = 0.8, top_k: int = 40,
           seed: int = 0) -> str:
    """Plain sampling without a KV cache (the models are tiny)."""
    model.eval()
    dev = next(model.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    ids = [1] + sp.encode(prompt)
    for _ in range(n):
        x = torch.tensor([ids[-model.cfg.n_ctx:]], device=dev)
        logits = model(x)[0, -1].float() / temperature
        v, i = logits.topk(top_k)
        nxt = i[torch.multinomial(torch.softmax(v, -1), 1, generator=g)].item()
        if nxt == 2:
            break
        ids.append(nxt)
    return sp.decode(ids[1:])


def plot(results: dict, path: str):
    """Sparsity per layer for each FFN kind (SwiGLU at |act| < 0.01)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in results.items():
        if "sparsity" not in r:
            continue
        kind = r["config"]["ffn"]
        key = "abs_below_0.01" if kind == "swiglu" else "zero"
        ys = [100 * s[key] for s in r["sparsity"]]
        label = f"{name} ({'|act|<0.01' if kind == 'swiglu' else 'exact zeros'})"
        ax.plot(range(len(ys)), ys, marker="o", label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel("FFN activation sparsity (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Activation sparsity per layer (validation tokens)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
