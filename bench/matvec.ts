/**
 * Matrix-vector (decode) and batched (prefill) matmul throughput of a native CPU library per
 * weight type, as GB/s of weights read and as a fraction of the read bandwidth measured in
 * the same run. Weights are several matrices of a Mistral-7B FFN shape cycled so that they
 * never fit in cache. `--flags` builds a variant of libts_x86 with other SIMD flags, to
 * compare compiler settings.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc bench/matvec.ts \
 *   --lib x86 --threads 2 [--flags "-march=x86-64-v3"] [--ntok 16]
 * ```
 *
 * @module
 */

import { DType, dtypeName, rowBytes } from "../core/dtype.ts";
import type { LibSpec } from "../plugins/_native/build.ts";
import { LIBS, X86_FLAGS } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { median, readBandwidth, synthWeight } from "./_native.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
if (Deno.args.includes("--help")) {
  console.log(`options (defaults in brackets):
  --lib x86|neon|scalar   library [x86 on x86-64, else neon]
  --flags "..."           build a variant with these SIMD flags instead of the library's
  --threads N             pool threads [all cores]
  --ntok N                tokens per call: 1 = decode, 64 = prefill tile [1]
  --rows N --cols N       weight shape [14336, 4096]
  --reps N                > 1: one matrix called N times per run (cache-resident kernel speed)
                          instead of >= 1.5 GB of matrices cycled [1]
  --runs N                timed runs, median reported [5]
  --types A,B             F32,F16,BF16,Q8_0,Q4_0 [all]
  --file-layout           Q8_0/Q4_0 in the file layout instead of repacked`);
  Deno.exit(0);
}
const base = LIBS.find((l) =>
  l.name === arg("--lib", Deno.build.arch === "x86_64" ? "x86" : "neon")
)!;
const flags = arg("--flags", "");
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const nTok = Number(arg("--ntok", "1"));
const runs = Number(arg("--runs", "5"));
const types = arg("--types", "F32,F16,BF16,Q8_0,Q4_0").split(",");
// Q8_0/Q4_0 weights are repacked as the backend's weight() does, unless --file-layout.
const fileLayout = Deno.args.includes("--file-layout");

// A variant library: same sources, every SIMD-flagged file compiled with `flags` instead.
const spec: LibSpec = flags
  ? {
    name: `${base.name}_${flags.replace(/[^a-z0-9]+/gi, "_")}`,
    arch: base.arch,
    sources: base.sources.map((s) => ({
      file: s.file,
      flags: s.flags === X86_FLAGS ? flags.split(" ") : s.flags,
    })),
  }
  : base;
const lib = await library(spec);
lib.symbols.ts_set_threads(threads);
const bw = readBandwidth(lib);
const variant = Deno.UnsafePointerView.getCString(lib.symbols.ts_matmul_variant()!);
console.log(
  `lib ${spec.name} (${variant}) flags "${
    flags || X86_FLAGS.join(" ")
  }", ${threads} threads, nTok ${nTok}; ` +
    `read bandwidth median ${bw.median.toFixed(1)} GB/s, best ${bw.best.toFixed(1)} GB/s`,
);

// --rows 64 --reps 200 keeps the weights in L2: kernel speed without the memory bound.
const [rows, cols] = [Number(arg("--rows", "14336")), Number(arg("--cols", "4096"))];
const reps = Number(arg("--reps", "1"));
for (const name of types) {
  const type = DType[name as keyof typeof DType];
  const rb = rowBytes(type, cols);
  const count = reps > 1 ? 1 : Math.max(2, Math.ceil(1.5e9 / (rb * rows))); // ≥ 1.5 GB in all
  let ws = Array.from({ length: count }, (_, i) => synthWeight(type, rows, cols, i + 1));
  const x = new Float32Array(nTok * cols).map((_, i) => Math.sin(i));
  const out = new Float32Array(nTok * rows);
  let fn = {
    [DType.F32]: lib.symbols.ts_matmul_f32,
    [DType.F16]: lib.symbols.ts_matmul_f16,
    [DType.BF16]: lib.symbols.ts_matmul_bf16,
    [DType.Q8_0]: lib.symbols.ts_matmul_q8_0,
    [DType.Q4_0]: lib.symbols.ts_matmul_q4_0,
  }[type as number]!;
  const pack = type === DType.Q8_0
    ? [lib.symbols.ts_pack_q8_0, lib.symbols.ts_matmul_q8_0_packed] as const
    : type === DType.Q4_0
    ? [lib.symbols.ts_pack_q4_0, lib.symbols.ts_matmul_q4_0_packed] as const
    : null;
  let layout = "";
  if (pack && !fileLayout && Number(pack[0](null, ws[0], rows, cols)) > 0) {
    const t0 = performance.now();
    ws = ws.map((w) => {
      const p = new Uint8Array(Number(pack[0](null, w, rows, cols)));
      pack[0](p, w, rows, cols);
      return p;
    });
    const ms = (performance.now() - t0) / count;
    layout = ` packed (${ms.toFixed(0)} ms, ${(rb * rows / ms / 1e6).toFixed(1)} GB/s per matrix)`;
    fn = pack[1];
  }
  for (const w of ws) fn(out, w, x, rows, cols, nTok); // warm-up, faults pages in
  // Bandwidth is measured between the runs: on a shared machine it drifts minute to minute.
  const gbs: number[] = [], bws: number[] = [];
  for (let r = 0; r < runs; r++) {
    bws.push(readBandwidth(lib, 1 << 29, 3).median);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) for (const w of ws) fn(out, w, x, rows, cols, nTok);
    const s = (performance.now() - t0) / 1000;
    gbs.push((rb * rows * count * reps) / s / 1e9);
  }
  const bwm = median(bws);
  const m = median(gbs);
  const tok = nTok > 1
    ? `, ${((m * 1e9 / (rb * rows)) * nTok * rows * cols * 2 / 1e9).toFixed(1)} GFLOP/s`
    : "";
  console.log(
    `${dtypeName(type).padEnd(5)} [${rows}, ${cols}] x${count}${layout}: median ${
      m.toFixed(1)
    } GB/s ` +
      `(${(100 * m / bwm).toFixed(0)}% of ${bwm.toFixed(1)} GB/s read bandwidth, best run ${
        Math.max(...gbs).toFixed(1)
      } GB/s)${tok}`,
  );
}
lib.symbols.ts_set_threads(1);
