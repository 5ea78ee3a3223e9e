/**
 * The native gathered gate/up rows against the unpacked matmul kernel, bit for bit: a partial
 * list's activations are dReLU of the rows `ts_matmul_<type>` computes (on x86, Q4_0 goes
 * through the two-row kernel `ts_glu_rows2_q4_0_avx2`), and a list of every neuron (dense
 * matvecs, repacked for Q8_0/Q4_0) agrees with the gather to rounding.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BackendPlugin } from "../../core/backend.ts";
import { sparseOps } from "../../core/backend.ts";
import { DType, dtypeName } from "../../core/dtype.ts";
import { NativeWeight } from "../../plugins/_native/_types.ts";
import type { NativeBackend } from "../../plugins/_native/backend.ts";
import { SCALAR, X86 } from "../../plugins/_native/libs.ts";
import { library } from "../../plugins/_native/loader.ts";
import { plugin as scalar } from "../../plugins/cpu_scalar/mod.ts";
import { plugin as x86 } from "../../plugins/cpu_x86/mod.ts";
import { rand, tensor } from "./_native_suite.ts";

const N_FF = 512, N_EMBD = 1024;
const TYPES = [DType.F16, DType.Q8_0, DType.Q4_0];

for (const [plugin, spec] of [[scalar, SCALAR], [x86, X86]] as const) {
  const probe = await (plugin as BackendPlugin).probe();
  Deno.test({
    name: `${plugin.name} gluSparse() equals dReLU of the matmul kernel's rows, bit for bit`,
    ignore: probe.score <= 0,
    async fn() {
      const lib = await library(spec);
      const s = lib.symbols;
      const matmul = {
        [DType.F16]: s.ts_matmul_f16,
        [DType.Q8_0]: s.ts_matmul_q8_0,
        [DType.Q4_0]: s.ts_matmul_q4_0,
      } as Record<number, typeof s.ts_matmul_f16>;
      const b = sparseOps(await plugin.open({ threads: 2 }));
      try {
        for (const type of TYPES) {
          const [gate, up] = ["gate", "up"].map((name, i) =>
            b.weight(tensor(name, type, [N_FF, N_EMBD], rand(N_FF * N_EMBD, 11 + i, 0.1)))
          ) as NativeWeight[];
          const xs = rand(N_EMBD, 13);
          const g = new Float32Array(N_FF), u = new Float32Array(N_FF);
          matmul[type](g, gate.data, xs, N_FF, N_EMBD, 1);
          matmul[type](u, up.data, xs, N_FF, N_EMBD, 1);
          const x = b.alloc(N_EMBD), act = b.alloc(N_FF), idx = b.allocIndex(N_FF);
          b.write(x, xs);
          const ids = Int32Array.from({ length: N_FF / 3 }, (_, k) => 3 * k + 1);
          b.writeIndex(idx, ids);
          b.gluSparse(act, gate, up, x, 0, idx, "drelu");
          const got = b.read(act, 0, ids.length);
          const want = Float32Array.from(ids, (i) => Math.max(g[i], 0) * Math.max(u[i], 0));
          assert.ok(want.some((v) => v !== 0), "some neurons are active");
          assert.deepEqual(
            new Uint32Array(got.buffer),
            new Uint32Array(want.buffer),
            dtypeName(type),
          );
          // every neuron: the dense matvec path, the same values to rounding
          b.writeIndex(idx, Int32Array.from({ length: N_FF }, (_, i) => i));
          b.gluSparse(act, gate, up, x, 0, idx, "drelu");
          const all = b.read(act, 0, N_FF);
          for (let k = 0; k < ids.length; k++) {
            const d = Math.abs(all[ids[k]] - got[k]);
            assert.ok(d <= 2e-2 * Math.abs(got[k]) + 1e-4, `${dtypeName(type)} neuron ${ids[k]}`);
          }
        }
      } finally {
        (b as unknown as NativeBackend).close();
      }
    },
  });
}
