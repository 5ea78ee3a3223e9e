"""Mistral-style decoder with a choice of FFN: SwiGLU, ReGLU, dReLU, or top-k dReLU experts.

Semantics match the runtime (and llama.cpp):
  - RMSNorm with eps 1e-5, no biases anywhere, tied input/output embeddings.
  - RoPE rotates ADJACENT pairs (x[2i], x[2i+1]) by pos * base^(-2i/head_dim) (llama.cpp's
    "normal" mode), so export needs no Q/K permutation.
  - GQA: query head h reads kv head h // (n_head / n_kv).
  - dReLU FFN: down(relu(x W_gate^T) * relu(x W_up^T)); neuron i is active iff both are > 0.
  - MoE: softmax over router logits, top-k, renormalised weights (Mixtral).
"""

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    name: str
    ffn: str  # "swiglu" | "reglu" | "drelu"
    n_vocab: int = 4096
    n_ctx: int = 512
    n_embd: int = 320
    n_layer: int = 6
    n_head: int = 10
    n_kv: int = 2
    n_ff: int = 1280  # per expert when n_expert > 0
    n_expert: int = 0
    n_expert_used: int = 0
    rope_base: float = 10000.0
    eps: float = 1e-5
    dropout: float = 0.1

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))  # [n]

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def rope_tables(cfg: Config, device):
    """cos, sin [n_ctx, head_dim/2] for adjacent-pair rotation."""
    hd = cfg.head_dim
    inv = cfg.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64, device=device) / hd)
    ang = torch.arange(cfg.n_ctx, dtype=torch.float64, device=device)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x [B, T, H, hd]; rotate pairs (x[2i], x[2i+1])."""
    T = x.shape[1]
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[:T][None, :, None, :], sin[:T][None, :, None, :]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return out.reshape(x.shape).to(x.dtype)


def attend(q, k, v):
    """Causal softmax attention, [B, H, T, hd]; the plain twin runs where PyTorch < 2.0."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), -math.inf)
    return torch.softmax(s.float(), -1).to(v.dtype) @ v


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.wq = nn.Linear(cfg.n_embd, cfg.n_head * hd, bias=False)  # [n_head*hd, n_embd]
        self.wk = nn.Linear(cfg.n_embd, cfg.n_kv * hd, bias=False)  # [n_kv*hd, n_embd]
        self.wv = nn.Linear(cfg.n_embd, cfg.n_kv * hd, bias=False)  # [n_kv*hd, n_embd]
        self.wo = nn.Linear(cfg.n_head * hd, cfg.n_embd, bias=False)  # [n_embd, n_head*hd]

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        c = self.cfg
        q = apply_rope(self.wq(x).view(B, T, c.n_head, c.head_dim), cos, sin)
        k = apply_rope(self.wk(x).view(B, T, c.n_kv, c.head_dim), cos, sin)
        v = self.wv(x).view(B, T, c.n_kv, c.head_dim)
        rep = c.n_head // c.n_kv
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        y = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


def activation(kind: str, g, u):
    if kind == "swiglu":
        return F.silu(g) * u
    if kind == "reglu":
        return F.relu(g) * u
    if kind == "drelu":
        return F.relu(g) * F.relu(u)
    raise ValueError(f"unknown ffn kind {kind!r}")


class FFN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.kind = cfg.ffn
        self.gate = nn.Linear(cfg.n_embd, cfg.n_ff, bias=False)  # [n_ff, n_embd]
        self.up = nn.Linear(cfg.n_embd, cfg.n_ff, bias=False)  # [n_ff, n_embd]
        self.down = nn.Linear(cfg.n_ff, cfg.n_embd, bias=False)  # [n_embd, n_ff]

    def forward(self, x, mask=None, probe=None):
        """x [..., n_embd]; mask [..., n_ff] keeps only predicted neurons; probe collects acts."""
        a = activation(self.kind, self.gate(x), self.up(x))
        if probe is not None:
            probe.append(a.detach())
        if mask is not None:
            a = a * mask.to(a.dtype)
        return self.down(a)


