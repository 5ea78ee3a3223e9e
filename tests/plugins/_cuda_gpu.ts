/**
 * Shared by the CUDA plugin's test files: the probe's result, a test that needs the GPU, and a
 * tolerance check relative to the largest reference value.
 *
 * @module
 */

import { type CudaBackend, plugin } from "../../plugins/cuda/mod.ts";

export const probe = await plugin.probe();

/**
 * A test that needs the GPU (skipped with the probe's reason without one): `fn` gets an open
 * backend, closed afterwards.
 */
export function gpuTest(
  name: string,
  fn: (b: CudaBackend, t: Deno.TestContext) => void | Promise<void>,
): void {
  Deno.test({
    name: name + (probe.score > 0 ? "" : ` — skipped: ${probe.reason}`),
    ignore: probe.score <= 0,
    async fn(t) {
      const b = await plugin.open() as CudaBackend;
      try {
        await fn(b, t);
      } finally {
        b.close();
      }
    },
  });
}

/** Throws unless max |got - want| is within `tol` of max |want|. */
export function near(what: string, got: Float32Array, want: Float32Array, tol: number): void {
  if (got.length !== want.length) {
    throw new Error(`${what}: ${got.length} values, reference ${want.length}`);
  }
  let scale = 0, worst = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    worst = Math.max(worst, Number.isNaN(d) ? Infinity : d);
  }
  if (worst > tol * (scale || 1)) {
    throw new Error(`${what}: max |Δ| ${worst} of max |ref| ${scale}, tolerance ${tol}`);
  }
}
