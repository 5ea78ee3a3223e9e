/**
 * `turbosparse generate`: stream a continuation of a prompt to stdout.
 *
 * @module
 */

import { loadModel } from "../../mod.ts";
import type { GenerateOptions, Model } from "../../mod.ts";
import { PREDICTOR_KINDS, type PredictorKind } from "../../core/predictor.ts";
import { formatSparsity } from "./sparsity.ts";
import { type Flags, num, parse, str, usage } from "./args.ts";
import { progressBar } from "./progress.ts";

/** Flags of `generate` (also used by `demo`). */
export const GENERATE_FLAGS: Flags = {
  model: { type: "string", short: "m", help: "GGUF model file" },
  prompt: { type: "string", short: "p", help: "prompt text" },
  "max-tokens": { type: "string", short: "n", help: "tokens to generate (default 128)" },
  temperature: {
    type: "string",
    short: "t",
    help: "sampling temperature, 0 = greedy (default 0.8)",
  },
  "top-k": { type: "string", help: "keep the k most likely tokens (default 40)" },
  "top-p": { type: "string", help: "nucleus sampling mass (default 0.95)" },
  "min-p": { type: "string", help: "drop tokens below min-p × the top probability (default 0.05)" },
  "repeat-penalty": { type: "string", help: "repetition penalty (default 1.0 = off)" },
  seed: { type: "string", short: "s", help: "random seed (same seed, same text)" },
  backend: { type: "string", short: "b", help: "backend name (default: best available)" },
  threads: { type: "string", help: "CPU threads (default: all cores)" },
  ctx: { type: "string", help: "context length (default 2048)" },
  stats: { type: "boolean", help: "print timings, backend and sparsity after the text" },
  predictor: { type: "string", help: "sparse FFN predictor: lowrank | oracle | dense | cats" },
  "compare-oracle": { type: "boolean", help: "with --stats: predictor recall and precision" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Sampling options (and sparsity statistics with --stats) from parsed flags. */
export function samplingOptions(p: ReturnType<typeof parse>): GenerateOptions {
  return {
    sparsity: p.values.stats ? { compareOracle: p.values["compare-oracle"] === true } : undefined,
    maxTokens: num(p, "max-tokens"),
    temperature: num(p, "temperature"),
    topK: num(p, "top-k"),
    topP: num(p, "top-p"),
    minP: num(p, "min-p"),
    repeatPenalty: num(p, "repeat-penalty"),
    seed: num(p, "seed"),
  };
}

/** Load a model with a progress bar on a terminal. */
export async function openModel(p: ReturnType<typeof parse>, path: string): Promise<Model> {
  const bar = progressBar(`loading ${path}`);
  const predictor = str(p, "predictor");
  if (predictor !== undefined && !(PREDICTOR_KINDS as readonly string[]).includes(predictor)) {
    throw new Error(`--predictor must be one of ${PREDICTOR_KINDS.join(", ")}, got "${predictor}"`);
  }
  let model: Model;
  try {
    model = await loadModel(path, {
      backend: str(p, "backend"),
      threads: num(p, "threads"),
      contextLength: num(p, "ctx"),
      onProgress: bar.update,
    });
  } finally {
    bar.end();
  }
  if (predictor !== undefined) {
    try {
      model.setPredictor(predictor as PredictorKind);
    } catch (err) {
      model.close();
      throw err;
    }
  }
  return model;
}

/** Stream the generation to stdout; print stats to stderr when asked; returns the new text. */
export async function streamGeneration(
  model: Model,
  prompt: string,
  opts: GenerateOptions,
  stats: boolean,
): Promise<string> {
  const enc = new TextEncoder();
  const gen = model.generate(prompt, opts);
  let text = "";
  Deno.stdout.writeSync(enc.encode(prompt));
  for await (const piece of gen) {
    text += piece;
    Deno.stdout.writeSync(enc.encode(piece));
  }
  Deno.stdout.writeSync(enc.encode("\n"));
  if (stats && gen.stats) {
    const s = gen.stats;
    console.error(
      `\nbackend   ${model.backendReason}\n` +
        `prefill   ${s.promptTokens} tokens in ${s.prefillMs.toFixed(1)} ms ` +
        `(${s.prefillTokensPerSecond.toFixed(1)} tokens/s)\n` +
        `decode    ${s.generatedTokens} tokens in ${s.decodeMs.toFixed(1)} ms ` +
        `(${s.decodeTokensPerSecond.toFixed(1)} tokens/s)\n` +
        `stopped   ${s.stopReason}`,
    );
    if (s.sparsity) console.error(formatSparsity(s.sparsity));
  }
  return text;
}

/** Run `generate` with command-line arguments. */
export async function generateCommand(args: string[]): Promise<void> {
  const p = parse(args, GENERATE_FLAGS);
  if (p.values.help) {
    console.log(
      usage(
        "main.ts generate --model FILE --prompt TEXT [options]",
        "Generate text.",
        GENERATE_FLAGS,
      ),
    );
    return;
  }
  const path = str(p, "model") ?? p.positionals[0];
  if (!path) throw new Error("generate needs --model FILE (see --help)");
  const prompt = str(p, "prompt") ?? p.positionals[1] ?? "";
  const model = await openModel(p, path);
  try {
    await streamGeneration(model, prompt, samplingOptions(p), p.values.stats === true);
  } finally {
    model.close();
  }
}
