"""Golden logits from Hugging Face transformers, an implementation independent of ours.

Builds small Mistral-architecture models with seeded random weights in float32, runs them on
a fixed token sequence, and writes per variant:
  <name>.json  config, token ids, tensor table (HF names, shapes, byte offsets into .bin)
  <name>.bin   float32 weights, then float32 logits [n_tokens, n_vocab]
`tools/golden/make_fixture.ts` turns these into GGUF fixtures with the project's writer.

Variants: SwiGLU (MistralForCausalLM as is), ReGLU (hidden_act="relu": relu(gate)*up) and dReLU
(TurboSparse: relu(gate)*relu(up), by replacing the MLP's forward).

Run (CPU is fine, it takes seconds):  python3 tools/golden/hf_logits.py OUT_DIR
"""

import json
import sys

import torch
from transformers import MistralConfig, MistralForCausalLM

VARIANTS = [
    dict(name="swiglu", act="silu", drelu=False, tied=False, rope_theta=10000.0),
    dict(name="reglu", act="relu", drelu=False, tied=True, rope_theta=10000.0),
    dict(name="drelu", act="relu", drelu=True, tied=False, rope_theta=500000.0),
]
N_TOKENS = 20


def drelu_forward(self, x):
    return self.down_proj(torch.relu(self.gate_proj(x)) * torch.relu(self.up_proj(x)))


def rope_theta(cfg):
    """RoPE base as the model uses it (transformers 5 keeps it in rope_parameters)."""
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 0.0)))


def build(v, seed):
    torch.manual_seed(seed)
    cfg = MistralConfig(
        vocab_size=320, hidden_size=128, intermediate_size=320, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_parameters=dict(rope_type="default", rope_theta=v["rope_theta"]), hidden_act=v["act"], sliding_window=None,
        tie_word_embeddings=v["tied"],
    )
    assert rope_theta(cfg) == v["rope_theta"], (rope_theta(cfg), v["rope_theta"])
    model = MistralForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif p.dim() == 2:
                p.copy_(torch.randn_like(p) / (p.shape[1] ** 0.5))
        if v["tied"]:
            model.lm_head.weight = model.model.embed_tokens.weight
    if v["drelu"]:
        for layer in model.model.layers:
            layer.mlp.forward = drelu_forward.__get__(layer.mlp)
    return cfg, model


def main(out):
    torch.use_deterministic_algorithms(True)
    for i, v in enumerate(VARIANTS):
        cfg, model = build(v, seed=1234 + i)
        g = torch.Generator().manual_seed(99 + i)
        tokens = torch.randint(3, cfg.vocab_size, (1, N_TOKENS), generator=g)
        tokens[0, 0] = 1  # BOS
        with torch.no_grad():
            logits = model(tokens).logits[0].float()
        tensors, blobs, offset = [], [], 0
        for name, p in model.state_dict().items():
            if v["tied"] and name == "lm_head.weight":
                continue
            data = p.detach().float().contiguous().numpy().tobytes()
            tensors.append(dict(name=name, shape=list(p.shape), offset=offset))
            blobs.append(data)
            offset += len(data)
        meta = dict(
            variant=v, tokens=tokens[0].tolist(), logits_offset=offset, logits_shape=list(logits.shape),
            config=dict(vocab=cfg.vocab_size, n_embd=cfg.hidden_size, n_ff=cfg.intermediate_size,
                        n_layer=cfg.num_hidden_layers, n_head=cfg.num_attention_heads,
                        n_kv=cfg.num_key_value_heads, head_dim=cfg.head_dim, n_ctx=cfg.max_position_embeddings,
                        eps=cfg.rms_norm_eps, rope_theta=rope_theta(cfg)),
            torch=torch.__version__, transformers=__import__("transformers").__version__,
            tensors=tensors,
        )
        with open(f"{out}/{v['name']}.bin", "wb") as f:
            for b in blobs:
                f.write(b)
            f.write(logits.numpy().tobytes())
        with open(f"{out}/{v['name']}.json", "w") as f:
            json.dump(meta, f, indent=1)
        print(v["name"], "logits", tuple(logits.shape), "max |logit|", float(logits.abs().max()))


if __name__ == "__main__":
    main(sys.argv[1])
