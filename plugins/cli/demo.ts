/**
 * `turbosparse demo`: generate from the shipped model with stats, so a fresh clone shows the
 * runtime working. Until a trained model ships under `models/`, it writes a small random-weight
 * fixture model to `build/` and runs that (the text is then noise, but the path is real).
 *
 * @module
 */

import { synthModel } from "../../tools/synth.ts";
import { GENERATE_FLAGS, openModel, samplingOptions, streamGeneration } from "./generate.ts";
import { parse, str, usage } from "./args.ts";

/** The model the demo runs when it exists. */
export const SHIPPED_MODEL = "models/tiny-turbosparse.gguf";
const FIXTURE = "build/demo-fixture.gguf";
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
  let path = str(p, "model") ?? SHIPPED_MODEL;
  if (!exists(path)) {
    path = FIXTURE;
    if (!exists(path)) {
      console.error(
        `${SHIPPED_MODEL} not found: writing a random-weight fixture model to ${FIXTURE}`,
      );
      await Deno.mkdir("build", { recursive: true });
      await synthModel(FIXTURE, {
        arch: "bamboo",
        nEmbd: 256,
        nFF: 704,
        nLayer: 4,
        nHead: 8,
        nKV: 4,
        nCtx: 512,
        nVocab: 512,
        dtype: 8, /* Q8_0 */
        seed: 42,
      }); // deno-fmt-ignore
    }
  }
  const model = await openModel(p, path);
  try {
    const opts = {
      maxTokens: 64,
      temperature: 0.7,
      seed: 1,
      sparsity: { compareOracle: true },
      ...defined(samplingOptions(p)),
    };
    await streamGeneration(model, str(p, "prompt") ?? PROMPT, opts, true);
  } finally {
    model.close();
  }
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
