/**
 * Causal GQA attention (`ts_attention_f32`) of libts_x86, tiled AVX2 kernel against its plain
 * twin (the same library built with `-DTS_ATTN_PLAIN`), both in this run. TinyLlama-1.1B
 * heads by default (32 heads, 4 KV heads, head_dim 64); ms per call, median of `--runs`.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc bench/attention.ts \
 *   --threads 2 [--pos 0,448,1984] [--ntok 64,1]
 * ```
 *
 * @module
 */

import type { LibSpec } from "../plugins/_native/build.ts";
import { X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { median } from "./_native.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const runs = Number(arg("--runs", "15"));
const positions = arg("--pos", "0,448,1984").split(",").map(Number);
const nToks = arg("--ntok", "64,1").split(",").map(Number);
const [nHead, nKV, hd] = [32, 4, 64];

// The plain twin: every source as in libts_x86, ops.c without the AVX2 attention.
const plainSpec: LibSpec = {
  name: "x86_attn_plain",
  arch: X86.arch,
  sources: X86.sources.map((s) =>
    s.file === "ops.c" ? { file: s.file, flags: [...s.flags, "-DTS_ATTN_PLAIN"] } : s
  ),
};
const libs = [["plain", await library(plainSpec)], ["avx2", await library(X86)]] as const;
for (const [, lib] of libs) lib.symbols.ts_set_threads(threads);

const fill = (n: number, seed: number) =>
  new Float32Array(n).map((_, i) => Math.sin(i * 0.37 + seed));
console.log(`libts_x86, ${threads} threads, nHead ${nHead} nKV ${nKV} headDim ${hd}`);
console.log("nTok  pos0   plain ms   avx2 ms  speedup  max|diff|");
for (const nTok of nToks) {
  for (const pos0 of positions) {
    const nCtx = pos0 + nTok;
    const q = fill(nTok * nHead * hd, 1);
    const k = fill(nCtx * nKV * hd, 2);
    const v = fill(nCtx * nKV * hd, 3);
    const outs: Float32Array[] = [];
    const ms: number[] = [];
    for (const [, lib] of libs) {
      const out = new Float32Array(nTok * nHead * hd);
      const call = () =>
        lib.symbols.ts_attention_f32(out, q, k, v, nTok, pos0, nHead, nKV, hd, 1 / Math.sqrt(hd));
      call(); // warm-up
      const r: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        call();
        r.push(performance.now() - t);
      }
      outs.push(out);
      ms.push(median(r));
    }
    let diff = 0;
    for (let i = 0; i < outs[0].length; i++) {
      diff = Math.max(diff, Math.abs(outs[0][i] - outs[1][i]));
    }
    console.log(
      `${String(nTok).padStart(4)} ${String(pos0).padStart(5)} ${ms[0].toFixed(3).padStart(10)} ` +
        `${ms[1].toFixed(3).padStart(9)} ${(ms[0] / ms[1]).toFixed(1).padStart(7)}x ` +
        `${diff.toExponential(1).padStart(9)}`,
    );
  }
}
