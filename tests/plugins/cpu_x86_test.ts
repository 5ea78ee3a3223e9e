import { plugin } from "../../plugins/cpu_x86/mod.ts";
import type { NativeBackend } from "../../plugins/_native/backend.ts";
import { nativeSuite } from "./_native_suite.ts";

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
