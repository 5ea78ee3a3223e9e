/**
 * Sparse vs dense decode at the Mistral-7B shape (4096, 14336, 32 heads, 8 KV, vocab 32000),
 * bamboo (dReLU), rank-1024 random predictors (`tools/synth.ts`, layout "powerinfer") at
 * several active fractions, against the dense path in ONE run, interleaved token by token,
 * medians of `--runs` tokens; with the read bandwidth measured beside them.
 *
 * Two modes:
 * - default: the dense path is `matmul` on the same shape written as a dense GGUF; sparse
 *   variants per active fraction and predictor type (`--pred`, a file per type, same seed, so
 *   the same weights), row-column bundling (`prepareSparseFFN`) at `--bundle-at`, and the
 *   dense predictor on the PWRI file of the first fraction.
 * - `--same-file`: ONE PWRI file per dtype (predictors of the first `--pred` type); the dense
 *   path is the dense predictor on that file (gate and up as dense matvecs, down over the rows
 *   with a ≠ 0). Each active fraction rewrites the file's fc2 tensors in place
 *   (`rewriteTensors`) and is one run: dense predictor and sparse, interleaved. For 32 layers
 *   (a 15 GB F16 file), where a second dense file would not fit the page cache beside it.
 *
 * `--layers` (default 4 of 32) keeps the files small; the per-layer shapes are 7B's. A token
 * costs `head + L · layer`, so below 32 layers the 32-layer figure is extrapolated from the
 * measured output-projection time `head` (timed in the same run):
 * `1 / (head + 32/L · (t - head))`.
 * Bytes per token: attention and output weights, one embedding row, plus the FFN and
 * predictor bytes the sparsity statistics count (rows actually read).
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_decode.ts --dtype f16,q4_0 --active 0.2,0.1,0.05 --layers 4 --threads 2
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_decode.ts --dtype f16 --pred q8_0 --layers 32 --same-file --runs 20
 * ```
 *
 * @module
 */

import { DType, dtypeName, parseDType } from "../core/dtype.ts";
import type { GGUFFile } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
import type { PredictorKind } from "../core/predictor.ts";
import { SparsityRecorder } from "../core/stats.ts";
import { tensorBytes } from "../core/tensor.ts";
import type { NativeBackend } from "../plugins/_native/backend.ts";
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
const runs = Number(arg("--runs", "40")); // decoded tokens per config
const actives = arg("--active", "0.2,0.1,0.05").split(",").map(Number);
const bundleAt = Number(arg("--bundle-at", "0.1")); // the active fraction bundling is tried at
const preds = arg("--pred", "f16,q8_0").split(",").map(parseDType); // predictor storage types
const sameFile = Deno.args.includes("--same-file");
const FULL = 32;

const SHAPE: SynthOptions = {
  arch: "bamboo",
  nEmbd: 4096,
  nFF: 14336,
  nLayer: layers,
  nHead: 32,
  nKV: 8,
  nCtx: 4096,
  nVocab: 32000,
  seed: 1,
};

interface Config {
  label: string;
  model: Model;
  /** Weight bytes read per decoded token. */
  bytes: number;
  /** Predicted-active fraction (1 for dense). */
  active: number;
  tps: number[];
}

/** A run state past a 4-token prompt, and the next token to feed. */
interface Seq {
  st: ReturnType<Model["newState"]>;
  tok: number;
}

function start(m: Model): Seq {
  const st = m.newState();
  m.eval(st, [1, 2, 3, 4]);
  return { st, tok: 5 };
}

/** Decode one token; returns tokens/s. */
function step(m: Model, s: Seq): number {
  const t0 = performance.now();
  const logits = m.eval(s.st, [s.tok]);
  const dt = (performance.now() - t0) / 1000;
  s.tok = logits.subarray(0, 256).indexOf(Math.max(...logits.subarray(0, 256)));
  return 1 / dt;
}

/** A config on a PWRI file: bytes and active fraction from its sparsity statistics. */
function sparseConfig(
  label: string,
  file: GGUFFile,
  be: NativeBackend,
  predictor: PredictorKind,
): Config {
  const model = new Model(file, be, label, { contextLength: runs + 8, predictor });
  const rec = new SparsityRecorder(model.backend, model.config);
  const st = model.newState();
  for (const t of [1, 2, 3, 4, 5, 6, 7, 8]) model.eval(st, [t], false, rec);
  const sum = rec.summary(model.predictor.name); // eval counts the tokens
  const bytes = fixedBytes(file) + sum.bytesPerToken;
  return { label, model, bytes, active: sum.predictedActive, tps: [] };
}

/** The dense-file config: `matmul` on every FFN weight. */
function denseConfig(file: GGUFFile, be: NativeBackend): Config {
  const model = new Model(file, be, "dense", { contextLength: runs + 8, predictor: "dense" });
  return {
    label: "dense (matmul)",
    model,
    bytes: fixedBytes(file) + ffnBytes(file),
    active: 1,
    tps: [],
  };
}

const lib = await library(X86);
const open = async (bundle: boolean) => {
  const be = (await chooseBackend("cpu_x86", { threads })).backend as NativeBackend;
  be.sparse.bundle = bundle;
  return be;
};
const plain = await open(false), bundled = await open(true);
const now = new Date().toISOString();
console.log(
  `sparse_decode ${
    now.slice(0, 16)
  }Z: 7B shape, ${layers} of ${FULL} layers, cpu_x86 ${threads}t, ` +
    `${runs} tokens per config, interleaved one token at a time (medians)` +
    (sameFile ? "; dense = the dense predictor on the same PWRI file" : ""),
);

