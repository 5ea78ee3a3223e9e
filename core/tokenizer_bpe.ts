/**
 * GPT-2 byte-level BPE tokenizer (GGUF `tokenizer.ggml.model = "gpt2"`).
 *
 * Encoding: user-defined tokens are matched whole; the rest is split with the GPT-2 regex, each
 * word's UTF-8 bytes are spelled with the byte→unicode alphabet (space is "Ġ"), then the pair with
 * the lowest merge rank merges first, leftmost on ties.
 *
 * @module
 */

import type { TokenDecoder, Tokenizer, TokenizerVocab } from "./tokenizer.ts";
import { ByteTextJoiner, mergeSymbols, TokenType } from "./_tokenizer_shared.ts";

/** GPT-2's pre-tokenizer: contractions, letter runs, digit runs, other runs, whitespace. */
export const GPT2_PRETOKENIZE =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes map
 * to U+0100.. in byte order (so 0x20 is "Ġ", U+0120).
 */
export function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
      (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return table;
}

/** Words cached per tokenizer before the cache is cleared (bounds memory on long inputs). */
const CACHE_LIMIT = 50_000;

/** Byte-level BPE over a GGUF "gpt2" vocabulary. */
export class BpeTokenizer implements Tokenizer {
  readonly kind = "gpt2";
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number | undefined;
  readonly addBos: boolean;
  readonly #vocab: TokenizerVocab;
  readonly #ids = new Map<string, number>();
  /** "left right" → rank; lower merges first. */
  readonly #ranks = new Map<string, number>();
  /** User-defined tokens by first UTF-16 unit, longest first. */
  readonly #special = new Map<string, string[]>();
  readonly #byteChar = byteToUnicode();
  readonly #charByte = new Map<string, number>();
  readonly #cache = new Map<string, number[]>();
  readonly #encoder = new TextEncoder();

  /** @param vocab a validated vocabulary with merges (see vocabFromMetadata) */
  constructor(vocab: TokenizerVocab) {
    if (vocab.merges === undefined) throw new Error("GPT-2 BPE vocabulary: expected merges");
    this.#vocab = vocab;
    this.vocabSize = vocab.tokens.length;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.unk = vocab.unk;
    this.addBos = vocab.addBos;
    vocab.tokens.forEach((piece, id) => {
      if (!this.#ids.has(piece)) this.#ids.set(piece, id);
      if (vocab.types[id] === TokenType.USER_DEFINED && piece !== "") {
        const list = this.#special.get(piece[0]) ?? [];
        list.push(piece);
        list.sort((a, b) => b.length - a.length);
        this.#special.set(piece[0], list);
      }
    });
    vocab.merges.forEach((pair, rank) => {
      if (!this.#ranks.has(pair)) this.#ranks.set(pair, rank);
    });
    this.#byteChar.forEach((ch, byte) => this.#charByte.set(ch, byte));
  }

  #priority = (left: string, right: string): number | undefined =>
    this.#ranks.get(left + " " + right);

  /**
   * Token ids for `text`.
   * @param text any string; lone surrogates count as U+FFFD
   * @param opts `bos` overrides addBos
   */
  encode(text: string, opts?: { bos?: boolean }): number[] {
    const ids: number[] = [];
    if (opts?.bos ?? this.addBos) ids.push(this.bos);
    const s = text.toWellFormed();
    let start = 0;
    let i = 0;
    while (i < s.length) {
      const special = this.#special.get(s[i])?.find((p) => s.startsWith(p, i));
      if (special === undefined) {
        i++;
        continue;
      }
      this.#encodeFragment(s.slice(start, i), ids);
      ids.push(this.#ids.get(special)!);
      i += special.length;
      start = i;
    }
    this.#encodeFragment(s.slice(start), ids);
    return ids;
  }

  #encodeFragment(fragment: string, ids: number[]): void {
    for (const match of fragment.matchAll(GPT2_PRETOKENIZE)) {
      const word = match[0];
      let wordIds = this.#cache.get(word);
      if (wordIds === undefined) {
        wordIds = this.#encodeWord(word);
        if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
        this.#cache.set(word, wordIds);
      }
      for (const id of wordIds) ids.push(id);
    }
  }

  #encodeWord(word: string): number[] {
    const parts = Array.from(this.#encoder.encode(word), (b) => this.#byteChar[b]);
    const ids: number[] = [];
    for (const symbol of mergeSymbols(parts, this.#priority)) {
      const id = this.#ids.get(symbol);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // A merge result missing from the vocabulary: fall back to its single bytes, then UNK.
      for (const ch of symbol) {
        const single = this.#ids.get(ch) ?? this.unk;
        if (single !== undefined) ids.push(single);
      }
    }
    return ids;
  }

  /** Text for ids; control tokens are omitted, user-defined ones printed as they are. */
  decode(ids: readonly number[]): string {
    const d = this.decoder();
    let text = "";
    for (const id of ids) text += d.push(id);
    return text + d.flush();
  }

  /** A streaming decoder; see TokenDecoder. */
  decoder(): TokenDecoder {
    const joiner = new ByteTextJoiner();
    return {
      push: (id: number): string => {
        const type = this.#vocab.types[this.#check(id)];
        const piece = this.#vocab.tokens[id];
        if (type === TokenType.CONTROL) return "";
        if (type === TokenType.USER_DEFINED || type === TokenType.UNKNOWN) {
          return joiner.text(piece);
        }
        return joiner.bytes(this.#pieceBytes(piece));
      },
      flush: (): string => joiner.flush(),
    };
  }

  /** The bytes a piece spells; characters outside the byte alphabet stand for their UTF-8. */
  #pieceBytes(piece: string): number[] {
    const bytes: number[] = [];
    for (const ch of piece) {
      const byte = this.#charByte.get(ch);
      if (byte !== undefined) bytes.push(byte);
      else bytes.push(...this.#encoder.encode(ch));
    }
    return bytes;
  }

  /** True for EOS, EOT and EOM. */
  isEog(id: number): boolean {
    return this.#vocab.eog.has(id);
  }

  /** The vocabulary piece of `id`. */
  piece(id: number): string {
    return this.#vocab.tokens[this.#check(id)];
  }

  #check(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id}: expected an integer in [0, ${this.vocabSize})`);
    }
    return id;
  }
}
