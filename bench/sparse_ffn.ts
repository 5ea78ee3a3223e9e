/**
 * The sparse FFN kernels alone at one Mistral-7B layer (n_embd 4096, n_ff 14336): gathered
 * gate+up rows (`gluSparse`, dReLU) and the sparse down projection (`downSparse`) at
 * `--active` of the neurons (a fresh random list each iteration, so rows come from DRAM),
 * against the dense `matmul` of the gate matrix, interleaved, medians of `--runs`; GB/s of
 * weight bytes read, with the read bandwidth measured in the same run.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc --allow-env \
 *   bench/sparse_ffn.ts --dtype f16,q4_0 --active 0.1 --threads 2
 * ```
 *
 * @module
 */

import { parseDType, rowBytes } from "../core/dtype.ts";
import type { NativeBackend } from "../plugins/_native/backend.ts";
import { X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { openFile } from "../plugins/mmap/mod.ts";
import { chooseBackend } from "../plugins/registry.ts";
import { median, readBandwidth, synthWeight } from "./_native.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
const runs = Number(arg("--runs", "40"));
const active = Number(arg("--active", "0.1"));
const E = 4096, F = 14336, LISTS = Number(arg("--lists", "16"));

const lib = await library(X86);
const be = (await chooseBackend("cpu_x86", { threads })).backend as NativeBackend;
const bw: number[] = [];

// Random ascending lists of about `active · F` neurons.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
const lists = Array.from({ length: LISTS }, () => {
  const ids: number[] = [];
  if (Deno.args.includes("--contig")) { // a contiguous run of rows: no random-access cost
    const at = Math.floor(rand() * F * (1 - active));
    for (let i = at; i < at + active * F; i++) ids.push(i);
  } else for (let i = 0; i < F; i++) if (rand() < active) ids.push(i);
  return Int32Array.from(ids);
});

for (const dname of arg("--dtype", "f16,q4_0").split(",")) {
  const type = parseDType(dname);
  // Weights mapped from a file as a model's are (page-cache folios, not JS heap pages: the
  // TLB cost of random rows depends on the page size).
  const w = async (name: string, s: number) => {
    const path = `build/bench/ffn-${dname}-${name}.bin`;
    try {
      Deno.statSync(path);
    } catch {
      await Deno.mkdir("build/bench", { recursive: true });
      await Deno.writeFile(path, synthWeight(type, F, E, s));
    }
    return be.weight({ name, type, shape: [F, E], data: (await openFile(path)).bytes });
  };
  const gate = await w("gate", 1), up = await w("up", 2), downT = await w("down_t", 3);
  const x = be.alloc(E), out = be.alloc(E), act = be.alloc(F), dense = be.alloc(F);
  be.write(x, Float32Array.from({ length: E }, () => rand() * 2 - 1));
  const idx = be.allocIndex(F);
  const t = { glu: [] as number[], down: [] as number[], dense: [] as number[] };
  let rowsGlu = 0, rowsDown = 0;
  for (let r = 0; r < runs; r++) {
    if (r % 10 === 0) bw.push(readBandwidth(lib, 1 << 28, 3).median);
    be.writeIndex(idx, lists[r % LISTS]);
    let t0 = performance.now();
    be.gluSparse(act, gate, up, x, 0, idx, "drelu");
    t.glu.push(performance.now() - t0);
    t0 = performance.now();
    be.downSparse(out, 0, downT, act, idx);
    t.down.push(performance.now() - t0);
    t0 = performance.now();
    be.matmul(dense, gate, x, 1);
    t.dense.push(performance.now() - t0);
    rowsGlu = 2 * lists[r % LISTS].length;
    rowsDown = be.read(act, 0, lists[r % LISTS].length).filter((a) => a !== 0).length;
  }
  const rb = rowBytes(type, E), gbs = (rows: number, ms: number) => rows * rb / ms / 1e6;
  const g = median(t.glu), d = median(t.down), m = median(t.dense);
  console.log(
    `${dname}: ${active * 100}% active, ${threads}t: gluSparse ${g.toFixed(3)} ms ` +
      `(${gbs(rowsGlu, g).toFixed(1)} GB/s), downSparse ${d.toFixed(3)} ms ` +
      `(${rowsDown} rows, ${gbs(rowsDown, d).toFixed(1)} GB/s), dense gate matmul ` +
      `${m.toFixed(3)} ms (${gbs(F, m).toFixed(1)} GB/s); read bandwidth ${
        median(bw).toFixed(1)
      } GB/s`,
  );
}
be.close();
