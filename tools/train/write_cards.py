"""Write models/<name>.md (model cards) and print the tables of docs/sparsity.md, from
build/train/results.json (train.py's output), build/corpus/sources.json and the GGUF files.

    python3 tools/train/write_cards.py
"""

import json
import os
import subprocess

RESULTS = "build/train/results.json"
SOURCES = "build/corpus/sources.json"
DEVICE = "one NVIDIA H200 (PyTorch 2.11, bf16 autocast)"
TRAIN_CMD = "PYTHONUNBUFFERED=1 python3 tools/train/train.py --out $OUT --max-minutes 6"
TITLES = {
    "tiny-turbosparse": "dReLU FFN, one low-rank activation predictor per layer",
    "tiny-turbosparse-moe": "4 dReLU experts, top-2 Mixtral routing, one predictor per expert",
    "tiny-dense-swiglu": "dense SwiGLU baseline (llama layout)",
}


def pct(x):
    return f"{100 * x:.1f}%"


def deb_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout or "?"


def data_section(src):
    s = src["sources"]
    return "\n".join([
        "## Data",
        "",
        "Public-domain English books, extracted from Debian packages by",
        "`tools/corpus/build_corpus.py` (no R needed: `tools/corpus/rds.py` reads R's",
        "serialization):",
        "",
        "| text | Debian package | version | text licence |",
        "| --- | --- | --- | --- |",
        f"| Jane Austen's six novels | r-cran-janeaustenr | {s['r-cran-janeaustenr']['version']} | public domain |",
        f"| Moby Dick (Gutenberg #2701, header/footer stripped) | r-cran-tokenizers | {s['r-cran-tokenizers']['version']} | public domain |",
        f"| King James Bible (1611) | bible-kjv-text (read with bible-kjv) | {s['bible-kjv-text']['version']} | public domain |",
        "",
        f"Paragraphs are unwrapped, quotes made ASCII, italics underscores dropped. "
        f"{src['bytes']['train']:,} bytes of training text, {src['bytes']['val']:,} of validation "
        "text: every 50th contiguous chunk of 40 paragraphs (2%) is held out. Tokenized: "
        "2,445,190 training and 50,479 validation tokens.",
    ])


def tokenizer_section():
    return "\n".join([
        "## Tokenizer",
        "",
        f"SentencePiece BPE, 4096 pieces, trained by Debian's `spm_train` "
        f"(sentencepiece {deb_version('sentencepiece')}) on the training split: `--model_type=bpe "
        "--vocab_size=4096 --byte_fallback=true --split_digits=true "
        "--normalization_rule_name=identity --remove_extra_whitespaces=false "
        "--add_dummy_prefix=true --allow_whitespace_only_pieces=true --character_coverage=1.0`. "
        "`<unk>`=0, `<s>`=1 (added), `</s>`=2, 256 byte pieces; a newline is the `<0x0A>` byte. "
        "Stored as `tokenizer.ggml.model = \"llama\"`; the runtime's tokenizer reproduces the "
        "training ids (checked by tools/train/check_gguf.ts on the first validation book).",
    ])


