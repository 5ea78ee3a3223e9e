/**
 * Sparse vs dense decode at the Mistral-7B shape (4096, 14336, 32 heads, 8 KV, vocab 32000),
 * bamboo (dReLU), rank-1024 random predictors (`tools/synth.ts`, layout "powerinfer") at
 * several active fractions, against the dense path (`matmul` on the same shape written as a
 * dense GGUF) in ONE run, interleaved token by token, medians of `--runs` tokens; with the read bandwidth measured
 * beside them. Variants: F16 predictors, or Q8_0 ones (a second file written with
 * `predictorType: Q8_0`, same seed, so the same weights), and row-column bundling
 * (`prepareSparseFFN`) on or off.
 *
 * `--layers` (default 4 of 32) keeps the files small; the per-layer shapes are 7B's. A token
 * costs `head + L · layer`, so the 32-layer figure is extrapolated from the measured
 * output-projection time `head` (timed in the same run): `1 / (head + 32/L · (t - head))`.
 * Bytes per token: attention and output weights, one embedding row, plus the FFN and
 * predictor bytes the sparsity statistics count (rows actually read).
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_decode.ts --dtype f16,q4_0 --active 0.2,0.1,0.05 --layers 4 --threads 2
 * ```
 *
 * @module
 */

import { DType, parseDType, rowBytes } from "../core/dtype.ts";
import { parseGGUF } from "../core/gguf.ts";
import type { GGUFFile } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
import { SparsityRecorder } from "../core/stats.ts";
import { tensorBytes } from "../core/tensor.ts";
import type { NativeBackend } from "../plugins/_native/backend.ts";
import { X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { openFile } from "../plugins/mmap/mod.ts";
import { chooseBackend } from "../plugins/registry.ts";
import { synthModel, type SynthOptions } from "../tools/synth.ts";
import { median, readBandwidth } from "./_native.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const layers = Number(arg("--layers", "4"));
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const runs = Number(arg("--runs", "40")); // decoded tokens per config
const actives = arg("--active", "0.2,0.1,0.05").split(",").map(Number);
const bundleAt = Number(arg("--bundle-at", "0.1")); // the active fraction bundling is tried at
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

/** The file at `path`, written by the synthesiser first when missing. */
async function ensure(path: string, o: SynthOptions): Promise<GGUFFile> {
  try {
    Deno.statSync(path);
  } catch {
    await Deno.mkdir("build/bench", { recursive: true });
    console.error(`writing ${path}…`);
    await synthModel(path, o);
  }
  return parseGGUF((await openFile(path)).bytes, path);
}

/** Weight bytes a decode step reads outside the FFNs and predictors. */
function fixedBytes(file: GGUFFile): number {
  let bytes = 0;
  for (const t of file.tensors.values()) {
    if (/ffn_(gate|up|down)|\.fc[12]\./.test(t.name)) continue;
    bytes += t.name === "token_embd.weight"
      ? rowBytes(t.type, t.shape[1])
      : tensorBytes(t.type, t.shape);
  }
  return bytes;
}

interface Config {
  label: string;
  model: Model;
  /** Weight bytes read per decoded token. */
  bytes: number;
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

/** Predicted-active fraction of each sparse model, from the statistics pass. */
const active = new Map<Model, number>();

/** Bytes per token of a sparse model, from its sparsity statistics over a few tokens. */
function sparseBytes(m: Model, fixed: number): number {
  const rec = new SparsityRecorder(m.backend, m.config);
  const st = m.newState();
  const toks = [1, 2, 3, 4, 5, 6, 7, 8];
  for (const t of toks) m.eval(st, [t], false, rec);
  const sum = rec.summary(m.predictor.name); // eval counts the tokens
  active.set(m, sum.predictedActive);
  return fixed + sum.bytesPerToken;
}

const lib = await library(X86);
const open = async (bundle: boolean) => {
  const be = (await chooseBackend("cpu_x86", { threads })).backend as NativeBackend;
  be.sparse.bundle = bundle;
  return be;
};
const plain = await open(false), bundled = await open(true);
const date = new Date().toISOString().slice(0, 10);
console.log(
  `sparse_decode ${date}: 7B shape, ${layers} of ${FULL} layers, cpu_x86 ${threads}t, ` +
    `${runs} tokens per config, interleaved one token at a time (medians)`,
);

for (const dname of arg("--dtype", "f16,q4_0").split(",")) {
  const dtype = parseDType(dname);
  const tag = `${layers}L-${dname}`;
  const dense = await ensure(`build/bench/7b-${tag}-dense.gguf`, { ...SHAPE, dtype });
  const configs: Config[] = [];
  const ctx = { contextLength: runs + 8 };
  const dm = new Model(dense, plain, "dense", { ...ctx, predictor: "dense" });
  configs.push({
    label: "dense (matmul)",
    model: dm,
    bytes: fixedBytes(dense) + ffnBytes(dense),
    tps: [],
  });
  for (const a of actives) {
    const sparseShape: SynthOptions = {
      ...SHAPE,
      dtype,
      layout: "powerinfer",
      rank: 1024,
      activeFraction: a,
    };
    const sp = await ensure(`build/bench/7b-${tag}-sparse-a${a}.gguf`, sparseShape);
    const sp8 = await ensure(`build/bench/7b-${tag}-sparse-a${a}-q8pred.gguf`, {
      ...sparseShape,
      predictorType: DType.Q8_0,
    });
    const variants: [string, GGUFFile, NativeBackend][] = [
      [`sparse ${a * 100}% F16 pred`, sp, plain],
      [`sparse ${a * 100}% Q8_0 pred`, sp8, plain],
    ];
    if (a === bundleAt) variants.push([`sparse ${a * 100}% Q8_0 pred bundled`, sp8, bundled]);
    for (const [label, file, be] of variants) {
      const m = new Model(file, be, label, { ...ctx, predictor: "lowrank" });
      configs.push({ label, model: m, bytes: sparseBytes(m, fixedBytes(file)), tps: [] });
    }
  }
  // Time of the output projection alone (the part of a token that does not scale with layers).
  const head = headSeconds(dm);
  // One token per config in turn, so load changes on the shared machine hit all alike.
  const seqs = configs.map((c) => start(c.model)); // also faults the weights in
  const bw: number[] = [];
  for (let r = 0; r < runs; r++) {
    if (r % 8 === 0) bw.push(readBandwidth(lib, 1 << 30, 3).median);
    configs.forEach((c, i) => c.tps.push(step(c.model, seqs[i])));
  }
  const b = median(bw), base = median(configs[0].tps);
  const base32 = extrapolate(base, head);
  console.log(
    `\n${dname.toUpperCase()}: read bandwidth ${b.toFixed(1)} GB/s (median; min ${
      Math.min(...bw).toFixed(1)
    }, max ${Math.max(...bw).toFixed(1)}); output projection ${(head * 1e3).toFixed(1)} ms`,
  );
  console.log(
    "| config | predicted active | tok/s | vs dense | GB/token | GB/s | of bandwidth | 32-layer tok/s (extrapolated) | vs dense |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const c of configs) {
    const t = median(c.tps), gbs = t * c.bytes / 1e9, t32 = extrapolate(t, head);
    console.log(
      `| ${c.label} | ${pct(active.get(c.model))} | ${t.toFixed(2)} | ${(t / base).toFixed(2)}x | ${
        (c.bytes / 1e9).toFixed(3)
      } | ${gbs.toFixed(1)} | ${(100 * gbs / b).toFixed(0)}% | ${t32.toFixed(2)} | ${
        (t32 / base32).toFixed(2)
      }x |`,
    );
  }
}
plain.close();
bundled.close();

function pct(f: number | undefined): string {
  return f === undefined ? "100%" : `${(100 * f).toFixed(1)}%`;
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