class MoE(nn.Module):
    """Top-k experts, computed densely (all experts on all tokens, unrouted weights zero):
    exactly the routed result, with static shapes."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        E, f, d = cfg.n_expert, cfg.n_ff, cfg.n_embd
        self.router = nn.Linear(d, E, bias=False)  # [n_expert, n_embd]
        self.gate = nn.Parameter(torch.randn(E, f, d) * 0.02)  # [n_expert, n_ff, n_embd]
        self.up = nn.Parameter(torch.randn(E, f, d) * 0.02)  # [n_expert, n_ff, n_embd]
        self.down = nn.Parameter(torch.randn(E, d, f) * 0.02)  # [n_expert, n_embd, n_ff]
        self.aux = None

    def route(self, x):
        """Mixtral routing: weights [..., E] with k non-zeros summing to 1."""
        probs = torch.softmax(self.router(x).float(), dim=-1)
        top_v, top_i = probs.topk(self.cfg.n_expert_used, dim=-1)
        w = torch.zeros_like(probs).scatter(-1, top_i, top_v / top_v.sum(-1, keepdim=True))
        return probs, w

    def forward(self, x, mask=None, probe=None):
        """mask [..., E, n_ff]; probe collects (acts [..., E, n_ff], weights [..., E])."""
        probs, w = self.route(x)
        g = torch.einsum("...d,efd->...ef", x, self.gate.to(x.dtype))
        u = torch.einsum("...d,efd->...ef", x, self.up.to(x.dtype))
        a = activation(self.cfg.ffn, g, u)
        if probe is not None:
            probe.append((a.detach(), w.detach()))
        if mask is not None:
            a = a * mask.to(a.dtype)
        y = torch.einsum("...ef,edf->...ed", a, self.down.to(x.dtype))
        # Switch-style load balance: E * sum_e (fraction routed to e) * (mean prob of e).
        E = self.cfg.n_expert
        frac = (w > 0).float().reshape(-1, E).mean(0) / self.cfg.n_expert_used
        self.aux = E * (frac * probs.reshape(-1, E).mean(0)).sum()
        return (y * w.to(y.dtype).unsqueeze(-1)).sum(-2)


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.ffn = MoE(cfg) if cfg.n_expert else FFN(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, hook=None, mask=None, probe=None):
        h = x + self.drop(self.attn(self.attn_norm(x), cos, sin))
        if hook is not None:
            hook(h)  # residual stream after attention, before ffn_norm: the predictor's input
        if callable(mask):
            mask = mask(h)
        return h + self.drop(self.ffn(self.ffn_norm(h), mask=mask, probe=probe))


class Model(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_vocab, cfg.n_embd)  # [n_vocab, n_embd], tied output
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.apply(self._init)
        for b in self.blocks:  # scaled init of residual projections (GPT-2)
            std = 0.02 / math.sqrt(2 * cfg.n_layer)
            nn.init.normal_(b.attn.wo.weight, std=std)
            if cfg.n_expert:
                nn.init.normal_(b.ffn.down, std=std)
            else:
                nn.init.normal_(b.ffn.down.weight, std=std)
        self.rope = None

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, hooks=None, masks=None, probes=None):
        """idx [B, T] -> logits [B, T, n_vocab]. Per layer l: hooks[l](h), masks[l] (tensor or
        callable h -> mask), probes[l] (list) as in Block.forward."""
        if self.rope is None or self.rope[0].device != idx.device:
            self.rope = rope_tables(self.cfg, idx.device)
        cos, sin = self.rope
        x = self.embed(idx)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, hook=hooks[i] if hooks else None,
                  mask=masks[i] if masks else None, probe=probes[i] if probes else None)
        return F.linear(self.norm(x), self.embed.weight)

    def aux_loss(self):
        if not self.cfg.n_expert:
            return 0.0
        return sum(b.ffn.aux for b in self.blocks) / self.cfg.n_layer

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
