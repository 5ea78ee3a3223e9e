// GPT-2 byte-level BPE on a tiny hand-made vocabulary whose merges can be followed by hand.

import assert from "node:assert/strict";
import type { GGUFValue } from "../../core/gguf.ts";
import { tokenizerFromMetadata, TokenType } from "../../core/tokenizer.ts";
import { byteToUnicode, GPT2_PRETOKENIZE } from "../../core/tokenizer_bpe.ts";

/** Rank order: lower merges first. "h e" (1) beats "e r" (11) in "her". */
const MERGES = [
  "Ġ t",
  "h e",
  "Ġt he",
  "l l",
  "o r",
  "Ġ w",
  "Ġw or",
  "Ġwor l",
  "Ġworl d",
  "he ll",
  "hell o",
  "e r",
]; // deno-fmt-ignore

/** Ids 0..255 are the single bytes in byte order, then one token per merge, then specials. */
function gpt2Meta(extra: [string, GGUFValue][] = []): Map<string, GGUFValue> {
  const tokens = [...byteToUnicode(), ...MERGES.map((m) => m.replace(" ", ""))];
  const types = tokens.map(() => TokenType.NORMAL as number);
  tokens.push("<|endoftext|>", "<|user|>");
  types.push(TokenType.CONTROL, TokenType.USER_DEFINED);
  return new Map<string, GGUFValue>([
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.tokens", tokens],
    ["tokenizer.ggml.token_type", types],
    ["tokenizer.ggml.merges", MERGES],
    ["tokenizer.ggml.bos_token_id", tokens.length - 2],
    ["tokenizer.ggml.eos_token_id", tokens.length - 2],
    ...extra,
  ]);
}

const tok = tokenizerFromMetadata(gpt2Meta(), "tiny-gpt2");
const EOT = 256 + MERGES.length;
const USER = EOT + 1;
const pieces = (ids: number[]) => ids.map((id) => tok.piece(id));

Deno.test("byteToUnicode() is a bijection onto printable characters with space as Ġ", () => {
  const table = byteToUnicode();
  assert.equal(new Set(table).size, 256);
  assert.equal(table[0x20], "Ġ");
  assert.equal(table[0x0a], "Ċ");
  assert.equal(table[0x41], "A");
  assert.equal(table[0xad], "Ń");
  for (const ch of table) assert.match(ch, /^[^\s\p{Cc}]$/u);
});

Deno.test("GPT2_PRETOKENIZE splits contractions, letters, digits, punctuation and spaces", () => {
  const words = (s: string) => [...s.matchAll(GPT2_PRETOKENIZE)].map((m) => m[0]);
  assert.deepEqual(words("I'm here  42x!! ok\n\n"), [
    "I",
    "'m",
    " here",
    " ",
    " 42",
    "x",
    "!!",
    " ok",
    "\n\n",
  ]);
  assert.deepEqual(words("don't  café 日本"), ["don", "'t", " ", " café", " 日本"]);
});

Deno.test("tokenizerFromMetadata() builds a gpt2 tokenizer without BOS by default", () => {
  assert.equal(tok.kind, "gpt2");
  assert.equal(tok.vocabSize, 256 + MERGES.length + 2);
  assert.equal(tok.addBos, false);
  assert.equal(tok.unk, undefined);
  assert.deepEqual(tok.encode("", { bos: true }), [EOT]);
  assert.equal(tok.isEog(EOT), true);
  assert.equal(tok.isEog(USER), false);
});

Deno.test("encode() merges by rank, lowest first, as worked out by hand", () => {
  const ids = tok.encode("hello the world her");
  assert.deepEqual(pieces(ids), ["hello", "Ġthe", "Ġworld", "Ġ", "he", "r"]);
  assert.deepEqual(ids.slice(0, 3), [256 + 10, 256 + 2, 256 + 8]);
  assert.equal(tok.decode(ids), "hello the world her");
  // Equal ranks (the same pair twice) merge leftmost first.
  assert.deepEqual(pieces(tok.encode("lll")), ["ll", "l"]);
});

