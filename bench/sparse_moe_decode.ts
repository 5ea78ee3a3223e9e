/**
 * Sparse vs dense MoE decode at a reduced Mixtral shape: 8 experts of n_ff 14336, top-2,
 * n_embd 4096, 32 heads, 8 KV, vocab 32000, `--layers` (default 4) layers. Sparse: bamboo
 * (dReLU) experts in the project's sparse MoE layout (`ffn_down_t_exps`), one rank-1024
 * low-rank predictor per expert, stored in Q8_0 (`predictorType`), random predictors marking
 * `--active` of the neurons; dense: llama.cpp's Mixtral layout (SwiGLU, `ffn_down_exps`).
 * Both written by `tools/synth.ts` on first use (build/bench/mixtral-*), in ONE run,
 * interleaved one token at a time, medians, with the read bandwidth measured beside.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_moe_decode.ts --dtype q4_0 --layers 4 --active 0.1 --threads 2
 * ```
 *
 * @module
 */

import { DType, parseDType } from "../core/dtype.ts";
import { type GGUFFile, parseGGUF } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
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
const runs = Number(arg("--runs", "30"));
const active = Number(arg("--active", "0.1"));
const dname = arg("--dtype", "q4_0");
const dtype = parseDType(dname);
const prepareOnly = Deno.args.includes("--prepare"); // write the files, measure nothing

const SHAPE: SynthOptions = {
  nEmbd: 4096,
  nFF: 14336,
  nLayer: layers,
  nHead: 32,
  nKV: 8,
  nCtx: 4096,
  nVocab: 32000,
  nExpert: 8,
  nExpertUsed: 2,
  dtype,
  seed: 1,
};

/** The file at `path`, written by the synthesiser first when missing. */
async function ensure(path: string, o: SynthOptions): Promise<GGUFFile> {
  try {
    Deno.statSync(path);
  } catch {
    await Deno.mkdir("build/bench", { recursive: true });
    console.error(`writing ${path}…`);
    await synthModel(`${path}.part`, o);
    await Deno.rename(`${path}.part`, path);
  }
  return parseGGUF((await openFile(path)).bytes, path);
}

const tag = `${layers}L-${dname}`;
const dense = await ensure(`build/bench/mixtral-${tag}-dense.gguf`, { ...SHAPE, arch: "llama" });
const sparse = await ensure(`build/bench/mixtral-${tag}-sparse-a${active}.gguf`, {
  ...SHAPE,
  arch: "bamboo",
  layout: "powerinfer",
  rank: 1024,
  activeFraction: active,
  predictorType: DType.Q8_0,
});
if (prepareOnly) Deno.exit(0);

const lib = await library(X86);
const be = (await chooseBackend("cpu_x86", { threads })).backend;
const ctx = { contextLength: runs + 8 };
const configs = [
  { label: "dense Mixtral (top-2, SwiGLU)", model: new Model(dense, be, "dense", ctx) },
  {
    label: `sparse ${active * 100}% (dReLU, Q8_0 rank-1024 predictors)`,
    model: new Model(sparse, be, "sparse", { ...ctx, predictor: "lowrank" }),
  },
];
const seqs = configs.map((c) => {
  const st = c.model.newState();
  c.model.eval(st, [1, 2, 3, 4]); // also faults the weights in
  return { st, tok: 5, tps: [] as number[] };
});
const bw: number[] = [];
for (let r = 0; r < runs; r++) {
  if (r % 8 === 0) bw.push(readBandwidth(lib, 1 << 30, 3).median);
  configs.forEach((c, i) => {
    const s = seqs[i];
    const t0 = performance.now();
    const logits = c.model.eval(s.st, [s.tok]);
    s.tps.push(1000 / (performance.now() - t0));
    s.tok = 5 + (logits.subarray(5, 256).indexOf(Math.max(...logits.subarray(5, 256))));
  });
}
const date = new Date().toISOString().slice(0, 10);
console.log(
  `sparse_moe_decode ${date}: Mixtral shape 8x14336 top-2, ${layers} layers, ${dname}, ` +
    `cpu_x86 ${threads}t, ${runs} tokens each, interleaved (medians); read bandwidth ` +
    `${median(bw).toFixed(1)} GB/s (min ${Math.min(...bw).toFixed(1)}, max ${
      Math.max(...bw).toFixed(1)
    })`,
);
const base = median(seqs[0].tps);
console.log("| config | tok/s | vs dense |");
console.log("|---|---|---|");
configs.forEach((c, i) => {
  const t = median(seqs[i].tps);
  console.log(`| ${c.label} | ${t.toFixed(2)} | ${(t / base).toFixed(2)}x |`);
});
be.close?.();
