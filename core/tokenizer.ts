/**
 * The tokenizer contract and its construction from GGUF metadata (llama.cpp's `tokenizer.ggml.*`
 * keys). "llama" vocabularies are SentencePiece BPE (`tokenizer_spm.ts`), "gpt2" ones byte-level
 * BPE (`tokenizer_bpe.ts`).
 *
 * @example
 * ```ts
 * import { parseGGUF } from "./gguf.ts";
 * import { tokenizerFromMetadata } from "./tokenizer.ts";
 * const file = parseGGUF(await Deno.readFile("model.gguf"), "model.gguf");
 * const tok = tokenizerFromMetadata(file.metadata, "model.gguf");
 * const ids = tok.encode("Hello world"); // [bos, ...]
 * console.log(tok.decode(ids)); // "Hello world"
 * ```
 *
 * @module
 */

import type { GGUFValue } from "./gguf.ts";
import { TokenType } from "./_tokenizer_shared.ts";
import { SpmTokenizer } from "./tokenizer_spm.ts";
import { BpeTokenizer } from "./tokenizer_bpe.ts";

export { TokenType } from "./_tokenizer_shared.ts";
export { SpmTokenizer } from "./tokenizer_spm.ts";
export { BpeTokenizer } from "./tokenizer_bpe.ts";

/** Incremental detokenizer: text comes out as soon as it is whole UTF-8 characters. */
export interface TokenDecoder {
  /** Adds one id; returns the text that is safe to print now (maybe ""). */
  push(id: number): string;
  /** Returns everything still held back (unfinished characters as U+FFFD). */
  flush(): string;
}

/** Text ⇄ token ids for one model vocabulary. */
export interface Tokenizer {
  readonly kind: "llama" | "gpt2";
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number | undefined;
  readonly addBos: boolean;
  /** ids for text; `bos` (default this.addBos) prepends BOS. Never throws on any string. */
  encode(text: string, opts?: { bos?: boolean }): number[];
  /** Whole-sequence decode (BOS/EOS/control tokens omitted; SentencePiece's leading-space rule). */
  decode(ids: readonly number[]): string;
  /**
   * Streaming decoder; concatenated output equals decode(all ids). With `continuing`, the ids
   * continue earlier text, so a leading space is real and not SentencePiece's dummy prefix.
   */
  decoder(options?: { continuing?: boolean }): TokenDecoder;
  /** True for end-of-generation ids (EOS, and `tokenizer.ggml.eot_token_id` / `eom` if present). */
  isEog(id: number): boolean;
  /** The piece string of an id, for debugging/inspect. */
  piece(id: number): string;
}

/** A validated vocabulary, as the tokenizer implementations take it. */
export interface TokenizerVocab {
  readonly tokens: readonly string[];
  /** TokenType per id. */
  readonly types: Uint8Array;
  /** Merge scores per id, higher merges first ("llama" only). */
  readonly scores: Float64Array | undefined;
  /** "left right" pairs, earlier merges first ("gpt2" only). */
  readonly merges: readonly string[] | undefined;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number | undefined;
  /** End-of-generation ids: EOS, EOT, EOM. */
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  /** Prepend "▁" before SentencePiece encoding (and strip it again when decoding). */
  readonly addSpacePrefix: boolean;
}

const KEY = "tokenizer.ggml.";

/**
 * Builds the tokenizer a GGUF file describes.
 *
 * @param meta the file's metadata
 * @param source file name for error messages
 * @throws Error naming the key when a tokenizer key is missing, mistyped or out of range
 */
export function tokenizerFromMetadata(meta: Map<string, GGUFValue>, source?: string): Tokenizer {
  const vocab = vocabFromMetadata(meta, source);
  return vocab.scores !== undefined ? new SpmTokenizer(vocab) : new BpeTokenizer(vocab);
}

/**
 * Reads and checks the `tokenizer.ggml.*` keys.
 *
 * Defaults follow llama.cpp: for "llama", BOS 1, EOS 2, UNK 0, add_bos_token and
 * add_space_prefix true; for "gpt2" BOS and EOS are required and both flags default to false.
 * Without `token_type`, llama vocabularies get types from the piece shapes (`<0xNN>` bytes).
 *
 * @param meta the file's metadata
 * @param source file name for error messages
 */
