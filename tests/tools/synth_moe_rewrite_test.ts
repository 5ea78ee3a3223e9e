import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import {
  FC2_TENSORS,
  rewriteTensors,
  synthBytes,
  synthModel,
  type SynthOptions,
} from "../../tools/synth.ts";

const MOE: SynthOptions = {
  arch: "bamboo",
  layout: "powerinfer",
  rank: 32,
  nLayer: 2,
  nExpert: 4,
  nExpertUsed: 2,
  predictorType: DType.Q4_0,
};

Deno.test("FC2_TENSORS matches the fc2 of every expert and of dense layers only", () => {
  const names = [...parseGGUF(synthBytes(MOE), "moe").tensors.keys()];
  const fc2 = names.filter((n) => FC2_TENSORS.test(n));
  assert.equal(fc2.length, 2 * 4);
  assert.ok(fc2.every((n) => /^blk\.\d\.fc2\.\d\.weight$/.test(n)));
  assert.ok(FC2_TENSORS.test("blk.3.fc2.weight"));
  assert.ok(!FC2_TENSORS.test("blk.3.fc1.2.weight"));
});

Deno.test("rewriteTensors() with FC2_TENSORS turns a sparse MoE file into another fraction's", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await synthModel(path, { ...MOE, activeFraction: 0.2 });
    const n = await rewriteTensors(path, { ...MOE, activeFraction: 0.05 }, FC2_TENSORS);
    assert.ok(n > 0);
    const want = synthBytes({ ...MOE, activeFraction: 0.05 });
    assert.notDeepEqual(synthBytes({ ...MOE, activeFraction: 0.2 }), want);
    assert.deepEqual(await Deno.readFile(path), want);
  } finally {
    await Deno.remove(path);
  }
});
