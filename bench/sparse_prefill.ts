/**
 * Prompt processing (prefill) tokens/s of sparse models on cpu_x86: a `--prompt`-token prompt
 * fed in batches of 64 (sparse FFNs batched: dense gate/up matmuls, then `downSparseBatch`
 * masked by the predictor) against batches of 7 (below `BATCH_DENSE_MIN`: the FFN gathers
 * token by token, as every batch did before), interleaved, medians of `--runs`; also the
 * largest difference between the two runs' last logits, relative to their largest |logit|.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_prefill.ts models/tiny-turbosparse.gguf build/bench/7b-4L-q4_0-sparse-a0.1.gguf
 * ```
 *
 * @module
 */

import { parseGGUF } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
import { BATCH_DENSE_MIN } from "../core/sparse.ts";
import { openFile } from "../plugins/mmap/mod.ts";
import { chooseBackend } from "../plugins/registry.ts";
import { median } from "./_native.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const runs = Number(arg("--runs", "5"));
const promptLen = Number(arg("--prompt", "64"));
const files = Deno.args.filter((a) => a.endsWith(".gguf"));
const be = (await chooseBackend("cpu_x86", { threads })).backend;
const small = BATCH_DENSE_MIN - 1;

console.log(
  `sparse_prefill ${new Date().toISOString().slice(0, 10)}: cpu_x86 ${threads}t, ` +
    `${promptLen}-token prompt, lowrank predictor, medians of ${runs}`,
);
console.log(
  "| model | batches of 64: tok/s | batches of 7 (per-token FFN): tok/s | speed-up | last logits max rel. diff |",
);
console.log("|---|---|---|---|---|");
for (const path of files) {
  const file = parseGGUF((await openFile(path)).bytes, path);
  const m = new Model(file, be, path, { contextLength: promptLen + 8, predictor: "lowrank" });
  const prompt = Array.from({ length: promptLen }, (_, i) => 3 + (i * 7919) % 200);
  /** Feed the prompt in batches of `size`; returns [tokens/s, last logits]. */
  const feed = (size: number): [number, Float32Array] => {
    const st = m.newState();
    const t0 = performance.now();
    let logits: Float32Array = new Float32Array();
    for (let i = 0; i < prompt.length; i += size) logits = m.eval(st, prompt.slice(i, i + size));
    return [promptLen / ((performance.now() - t0) / 1000), logits];
  };
  feed(64); // faults the weights in, packs the matrices the matmuls use
  const big: number[] = [], few: number[] = [];
  let diff = 0;
  for (let r = 0; r < runs; r++) {
    const [a, la] = feed(64);
    const [b, lb] = feed(small);
    big.push(a);
    few.push(b);
    let d = 0, s = 0;
    for (let i = 0; i < la.length; i++) {
      d = Math.max(d, Math.abs(la[i] - lb[i]));
      s = Math.max(s, Math.abs(lb[i]));
    }
    diff = Math.max(diff, d / s);
  }
  const a = median(big), b = median(few);
  console.log(
    `| ${path} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}x | ${
      diff.toExponential(1)
    } |`,
  );
}
be.close?.();
