import assert from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { rewriteTensors, synthBytes, synthModel, type SynthOptions } from "../../tools/synth.ts";

const SPARSE: SynthOptions = {
  arch: "bamboo",
  layout: "powerinfer",
  rank: 32,
  nLayer: 2,
  predictorType: DType.Q8_0,
};

Deno.test("rewriteTensors() turns a file into the one written with the new options", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await synthModel(path, { ...SPARSE, activeFraction: 0.2 });
    const n = await rewriteTensors(path, { ...SPARSE, activeFraction: 0.05 }, /\.fc2\.weight$/);
    assert.ok(n > 0);
    const want = synthBytes({ ...SPARSE, activeFraction: 0.05 });
    assert.notDeepEqual(synthBytes({ ...SPARSE, activeFraction: 0.2 }), want);
    assert.deepEqual(await Deno.readFile(path), want);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("rewriteTensors() refuses a file written with other shapes", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await synthModel(path, SPARSE);
    await assert.rejects(
      () => rewriteTensors(path, { ...SPARSE, rank: 64 }, /\.fc2\.weight$/),
      /header differs/,
    );
  } finally {
    await Deno.remove(path);
  }
});
