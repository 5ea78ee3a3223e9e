"""Loss of the first validation window under PyTorch, from an exported safetensors file: the
twin of tools/train/check_gguf.ts, so the runtime's forward pass (RoPE pairs, GQA, dReLU,
routing, predictors) can be compared number for number. Runs on CPU.

    python3 tools/train/check_window.py build/train/tiny-turbosparse.safetensors
"""

import json
import struct
import sys
import os

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import predictor as P  # noqa: E402
from model import Config, Model  # noqa: E402

DT = {"F32": np.float32, "F16": np.float16, "I8": np.int8}


def read_safetensors(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", b, 0)
    header = json.loads(b[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["turbosparse"])
    out = {}
    for name, info in header.items():
        s, e = info["data_offsets"]
        a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[info["dtype"]]).reshape(info["shape"])
        out[name] = a
    for name in [k for k in out if k.endswith(".q8_scale")]:
        base = name[:-len(".q8_scale")]
        q = out[base].astype(np.float32).reshape(-1, 32)
        out[base] = (q * out.pop(name).astype(np.float32)[:, None]).reshape(out[base].shape)
    return meta, {k: torch.from_numpy(v.astype(np.float32)) for k, v in out.items()}


def load_model(meta, t):
    cfg_d = {k: v for k, v in meta["config"].items()}
    cfg = Config(**cfg_d)
    m = Model(cfg)
    m.embed.weight.data = t["token_embd.weight"]
    m.norm.weight.data = t["output_norm.weight"]
    for i, b in enumerate(m.blocks):
        p = f"blk.{i}."
        b.attn_norm.weight.data = t[p + "attn_norm.weight"]
        b.attn.wq.weight.data = t[p + "attn_q.weight"]
        b.attn.wk.weight.data = t[p + "attn_k.weight"]
        b.attn.wv.weight.data = t[p + "attn_v.weight"]
        b.attn.wo.weight.data = t[p + "attn_output.weight"]
        b.ffn_norm.weight.data = t[p + "ffn_norm.weight"]
        if cfg.n_expert:
            b.ffn.router.weight.data = t[p + "ffn_gate_inp.weight"]
            b.ffn.gate.data = t[p + "ffn_gate_exps.weight"]
            b.ffn.up.data = t[p + "ffn_up_exps.weight"]
            b.ffn.down.data = t[p + "ffn_down_t_exps.weight"].transpose(1, 2).contiguous()
        else:
            b.ffn.gate.weight.data = t[p + "ffn_gate.weight"]
            b.ffn.up.weight.data = t[p + "ffn_up.weight"]
            down = t.get(p + "ffn_down.weight")
            b.ffn.down.weight.data = down if down is not None else t[p + "ffn_down_t.weight"].T.contiguous()
    preds = None
    if meta.get("sparse_thresholds"):
        E = max(cfg.n_expert, 1)
        preds = []
        for u, thr in enumerate(meta["sparse_thresholds"]):
            tag = f"{u % E}." if cfg.n_expert else ""
            p = f"blk.{u // E}."
            preds.append({"fc1": t[p + f"fc1.{tag}weight"], "fc2": t[p + f"fc2.{tag}weight"],
                          "threshold": thr})
    return m.eval(), preds


def main():
    meta, t = read_safetensors(sys.argv[1])
    model, preds = load_model(meta, t)
    val = np.load("build/data/val.npy").astype(np.int64)[:513]
    x, y = torch.from_numpy(val[:-1])[None], torch.from_numpy(val[1:])
    with torch.no_grad():
        loss = F.cross_entropy(model(x)[0], y).item()
        print(f"{sys.argv[1]}: window 0 loss (dense): {loss:.4f}")
        if preds:
            masks = [P.mask_fn(model.cfg, preds, l) for l in range(model.cfg.n_layer)]
            loss = F.cross_entropy(model(x, masks=masks)[0], y).item()
            print(f"  window 0 loss (lowrank): {loss:.4f}")


if __name__ == "__main__":
    main()
