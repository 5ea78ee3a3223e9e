/**
 * bench/_cuda_trace.ts without a GPU: the layer pattern of a synthetic decode-step trace, and
 * the per-kernel medians it reports.
 */

import assert from "node:assert/strict";
import { layerPattern, summarizeTrace } from "../../bench/_cuda_trace.ts";
import type { KernelTrace } from "../../plugins/cuda/mod.ts";

// One step: an embed kernel, 4 layers of [qkv, attn, o] and a final kernel; kernel k of a
// step waits for µs[k] after the previous one, and block 0 started `early` µs before.
const shapes = [[1, 256], ...Array(4).fill([[396, 256], [8, 128], [396, 256]]).flat(), [250, 256]];
const µs = [0, 9, ...Array(4).fill([17, 6, 10]).flat()].slice(0, shapes.length);

function steps(n: number, jitter: (s: number, k: number) => number): KernelTrace[] {
  const out: KernelTrace[] = [];
  let t = 1e6;
  for (let s = 0; s < n; s++) {
    t += 50_000; // the host's gap between steps
    shapes.forEach(([grid, block], k) => {
      t += (µs[k] + jitter(s, k)) * 1e3;
      out.push({ start: t - 2e3, waitDone: t, grid, block });
    });
  }
  return out;
}

Deno.test("layerPattern finds the repeated layer and what precedes it", () => {
  const sig = shapes.map(([g, b]) => `${g}×${b}`);
  assert.deepEqual(layerPattern(sig, 4), { period: 3, first: 1 });
  assert.throws(() => layerPattern(sig, 5), /repeats 5 times/);
});

Deno.test("summarizeTrace gives each kernel's median cost per layer", () => {
  // step 3 is slow everywhere: medians over 5 steps ignore it
  const t = summarizeTrace(steps(5, (s) => (s === 3 ? 40 : 0)), 5, 4);
  assert.equal(t.perStep, 14);
  assert.deepEqual([t.first, t.period], [1, 3]);
  // what kernel k adds is the wait of kernel k + 1 minus its own: embed 9, then per layer
  // qkv 17, attention 6, o 10; the last kernel to the next step's first: the host's 50
  assert.deepEqual(t.rows.map((r) => Math.round(r.add)), [9, 17, 6, 10, 50]);
  assert.equal(Math.round(t.layer), 33);
  assert.ok(t.rows.slice(0, -1).every((r) => Math.abs(r.early - 2) < 1e-9));
  assert.ok(Number.isNaN(t.rows[4].early));
  assert.match(t.rows[0].what, /before 0 \(1×256\)/);
  assert.match(t.rows[4].what, /last \(250×256\) to next step/);
  assert.equal(summarizeTrace(steps(1, () => 0), 1, 4).rows.length, 4); // one step: no gap
  assert.throws(() => summarizeTrace(steps(5, () => 0).slice(1), 5, 4), /not 5 equal steps/);
});
