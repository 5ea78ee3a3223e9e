/**
 * Sparse vs dense MoE decode at a reduced Mixtral shape: 8 experts of n_ff 14336, top-2,
 * n_embd 4096, 32 heads, 8 KV, vocab 32000, `--layers` (default 4 of Mixtral's 32) layers.
 * Sparse: bamboo (dReLU) experts in the project's sparse MoE layout (`ffn_down_t_exps`), one
 * rank-1024 random predictor per expert stored as `--pred` (Q8_0 default; F16, Q4_0) marking
 * `--active` of the neurons (default 0.2,0.1,0.05). Files are written by `tools/synth.ts` on
 * first use (build/bench/mixtral-*); every run interleaves its configs one token at a time,
 * medians, with the read bandwidth measured beside.
 *
 * Two modes, as bench/sparse_decode.ts:
 * - default: dense = llama.cpp's Mixtral layout (SwiGLU, `ffn_down_exps`, `matmul`) in its
 *   own file; the dense predictor on the first sparse file; sparse per active fraction and
 *   predictor type (a file each).
 * - `--same-file`: ONE sparse file per predictor type; dense = the dense predictor on it (each
 *   routed expert's gate and up as dense matvecs, its down over the rows with a ≠ 0). Each
 *   active fraction rewrites the file's fc2 tensors in place (`rewriteTensors`) and is one run.
 *   `--dense-file` adds the Mixtral-layout file to each run (loaded once).
 *
 * Every config is fed the same tokens (the first config's greedy choice), and a wrapping
 * predictor logs which experts each layer runs, so the table gives, per layer, the share of
 * tokens routed to the same experts as the first config on the same file (the dense Mixtral
 * file has other weights). Every config runs exactly `n_expert_used` experts per token and
 * layer (checked). Layer 0 sees equal inputs; later layers see the previous layers' FFN
 * outputs, which random predictors change.
 * Bytes per token: attention, router and output weights, one embedding row, plus the FFN and
 * predictor rows read (sparsity statistics over 8 tokens). The 32-layer column extrapolates
 * `1 / (head + 32/L · (t − head))` with the output projection `head` timed in the same run.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_moe_decode.ts --dtype q4_0 --pred q4_0 --same-file --dense-file --threads 2
 * ```
 *
 * @module
 */

