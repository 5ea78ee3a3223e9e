/**
 * The compute-peak probes of the native libraries (kernels/c/peak.c) that bench/decode.ts
 * reports prefill against: on one thread and on two, each returns a finite positive rate.
 */

import assert from "node:assert/strict";
import { SCALAR, X86 } from "../../plugins/_native/libs.ts";
import { library } from "../../plugins/_native/loader.ts";

const specs = Deno.build.arch === "x86_64" ? [SCALAR, X86] : [SCALAR];

for (const spec of specs) {
  Deno.test(`${spec.name}: ts_peak_fma_f32 and ts_peak_int8 return finite positive rates`, async () => {
    const lib = await library(spec);
    try {
      for (const threads of [1, 2]) {
        lib.symbols.ts_set_threads(threads);
        const rates = [
          lib.symbols.ts_peak_fma_f32(200_000n),
          lib.symbols.ts_peak_int8(0, 200_000n),
          lib.symbols.ts_peak_int8(1, 200_000n),
        ];
        for (const r of rates) assert.ok(Number.isFinite(r) && r > 0, `rate ${r}`);
      }
    } finally {
      lib.symbols.ts_set_threads(1);
    }
  });
}