def arch_section(name, r):
    c = r["config"]
    ffn = {"drelu": "dReLU `down(relu(x·W_gate) ⊙ relu(x·W_up))`",
           "swiglu": "SwiGLU `down(silu(x·W_gate) ⊙ (x·W_up))`"}[c["ffn"]]
    rows = [
        ("parameters", f"{r['params'] / 1e6:.2f}M (embeddings tied: no `output.weight`)"),
        ("layers / n_embd / n_ff", f"{c['n_layer']} / {c['n_embd']} / {c['n_ff']}"
         + (" per expert" if c["n_expert"] else "")),
        ("attention", f"{c['n_head']} heads of {c['n_embd'] // c['n_head']}, {c['n_kv']} KV heads (GQA), "
                      f"RoPE base {c['rope_base']:g} on adjacent pairs (llama.cpp normal mode)"),
        ("FFN", ffn),
        ("norm", f"RMSNorm, eps {c['eps']:g}; no biases"),
        ("context / vocab", f"{c['n_ctx']} / {c['n_vocab']}"),
    ]
    if c["n_expert"]:
        rows.append(("experts", f"{c['n_expert']}, top-{c['n_expert_used']} (softmax over router "
                                "logits, top-k, renormalised); Switch load-balance loss 0.01"))
    out = ["## Architecture", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def training_section(r):
    t = r["training"]
    return "\n".join([
        "## Training",
        "",
        f"`{TRAIN_CMD}` (all four models of docs/sparsity.md in one run) on {DEVICE}: "
        f"{t['train_s']:.0f} s for this model, {t['steps_run']} steps of {t['batch']} × 512 tokens "
        f"({t['tokens_seen'] / 1e6:.1f}M tokens, ~{t['tokens_seen'] / 2445190:.0f} epochs), AdamW "
        f"(β 0.9/0.95, weight decay 0.1 on matrices), peak lr {t['lr']:g}, 100 warm-up steps, "
        "cosine to 10%, dropout 0.1, grad clip 1.0. The checkpoint with the best validation loss "
        f"(evaluated every 50 steps) is kept: step {t['best_step']}. Matrices are then rounded to "
        "Q8_0 and everything below is measured on those weights in fp32.",
    ])


def results_section(name, r):
    out = ["## Results (validation split)", ""]
    out.append(f"- validation loss: **{r['val_loss']:.4f}** nats/token (Q8_0 weights, fp32); "
               f"{r['training']['val_loss_bf16']:.4f} before rounding (bf16). The same split picked "
               "the checkpoint, so it is slightly optimistic.")
    if "val_loss_sparse" in r:
        d = r["val_loss_sparse"] / r["val_loss"] - 1
        out.append(f"- with the predictors (only predicted neurons computed): "
                   f"**{r['val_loss_sparse']:.4f}** ({100 * d:+.2f}% vs dense).")
    sp = r["sparsity"]
    key = "zero" if r["config"]["ffn"] != "swiglu" else "abs_below_0.01"
    label = "exact zeros" if key == "zero" else "|act| < 0.01 (SwiGLU has no exact zeros)"
    out.append(f"- activation sparsity per layer ({label}): "
               + ", ".join(pct(s[key]) for s in sp)
               + (" (over routed token-expert pairs)" if r["config"]["n_expert"] else ""))
    if "predictor" in r:
        E = max(r["config"]["n_expert"], 1)
        out += ["", "Predictors `fc2 · relu(fc1 · h)` (F16), trained with pos-weighted BCE on "
                "196k training tokens, threshold set for 96% recall on 49k other training tokens, "
                "rank chosen per unit from "
                + ("{16, 32, 64}" if E > 1 else "{32, 64, 128}")
                + " to minimise weights read per token; measured on validation tokens:", ""]
        out += ["| unit | rank | threshold | true active | predicted | recall | precision |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for u, s in enumerate(r["predictor"]):
            unit = f"L{u // E}.E{u % E}" if E > 1 else f"L{u}"
            out.append(f"| {unit} | {s['rank']} | {s['threshold']:.3f} | {pct(s['active'])} | "
                       f"{pct(s['predicted'])} | {pct(s['recall'])} | {pct(s['precision'])} |")
        n = len(r["predictor"])
        out.append(f"| mean | | | {pct(sum(s['active'] for s in r['predictor']) / n)} | "
                   f"{pct(sum(s['predicted'] for s in r['predictor']) / n)} | "
                   f"{pct(sum(s['recall'] for s in r['predictor']) / n)} | "
                   f"{pct(sum(s['precision'] for s in r['predictor']) / n)} |")
    out += ["", "Samples (temperature 0.8, top-k 40, PyTorch):", ""]
    for p, s in r["samples"].items():
        out.append("> " + s.replace("\n", " ⏎ "))
        out.append("")
    return "\n".join(out)


def card(name, r, src):
    size = os.path.getsize(f"models/{name}.gguf")
    c = r["config"]
    fmt = ("magic `PWRI`, arch `bamboo`, PowerInfer's sparse layout (see docs/format.md)"
           if c["ffn"] == "drelu" else "magic `GGUF`, arch `llama`")
    head = "\n".join([
        f"# {name}",
        "",
        f"A tiny model trained by this project: {TITLES[name]}. {fmt}; matrices Q8_0, norms "
        f"F32{', router F32' if c['n_expert'] else ''}{', predictors F16' if c['ffn'] == 'drelu' else ''}. "
        f"File: `models/{name}.gguf`, {size / 1e6:.2f} MB. Good for tests, demos and benchmarks "
        "of the sparse path; it writes recognisable English in the style of its three books, "
        "not sense.",
        "",
        "Rebuild: see tools/train/README.md. The runtime's forward pass and PyTorch's agree on "
        "this file: `tools/train/check_gguf.ts` (runtime, reference backend) and "
        "`tools/train/check_window.py` (PyTorch) give the same loss on the first validation "
        "window to 4 decimals, dense and with the predictors.",
    ])
    parts = [head, data_section(src), tokenizer_section(), arch_section(name, r),
             training_section(r), results_section(name, r)]
    return "\n\n".join(parts) + "\n"


def sparsity_tables(res):
    out = ["| model (FFN) | val loss | " + " | ".join(f"L{i}" for i in range(6)) + " | mean |",
           "| --- | --- | " + " | ".join("---" for _ in range(6)) + " | --- |"]
    for name, r in res.items():
        kind = r["config"]["ffn"]
        keys = ["abs_below_0.001", "abs_below_0.01", "abs_below_0.1"] if kind == "swiglu" else ["zero"]
        for key in keys:
            vals = [s[key] for s in r["sparsity"]]
            tag = {"zero": "= 0", "abs_below_0.001": "\\|a\\| < 0.001",
                   "abs_below_0.01": "\\|a\\| < 0.01", "abs_below_0.1": "\\|a\\| < 0.1"}[key]
            out.append(f"| {name} ({kind}, {tag}) | {r['val_loss']:.4f} | "
                       + " | ".join(pct(v) for v in vals) + f" | {pct(sum(vals) / len(vals))} |")
    return "\n".join(out)


def main():
    res = json.load(open(RESULTS))
    src = json.load(open(SOURCES))
    for name in TITLES:
        if name in res:
            open(f"models/{name}.md", "w").write(card(name, res[name], src))
            print(f"wrote models/{name}.md")
    print(sparsity_tables(res))


if __name__ == "__main__":
    main()
