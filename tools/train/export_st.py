"""Q8_0 rounding and safetensors export under GGUF tensor names.

Q8_0 matrices travel as int8 `name` (the quants, tensor's shape) plus f16 `name.q8_scale`
(one scale per 32 values, row-major); tools/train/export.ts rebuilds f32 = scale * q and
re-quantises with core/quant.ts, which reproduces the same blocks exactly. Norms and the
router are F32; predictors F16.
"""

import json
import re
import struct

import torch


def q8_0(w):
    """llama.cpp's quantize_row_q8_0_ref along the last dim: (q int8, d f16 [numel/32], deq)."""
    b = w.detach().float().reshape(-1, 32)
    d = b.abs().amax(1, keepdim=True) / 127
    inv = torch.where(d > 0, 1 / d, torch.zeros_like(d))
    v = b * inv
    q = torch.sign(v) * torch.floor(v.abs() + 0.5)  # C roundf: halves away from zero
    dh = d.half()
    deq = (dh.float() * q).reshape(w.shape)
    return q.to(torch.int8).reshape(w.shape), dh.reshape(-1), deq


def gguf_tensors(model, sparse: bool, preds=None) -> dict:
    """name -> (tensor in the file's layout, kind) with kind in q8 | f32 | f16. `sparse`
    stores the down projection transposed (one row per neuron) and adds predictors."""
    cfg = model.cfg
    out = {"token_embd.weight": (model.embed.weight, "q8"),
           "output_norm.weight": (model.norm.weight, "f32")}
    E = max(cfg.n_expert, 1)
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        out[p + "attn_norm.weight"] = (b.attn_norm.weight, "f32")
        out[p + "attn_q.weight"] = (b.attn.wq.weight, "q8")  # [n_head*hd, n_embd]
        out[p + "attn_k.weight"] = (b.attn.wk.weight, "q8")  # [n_kv*hd, n_embd]
        out[p + "attn_v.weight"] = (b.attn.wv.weight, "q8")  # [n_kv*hd, n_embd]
        out[p + "attn_output.weight"] = (b.attn.wo.weight, "q8")  # [n_embd, n_head*hd]
        out[p + "ffn_norm.weight"] = (b.ffn_norm.weight, "f32")
        if cfg.n_expert:
            out[p + "ffn_gate_inp.weight"] = (b.ffn.router.weight, "f32")  # [E, n_embd]
            out[p + "ffn_gate_exps.weight"] = (b.ffn.gate, "q8")  # [E, n_ff, n_embd]
            out[p + "ffn_up_exps.weight"] = (b.ffn.up, "q8")  # [E, n_ff, n_embd]
            out[p + "ffn_down_t_exps.weight"] = (b.ffn.down.transpose(1, 2), "q8")  # [E, n_ff, n_embd]
        else:
            out[p + "ffn_gate.weight"] = (b.ffn.gate.weight, "q8")  # [n_ff, n_embd]
            out[p + "ffn_up.weight"] = (b.ffn.up.weight, "q8")  # [n_ff, n_embd]
            if sparse:
                out[p + "ffn_down_t.weight"] = (b.ffn.down.weight.T, "q8")  # [n_ff, n_embd]
            else:
                out[p + "ffn_down.weight"] = (b.ffn.down.weight, "q8")  # [n_embd, n_ff]
        if preds:
            for e in range(E):
                pr = preds[i * E + e]
                tag = f"{e}." if cfg.n_expert else ""
                out[p + f"fc1.{tag}weight"] = (pr["fc1"], "f16")  # [r, n_embd]
                out[p + f"fc2.{tag}weight"] = (pr["fc2"], "f16")  # [n_ff, r]
    return out


@torch.no_grad()
def round_to_q8(model, sparse: bool):
    """Replace every Q8_0 matrix by its dequantised value, in the layout it is exported in,
    so evaluation, predictors and thresholds all see the shipped weights."""
    for name, (t, kind) in gguf_tensors(model, sparse).items():
        if kind == "q8":
            t.copy_(q8_0(t.contiguous())[2])


def vocab(path: str) -> dict:
    """Pieces, scores and GGUF token types from spm_train's .vocab file."""
    pieces, scores, types = [], [], []
    for i, line in enumerate(open(path, encoding="utf-8").read().split("\n")):
        if not line:
            continue
        piece, score = line.rsplit("\t", 1)
        pieces.append(piece)
        scores.append(float(score))
        if i == 0:
            types.append(2)  # unknown
        elif piece in ("<s>", "</s>"):
            types.append(3)  # control
        elif re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            types.append(6)  # byte
        else:
            types.append(1)  # normal
    return {"tokens": pieces, "scores": scores, "token_type": types,
            "bos_token_id": 1, "eos_token_id": 2, "unknown_token_id": 0}


def save(path: str, model, sparse: bool, preds, meta: dict):
    """Write the model as safetensors; `meta` (config, thresholds, stats, tokenizer) goes into
    the header's __metadata__ as one JSON string under "turbosparse"."""
    tensors = {}
    for name, (t, kind) in gguf_tensors(model, sparse, preds).items():
        t = t.detach().float().contiguous().cpu()
        if kind == "q8":
            q, d, _ = q8_0(t)
            tensors[name] = q.contiguous()
            tensors[name + ".q8_scale"] = d.contiguous()
        elif kind == "f16":
            tensors[name] = t.half().contiguous()
        else:
            tensors[name] = t
    write_safetensors(path, tensors, {"turbosparse": json.dumps(meta)})


def write_safetensors(path: str, tensors: dict, metadata: dict):
    """The safetensors layout: u64 header size, JSON header, then raw little-endian data."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.int8: "I8"}
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).reshape(-1).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    head = json.dumps(header).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for raw in blobs:
            f.write(raw)
