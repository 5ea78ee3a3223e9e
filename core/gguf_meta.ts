/**
 * Typed getters for GGUF metadata: each throws naming the key and the file when the key is
 * missing (and no fallback is given) or holds the wrong type. Re-exported by `core/gguf.ts`.
 *
 * @example
 * ```ts
 * import { metaNumber, parseGGUF } from "./gguf.ts";
 * const file = parseGGUF(await Deno.readFile("model.gguf"), "model.gguf");
 * const eps = metaNumber(file, "llama.attention.layer_norm_rms_epsilon", 1e-5);
 * ```
 *
 * @module
 */

import type { GGUFFile, GGUFValue } from "./gguf.ts";
import type { Tensor } from "./tensor.ts";

function sourceOf(file: GGUFFile): string {
  return file.source ?? "GGUF file";
}

/** The value of `key`, or `fallback` when absent; throws when absent without a fallback. */
function lookup<T>(file: GGUFFile, key: string, fallback: T | undefined): GGUFValue | T {
  const v = file.metadata.get(key);
  if (v !== undefined) return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`missing metadata key "${key}" in ${sourceOf(file)}`);
}

function kindOf(v: GGUFValue): string {
  if (Array.isArray(v)) return "an array";
  return typeof v === "bigint" ? "a 64-bit integer" : `a ${typeof v}`;
}

function wrongType(file: GGUFFile, key: string, expected: string, got: string): Error {
  return new Error(`metadata key "${key}" in ${sourceOf(file)} is ${got}, expected ${expected}`);
}

/**
 * A numeric metadata value (any integer or float type) as a number.
 * @param file the parsed file
 * @param key e.g. `"llama.block_count"`
 * @param fallback returned when the key is absent; without it a missing key throws
 */
export function metaNumber(file: GGUFFile, key: string, fallback?: number): number {
  const v = lookup(file, key, fallback);
  if (typeof v === "number") return v;
  if (typeof v === "bigint") throw wrongType(file, key, "a number below 2^53", `${v}`);
  throw wrongType(file, key, "a number", kindOf(v));
}

/** A string metadata value, e.g. `general.architecture`. */
export function metaString(file: GGUFFile, key: string, fallback?: string): string {
  const v = lookup(file, key, fallback);
  if (typeof v === "string") return v;
  throw wrongType(file, key, "a string", kindOf(v));
}

/** A boolean metadata value, e.g. `tokenizer.ggml.add_bos_token`. */
export function metaBool(file: GGUFFile, key: string, fallback?: boolean): boolean {
  const v = lookup(file, key, fallback);
  if (typeof v === "boolean") return v;
  throw wrongType(file, key, "a boolean", kindOf(v));
}

/** An array metadata value, elements as stored. */
export function metaArray(file: GGUFFile, key: string, fallback?: GGUFValue[]): GGUFValue[] {
  const v = lookup(file, key, fallback);
  if (Array.isArray(v)) return v;
  throw wrongType(file, key, "an array", kindOf(v));
}

/** An array of strings, e.g. `tokenizer.ggml.tokens`. */
export function metaStrings(file: GGUFFile, key: string, fallback?: string[]): string[] {
  const a = metaArray(file, key, fallback);
  for (let i = 0; i < a.length; i++) {
    if (typeof a[i] !== "string") {
      throw wrongType(
        file,
        key,
        "an array of strings",
        `an array holding ${kindOf(a[i])} at [${i}]`,
      );
    }
  }
  return a as string[];
}

/** An array of numbers as a Float64Array, e.g. `tokenizer.ggml.scores`. */
export function metaNumbers(file: GGUFFile, key: string, fallback?: number[]): Float64Array {
  const a = metaArray(file, key, fallback);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (typeof x !== "number") {
      throw wrongType(file, key, "an array of numbers", `an array holding ${kindOf(x)} at [${i}]`);
    }
    out[i] = x;
  }
  return out;
}

/** A tensor by name; throws naming the file and tensor when absent. */
export function getTensor(file: GGUFFile, name: string): Tensor {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`missing tensor "${name}" in ${sourceOf(file)}`);
  return t;
}
