import { plugin } from "../../plugins/cpu_neon/mod.ts";
import type { NativeBackend } from "../../plugins/_native/backend.ts";
import { conformance } from "../conformance.ts";
import { nativeSuite } from "./_native_suite.ts";

await nativeSuite(plugin, { quantisesX: true });
// The registry-wide suite runs this too; here so tools/ci_neon.sh needs only this file.
await conformance("cpu_neon");

Deno.test("cpu_neon probe() scores 30 on aarch64 and 0 with a reason elsewhere", async () => {
  const p = await plugin.probe();
  const want = Deno.build.arch === "aarch64" ? 30 : 0;
  if (p.score !== want || !p.reason) {
    throw new Error(`score ${p.score} "${p.reason}", expected ${want}`);
  }
});

Deno.test({
  name: "cpu_neon open() picks the dot-product kernels exactly when the CPU has them",
  ignore: (await plugin.probe()).score <= 0,
  async fn() {
    const b = await plugin.open({ threads: 2 }) as NativeBackend;
    try {
      const dot = (await plugin.probe()).reason.includes("dotprod");
      if (b.variant !== (dot ? "neon_dot" : "neon")) {
        throw new Error(`variant ${b.variant}, dotprod ${dot}`);
      }
    } finally {
      b.close();
    }
  },
});
