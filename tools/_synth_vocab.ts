/**
 * A small SentencePiece-style llama vocabulary for synthetic models: `<unk>`, `<s>`, `</s>`,
 * the 256 byte tokens, single characters, `▁`-prefixed common English words with every prefix
 * (so greedy merges always reach the whole word), then filler pieces up to the requested size.
 *
 * @module
 */

/** llama.cpp token types. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

/** Tokens, scores (higher merges first) and types, all of length nVocab. */
export interface Vocab {
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
}

/** Smallest vocabulary: specials, bytes, and room for characters and a few words. */
export const MIN_VOCAB = 300;

const WORDS = (
  "the of and to a in is it you that he was for on are with as I his they be at one have " +
  "this from or had by hot word but what some we can out other were all there when up use " +
  "your how said an each she which do their time if will way about many then them write " +
  "would like so these her long make thing see him two has look more day could go come did " +
  "number sound no most people my over know water than call first who may down side been " +
  "now find any new work part take get place made live where after back little only round " +
  "man year came show every good me give our under name very through just form sentence " +
  "great think say help low line differ turn cause much mean before move right boy old too " +
  "same tell does set three want air well also play small end put home read hand port large " +
  "spell add even land here must big high such follow act why ask men change went light " +
  "kind off need house picture try us again animal point mother world near build self " +
  "earth father hello model token sparse neuron layer fast"
).split(" ");

const CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";
const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/**
 * Build a vocabulary of exactly `nVocab` tokens (at least 300).
 * @param nVocab vocabulary size
 */
export function llamaVocab(nVocab: number): Vocab {
  if (!Number.isInteger(nVocab) || nVocab < MIN_VOCAB) {
    throw new Error(`nVocab must be an integer >= ${MIN_VOCAB}, got ${nVocab}`);
  }
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
  }
  const seen = new Set(tokens);
  const add = (piece: string) => {
    if (tokens.length >= nVocab || seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    types.push(TokenType.NORMAL);
  };
  add("▁");
  for (const c of CHARS) add(c);
  // every prefix of "▁word", shortest first, so each merge step has its piece
  for (const w of WORDS) for (let k = 2; k <= w.length + 1; k++) add(("▁" + w).slice(0, k));
  for (const a of LETTERS) for (const b of LETTERS) add(a + b);
  for (const a of LETTERS) for (const b of LETTERS) add("▁" + a + b);
  for (const a of LETTERS) for (const b of LETTERS) for (const c of LETTERS) add(a + b + c);
  for (const a of LETTERS) for (const b of LETTERS) for (const c of LETTERS) add("▁" + a + b + c);
  for (let i = 0; tokens.length < nVocab; i++) add(`▁x${i}`);

  // SentencePiece scores: 0 for specials and bytes, then falling with rank
  const first = 259;
  const scores = tokens.map((_, i) => (i < first ? 0 : -(i - first)));
  return { tokens, scores, types };
}