Deno.test("encode() equals the reference GPT-2 bpe() loop on random text", () => {
  const alphabet = [..."helowrdt ", "  ", "\n", "é", "🙂", "'s", "7"];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const ids = new Map<string, number>();
  for (let id = 0; id < tok.vocabSize; id++) ids.set(tok.piece(id), id);
  const bytes = byteToUnicode();
  for (let round = 0; round < 300; round++) {
    let text = "";
    const length = Math.floor(random() * 40);
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    const expected = [...text.matchAll(GPT2_PRETOKENIZE)].flatMap((m) =>
      referenceBpe([...new TextEncoder().encode(m[0])].map((b) => bytes[b])).map((s) => ids.get(s)!)
    );
    const got = tok.encode(text);
    assert.deepEqual(got, expected, JSON.stringify(text));
    assert.equal(tok.decode(got), text);
  }
});

/** GPT-2's encoder.py bpe(): merge every occurrence of the lowest-ranked pair, repeat. */
function referenceBpe(word: string[]): string[] {
  while (word.length > 1) {
    let best: string | undefined;
    for (let i = 0; i + 1 < word.length; i++) {
      const pair = word[i] + " " + word[i + 1];
      const rank = MERGES.indexOf(pair);
      if (rank >= 0 && (best === undefined || rank < MERGES.indexOf(best))) best = pair;
    }
    if (best === undefined) break;
    const [a, b] = best.split(" ");
    const merged: string[] = [];
    for (let i = 0; i < word.length; i++) {
      if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
        merged.push(a + b);
        i++;
      } else {
        merged.push(word[i]);
      }
    }
    word = merged;
  }
  return word;
}

Deno.test("encode() matches user-defined tokens whole but reads control tokens as text", () => {
  const ids = tok.encode("hi<|user|>the<|endoftext|>");
  assert.deepEqual(pieces(ids), [..."hi", "<|user|>", "t", "he", ..."<|endoftext|>"]);
  assert.equal(tok.decode(ids), "hi<|user|>the<|endoftext|>");
  assert.equal(tok.decode([EOT, ...tok.encode("the"), EOT]), "the");
});

Deno.test("decoder() holds the bytes of a multi-byte character until it is complete", () => {
  const ids = tok.encode("é🙂!");
  assert.equal(ids.length, 7);
  const d = tok.decoder();
  assert.deepEqual(ids.map((id) => d.push(id)), ["", "é", "", "", "", "🙂", "!"]);
  assert.equal(d.flush(), "");
  const e = tok.decoder();
  assert.equal(e.push(ids[2]) + e.push(ids[3]), "");
  assert.equal(e.flush(), "\uFFFD\uFFFD");
});

Deno.test("encode() never throws on lone surrogates", () => {
  assert.deepEqual(tok.encode("a\uD83Db"), tok.encode("a\uFFFDb"));
  assert.equal(tok.decode(tok.encode("\uDE42")), "\uFFFD");
});

Deno.test("tokenizerFromMetadata() names the bad gpt2 key", () => {
  const bad = (key: string, value: GGUFValue | undefined, message: RegExp) => {
    const meta = gpt2Meta();
    if (value === undefined) meta.delete(key);
    else meta.set(key, value);
    assert.throws(() => tokenizerFromMetadata(meta, "g.gguf"), message);
  };
  bad("tokenizer.ggml.merges", undefined, /missing metadata key "tokenizer.ggml.merges" in g.gguf/);
  bad(
    "tokenizer.ggml.merges",
    ["h e", "he"],
    /"tokenizer.ggml.merges\[1\]" in g.gguf is "he", expected "left right"/,
  );
  bad("tokenizer.ggml.merges", [" he"], /"tokenizer.ggml.merges\[0\]"/);
  bad(
    "tokenizer.ggml.bos_token_id",
    undefined,
    /missing metadata key "tokenizer.ggml.bos_token_id"/,
  );
  bad(
    "tokenizer.ggml.token_type",
    [1, 2],
    /"tokenizer.ggml.token_type" in g.gguf is 2 entries, expected 270/,
  );
});
