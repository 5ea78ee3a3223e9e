/**
 * SentencePiece BPE tokenizer (GGUF `tokenizer.ggml.model = "llama"`), matching `spm_encode` /
 * `spm_decode` (checked against both in tests/core/tokenizer_test.ts).
 *
 * Encoding: spaces become "▁" (U+2581), "▁" is prepended (add_space_prefix), the text is split
 * into characters (user-defined pieces kept whole), then the adjacent pair whose concatenation is
 * a piece with the highest score merges first, leftmost on ties. Leftover characters that are not
 * pieces become their `<0xNN>` byte pieces, or one UNK per run without byte pieces.
 *
 * @module
 */

import type { TokenDecoder, Tokenizer, TokenizerVocab } from "./tokenizer.ts";
import { ByteTextJoiner, mergeSymbols, TokenType } from "./_tokenizer_shared.ts";

const SPACE = "\u2581";
/** What spm_decode prints for UNK: " ⁇ " (U+2047 between spaces). */
const UNK_SURFACE = " \u2047 ";

/** SentencePiece BPE over a GGUF "llama" vocabulary. */
export class SpmTokenizer implements Tokenizer {
  readonly kind = "llama";
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number | undefined;
  readonly addBos: boolean;
  readonly #vocab: TokenizerVocab;
  readonly #scores: Float64Array;
  /** Pieces that merges may produce: normal, user-defined and untyped ones. */
  readonly #pieceIds = new Map<string, number>();
  /** User-defined pieces by first UTF-16 unit, longest first. */
  readonly #userDefined = new Map<string, string[]>();
  /** Byte value → id of its `<0xNN>` piece, or -1. */
  readonly #byteIds = new Int32Array(256).fill(-1);
  /** All 256 byte pieces exist, so unknown characters fall back to bytes. */
  readonly #byteFallback: boolean;
  readonly #encoder = new TextEncoder();

  /** @param vocab a validated vocabulary with scores (see vocabFromMetadata) */
  constructor(vocab: TokenizerVocab) {
    if (vocab.scores === undefined) throw new Error("SentencePiece vocabulary: expected scores");
    this.#vocab = vocab;
    this.#scores = vocab.scores;
    this.vocabSize = vocab.tokens.length;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.unk = vocab.unk;
    this.addBos = vocab.addBos;
    vocab.tokens.forEach((piece, id) => {
      const type = vocab.types[id];
      if (type === TokenType.BYTE) {
        const byte = parseBytePiece(piece);
        if (byte >= 0 && this.#byteIds[byte] < 0) this.#byteIds[byte] = id;
      } else if (
        type === TokenType.NORMAL || type === TokenType.USER_DEFINED ||
        type === TokenType.UNDEFINED
      ) {
        // Unused pieces (type 5) are left out: SentencePiece would merge into them and split them
        // back; skipping them gives the same ids unless their halves then merge differently.
        if (!this.#pieceIds.has(piece)) this.#pieceIds.set(piece, id);
        if (type === TokenType.USER_DEFINED && piece !== "") this.#addUserDefined(piece);
      }
    });
    this.#byteFallback = this.#byteIds.every((id) => id >= 0);
  }

  #addUserDefined(piece: string): void {
    const list = this.#userDefined.get(piece[0]) ?? [];
    list.push(piece);
    list.sort((a, b) => b.length - a.length);
    this.#userDefined.set(piece[0], list);
  }

  /** Merge priority of a pair: minus the score of the piece it would make. */
  #priority = (left: string, right: string): number | undefined => {
    const id = this.#pieceIds.get(left + right);
    return id === undefined ? undefined : -this.#scores[id];
  };

  /**
   * Token ids for `text`.
   * @param text any string; lone surrogates count as U+FFFD
   * @param opts `bos` overrides addBos
   */
  encode(text: string, opts?: { bos?: boolean }): number[] {
    const ids: number[] = [];
    if (opts?.bos ?? this.addBos) ids.push(this.bos);
    if (text === "") return ids;
    let normalized = text.toWellFormed().replaceAll(" ", SPACE);
    if (this.#vocab.addSpacePrefix) normalized = SPACE + normalized;

    const { parts, frozen } = this.#split(normalized);
    let previousUnknown = false;
    for (const symbol of mergeSymbols(parts, this.#priority, frozen)) {
      const id = this.#pieceIds.get(symbol);
      if (id !== undefined) {
        ids.push(id);
        previousUnknown = false;
      } else if (this.#byteFallback) {
        for (const byte of this.#encoder.encode(symbol)) ids.push(this.#byteIds[byte]);
        previousUnknown = false;
      } else {
        // SentencePiece emits one UNK for a run of unknown characters (llama.cpp one per byte).
        if (!previousUnknown && this.unk !== undefined) ids.push(this.unk);
        previousUnknown = true;
      }
    }
    return ids;
  }

  /** Characters (code points), with user-defined pieces as single frozen symbols. */
  #split(normalized: string): { parts: string[]; frozen: Uint8Array | undefined } {
    const parts: string[] = [];
    const frozenAt: number[] = [];
    let i = 0;
    while (i < normalized.length) {
      const match = this.#userDefined.get(normalized[i])?.find((p) => normalized.startsWith(p, i));
      if (match !== undefined) {
        frozenAt.push(parts.length);
        parts.push(match);
        i += match.length;
        continue;
      }
      const width = normalized.codePointAt(i)! > 0xffff ? 2 : 1;
      parts.push(normalized.slice(i, i + width));
      i += width;
    }
    if (frozenAt.length === 0) return { parts, frozen: undefined };
    const frozen = new Uint8Array(parts.length);
    for (const at of frozenAt) frozen[at] = 1;
    return { parts, frozen };
  }

  /** Text for ids, as spm_decode prints it. */
  decode(ids: readonly number[]): string {
    const d = this.decoder();
    let text = "";
    for (const id of ids) text += d.push(id);
    return text + d.flush();
  }

  /** A streaming decoder; see TokenDecoder. */
  decoder(options?: { continuing?: boolean }): TokenDecoder {
    const joiner = new ByteTextJoiner();
    // SentencePiece drops the "▁" that starts the first visible piece (the dummy prefix).
    let atStart = this.#vocab.addSpacePrefix && !options?.continuing;
    return {
      push: (id: number): string => {
        const type = this.#vocab.types[this.#check(id)];
        if (type === TokenType.CONTROL) return joiner.text("");
        const startOfText = atStart;
        atStart = false;
        if (type === TokenType.BYTE) {
          const byte = parseBytePiece(this.#vocab.tokens[id]);
          if (byte >= 0) return joiner.bytes([byte]);
        }
        if (type === TokenType.UNKNOWN) return joiner.text(UNK_SURFACE);
        let piece = this.#vocab.tokens[id];
        if (startOfText && piece.startsWith(SPACE)) piece = piece.slice(1);
        return joiner.text(piece.replaceAll(SPACE, " "));
      },
      flush: (): string => joiner.flush(),
    };
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

/** The byte value of a `<0xNN>` piece, or -1. */
function parseBytePiece(piece: string): number {
  return /^<0x[0-9A-Fa-f]{2}>$/.test(piece) ? parseInt(piece.slice(3, 5), 16) : -1;
}
