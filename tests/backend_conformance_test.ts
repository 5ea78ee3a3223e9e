import assert from "node:assert/strict";
import type { Backend } from "../core/backend.ts";
import { ReferenceBackend } from "../plugins/reference/mod.ts";
import { backendNames } from "../plugins/registry.ts";
import {
  BatchBugBackend,
  DreluNoClampBackend,
  LlamaLikeBackend,
  NeoxRopeBackend,
  NonCausalBackend,
  Q4NoOffsetBackend,
  WrongGroupBackend,
} from "./_conformance_doubles.ts";
import { conformance, conformanceCases, failures } from "./conformance.ts";

// The suite itself, once per registered backend (the reference is what it compares with).
for (const name of backendNames) {
  if (name !== "reference") await conformance(name);
}

const reference = new ReferenceBackend();

Deno.test("conformance() passes a backend with llama.cpp-like f32 and Q8 numerics", () => {
  const failed = failures(new LlamaLikeBackend(), reference);
  assert.deepEqual([...failed.values()], []);
});

/** Each buggy double, and the cases allowed (and required) to catch it. */
const BUGS: [string, Backend, RegExp][] = [
  ["rope with NeoX pairing", new NeoxRopeBackend(), /^rope /],
  ["Q4_0 matmul without the -8 offset", new Q4NoOffsetBackend(), /^matmul Q4_0 /],
  ["matmul that reuses token 0", new BatchBugBackend(), /^matmul .* nTok=7$/],
  ["attention without a causal mask", new NonCausalBackend(), /^attention .* nTok=[2-9] /],
  ["attention with the wrong GQA grouping", new WrongGroupBackend(), /^attention GQA /],
  ["dReLU that does not clamp up", new DreluNoClampBackend(), /^glu drelu /],
];

for (const [bug, backend, caught] of BUGS) {
  Deno.test(`conformance() catches ${bug}`, () => {
    const failed = [...failures(backend, reference).keys()];
    assert.ok(failed.length > 0, `no case failed for ${bug}`);
    for (const name of failed) assert.match(name, caught, `unrelated case failed for ${bug}`);
  });
}

Deno.test("conformanceCases() covers every op and weight dtype", () => {
  const names = conformanceCases().map((c) => c.name);
  for (const op of ["matmul", "embed", "rmsnorm", "rope", "attention", "add", "glu", "copy"]) {
    assert.ok(names.some((n) => n.startsWith(`${op} `) || n.startsWith(`${op}/`)), op);
  }
  for (const dtype of ["F32", "F16", "BF16", "Q8_0", "Q4_0"]) {
    assert.ok(names.includes(`matmul ${dtype} [64, 4096] nTok=7`), dtype);
    assert.ok(names.includes(`embed ${dtype} [37, 64]`), dtype);
  }
  assert.equal(new Set(names).size, names.length, "case names are unique");
});

Deno.test("runCase() reports the reference backend against itself as exact", () => {
  assert.deepEqual([...failures(new ReferenceBackend(), reference).keys()], []);
});
