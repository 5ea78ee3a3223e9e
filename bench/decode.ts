/**
 * Dense decode and prefill speed of the full forward pass on random-weight models written
 * by `tools/synth.ts` at TinyLlama-1.1B and Mistral-7B shapes: tokens/s, GB/s of weights
 * read per decoded token, and that as a fraction of the read bandwidth measured in the same
 * run (`ts_read_bandwidth`, all threads). Medians of `--runs` runs.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/decode.ts --shape 1b --dtype f16,q8_0,q4_0 --backend cpu_x86 --threads 2
 * ```
 *
 * @module
 */

import { parseDType, rowBytes } from "../core/dtype.ts";
import { tensorBytes } from "../core/tensor.ts";
import { loadModel } from "../mod.ts";
import { SCALAR, X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { synthModel, type SynthOptions } from "../tools/synth.ts";
import { median, readBandwidth } from "./_native.ts";

const SHAPES: Record<string, SynthOptions> = {
  "1b": { nEmbd: 2048, nFF: 5632, nLayer: 22, nHead: 32, nKV: 4, nCtx: 2048, nVocab: 32000 },
  "7b": { nEmbd: 4096, nFF: 14336, nLayer: 32, nHead: 32, nKV: 8, nCtx: 4096, nVocab: 32000 },
};

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const shape = arg("--shape", "1b");
const backend = arg("--backend", Deno.build.arch === "x86_64" ? "cpu_x86" : "cpu_neon");
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const runs = Number(arg("--runs", "5"));
const nDecode = Number(arg("--decode", "16"));
const nPrefill = Number(arg("--prefill", "128"));

for (const dname of arg("--dtype", "f16,q8_0,q4_0").split(",")) {
  const dtype = parseDType(dname);
  const o = { ...SHAPES[shape], dtype, seed: 1 };
  const path = `build/bench/${shape}-${dname}.gguf`;
  try {
    Deno.statSync(path);
  } catch {
    await Deno.mkdir("build/bench", { recursive: true });
    console.error(`writing ${path}…`);
    await synthModel(path, o);
  }
  const model = await loadModel(path, { backend, threads, contextLength: nPrefill + nDecode + 8 });
  // Bytes a decode step reads: every matrix, but only one row of the embedding table.
  let bytes = 0;
  for (const t of model.file.tensors.values()) {
    bytes += t.name === "token_embd.weight"
      ? rowBytes(t.type, t.shape[1])
      : tensorBytes(t.type, t.shape);
  }
  if (!model.file.tensors.has("output.weight")) bytes += tensorBytes(dtype, [o.nVocab!, o.nEmbd!]);
  const lib = await library(backend === "cpu_x86" ? X86 : SCALAR);
  const prompt = Array.from({ length: nPrefill }, (_, i) => (i * 7919) % o.nVocab!);
  const dec: number[] = [], pre: number[] = [], bw: number[] = [];
  model.eval(model.newState(), prompt.slice(0, 8)); // warm-up: faults the weights in
  for (let r = 0; r < runs; r++) {
    bw.push(readBandwidth(lib, 1 << 30, 3).median);
    const st = model.newState();
    let t0 = performance.now();
    model.eval(st, prompt);
    pre.push(nPrefill / ((performance.now() - t0) / 1000));
    let tok = 1;
    t0 = performance.now();
    for (let i = 0; i < nDecode; i++) {
      const logits = model.eval(st, [tok]);
      tok = logits.indexOf(Math.max(...logits.subarray(0, 256)));
    }
    dec.push(nDecode / ((performance.now() - t0) / 1000));
  }
  const d = median(dec), p = median(pre), b = median(bw);
  const gbs = d * bytes / 1e9;
  console.log(
    `${shape} ${dname.toUpperCase()} ${backend} ${threads}t: decode ${d.toFixed(2)} tok/s = ${
      gbs.toFixed(1)
    } GB/s ` +
      `(${(100 * gbs / b).toFixed(0)}% of ${
        b.toFixed(1)
      } GB/s read bandwidth); prefill ${nPrefill} tok: ` +
      `${p.toFixed(1)} tok/s (${(p / d).toFixed(1)}x decode); weights ${
        (bytes / 1e9).toFixed(2)
      } GB/token`,
  );
  model.close();
}
