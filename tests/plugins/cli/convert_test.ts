import assert from "node:assert/strict";
import { DType } from "../../../core/dtype.ts";
import { type GGUFFile, parseGGUF } from "../../../core/gguf.ts";
import { Model } from "../../../core/model.ts";
import { valuesF32 } from "../../../core/quant.ts";
import { encodeSafetensors } from "../../../core/safetensors.ts";
import type { SparseFFN } from "../../../core/weights.ts";
import { convertCommand } from "../../../plugins/cli/convert.ts";
import { ReferenceBackend } from "../../../plugins/reference/mod.ts";
import { synthBytes, type SynthOptions } from "../../../tools/synth.ts";

const SHAPE: SynthOptions = { nEmbd: 64, nFF: 96, nLayer: 2, nVocab: 320, seed: 6 };
const TOKENS = [1, 9, 77, 250, 3, 18];

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function open(path: string): Promise<{ file: GGUFFile; model: Model }> {
  const file = parseGGUF(await Deno.readFile(path), path);
  return { file, model: new Model(file, new ReferenceBackend(), path) };
}

function logits(m: Model): Float32Array {
  return m.eval(m.newState(), TOKENS, true);
}

Deno.test("convertCommand() dense → powerinfer → dense keeps every tensor and the logits", async () => {
  await withDir(async (dir) => {
    for (
      const o of [{ arch: "llama" as const, dtype: DType.F16 }, {
        arch: "bamboo" as const,
        dtype: DType.F32,
      }]
    ) {
      await Deno.writeFile(`${dir}/dense.gguf`, synthBytes({ ...SHAPE, ...o }));
      await convertCommand(["--model", `${dir}/dense.gguf`, "--out", `${dir}/pwri.gguf`]);
      await convertCommand(["--model", `${dir}/pwri.gguf`, "--out", `${dir}/back.gguf`]);
      const a = await open(`${dir}/dense.gguf`), p = await open(`${dir}/pwri.gguf`);
      const b = await open(`${dir}/back.gguf`);
      assert.equal(p.file.magic, "PWRI");
      assert.equal(p.model.config.glu, a.model.config.glu, "the activation survives PWRI");
      assert.deepEqual([...p.file.tensors.get("blk.1.ffn_down_t.weight")!.shape], [96, 64]);
      assert.equal(b.file.magic, "GGUF");
      assert.deepEqual([...b.file.tensors.keys()], [...a.file.tensors.keys()]);
      for (const [name, t] of a.file.tensors) {
        assert.deepEqual(b.file.tensors.get(name)!.data, t.data, name);
      }
      const want = logits(a.model);
      assert.deepEqual(logits(b.model), want);
      // the sparse layout with every neuron active computes the same function
      const got = logits(p.model);
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5, `${i}`);
    }
  });
});

/** The predictors of a powerinfer synth of SHAPE, as safetensors tensors. */
function predictorTensors() {
  const src = parseGGUF(
    synthBytes({ ...SHAPE, arch: "bamboo", layout: "powerinfer", rank: [8, 16] }),
    "p",
  );
  return [...src.tensors.values()].filter((t) => /\.fc[12]\./.test(t.name));
}

Deno.test("convertCommand() attaches predictors and thresholds from safetensors and GGUF", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/dense.gguf`, synthBytes({ ...SHAPE, arch: "bamboo" }));
    const preds = predictorTensors();
    const meta = { turbosparse: JSON.stringify({ sparse_thresholds: [0.125, -0.5] }) };
    await Deno.writeFile(`${dir}/p.safetensors`, encodeSafetensors(preds, meta));
    const pwriFromPreds = synthBytes({
      ...SHAPE,
      arch: "bamboo",
      layout: "powerinfer",
      rank: [8, 16],
      threshold: 0.25,
    });
    await Deno.writeFile(`${dir}/p.gguf`, pwriFromPreds);
    for (
      const [source, thresholds] of [["p.safetensors", [0.125, -0.5]], ["p.gguf", [
        0.25,
        0.25,
      ]]] as const
    ) {
      await convertCommand([
        "-m",
        `${dir}/dense.gguf`,
        "-o",
        `${dir}/s.gguf`,
        "--predictors",
        `${dir}/${source}`,
      ]);
      const { file, model } = await open(`${dir}/s.gguf`);
      assert.equal(model.predictor.name, "lowrank", source);
      const units = model.weights.layers.map((l) => l.ffn as SparseFFN);
      assert.deepEqual(units.map((u) => u.threshold), thresholds, source);
      assert.deepEqual(units.map((u) => u.lowRank!.fc1.shape[0]), [8, 16]);
      for (const t of preds) assert.deepEqual(file.tensors.get(t.name)!.data, t.data, t.name);
      assert.equal(logits(model).length, TOKENS.length * 320);
    }
  });
});

Deno.test("convertCommand() --calibrate-cats stores thresholds the cats predictor runs with", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/dense.gguf`, synthBytes({ ...SHAPE, dtype: DType.F32 }));
    await Deno.writeTextFile(`${dir}/text.txt`, "the cat sat on the mat\n\nhello world again");
    await convertCommand([
      "-m",
      `${dir}/dense.gguf`,
      "-o",
      `${dir}/cats.gguf`,
      "--calibrate-cats",
      "--cats-sparsity",
      "0.6",
      "--calibration",
      `${dir}/text.txt`,
    ]); // deno-fmt-ignore
    const { file, model } = await open(`${dir}/cats.gguf`);
    const t = file.metadata.get("turbosparse.cats_thresholds") as number[];
    assert.equal(t.length, 2);
    assert.ok(t.every((v) => v > 0));
    model.setPredictor("cats");
    assert.equal(logits(model).length, TOKENS.length * 320);
  });
});

