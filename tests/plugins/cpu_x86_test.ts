import { plugin } from "../../plugins/cpu_x86/mod.ts";
import type { NativeBackend } from "../../plugins/_native/backend.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { nativeSuite, rand } from "./_native_suite.ts";

await nativeSuite(plugin, { quantisesX: true });

Deno.test("cpu_x86 probe() scores 30 with avx2, fma and f16c, else 0 with a reason", async () => {
  const p = await plugin.probe();
  if (Deno.build.arch !== "x86_64" && p.score !== 0) throw new Error(`score ${p.score} off x86-64`);
  if (p.score === 30 && !/avx2.*fma.*f16c/.test(p.reason)) throw new Error(`reason "${p.reason}"`);
  if (p.score !== 30 && (p.score !== 0 || !p.reason)) {
    throw new Error(`score ${p.score} "${p.reason}"`);
  }
});

Deno.test({
  name: "cpu_x86 open() runs the AVX2 kernels where the probe passes",
  ignore: (await plugin.probe()).score <= 0,
  async fn() {
    const b = await plugin.open({ threads: 2 }) as NativeBackend;
    try {
      if (b.variant !== "avx2") throw new Error(`variant ${b.variant}`);
      if (b.threads !== 2) throw new Error(`threads ${b.threads}`);
    } finally {
      b.close();
    }
  },
});

Deno.test({
  name: "cpu_x86 attention() gives the same bits on 1 and 2 threads past one key block",
  ignore: (await plugin.probe()).score <= 0,
  async fn() {
    const ref = new ReferenceBackend();
    // 3 query heads per KV head and 37 tokens: partial tiles; pos0 300: several key blocks.
    for (const [nTok, pos0, nHead, nKV] of [[37, 300, 12, 4], [1, 200, 32, 4]]) {
      const hd = 64, nCtx = pos0 + nTok;
      const a = { nTok, pos0, nHead, nKV, headDim: hd, scale: 1 / Math.sqrt(hd) };
      const q = rand(nTok * nHead * hd, 31, 3), k = rand(nCtx * nKV * hd, 32);
      const v = rand(nCtx * nKV * hd, 33);
      const outs: Float32Array[] = [];
      // Opened one at a time: the pool is per library and the latest open() sets its size.
      for (const threads of [1, 2, 0]) {
        const be = threads ? await plugin.open({ threads }) : ref;
        const [qb, kb, vb] = [q, k, v].map((x) => {
          const buf = be.alloc(x.length);
          be.write(buf, x);
          return buf;
        });
        be.attention(qb, qb, kb, vb, a);
        outs.push(be.read(qb));
        if (threads) (be as NativeBackend).close();
      }
      const what = `attention nTok ${nTok} pos0 ${pos0}`;
      for (let i = 0; i < outs[0].length; i++) {
        if (outs[0][i] !== outs[1][i]) throw new Error(`${what}: element ${i} differs by threads`);
        const err = Math.abs(outs[1][i] - outs[2][i]);
        if (!(err <= 1e-5)) throw new Error(`${what}: element ${i} off the reference by ${err}`);
      }
    }
  },
});
