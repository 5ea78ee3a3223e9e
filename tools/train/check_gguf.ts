/**
 * Check an exported model in the runtime: its tokenizer reproduces the training ids of the
 * first validation window, and the mean next-token loss of that window (dense and with the
 * file's predictor) is printed for comparison with tools/train/check_window.py.
 *
 * ```sh
 * deno run --allow-read --allow-ffi --allow-env tools/train/check_gguf.ts models/tiny-turbosparse.gguf
 * ```
 *
 * @module
 */

import { crossEntropySum } from "../../core/stats.ts";
import { loadModel } from "../../mod.ts";

const WINDOW = 512;

/** uint16 ids of a 1-D .npy written by tools/corpus/build_tokenizer.py. */
async function readNpyU16(path: string): Promise<Uint16Array> {
  const b = await Deno.readFile(path);
  const headerLen = b[8] | (b[9] << 8);
  const start = 10 + headerLen;
  return new Uint16Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length));
}

if (import.meta.main) {
  const path = Deno.args[0] ?? "models/tiny-turbosparse.gguf";
  const model = await loadModel(path, { contextLength: WINDOW });
  const val = await readNpyU16("build/data/val.npy");
  const text = await Deno.readTextFile("build/corpus/val.txt");
  const firstDoc = text.split("\n\f\n")[0].replace(/^\n+|\n+$/g, "");
  const ids = model.tokenizer.encode(firstDoc, { bos: true });
  let same = 0;
  while (same < ids.length && ids[same] === val[same]) same++;
  console.log(`${path}: tokenizer matches training ids for ${same}/${ids.length} tokens`);
  const window = Array.from(val.subarray(0, WINDOW + 1));
  const nVocab = model.config.nVocab;
  for (const kind of ["dense", "lowrank"] as const) {
    if (kind === "lowrank" && !model.config.sparseFormat) continue;
    model.setPredictor(kind);
    const logits = model.eval(model.newState(), window.slice(0, WINDOW), true);
    const targets = window.slice(1),
      loss = crossEntropySum(logits, targets, nVocab) / targets.length;
    console.log(`  window 0 loss (${kind}): ${loss.toFixed(4)}`);
  }
  model.close();
}
