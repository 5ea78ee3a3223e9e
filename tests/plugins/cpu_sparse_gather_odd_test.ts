/**
 * The Q4_0 gather on x86 runs two neurons per call (`ts_glu_rows4_q4_0_avx2`) and a leftover
 * neuron of a thread's chunk through the two-row kernel: lists of odd and tiny lengths (one
 * leftover per 32-neuron chunk, or only leftovers) still equal dReLU of the matmul kernel's
 * rows bit for bit, for one and two threads.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BackendPlugin } from "../../core/backend.ts";
import { sparseOps } from "../../core/backend.ts";
import { DType } from "../../core/dtype.ts";
import type { NativeWeight } from "../../plugins/_native/_types.ts";
import type { NativeBackend } from "../../plugins/_native/backend.ts";
import { X86 } from "../../plugins/_native/libs.ts";
import { library } from "../../plugins/_native/loader.ts";
import { plugin as x86 } from "../../plugins/cpu_x86/mod.ts";
import { rand, tensor } from "./_native_suite.ts";

const N_FF = 512, N_EMBD = 1024;
const LENGTHS = [1, 2, 3, 33, 65, 171];

const probe = await (x86 as BackendPlugin).probe();
for (const threads of [1, 2]) {
  Deno.test({
    name: `cpu_x86 gluSparse() on odd-length Q4_0 lists equals the matmul rows (${threads}t)`,
    ignore: probe.score <= 0,
    async fn() {
      const s = (await library(X86)).symbols;
      const b = sparseOps(await x86.open({ threads }));
      try {
        const [gate, up] = ["gate", "up"].map((name, i) =>
          b.weight(tensor(name, DType.Q4_0, [N_FF, N_EMBD], rand(N_FF * N_EMBD, 21 + i, 0.1)))
        ) as NativeWeight[];
        const xs = rand(N_EMBD, 23);
        const g = new Float32Array(N_FF), u = new Float32Array(N_FF);
        s.ts_matmul_q4_0(g, gate.data, xs, N_FF, N_EMBD, 1);
        s.ts_matmul_q4_0(u, up.data, xs, N_FF, N_EMBD, 1);
        const x = b.alloc(N_EMBD), act = b.alloc(N_FF), idx = b.allocIndex(N_FF);
        b.write(x, xs);
        for (const n of LENGTHS) {
          const ids = Int32Array.from({ length: n }, (_, k) => (7 * k + 5) % N_FF).sort();
          b.writeIndex(idx, ids);
          b.gluSparse(act, gate, up, x, 0, idx, "drelu");
          const got = b.read(act, 0, n);
          const want = Float32Array.from(ids, (i) => Math.max(g[i], 0) * Math.max(u[i], 0));
          assert.deepEqual(
            new Uint32Array(got.buffer),
            new Uint32Array(want.buffer),
            `${n} neurons`,
          );
        }
      } finally {
        (b as unknown as NativeBackend).close();
      }
    },
  });
}