Deno.test("convertCommand() --predictor-type re-encodes the predictors and nothing else", async () => {
  await withDir(async (dir) => {
    const opts = { ...SHAPE, arch: "bamboo" as const, layout: "powerinfer" as const };
    await Deno.writeFile(`${dir}/s.gguf`, synthBytes({ ...opts, rank: [32, 64] }));
    const a = await open(`${dir}/s.gguf`);
    // Q8_0 rounds within max/254 of each block; Q4_0 (d = max/-8, codes -8..7) within max/8
    const cases = [[DType.Q8_0, "q8_0", 1 / 200], [DType.Q4_0, "Q4_0", 1 / 7]] as const;
    for (const [type, name, tol] of cases) {
      // a sparse input with no --to stays sparse: the flag only exists there
      await convertCommand([
        "-m",
        `${dir}/s.gguf`,
        "-o",
        `${dir}/q.gguf`,
        "--predictor-type",
        name,
      ]);
      const b = await open(`${dir}/q.gguf`);
      assert.equal(b.file.magic, "PWRI");
      assert.deepEqual([...b.file.tensors.keys()], [...a.file.tensors.keys()]);
      for (const [n, t] of a.file.tensors) {
        const u = b.file.tensors.get(n)!;
        if (!/\.fc[12]\./.test(n)) {
          assert.deepEqual(u.data, t.data, n);
          continue;
        }
        assert.equal(u.type, type, n);
        assert.deepEqual(u.shape, t.shape, n);
        const want = valuesF32(t), got = valuesF32(u);
        const max = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
        assert.ok(worst > 0 && worst <= tol * max, `${n}: max |Δ| ${worst} of ${max}`);
      }
      assert.equal(b.model.predictor.name, "lowrank");
      const units = b.model.weights.layers.map((l) => l.ffn as SparseFFN);
      assert.deepEqual(units.map((u) => u.lowRank!.fc1.type), [type, type]);
      assert.equal(logits(b.model).length, TOKENS.length * 320);
      b.model.close();
    }
    a.model.close();
    // rows of 8 values cannot hold Q8_0 blocks: the error names the tensor
    await Deno.writeFile(`${dir}/r8.gguf`, synthBytes({ ...opts, rank: [8, 16] }));
    await assert.rejects(
      () =>
        convertCommand(["-m", `${dir}/r8.gguf`, "-o", `${dir}/x.gguf`, "--predictor-type", "q8_0"]),
      /blk\.0\.fc2\.weight: Q8_0 needs rows of whole 32-value blocks, the rows have 8 values/,
    );
    await assert.rejects(
      () =>
        convertCommand(["-m", `${dir}/s.gguf`, "-o", `${dir}/x.gguf`, "--predictor-type", "i32"]),
      /predictor type I32 is not a weight type/,
    );
    await assert.rejects(
      () =>
        convertCommand(["-m", `${dir}/s.gguf`, "-o", `${dir}/x.gguf`, "--predictor-type", "q5"]),
      /unknown dtype "q5"/,
    );
    await assert.rejects(
      () =>
        convertCommand([
          "-m",
          `${dir}/s.gguf`,
          "-o",
          `${dir}/x.gguf`,
          "--to",
          "dense",
          "--predictor-type",
          "q8_0",
        ]),
      /--predictors, --predictor-type and --calibrate-cats need the powerinfer layout/,
    );
  });
});

Deno.test("convertCommand() names what is wrong with its flags", async () => {
  await assert.rejects(
    () => convertCommand(["--model", "x.gguf"]),
    /needs --model IN and --out OUT/,
  );
  await assert.rejects(
    () => convertCommand(["-m", "a", "-o", "b", "--to", "sideways"]),
    /--to must be "powerinfer" or "dense"/,
  );
});
