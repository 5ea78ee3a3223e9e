/**
 * `turbosparse demo`: generate from the shipped model through the best backend, then measure
 * the predictor on the text just written against the exact active sets (the oracle), so a
 * fresh clone shows the runtime, its speed and its sparsity at once.
 *
 * @module
 */

import { SparsityRecorder } from "../../core/stats.ts";
import { GENERATE_FLAGS, openModel, samplingOptions, streamGeneration } from "./generate.ts";
import { parse, str, usage } from "./args.ts";
import { formatSparsity } from "./sparsity.ts";

/** The model the demo runs by default. */
export const SHIPPED_MODEL = "models/tiny-turbosparse.gguf";
const PROMPT = "It is a truth universally acknowledged, that a single man";

/** Run `demo` with command-line arguments. */
export async function demoCommand(args: string[]): Promise<void> {
  const p = parse(args, GENERATE_FLAGS);
  if (p.values.help) {
    console.log(
      usage(
        "main.ts demo [options]",
        "Generate from the shipped model with stats.",
        GENERATE_FLAGS,
      ),
    );
    return;
  }
  const path = str(p, "model") ?? SHIPPED_MODEL;
  const model = await openModel(p, path);
  try {
    const prompt = str(p, "prompt") ?? PROMPT;
    const opts = { maxTokens: 64, temperature: 0.7, seed: 1, ...defined(samplingOptions(p)) };
    const text = await streamGeneration(model, prompt, opts, true);
    const sparse = model.config.sparseFormat || model.config.nExpert > 0;
    if (!sparse) return;
    // Recall needs the true active sets: replay prompt + continuation with the oracle beside.
    const tokens = model.tokenizer.encode(prompt + text).slice(0, model.contextLength);
    const recorder = new SparsityRecorder(model.backend, model.config, true);
    model.eval(model.newState(), tokens, false, recorder);
    console.error(`\nmeasured on these ${tokens.length} tokens against the exact active sets:`);
    console.error(formatSparsity(recorder.summary(model.predictor.name)));
  } finally {
    model.close();
  }
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
