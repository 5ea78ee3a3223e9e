/**
 * Prompt text → token ids the way llama.cpp tokenizes rendered chat templates: control and
 * user-defined pieces written in the text (`<s>`, `<|im_start|>`) become their single ids,
 * the text between them is encoded normally, and BOS is added once when the vocabulary wants it.
 * Also the per-token text that `logprobs` reports.
 *
 * @module
 */

import type { GGUFValue } from "../../core/gguf.ts";
import { type Tokenizer, TokenType, vocabFromMetadata } from "../../core/tokenizer.ts";

/** Special pieces of a vocabulary, grouped by first character for a quick scan. */
export type Specials = ReadonlyMap<string, readonly { piece: string; id: number }[]>;

/**
 * The control and user-defined pieces of a GGUF vocabulary (longest first per first character).
 * @param metadata the model file's metadata
 */
export function specialsFromMetadata(metadata: Map<string, GGUFValue>): Specials {
  const vocab = vocabFromMetadata(metadata);
  const out = new Map<string, { piece: string; id: number }[]>();
  vocab.tokens.forEach((piece, id) => {
    const type = vocab.types[id];
    if (piece.length < 2 || (type !== TokenType.CONTROL && type !== TokenType.USER_DEFINED)) return;
    const list = out.get(piece[0]) ?? [];
    list.push({ piece, id });
    out.set(piece[0], list);
  });
  for (const list of out.values()) list.sort((a, b) => b.piece.length - a.piece.length);
  return out;
}

/**
 * Token ids of `text`, with special pieces matched as single ids and BOS prepended when the
 * tokenizer adds one and the text did not start with it.
 * @param tok the model's tokenizer
 * @param specials from `specialsFromMetadata`
 * @param text rendered prompt text
 */
export function encodePrompt(tok: Tokenizer, specials: Specials, text: string): number[] {
  const ids: number[] = [];
  let start = 0; // start of the plain text not yet encoded
  for (let i = 0; i < text.length; i++) {
    const hit = specials.get(text[i])?.find((s) => text.startsWith(s.piece, i));
    if (hit === undefined) continue;
    if (i > start) ids.push(...tok.encode(text.slice(start, i), { bos: false }));
    ids.push(hit.id);
    i += hit.piece.length - 1;
    start = i + 1;
  }
  if (start < text.length) ids.push(...tok.encode(text.slice(start), { bos: false }));
  if (tok.addBos && ids[0] !== tok.bos) ids.unshift(tok.bos);
  return ids;
}

const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/** What `logprobs` shows for one token: its text and UTF-8 bytes. */
export interface TokenText {
  token: string;
  bytes: number[];
}

/**
 * The text of one token on its own: SentencePiece `▁` as a space, byte pieces as their byte
 * (shown `\xNN` when not ASCII), byte-level BPE pieces decoded.
 */
export function tokenText(tok: Tokenizer, id: number): TokenText {
  if (tok.kind === "gpt2") {
    const token = tok.decode([id]);
    return { token, bytes: [...new TextEncoder().encode(token)] };
  }
  const piece = tok.piece(id);
  const byte = BYTE_PIECE.exec(piece);
  if (byte) {
    const b = parseInt(byte[1], 16);
    return { token: b < 0x80 ? String.fromCharCode(b) : `\\x${byte[1].toLowerCase()}`, bytes: [b] };
  }
  const token = piece.replaceAll("\u2581", " ");
  return { token, bytes: [...new TextEncoder().encode(token)] };
}
