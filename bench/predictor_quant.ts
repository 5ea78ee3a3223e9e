/**
 * What quantising the predictors costs in accuracy: the shipped model's predictors
 * (`blk.N.fc1` / `fc2`) as stored, and re-quantised to each type of `--types` (dequantised to
 * f32, quantised with `core/quant.ts`, swapped into the parsed file in memory; every other
 * tensor untouched). For each: predicted-active fraction, recall and precision against the
 * oracle (the true active sets, `SparsityRecorder` with compareOracle), the predictor bytes
 * read per token, and the held-out loss with the predictor against the exact (oracle) loss,
 * on `--tokens` tokens of held-out text in windows of `--window`.
 *
 * @example
 * ```sh
 * deno run --allow-read --allow-ffi --allow-write=build --allow-run=cc --allow-env \
 *   bench/predictor_quant.ts --model models/tiny-turbosparse.gguf --text build/corpus/val.txt
 * ```
 *
 * @module
 */

import { DType, dtypeName, parseDType } from "../core/dtype.ts";
import { parseGGUF } from "../core/gguf.ts";
import type { GGUFFile } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
import { requantize } from "../core/quant.ts";
import { PREDICTOR } from "../core/sparse_convert.ts";
import { crossEntropySum, SparsityRecorder } from "../core/stats.ts";
import { chooseBackend } from "../plugins/registry.ts";

const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(name);
  return i < 0 ? dflt : Deno.args[i + 1];
};
const path = arg("--model", "models/tiny-turbosparse.gguf");
const textPath = arg("--text", "tests/fixtures/models/heldout.txt");
const nTokens = Number(arg("--tokens", "16384"));
const window = Number(arg("--window", "512"));
const types = arg("--types", "f16,q8_0,q4_0").split(",").map(parseDType);
const backendName = arg("--backend", "cpu_x86");

/** `file` with every predictor tensor re-encoded as `type` (a new parse of the same bytes). */
function withPredictors(bytes: Uint8Array, type: DType): GGUFFile {
  const file = parseGGUF(bytes, path);
  for (const [name, t] of file.tensors) {
    if (!PREDICTOR.test(name) || t.type === type) continue;
    file.tensors.set(name, { ...t, type, data: requantize(t, type) });
  }
  return file;
}

/** Types of the predictor tensors in `file`, e.g. "F16". */
function predictorTypes(file: GGUFFile): string {
  const s = new Set<string>();
  for (const [name, t] of file.tensors) if (/\.fc[12]/.test(name)) s.add(dtypeName(t.type));
  return [...s].join("+");
}

/** Loss over the windows with `predictor`, and the recorder's summary when asked. */
function run(m: Model, windows: number[][], rec?: SparsityRecorder): number {
  let sum = 0, n = 0;
  for (const w of windows) {
    const logits = m.eval(m.newState(), w, true, rec);
    sum += crossEntropySum(logits, w.slice(1), m.config.nVocab);
    n += w.length - 1;
  }
  return sum / n;
}

const bytes = await Deno.readFile(path);
const base = parseGGUF(bytes, path);
const be = (await chooseBackend(backendName)).backend;
const exact = new Model(base, be, path, { predictor: "oracle" });
const ids = exact.tokenizer.encode(await Deno.readTextFile(textPath)).slice(0, nTokens);
const windows: number[][] = [];
for (let i = 0; i + 1 < ids.length; i += window) windows.push(ids.slice(i, i + window));

const exactLoss = run(exact, windows);
console.log(
  `predictor_quant ${new Date().toISOString().slice(0, 16)}Z: ${path}, ${be.name}, ` +
    `${ids.length} tokens of ${textPath} in windows of ${window}; exact (oracle) loss ` +
    `${exactLoss.toFixed(4)} nats; shipped predictors ${predictorTypes(base)}`,
);
console.log(
  "| predictors | predictor KiB/token | predicted active | true active | recall | precision | min unit recall | loss | vs exact |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const type of types) {
  const file = withPredictors(bytes, type);
  const m = new Model(file, be, path, { predictor: "lowrank" });
  const rec = new SparsityRecorder(be, m.config, true);
  const loss = run(m, windows, rec);
  const s = rec.summary("lowrank");
  let predBytes = 0;
  for (const [name, t] of file.tensors) if (/\.fc[12]/.test(name)) predBytes += t.data.length;
  const minRecall = Math.min(...s.units.map((u) => u.recall ?? 1));
  const pct = (x: number | undefined) => `${(100 * (x ?? NaN)).toFixed(2)}%`;
  console.log(
    `| ${predictorTypes(file)} | ${(predBytes / 1024).toFixed(0)} | ${pct(s.predictedActive)} | ${
      pct(s.trueActive)
    } | ${pct(s.recall)} | ${pct(s.precision)} | ${pct(minRecall)} | ${loss.toFixed(4)} | ${
      loss >= exactLoss ? "+" : ""
    }${(100 * (loss / exactLoss - 1)).toFixed(2)}% |`,
  );
}
be.close?.();
