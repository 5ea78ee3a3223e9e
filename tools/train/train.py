"""Train the tiny models, their activation predictors, and the sparsity comparison.

    PYTHONUNBUFFERED=1 python3 tools/train/train.py --out OUTDIR

Reads build/data/{train,val}.npy (uint16 ids) and build/tokenizer/tokenizer.{model,vocab}.
Writes, after each model (so a cut-short run keeps what it finished):
  OUTDIR/<name>.safetensors   shipped models (Q8_0 as int8 + f16 scales; see export_st.py)
  OUTDIR/results.json         configs, losses, sparsity, predictor stats, samples, timings
  OUTDIR/sparsity.png         per-layer activation sparsity of each FFN kind
Runs on CPU too (slowly); --steps and --models shrink it for a smoke test.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import export_st  # noqa: E402
import predictor as P  # noqa: E402
import report  # noqa: E402
from model import Config, Model  # noqa: E402

# Training order = priority: the shipped sparse model first, the unshipped ReGLU baseline last.
CONFIGS = {
    "tiny-turbosparse": Config("tiny-turbosparse", "drelu"),
    "tiny-turbosparse-moe": Config("tiny-turbosparse-moe", "drelu", n_ff=384, n_expert=4,
                                   n_expert_used=2),
    "tiny-dense-swiglu": Config("tiny-dense-swiglu", "swiglu"),
    "tiny-reglu": Config("tiny-reglu", "reglu"),
}
SHIPPED = ("tiny-turbosparse", "tiny-turbosparse-moe", "tiny-dense-swiglu")
PROMPTS = ("It is a truth universally acknowledged", "Call me Ishmael.",
           "And God said unto Moses,")


def load(path, dev):
    return torch.from_numpy(np.load(path).astype(np.int64)).to(dev)


def windows(data, T):
    """Non-overlapping (x, y) windows [n, T] covering data."""
    n = (len(data) - 1) // T
    return data[:n * T].view(n, T), data[1:n * T + 1].view(n, T)


@torch.no_grad()
def evaluate(model, x, y, masks=None, amp=False):
    """Mean next-token loss (nats) over windows; fp32 unless amp."""
    was_training = model.training
    model.eval()
    tot, cnt = 0.0, 0
    dev = x.device.type
    for xb, yb in zip(x.split(32), y.split(32)):
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            logits = model(xb, masks=masks)
        tot += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), yb.reshape(-1),
                               reduction="sum").item()
        cnt += yb.numel()
    model.train(was_training)
    return tot / cnt


def train(cfg, data, vx, vy, args, log):
    dev = data.device
    torch.manual_seed(0)
    model = Model(cfg).to(dev)
    log(f"{cfg.name}: {model.n_params() / 1e6:.2f}M params")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95),
                            **({"fused": True} if dev.type == "cuda" else {}))
    g = torch.Generator(device=dev).manual_seed(1)
    ar = torch.arange(cfg.n_ctx + 1, device=dev)
    best, best_state, best_step = math.inf, None, 0
    t0 = time.time()
    step = 0
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            v = evaluate(model, vx, vy, amp=True)
            if v < best:
                best, best_step = v, step
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            log(f"  step {step} val {v:.4f} best {best:.4f}@{best_step} {time.time() - t0:.0f}s")
            if step - best_step >= args.patience:
                break
        if step == args.steps:
            break
        warm = 100
        lr = args.lr * (step / warm if step < warm else
                        0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / (args.steps - warm))))
        for group in opt.param_groups:
            group["lr"] = lr
        start = torch.randint(0, len(data) - cfg.n_ctx - 1, (args.batch,), device=dev, generator=g)
        w = data[start[:, None] + ar]
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            logits = model(w[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, cfg.n_vocab), w[:, 1:].reshape(-1))
            total = loss + 0.01 * model.aux_loss()
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    model.load_state_dict(best_state)
    model.eval()
    return model, {"train_s": round(time.time() - t0, 1), "steps_run": step,
                   "best_step": best_step, "batch": args.batch, "lr": args.lr,
                   "tokens_seen": step * args.batch * cfg.n_ctx, "val_loss_bf16": best}


def predictors(model, data, vx, args, log):
    """Fit, calibrate (held-out training windows) and measure (validation) predictors."""
    cfg = model.cfg
    n = (len(data) - 1) // cfg.n_ctx
    g = torch.Generator(device="cpu").manual_seed(2)
    perm = torch.randperm(n, generator=g)
    win = data[:n * cfg.n_ctx].view(n, cfg.n_ctx)
    fit_x = win[perm[:args.pred_windows].to(data.device)]
    cal_x = win[perm[args.pred_windows:args.pred_windows + args.pred_windows // 4].to(data.device)]
    fit_u, cal_u, val_u = P.collect(model, fit_x), P.collect(model, cal_x), P.collect(model, vx)
    ranks = (16, 32, 64) if cfg.n_expert else (32, 64, 128)
    preds = P.choose(cfg, fit_u, cal_u, ranks, log, steps=args.pred_steps)
    del fit_u
    thr = [p["threshold"] for p in preds]
    stats = P.measure(val_u, [p["fc1"] for p in preds], [p["fc2"] for p in preds], thr)
    for p, s in zip(preds, stats):
        s["rank"], s["threshold"] = p["rank"], p["threshold"]
    return preds, stats


def run_one(name, data, vx, vy, sp, vocab, args, results, log):
    cfg = CONFIGS[name]
    model, info = train(cfg, data, vx, vy, args, log)
    sparse = cfg.ffn == "drelu"
    r = {"config": cfg.to_dict(), "params": model.n_params(), "training": info}
    export_st.round_to_q8(model, sparse)
    r["val_loss"] = evaluate(model, vx, vy)  # fp32, Q8_0-rounded matrices: what ships
    log(f"{name}: val loss {r['val_loss']:.4f} (Q8_0, fp32); bf16 best {info['val_loss_bf16']:.4f}")
    r["sparsity"] = report.layer_sparsity(model, vx)
    log("  sparsity per layer: " + " ".join(f"{s['zero']:.3f}/{s['abs_below_0.01']:.3f}"
                                            for s in r["sparsity"]))
    r["samples"] = {p: report.sample(model, sp, p) for p in PROMPTS}
    for p, s in r["samples"].items():
        log(f"  sample: {s!r}")
    preds = None
    if sparse and name in SHIPPED:
        t0 = time.time()
        preds, r["predictor"] = predictors(model, data, vx, args, log)
        masks = [P.mask_fn(cfg, preds, l) for l in range(cfg.n_layer)]
        r["val_loss_sparse"] = evaluate(model, vx, vy, masks=masks)
        r["predictor_s"] = round(time.time() - t0, 1)
        log(f"  predictors {r['predictor_s']}s; val loss dense {r['val_loss']:.4f} "
            f"predicted-sparse {r['val_loss_sparse']:.4f}")
        for l, s in enumerate(r["predictor"]):
            log(f"  unit {l}: r={s['rank']} active {s['active']:.3f} predicted {s['predicted']:.3f}"
                f" recall {s['recall']:.3f} precision {s['precision']:.3f} thr {s['threshold']:.3f}")
    if name in SHIPPED:
        meta = {"name": name, "config": cfg.to_dict(), "tokenizer": vocab,
                "sparse_thresholds": [p["threshold"] for p in preds] if preds else None,
                "ranks": [p["rank"] for p in preds] if preds else None,
                "results": {k: v for k, v in r.items() if k != "config"}}
        export_st.save(f"{args.out}/{name}.safetensors", model, sparse, preds, meta)
    results[name] = r
    json.dump(results, open(f"{args.out}/results.json", "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=",".join(CONFIGS))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--patience", type=int, default=250)
    ap.add_argument("--pred-windows", type=int, default=384)
    ap.add_argument("--pred-steps", type=int, default=2000)
    ap.add_argument("--val-windows", type=int, default=0, help="0 = all (smoke tests use few)")
    ap.add_argument("--max-minutes", type=float, default=7.5)
    args = ap.parse_args()
    import sentencepiece as spm
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 evaluation means fp32
    data, val = load("build/data/train.npy", dev), load("build/data/val.npy", dev)
    vx, vy = windows(val, 512)
    if args.val_windows:
        vx, vy = vx[:args.val_windows], vy[:args.val_windows]
    sp = spm.SentencePieceProcessor(model_file="build/tokenizer/tokenizer.model")
    vocab = export_st.vocab("build/tokenizer/tokenizer.vocab")
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:6.1f}s] {msg}", flush=True)

    log(f"device {dev}, torch {torch.__version__}, train {len(data)} val {len(val)} tokens")
    results = {}
    for name in args.models.split(","):
        if time.time() - t_start > args.max_minutes * 60:
            log(f"skipping {name}: past --max-minutes")
            continue
        run_one(name, data, vx, vy, sp, vocab, args, results, log)
        report.plot(results, f"{args.out}/sparsity.png")
    log("done")


if __name__ == "__main__":
    main()
