/**
 * Dense decode and prefill speed of the full forward pass on random-weight models written
 * by `tools/synth.ts` at TinyLlama-1.1B and Mistral-7B shapes, against the two rooflines
 * measured in the same run: decode as GB/s of weights read per token and a fraction of the
 * read bandwidth (`ts_read_bandwidth`, all threads); prefill as GFLOP/s of the matmuls
 * (2 · weight parameters per token) and a fraction of the compute peak of the type's
 * arithmetic (`ts_peak_fma_f32` for F32/F16/BF16, `ts_peak_int8` for Q8_0 and Q4_0); and the
 * prefill/decode ratio beside its roofline bound, peak · bytes per parameter / (2 · bandwidth).
 * Medians of `--runs` runs; ratios are taken within each run.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/decode.ts --shape 1b --dtype f16,q8_0,q4_0 --backend cpu_x86 --threads 2 [--verbose]
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
import { computePeak, median, readBandwidth } from "./_native.ts";

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
const verbose = Deno.args.includes("--verbose");

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
  // Bytes a decode step reads: every matrix, but only one row of the embedding table; and the
  // weight parameters a prefill token multiplies (every matrix but the embedding table).
  let bytes = 0, params = 0;
  for (const t of model.file.tensors.values()) {
    const embed = t.name === "token_embd.weight";
    bytes += embed ? rowBytes(t.type, t.shape[1]) : tensorBytes(t.type, t.shape);
    if (!embed && t.shape.length === 2) params += t.shape[0] * t.shape[1];
  }
  if (!model.file.tensors.has("output.weight")) {
    bytes += tensorBytes(dtype, [o.nVocab!, o.nEmbd!]);
    params += o.nVocab! * o.nEmbd!;
  }
  const flopTok = 2 * params;
  const lib = await library(backend === "cpu_x86" ? X86 : SCALAR);
  // The peak of the arithmetic this type's matmul uses (kernels/c/matmul_avx2*.c).
  const peakOf = (pk: ReturnType<typeof computePeak>) =>
    dname === "q8_0" ? pk.int8 : dname === "q4_0" ? pk.int8Sum16 : pk.fma;
  const peakName = dname === "q8_0"
    ? "int8 (32-bit sums)"
    : dname === "q4_0"
    ? "int8 (16-bit sums)"
    : "f32 FMA";
  const prompt = Array.from({ length: nPrefill }, (_, i) => (i * 7919) % o.nVocab!);
  const dec: number[] = [], pre: number[] = [], bw: number[] = [], peak: number[] = [];
  const ratio: number[] = [], bound: number[] = [];
  model.eval(model.newState(), prompt.slice(0, 8)); // warm-up: faults the weights in
  for (let r = 0; r < runs; r++) {
    bw.push(readBandwidth(lib, 1 << 30, 3).median);
    peak.push(peakOf(computePeak(lib, 3, 50)));
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
    ratio.push(pre[r] / dec[r]);
    // Roofline: prefill <= peak / flopTok tokens/s, decode <= bandwidth / bytes tokens/s.
    bound.push((peak[r] * 1e9 / flopTok) / (bw[r] * 1e9 / bytes));
    if (verbose) {
      console.log(
        `  run ${r}: bw ${bw[r].toFixed(1)} GB/s, peak ${peak[r].toFixed(0)} GOP/s, decode ${
          dec[r].toFixed(2)
        } tok/s, prefill ${pre[r].toFixed(1)} tok/s, ratio ${ratio[r].toFixed(1)}x, bound ${
          bound[r].toFixed(1)
        }x`,
      );
    }
  }
  const d = median(dec), p = median(pre), b = median(bw), pk = median(peak);
  const gbs = d * bytes / 1e9, gflops = p * flopTok / 1e9;
  const f = (x: number, n = 1) => x.toFixed(n);
  console.log(
    `${shape} ${dname.toUpperCase()} ${backend} ${threads}t (medians of ${runs}): ` +
      `decode ${f(d, 2)} tok/s = ${f(gbs)} GB/s (${f(100 * gbs / b, 0)}% of ${f(b)} GB/s read ` +
      `bandwidth); prefill ${nPrefill} tok: ${f(p)} tok/s = ${f(gflops)} GFLOP/s (${
        f(100 * gflops / pk, 0)
      }% of ${f(pk)} GOP/s ${peakName} peak); prefill/decode ${f(median(ratio))}x, roofline ` +
      `bound ${f(median(bound))}x (peak/(2·params) ÷ decode: ${f(pk * 1e9 / flopTok / d)}x); ` +
      `weights ${f(bytes / 1e9, 2)} GB/token, ${f(bytes / params, 3)} B/param, ${
        f(flopTok / 1e9, 2)
      } GFLOP/token`,
  );
  model.close();
}
