/**
 * Memory read bandwidth of this machine, all threads, through `ts_read_bandwidth` of a
 * native library: the roofline the decode benchmarks compare with.
 *
 * @example
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write=build --allow-run=cc bench/bandwidth.ts --threads 2
 * ```
 *
 * @module
 */

import { SCALAR, X86 } from "../plugins/_native/libs.ts";
import { library } from "../plugins/_native/loader.ts";
import { readBandwidth } from "./_native.ts";

if (import.meta.main) {
  const arg = (name: string, dflt: string) => {
    const i = Deno.args.indexOf(name);
    return i < 0 ? dflt : Deno.args[i + 1];
  };
  const threads = Number(arg("--threads", String(navigator.hardwareConcurrency)));
  const gib = Number(arg("--gib", "1"));
  const lib = await library(Deno.build.arch === "x86_64" ? X86 : SCALAR);
  for (const t of [1, threads]) {
    lib.symbols.ts_set_threads(t);
    const r = readBandwidth(lib, gib * 2 ** 30);
    console.log(
      `read bandwidth, ${t} thread(s): median ${r.median.toFixed(1)} GB/s, best ${
        r.best.toFixed(1)
      } GB/s`,
    );
  }
  lib.symbols.ts_set_threads(1);
}