import { DType, dtypeName, parseDType } from "../core/dtype.ts";
import type { GGUFFile } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
import type { Predictor, PredictorKind } from "../core/predictor.ts";
import { SparsityRecorder } from "../core/stats.ts";
import type { Backend } from "../core/backend.ts";
import { X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { chooseBackend } from "../plugins/registry.ts";
import type { SynthOptions } from "../tools/synth.ts";
import { median, readBandwidth } from "./_native.ts";
import { ensure, ensureActive, fixedBytes } from "./_sparse_files.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const layers = Number(arg("--layers", "4"));
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const runs = Number(arg("--runs", "30")); // decoded tokens per config
const actives = arg("--active", "0.2,0.1,0.05").split(",").map(Number);
const preds = arg("--pred", "q8_0").split(",").map(parseDType); // predictor storage types
const sameFile = Deno.args.includes("--same-file");
const withDenseFile = Deno.args.includes("--dense-file");
const prepareOnly = Deno.args.includes("--prepare"); // write the files, measure nothing
const FULL = 32; // Mixtral-8x7B's layers
const N_EXPERT = 8;
const WARM = 32; // prompt tokens before timing: every expert is visited (and repacked) first

const SHAPE: SynthOptions = {
  nEmbd: 4096,
  nFF: 14336,
  nLayer: layers,
  nHead: 32,
  nKV: 8,
  nCtx: 4096,
  nVocab: 32000,
  nExpert: N_EXPERT,
  nExpertUsed: 2,
  seed: 1,
};

/** File-name tag of a predictor type ("" for Q8_0, as the files written before `--pred`). */
const predTag = (t: DType) => t === DType.Q8_0 ? "" : t === DType.Q4_0 ? "-q4pred" : "-f16pred";

/** Wraps `p`, logging every FFN unit it is asked about: the experts each layer runs. */
function routed(p: Predictor, log: number[]): Predictor {
  return {
    name: p.name,
    scores(unit, h, x, nTok) {
      log.push(unit.layer * N_EXPERT + unit.expert);
      return p.scores(unit, h, x, nTok);
    },
    bytesPerToken: (unit) => p.bytesPerToken(unit),
  };
}

interface Config {
  label: string;
  /** The file it runs (routes are compared within one file). */
  path: string;
  model: Model;
  /** Weight bytes read per decoded token. */
  bytes: number;
  /** Predicted-active fraction of the routed experts (1 for dense). */
  active: number;
  /** Units visited by the last token (`layer × n_expert + expert`). */
  log: number[];
}

/** A config: bytes and active fraction from its sparsity statistics over 8 tokens. */
function config(label: string, path: string, file: GGUFFile, be: Backend, p: PredictorKind) {
  const model = new Model(file, be, label, { contextLength: runs + WARM + 8, predictor: p });
  const log: number[] = [];
  model.setPredictor(routed(model.predictor, log));
  const rec = new SparsityRecorder(model.backend, model.config);
  const st = model.newState();
  for (const t of [1, 2, 3, 4, 5, 6, 7, 8]) model.eval(st, [t], false, rec);
  const sum = rec.summary(p); // eval counts the tokens
  const bytes = fixedBytes(file) + sum.bytesPerToken;
  return { label, path, model, bytes, active: sum.predictedActive, log };
}

/** Per layer, the sorted experts of one token from a unit log. */
function routesOf(log: number[], expertsUsed: number): string[] {
  const per: number[][] = Array.from({ length: layers }, () => []);
  for (const u of log) per[Math.floor(u / N_EXPERT)].push(u % N_EXPERT);
  return per.map((ids, l) => {
    if (ids.length !== expertsUsed) {
      throw new Error(
        `layer ${l} ran ${ids.length} experts for one token, expected ${expertsUsed}`,
      );
    }
    return ids.sort((a, b) => a - b).join("+");
  });
}

const lib = await library(X86);
const be = (await chooseBackend("cpu_x86", { threads })).backend;
console.log(
  `sparse_moe_decode ${new Date().toISOString().slice(0, 16)}Z: Mixtral shape 8x14336 top-2, ` +
    `${layers} of ${FULL} layers, cpu_x86 ${threads}t, ${runs} tokens per config, interleaved ` +
    `one token at a time, same tokens for all (medians)` +
    (sameFile ? "; dense = the dense predictor on the same sparse file" : ""),
);

for (const dname of arg("--dtype", "q4_0").split(",")) {
  const dtype = parseDType(dname);
  const tag = `${layers}L-${dname}`;
  const sparseShape = (a: number, p: DType): SynthOptions => ({
    ...SHAPE,
    dtype,
    arch: "bamboo",
    layout: "powerinfer",
    rank: 1024,
    activeFraction: a,
    predictorType: p,
  });
  const densePath = `build/bench/mixtral-${tag}-dense.gguf`;
  const needDense = !sameFile || withDenseFile;
  const [dense] = needDense
    ? await ensure(densePath, { ...SHAPE, dtype, arch: "llama" })
    : [undefined];
  if (sameFile) {
    // the dense file is loaded once per dtype: its repacked copies stay for every run
    const denseCfg = dense && !prepareOnly
      ? config("dense Mixtral file (SwiGLU)", densePath, dense, be, "dense")
      : undefined;
    for (const p of preds) {
      const path = `build/bench/mixtral-${tag}-pwri${predTag(p)}.gguf`;
      if (prepareOnly) {
        (await ensure(path, sparseShape(actives[0], p)))[1].close();
        continue;
      }
      for (const a of actives) {
        const [file, mapped] = await ensureActive(path, sparseShape(a, p));
        const pn = dtypeName(p);
        const configs = [
          config("dense predictor (same file)", path, file, be, "dense"),
          config(`sparse ${a * 100}% ${pn} pred`, path, file, be, "lowrank"),
        ];
        if (denseCfg) configs.push(denseCfg);
        measure(`${dname.toUpperCase()} ${a * 100}% active (${pn} predictors)`, configs);
        mapped.close();
      }
    }
    continue;
  }
  const files: [number, DType, string, GGUFFile][] = [];
  for (const a of actives) {
    for (const p of preds) {
      const path = `build/bench/mixtral-${tag}-sparse-a${a}${predTag(p)}.gguf`;
      files.push([a, p, path, (await ensure(path, sparseShape(a, p)))[0]]);
    }
  }
  if (prepareOnly) continue;
  const configs = [config("dense Mixtral file (SwiGLU)", densePath, dense!, be, "dense")];
  for (const [a, p, path, file] of files) {
    const pn = dtypeName(p);
    if (configs.length === 1) {
      configs.push(config(`dense predictor (sparse file, ${pn} pred)`, path, file, be, "dense"));
    }
    configs.push(config(`sparse ${a * 100}% ${pn} pred`, path, file, be, "lowrank"));
  }
  measure(dname.toUpperCase(), configs);
}
be.close?.();

/** Interleave the configs token by token, all fed the same tokens; print a table. */
function measure(title: string, configs: Config[]): void {
  const head = headSeconds(configs[0].model);
  const used = configs[0].model.config.nExpertUsed;
  const seqs = configs.map((c) => {
    const st = c.model.newState();
    c.model.eval(st, Array.from({ length: WARM }, (_, i) => i + 1)); // faults weights, repacks
    return st;
  });
  const tps = configs.map(() => [] as number[]);
  // per config: the first config on its file, and per layer the tokens routed as that one
  const ref = configs.map((c) => configs.findIndex((d) => d.path === c.path));
  const same = configs.map(() => new Array(layers).fill(0));
  const bw: number[] = [];
  let tok = WARM + 1;
  for (let r = 0; r < runs; r++) {
    if (r % 8 === 0) bw.push(readBandwidth(lib, 1 << 30, 3).median);
    const fed = tok;
    const routes: string[][] = [];
    configs.forEach((c, i) => {
      c.log.length = 0;
      const t0 = performance.now();
      const logits = c.model.eval(seqs[i], [fed]);
      tps[i].push(1000 / (performance.now() - t0));
      routes.push(routesOf(c.log, used));
      if (i === 0) tok = logits.subarray(0, 256).indexOf(Math.max(...logits.subarray(0, 256)));
      routes[i].forEach((x, l) => same[i][l] += x === routes[ref[i]][l] ? 1 : 0);
    });
  }
  const b = median(bw), t0 = median(tps[0]), t0x = extrapolate(t0, head);
  const fileIdx = configs.findIndex((c) => c.label.startsWith("dense Mixtral file"));
  console.log(
    `\n${title}: read bandwidth ${b.toFixed(1)} GB/s (median; min ${
      Math.min(...bw).toFixed(1)
    }, max ${Math.max(...bw).toFixed(1)}); output projection ${(head * 1e3).toFixed(1)} ms`,
  );
  console.log(
    "| config | predicted active | tok/s | vs dense | GB/token | GB/s | of bandwidth | " +
      "32-layer tok/s (extrapolated) | vs dense |" + (fileIdx > 0 ? " vs dense file |" : "") +
      " routes as the first config on its file, per layer |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|" + (fileIdx > 0 ? "---|" : "") + "---|");
  configs.forEach((c, i) => {
    const t = median(tps[i]), gbs = t * c.bytes / 1e9, tx = extrapolate(t, head);
    const cells = [
      c.label,
      `${(100 * c.active).toFixed(1)}%`,
      t.toFixed(2),
      `${(t / t0).toFixed(2)}x`,
      (c.bytes / 1e9).toFixed(3),
      gbs.toFixed(1),
      `${(100 * gbs / b).toFixed(0)}%`,
      tx.toFixed(2),
      `${(tx / t0x).toFixed(2)}x`,
    ];
    if (fileIdx > 0) cells.push(`${(t / median(tps[fileIdx])).toFixed(2)}x`);
    cells.push(
      ref[i] === i
        ? "(reference)"
        : same[i].map((n) => `${(100 * n / runs).toFixed(0)}%`).join(" / "),
    );
    console.log(`| ${cells.join(" | ")} |`);
  });
}

/** Tokens/s of the full 32-layer model from the measured `layers`-layer rate. */
function extrapolate(tps: number, head: number): number {
  return 1 / (head + (FULL / layers) * (1 / tps - head));
}

/** Median seconds of the output projection (`[n_vocab, n_embd]` matvec) on `m`'s backend. */
function headSeconds(m: Model): number {
  const w = m.weights.output, x = be.alloc(w.shape[1]), out = be.alloc(w.shape[0]);
  const ts: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    be.matmul(out, w, x, 1);
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}