/** File-name tag of a predictor type ("" for F16, as the files written before `--pred`). */
const predTag = (t: DType) => t === DType.F16 ? "" : t === DType.Q8_0 ? "-q8pred" : "-q4pred";

for (const dname of arg("--dtype", "f16,q4_0").split(",")) {
  const dtype = parseDType(dname);
  const tag = `${layers}L-${dname}`;
  const sparseShape = (a: number, p: DType): SynthOptions => ({
    ...SHAPE,
    dtype,
    layout: "powerinfer",
    rank: 1024,
    activeFraction: a,
    predictorType: p,
  });
  if (sameFile) {
    const p = preds[0];
    const path = `build/bench/7b-${tag}-pwri${predTag(p)}.gguf`;
    for (const a of actives) {
      const [file, mapped] = await ensureActive(path, sparseShape(a, p));
      const pn = dtypeName(p);
      const configs = [
        sparseConfig(`dense predictor (same file)`, file, plain, "dense"),
        sparseConfig(`sparse ${a * 100}% ${pn} pred`, file, plain, "lowrank"),
      ];
      measure(`${dname.toUpperCase()} ${a * 100}% active (${pn} predictors)`, configs);
      mapped.close();
    }
    continue;
  }
  const [dense] = await ensure(`build/bench/7b-${tag}-dense.gguf`, { ...SHAPE, dtype });
  const configs: Config[] = [denseConfig(dense, plain)];
  for (const a of actives) {
    for (const p of preds) {
      const [sp] = await ensure(
        `build/bench/7b-${tag}-sparse-a${a}${predTag(p)}.gguf`,
        sparseShape(a, p),
      );
      const pn = dtypeName(p);
      if (a === actives[0] && p === preds[0]) {
        configs.push(sparseConfig(`dense predictor (PWRI file, ${pn} pred)`, sp, plain, "dense"));
      }
      configs.push(sparseConfig(`sparse ${a * 100}% ${pn} pred`, sp, plain, "lowrank"));
      if (a === bundleAt && p === preds[preds.length - 1]) {
        configs.push(sparseConfig(`sparse ${a * 100}% ${pn} pred bundled`, sp, bundled, "lowrank"));
      }
    }
  }
  measure(dname.toUpperCase(), configs);
}
plain.close();
bundled.close();

/** Interleave the configs token by token and print a table; configs[0] is the baseline. */
function measure(title: string, configs: Config[]): void {
  // Time of the output projection alone (the part of a token that does not scale with layers).
  const head = headSeconds(configs[0].model);
  // One token per config in turn, so load changes on the shared machine hit all alike.
  const seqs = configs.map((c) => start(c.model)); // also faults the weights in
  const bw: number[] = [];
  for (let r = 0; r < runs; r++) {
    if (r % 8 === 0) bw.push(readBandwidth(lib, 1 << 30, 3).median);
    configs.forEach((c, i) => c.tps.push(step(c.model, seqs[i])));
  }
  const b = median(bw), base = median(configs[0].tps);
  const base32 = extrapolate(base, head);
  const ext = layers < FULL;
  console.log(
    `\n${title}: read bandwidth ${b.toFixed(1)} GB/s (median; min ${
      Math.min(...bw).toFixed(1)
    }, max ${Math.max(...bw).toFixed(1)}); output projection ${(head * 1e3).toFixed(1)} ms`,
  );
  console.log(
    "| config | predicted active | tok/s | vs dense | GB/token | GB/s | of bandwidth |" +
      (ext ? " 32-layer tok/s (extrapolated) | vs dense |" : ""),
  );
  console.log("|---|---|---|---|---|---|---|" + (ext ? "---|---|" : ""));
  for (const c of configs) {
    const t = median(c.tps), gbs = t * c.bytes / 1e9, t32 = extrapolate(t, head);
    const cells = [
      c.label,
      `${(100 * c.active).toFixed(1)}%`,
      t.toFixed(2),
      `${(t / base).toFixed(2)}x`,
      (c.bytes / 1e9).toFixed(3),
      gbs.toFixed(1),
      `${(100 * gbs / b).toFixed(0)}%`,
    ];
    if (ext) cells.push(t32.toFixed(2), `${(t32 / base32).toFixed(2)}x`);
    console.log(`| ${cells.join(" | ")} |`);
  }
}

/** Tokens/s of the full 32-layer model from the measured `layers`-layer rate. */
function extrapolate(tps: number, head: number): number {
  const t = 1 / tps;
  return 1 / (head + (FULL / layers) * (t - head));
}

/** Dense FFN bytes (gate, up, down of every layer). */
function ffnBytes(file: GGUFFile): number {
  let bytes = 0;
  for (const t of file.tensors.values()) {
    if (/ffn_(gate|up|down)/.test(t.name)) bytes += tensorBytes(t.type, t.shape);
  }
  return bytes;
}

/** Median seconds of the output projection (`[n_vocab, n_embd]` matvec) on `m`'s backend. */
function headSeconds(m: Model): number {
  const be = m.backend, w = m.weights.output;
  const x = be.alloc(w.shape[1]), out = be.alloc(w.shape[0]);
  const ts: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    be.matmul(out, w, x, 1);
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}
