/**
 * The forward pass against Hugging Face transformers: logits of small seeded models (SwiGLU,
 * ReGLU and dReLU FFNs, GQA, tied and untied output, two RoPE bases) computed by
 * `tools/golden/hf_logits.py` in float32, compared on every backend that runs here.
 * Tolerance: max |ours − theirs| ≤ 1e-4 × max |theirs| (f32 math, different summation order).
 */

import assert from "node:assert/strict";
import { parseGGUF } from "../../core/gguf.ts";
import { Model } from "../../core/model.ts";
import { backendNames, chooseBackend, probeAll } from "../../plugins/registry.ts";

const DIR = new URL("../fixtures/golden/", import.meta.url);
const VARIANTS = ["swiglu", "reglu", "drelu"];
const TOLERANCE = 1e-4;
const PREFILL = 12; // tokens run as one batch; the rest are decoded one at a time

const probes = await probeAll();

for (const name of backendNames) {
  const probe = probes.find((p) => p.name === name)!.probe;
  for (const variant of VARIANTS) {
    Deno.test({
      name: `forward() on ${name} matches transformers' logits (${variant})` +
        (probe.score > 0 ? "" : ` — skipped: ${probe.reason}`),
      ignore: probe.score <= 0,
      async fn() {
        const golden = JSON.parse(await Deno.readTextFile(new URL(`${variant}.json`, DIR)));
        const bytes = await Deno.readFile(new URL(`${variant}.gguf`, DIR));
        const { backend } = await chooseBackend(name);
        const model = new Model(parseGGUF(bytes, `${variant}.gguf`), backend, variant);
        try {
          const state = model.newState();
          const tokens: number[] = golden.tokens;
          const ours = new Float32Array(tokens.length * golden.nVocab);
          ours.set(model.eval(state, tokens.slice(0, PREFILL), true));
          for (let t = PREFILL; t < tokens.length; t++) {
            ours.set(model.eval(state, [tokens[t]]), t * golden.nVocab);
          }
          let maxErr = 0, maxRef = 0;
          for (let i = 0; i < ours.length; i++) {
            maxErr = Math.max(maxErr, Math.abs(ours[i] - golden.logits[i]));
            maxRef = Math.max(maxRef, Math.abs(golden.logits[i]));
          }
          assert.ok(maxRef > 1, "golden logits should not be trivially small");
          assert.ok(
            maxErr <= TOLERANCE * maxRef,
            `max |Δlogit| ${maxErr.toExponential(3)} exceeds ${TOLERANCE} × ${maxRef.toFixed(3)}`,
          );
          console.log(
            `  ${name}/${variant}: max |Δlogit| = ${maxErr.toExponential(2)} (max |logit| ${
              maxRef.toFixed(2)
            })`,
          );
        } finally {
          model.close();
        }
      },
    });
  }
}