export function vocabFromMetadata(
  meta: Map<string, GGUFValue>,
  source = "GGUF metadata",
): TokenizerVocab {
  const m = new MetaReader(meta, source);
  const model = m.string(KEY + "model");
  if (model !== "llama" && model !== "gpt2") {
    throw m.wrong(
      KEY + "model",
      `"${model}"`,
      `"llama" (SentencePiece) or "gpt2" (byte-level BPE)`,
    );
  }
  const llama = model === "llama";
  const tokens = m.strings(KEY + "tokens");
  const n = tokens.length;
  if (n === 0) throw m.wrong(KEY + "tokens", "empty", "at least one token");

  const scores = llama ? new Float64Array(m.numbers(KEY + "scores", n)) : undefined;
  const merges = llama ? undefined : m.strings(KEY + "merges");
  merges?.forEach((pair, i) => {
    const space = pair.indexOf(" ");
    if (space <= 0 || space === pair.length - 1 || pair.indexOf(" ", space + 1) >= 0) {
      throw m.wrong(`${KEY}merges[${i}]`, JSON.stringify(pair), `"left right"`);
    }
  });

  const bos = m.id(KEY + "bos_token_id", n, llama ? 1 : undefined);
  const eos = m.id(KEY + "eos_token_id", n, llama ? 2 : undefined);
  const unk = m.optionalId(KEY + "unknown_token_id", n) ?? (llama ? 0 : undefined);
  m.optionalId(KEY + "padding_token_id", n);
  const eog = new Set([eos]);
  for (const key of ["eot_token_id", "eom_token_id"]) {
    const id = m.optionalId(KEY + key, n);
    if (id !== undefined) eog.add(id);
  }

  let types: Uint8Array;
  if (meta.has(KEY + "token_type")) {
    types = new Uint8Array(
      m.numbers(KEY + "token_type", n).map((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t > 6) {
          throw m.wrong(`${KEY}token_type[${i}]`, `${t}`, "an integer 0..6");
        }
        return t;
      }),
    );
  } else {
    types = new Uint8Array(n).fill(TokenType.NORMAL);
    for (let i = 0; llama && i < n; i++) {
      if (/^<0x[0-9A-F]{2}>$/.test(tokens[i])) types[i] = TokenType.BYTE;
    }
    types[bos] = TokenType.CONTROL;
    types[eos] = TokenType.CONTROL;
    if (unk !== undefined) types[unk] = TokenType.UNKNOWN;
  }

  return {
    tokens,
    types,
    scores,
    merges,
    bos,
    eos,
    unk,
    eog,
    addBos: m.bool(KEY + "add_bos_token", llama),
    addSpacePrefix: m.bool(KEY + "add_space_prefix", llama),
  };
}

/** Typed metadata getters whose errors name the key and the source. */
class MetaReader {
  constructor(private meta: Map<string, GGUFValue>, private source: string) {}

  wrong(key: string, got: string, expected: string): Error {
    return new Error(`metadata key "${key}" in ${this.source} is ${got}, expected ${expected}`);
  }

  private get(key: string): GGUFValue {
    const v = this.meta.get(key);
    if (v === undefined) throw new Error(`missing metadata key "${key}" in ${this.source}`);
    return v;
  }

  string(key: string): string {
    const v = this.get(key);
    if (typeof v !== "string") throw this.wrong(key, describe(v), "a string");
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.meta.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") throw this.wrong(key, describe(v), "a boolean");
    return v;
  }

  strings(key: string): string[] {
    const v = this.get(key);
    if (!Array.isArray(v)) throw this.wrong(key, describe(v), "an array of strings");
    v.forEach((s, i) => {
      if (typeof s !== "string") throw this.wrong(`${key}[${i}]`, describe(s), "a string");
    });
    return v as string[];
  }

  /** A number array of exactly `length` entries (one per token). */
  numbers(key: string, length: number): number[] {
    const v = this.get(key);
    if (!Array.isArray(v)) throw this.wrong(key, describe(v), "an array of numbers");
    if (v.length !== length) {
      throw this.wrong(key, `${v.length} entries`, `${length} (one per token)`);
    }
    v.forEach((x, i) => {
      if (typeof x !== "number") throw this.wrong(`${key}[${i}]`, describe(x), "a number");
    });
    return v as number[];
  }

  /** A token id in [0, n); `fallback` when absent, an error when absent without one. */
  id(key: string, n: number, fallback: number | undefined): number {
    const id = this.optionalId(key, n);
    if (id !== undefined) return id;
    if (fallback === undefined || fallback >= n) this.get(key);
    return fallback as number;
  }

  optionalId(key: string, n: number): number | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    const id = typeof v === "bigint" ? Number(v) : v;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= n) {
      throw this.wrong(key, describe(v), `a token id in [0, ${n})`);
    }
    return id;
  }
}

function describe(v: GGUFValue): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  return typeof v === "bigint" ? `${v}n` : `${typeof v} ${v}`;
}
