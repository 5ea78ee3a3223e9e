/**
 * turbosparse: run activation-sparse LLMs from GGUF files.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "./mod.ts";
 * const model = await loadModel("models/tiny-turbosparse.gguf");
 * for await (const piece of model.generate("It is a truth universally", { maxTokens: 40 })) {
 *   Deno.stdout.writeSync(new TextEncoder().encode(piece));
 * }
 * model.close();
 * ```
 *
 * @module
 */

import { hasSparseOps } from "./core/backend.ts";
import { configFromGGUF } from "./core/config.ts";
import { parseGGUF } from "./core/gguf.ts";
import { Model } from "./core/model.ts";
import type { PredictorKind } from "./core/predictor.ts";
import type { LoadProgress } from "./core/weights.ts";
import { openFile } from "./plugins/mmap/mod.ts";
import { chooseBackend } from "./plugins/registry.ts";

export type { Backend, BackendPlugin } from "./core/backend.ts";
export type { ModelConfig } from "./core/config.ts";
export { parseGGUF } from "./core/gguf.ts";
export type { GGUFFile, GGUFValue } from "./core/gguf.ts";
export { Generation, Model } from "./core/model.ts";
export type { GenerateOptions, GenerateStats, StopReason } from "./core/model.ts";
export type { SamplerOptions } from "./core/sampler.ts";
export type { Predictor, PredictorKind } from "./core/predictor.ts";
export type { SparsityStats, UnitSparsity } from "./core/stats.ts";
export { tokenizerFromMetadata } from "./core/tokenizer.ts";
export type { Tokenizer } from "./core/tokenizer.ts";
export { backendNames, chooseBackend, probeAll } from "./plugins/registry.ts";
export { createApp, serve, TEMPLATE_NAMES } from "./plugins/http/mod.ts";
export { openFile } from "./plugins/mmap/mod.ts";
export type { AppOptions, RunningServer, ServeOptions } from "./plugins/http/mod.ts";

/** Options for `loadModel`. */
export interface LoadOptions {
  /** Backend name; default: `TURBOSPARSE_BACKEND`, else the best one this machine runs. */
  backend?: string;
  /** Threads for CPU backends (default: all cores). */
  threads?: number;
  /** KV-cache length (default 2048, at most the model's). */
  contextLength?: number;
  /** Called as weights are prepared (tensors done, total). */
  onProgress?: LoadProgress;
  /** Predictor of sparse FFNs (default: "lowrank" when the file has predictors, else "dense"). */
  predictor?: PredictorKind;
}

/**
 * Open a GGUF model file (memory-mapped where FFI is permitted, read otherwise), choose a
 * backend and prepare the weights.
 * @param path the `.gguf` file
 * @param options backend choice, threads, context length, progress
 */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  const file = await openFile(path);
  try {
    const gguf = parseGGUF(file.bytes, path);
    const cfg = configFromGGUF(gguf, path);
    const needsSparse = cfg.sparseFormat || cfg.nExpert > 0;
    const { backend, reason } = await chooseBackend(
      options.backend,
      { threads: options.threads },
      (b) => needsSparse && !hasSparseOps(b) ? "it has no sparse FFN ops" : undefined,
    );
    try {
      return new Model(gguf, backend, path, {
        contextLength: options.contextLength,
        onProgress: options.onProgress,
        predictor: options.predictor,
        backendReason: `${backend.name}: ${reason}`,
        onClose: () => file.close(),
      });
    } catch (err) {
      backend.close?.();
      throw err;
    }
  } catch (err) {
    file.close();
    throw err;
  }
}
