/**
 * Test models for the HTTP tests: a tiny random-weight llama GGUF built in memory, on the
 * reference backend. Its text is noise, but greedy generation is deterministic.
 *
 * @module
 */

import { parseGGUF } from "../../../core/gguf.ts";
import { Model } from "../../../core/model.ts";
import { chooseBackend } from "../../../plugins/registry.ts";
import { synthBytes, type SynthOptions } from "../../../tools/synth.ts";

/** The shape the HTTP tests use: small and fast on the reference backend. */
export const TEST_SHAPE: SynthOptions = {
  arch: "llama",
  nEmbd: 64,
  nFF: 160,
  nLayer: 2,
  nHead: 4,
  nKV: 2,
  nCtx: 256,
  nVocab: 320,
  dtype: 0,
  seed: 1,
};

/**
 * A Model named `name` (its id on the server) built from synthetic bytes.
 * @param name the source name; the server's model id is it without `.gguf`
 * @param shape overrides of TEST_SHAPE
 */
export async function testModel(name = "tiny.gguf", shape: SynthOptions = {}): Promise<Model> {
  const bytes = synthBytes({ ...TEST_SHAPE, ...shape });
  const { backend } = await chooseBackend("reference");
  return new Model(parseGGUF(bytes, name), backend, name);
}
