/**
 * The native sparse FFN ops beyond conformance: bitwise identical results for 1, 2 and 3
 * threads (the down projection is split by output columns, never by neurons) and with
 * row-column bundling on or off, and a batch (`downSparseBatch`) equal to its tokens one at a
 * time, on every native CPU plugin that runs here.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BackendPlugin, Glu, SparseBackend } from "../../core/backend.ts";
import { sparseOps } from "../../core/backend.ts";
import { DType, dtypeName } from "../../core/dtype.ts";
import type { Tensor } from "../../core/tensor.ts";
import type { NativeBackend } from "../../plugins/_native/backend.ts";
import { plugin as scalar } from "../../plugins/cpu_scalar/mod.ts";
import { plugin as neon } from "../../plugins/cpu_neon/mod.ts";
import { plugin as x86 } from "../../plugins/cpu_x86/mod.ts";
import { rand, tensor } from "./_native_suite.ts";

const N_FF = 1024, N_EMBD = 512;
const TYPES = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0];

const encoded = new Map<DType, Tensor[]>();

/** Gate, up and down_t of `type`, encoded once (quantising in TypeScript is the slow part). */
function tensors(type: DType): Tensor[] {
  let ts = encoded.get(type);
  if (!ts) {
    ts = ["gate", "up", "down_t"].map((name, i) =>
      tensor(name, type, [N_FF, N_EMBD], rand(N_FF * N_EMBD, i + 1, 0.1))
    );
    encoded.set(type, ts);
  }
  return ts;
}

/** gluSparse then downSparse on every other neuron: the packed activations and the output. */
function ffn(b: SparseBackend, type: DType, kind: Glu, bundle: boolean): Float32Array {
  (b as unknown as NativeBackend).sparse.bundle = bundle;
  const [gate, up, downT] = tensors(type).map((t) => b.weight(t));
  b.prepareSparseFFN?.(gate, up, downT);
  const x = b.alloc(N_EMBD), act = b.alloc(N_FF), out = b.alloc(N_EMBD);
  b.write(x, rand(N_EMBD, 4));
  const idx = b.allocIndex(N_FF);
  b.select(idx, b.alloc(N_FF), 0, N_FF, 0); // zeros ≥ 0: every neuron
  const ids = b.readIndex(idx).filter((i) => i % 2 === 0);
  b.writeIndex(idx, ids);
  b.gluSparse(act, gate, up, x, 0, idx, kind);
  b.downSparse(out, 0, downT, act, idx);
  const a = b.read(act, 0, ids.length);
  if (kind === "drelu") assert.ok(a.some((v) => v === 0), "dReLU leaves some neurons inactive");
  assert.ok(a.some((v) => v !== 0), "some neurons are active");
  return Float32Array.from([...a, ...b.read(out)]);
}

for (const plugin of [scalar, x86, neon] as BackendPlugin[]) {
  const probe = await plugin.probe();
  Deno.test({
    name: `${plugin.name} gluSparse() and downSparse() give the same bits for 1, 2, 3 threads ` +
      `and with bundled rows`,
    ignore: probe.score <= 0,
    async fn() {
      for (const type of TYPES) {
        for (const kind of ["drelu", "swiglu"] as Glu[]) {
          const what = `${dtypeName(type)} ${kind}`;
          let want: Float32Array | undefined;
          for (
            const [threads, bundle] of [[1, false], [2, false], [3, false], [2, true]] as const
          ) {
            const b = await plugin.open({ threads });
            try {
              const got = ffn(sparseOps(b), type, kind, bundle);
              want ??= got;
              const label = `${what}, ${threads} threads${bundle ? ", bundled" : ""}`;
              assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), label);
            } finally {
              b.close?.();
            }
          }
        }
      }
    },
  });
}

/** downSparseBatch of 3 tokens, and the same tokens through select + downSparse one at a time. */
function batchAndTokens(b: SparseBackend, type: DType): [Float32Array, Float32Array] {
  const nTok = 3, downT = b.weight(tensors(type)[2]);
  const a = rand(nTok * N_FF, 7).map((v, i) => (i % 3 === 0 ? 0 : v)); // dReLU zeros
  const s = rand(nTok * N_FF, 8);
  const act = b.alloc(nTok * N_FF), score = b.alloc(nTok * N_FF);
  b.write(act, a);
  b.write(score, s);
  const batch = b.alloc(nTok * N_EMBD), one = b.alloc(nTok * N_EMBD), packed = b.alloc(N_FF);
  b.downSparseBatch!(batch, downT, act, score, 0.1, nTok);
  const idx = b.allocIndex(N_FF);
  for (let t = 0; t < nTok; t++) {
    b.select(idx, score, t * N_FF, N_FF, 0.1);
    b.write(packed, Float32Array.from(b.readIndex(idx), (i) => a[t * N_FF + i]));
    b.downSparse(one, t * N_EMBD, downT, packed, idx);
  }
  return [b.read(batch), b.read(one)];
}

for (const plugin of [scalar, x86, neon] as BackendPlugin[]) {
  const probe = await plugin.probe();
  Deno.test({
    name: `${plugin.name} downSparseBatch() gives the bits of its tokens run one at a time`,
    ignore: probe.score <= 0,
    async fn() {
      const b = sparseOps(await plugin.open({ threads: 2 }));
      try {
        for (const type of TYPES) {
          const [batch, one] = batchAndTokens(b, type);
          assert.ok(one.some((v) => v !== 0), "some output is non-zero");
          assert.deepEqual(
            new Uint32Array(batch.buffer),
            new Uint32Array(one.buffer),
            dtypeName(type),
          );
        }
      } finally {
        b.close?.();
      }
    },
  });
}
