// SentencePiece tokenizer against ids and text recorded from spm_encode / spm_decode
// (tools/tokenizer_fixture.ts), plus the metadata contract shared by both tokenizers.

import assert from "node:assert/strict";
import type { GGUFValue } from "../../core/gguf.ts";
import { type Tokenizer, tokenizerFromMetadata, TokenType } from "../../core/tokenizer.ts";

interface SpmFixture {
  tokens: string[];
  scores: number[];
  types: number[];
  bos: number;
  eos: number;
  unk: number;
  /** spm_encode ids per text; `decoded` is spm_decode's output where it differs from `text`. */
  encoded: { text: string; ids: number[]; pieces?: string[]; decoded?: string }[];
  /** spm_decode output for hand-picked id sequences. */
  decoded: { ids: number[]; text: string }[];
}

async function loadFixture(name: string): Promise<SpmFixture> {
  const url = new URL(`../fixtures/tokenizer/${name}.json`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url));
}

const BYTE_MODEL = await loadFixture("spm_bpe_2000");
const UNK_MODEL = await loadFixture("spm_bpe_unk_400");

/** GGUF metadata for a fixture, as llama.cpp's converter writes it. */
function spmMeta(f: SpmFixture, extra: [string, GGUFValue][] = []): Map<string, GGUFValue> {
  return new Map<string, GGUFValue>([
    ["tokenizer.ggml.model", "llama"],
    ["tokenizer.ggml.tokens", f.tokens],
    ["tokenizer.ggml.scores", f.scores],
    ["tokenizer.ggml.token_type", f.types],
    ["tokenizer.ggml.bos_token_id", f.bos],
    ["tokenizer.ggml.eos_token_id", f.eos],
    ["tokenizer.ggml.unknown_token_id", f.unk],
    ...extra,
  ]);
}

const byteTok = tokenizerFromMetadata(spmMeta(BYTE_MODEL), "spm_bpe_2000");
const unkTok = tokenizerFromMetadata(spmMeta(UNK_MODEL), "spm_bpe_unk_400");
const cases: [string, SpmFixture, Tokenizer][] = [
  ["byte fallback", BYTE_MODEL, byteTok],
  ["no byte fallback", UNK_MODEL, unkTok],
];

/** Id of the `<0xNN>` piece for a byte. */
function byteId(byte: number): number {
  return BYTE_MODEL.tokens.indexOf(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
}

Deno.test("tokenizerFromMetadata() builds a SentencePiece tokenizer with llama defaults", () => {
  assert.equal(byteTok.kind, "llama");
  assert.equal(byteTok.vocabSize, 2000);
  assert.deepEqual([byteTok.bos, byteTok.eos, byteTok.unk], [1, 2, 0]);
  assert.equal(byteTok.addBos, true);
  assert.equal(byteTok.piece(1), "<s>");
});

for (const [label, fixture, tok] of cases) {
  Deno.test(`encode() equals spm_encode ids for ${fixture.encoded.length} texts (${label})`, () => {
    for (const c of fixture.encoded) {
      const ids = tok.encode(c.text, { bos: false });
      assert.deepEqual(ids, c.ids, `text ${JSON.stringify(c.text)}: ${ids.map(tok.piece, tok)}`);
    }
  });

  Deno.test(`decode() equals spm_decode for encoded texts and odd id sequences (${label})`, () => {
    for (const c of fixture.encoded) {
      assert.equal(tok.decode(c.ids), c.decoded ?? c.text, `ids of ${JSON.stringify(c.text)}`);
    }
    for (const c of fixture.decoded) {
      assert.equal(tok.decode(c.ids), c.text, `pieces ${c.ids.map(tok.piece, tok)}`);
    }
  });
}

Deno.test("decode() round-trips every byte-fallback fixture text but the one containing ▁", () => {
  const lossy = BYTE_MODEL.encoded.filter((c) => tok(c.text) !== c.text).map((c) => c.text);
  assert.deepEqual(lossy, ["▁ already has the meta symbol ▁▁ twice"]);
  function tok(text: string): string {
    return byteTok.decode(byteTok.encode(text));
  }
});

Deno.test("decode() spells UNK as spm_decode's ' ⁇ ' and merges a run of unknowns into one", () => {
  const ids = unkTok.encode("Ελληνικά!", { bos: false });
  assert.deepEqual(ids.map(unkTok.piece, unkTok), ["▁", "<unk>"]);
  assert.equal(unkTok.decode(ids), " \u2047 ");
});

Deno.test("encode() prepends BOS by default, on request, and not when add_bos_token is false", () => {
  const plain = byteTok.encode("Hello world", { bos: false });
  assert.deepEqual(byteTok.encode("Hello world"), [1, ...plain]);
  assert.deepEqual(byteTok.encode("", { bos: true }), [1]);
  assert.deepEqual(byteTok.encode(""), [1]);
  const noBos = tokenizerFromMetadata(
    spmMeta(BYTE_MODEL, [["tokenizer.ggml.add_bos_token", false]]),
  );
  assert.equal(noBos.addBos, false);
  assert.deepEqual(noBos.encode("Hello world"), plain);
  assert.equal(byteTok.decode(byteTok.encode("Hello world")), "Hello world");
});

Deno.test("encode() of multi-line text equals its lines joined by the <0x0A> byte piece", () => {
  // "\n" is no piece and no piece contains it, so no merge crosses a line break; lines after the
  // first get no dummy "▁" prefix.
  const noPrefix = tokenizerFromMetadata(
    spmMeta(BYTE_MODEL, [["tokenizer.ggml.add_space_prefix", false]]),
  );
  const lines = BYTE_MODEL.encoded.map((c) => c.text).filter((t) => t !== "");
  const text = lines.join("\n");
  const expected = byteTok.encode(lines[0], { bos: false });
  for (const line of lines.slice(1)) {
    expected.push(byteId(0x0a), ...noPrefix.encode(line, { bos: false }));
  }
  const ids = byteTok.encode(text, { bos: false });
  assert.equal(ids.length, expected.length);
  assert.deepEqual(ids, expected);
  assert.equal(byteTok.decode(ids), text.replaceAll("▁", " "));
});

Deno.test("encode() never throws: lone surrogates read as U+FFFD, control characters as bytes", () => {
  assert.deepEqual(byteTok.encode("a\uD800b"), byteTok.encode("a\uFFFDb"));
  assert.deepEqual(
    byteTok.encode("\uDC00", { bos: false }),
    byteTok.encode("\uFFFD", { bos: false }),
  );
  const ids = byteTok.encode("\u0000\u007f", { bos: false });
  assert.deepEqual(ids.slice(-2), [byteId(0x00), byteId(0x7f)]);
  assert.deepEqual(unkTok.encode("\u0000x\u0001", { bos: false }).includes(0), true);
});

Deno.test("encode() equals a naive quadratic SentencePiece merge on random text", () => {
  const scores = new Map<string, number>();
  BYTE_MODEL.tokens.forEach((piece, i) => {
    if (BYTE_MODEL.types[i] === TokenType.NORMAL) scores.set(piece, BYTE_MODEL.scores[i]);
  });
  const alphabet = [...BYTE_MODEL.tokens.filter((p) => [...p].length === 1), " ", "  ", "é", "日"];
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 200; round++) {
    let text = "";
    const length = Math.floor(random() * 80);
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    const expected = naiveSpm(text, scores).flatMap((s) =>
      scores.has(s) ? [BYTE_MODEL.tokens.indexOf(s)] : [...new TextEncoder().encode(s)].map(byteId)
    );
    assert.deepEqual(byteTok.encode(text, { bos: false }), expected, JSON.stringify(text));
  }
});

/** llama.cpp's original loop: merge the best-scoring adjacent pair (leftmost on ties) until none. */
function naiveSpm(text: string, scores: Map<string, number>): string[] {
  if (text === "") return [];
  const symbols = [..."▁" + text.replaceAll(" ", "▁")];
  while (true) {
    let best = -1;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const score = scores.get(symbols[i] + symbols[i + 1]);
      if (
        score !== undefined && (best < 0 || score > scores.get(symbols[best] + symbols[best + 1])!)
      ) {
        best = i;
      }
    }
    if (best < 0) return symbols;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
}

Deno.test("encode() keeps user-defined pieces whole and decode() prints them", () => {
  const f = BYTE_MODEL;
  const tok = tokenizerFromMetadata(
    new Map<string, GGUFValue>([
      ["tokenizer.ggml.model", "llama"],
      ["tokenizer.ggml.tokens", [...f.tokens, "<|im_start|>", "the"]],
      ["tokenizer.ggml.scores", [...f.scores, 0, 0]],
      ["tokenizer.ggml.token_type", [...f.types, TokenType.USER_DEFINED, TokenType.USER_DEFINED]],
    ]),
  );
  const ids = tok.encode("hi<|im_start|>there the", { bos: false });
  assert.deepEqual(ids.map(tok.piece, tok), ["▁h", "i", "<|im_start|>", "the", "re", "▁", "the"]);
  assert.equal(tok.decode(ids), "hi<|im_start|>there the");
});

Deno.test("decoder() holds byte pieces until the UTF-8 character is complete", () => {
  const ids = byteTok.encode("a🙂é!", { bos: false });
  const d = byteTok.decoder();
  const out = ids.map((id) => d.push(id));
  assert.deepEqual(ids.map(byteTok.piece, byteTok).slice(1, 6), [
    "<0xF0>",
    "<0x9F>",
    "<0x99>",
    "<0x82>",
    "<0xC3>",
  ]);
  assert.deepEqual(out.slice(0, 5), ["a", "", "", "", "🙂"]);
  assert.equal(out.join("") + d.flush(), "a🙂é!");
});

Deno.test("decoder() output concatenates to decode() and never holds half a character", () => {
  for (const [, fixture, tok] of cases) {
    const sequences = [...fixture.encoded.map((c) => c.ids), ...fixture.decoded.map((c) => c.ids)];
    for (const ids of sequences) {
      const d = tok.decoder();
      const parts = ids.map((id) => d.push(id));
      parts.push(d.flush());
      for (const part of parts) assert.equal(part, part.toWellFormed());
      assert.equal(parts.join(""), tok.decode(ids));
    }
  }
});

Deno.test("decoder() turns an unfinished character into U+FFFD per byte at the next piece or flush", () => {
  const d = byteTok.decoder();
  assert.equal(d.push(byteId(0xe2)), "");
  assert.equal(d.push(byteId(0x82)), "");
  assert.equal(d.push(byteTok.encode("x", { bos: false })[1]), "\uFFFD\uFFFDx");
  assert.equal(d.push(byteId(0xc3)), "");
  assert.equal(d.flush(), "\uFFFD");
  // Bytes that cannot start or continue a character come out at once.
  const e = byteTok.decoder();
  assert.equal(e.push(byteId(0xff)), "\uFFFD");
  assert.equal(e.push(byteId(0xc3)), "");
  assert.equal(e.push(byteId(0x41)), "\uFFFDA");
  assert.equal(byteTok.decode([byteId(0xed), byteId(0xa0), byteId(0x80)]), "\uFFFD".repeat(3));
});

Deno.test("isEog() is true for EOS, EOT and EOM only", () => {
  assert.equal(byteTok.isEog(2), true);
  assert.equal(byteTok.isEog(1), false);
  assert.equal(byteTok.isEog(500), false);
  const tok = tokenizerFromMetadata(spmMeta(BYTE_MODEL, [
    ["tokenizer.ggml.eot_token_id", 500],
    ["tokenizer.ggml.eom_token_id", 501],
  ]));
  assert.deepEqual([2, 500, 501, 1, 502].map((id) => tok.isEog(id)), [
    true,
    true,
    true,
    false,
    false,
  ]);
});

Deno.test("piece() and decode() reject ids outside the vocabulary", () => {
  assert.deepEqual(byteTok.encode(" the the", { bos: false }).map(byteTok.piece, byteTok), [
    "▁▁",
    "the",
    "▁the",
  ]);
  assert.throws(() => byteTok.piece(2000), /token id 2000: expected an integer in \[0, 2000\)/);
  assert.throws(() => byteTok.decode([5, -1]), /token id -1/);
  assert.throws(() => byteTok.decoder().push(1.5), /token id 1.5/);
});

Deno.test("tokenizerFromMetadata() errors name the key, the source and what was expected", () => {
  const bad = (key: string, value: GGUFValue | undefined, message: RegExp) => {
    const meta = spmMeta(BYTE_MODEL);
    if (value === undefined) meta.delete(key);
    else meta.set(key, value);
    assert.throws(() => tokenizerFromMetadata(meta, "m.gguf"), message);
  };
  bad("tokenizer.ggml.model", undefined, /missing metadata key "tokenizer.ggml.model" in m.gguf/);
  bad(
    "tokenizer.ggml.model",
    "bert",
    /"tokenizer.ggml.model" in m.gguf is "bert", expected "llama".*"gpt2"/,
  );
  bad("tokenizer.ggml.tokens", undefined, /missing metadata key "tokenizer.ggml.tokens"/);
  bad("tokenizer.ggml.tokens", "abc", /"tokenizer.ggml.tokens" .* expected an array of strings/);
  bad("tokenizer.ggml.tokens", [], /"tokenizer.ggml.tokens" .* is empty, expected at least one/);
  bad("tokenizer.ggml.tokens", ["a", 3], /"tokenizer.ggml.tokens\[1\]" .* expected a string/);
  bad("tokenizer.ggml.scores", undefined, /missing metadata key "tokenizer.ggml.scores"/);
  bad("tokenizer.ggml.scores", [0, 1], /"tokenizer.ggml.scores" .* is 2 entries, expected 2000/);
  bad(
    "tokenizer.ggml.token_type",
    BYTE_MODEL.types.map((t, i) => i === 7 ? 9 : t),
    /"tokenizer.ggml.token_type\[7\]" .* is 9, expected an integer 0..6/,
  );
  bad(
    "tokenizer.ggml.bos_token_id",
    2000,
    /"tokenizer.ggml.bos_token_id" .* expected a token id in \[0, 2000\)/,
  );
  bad("tokenizer.ggml.eos_token_id", "2", /"tokenizer.ggml.eos_token_id" .* expected a token id/);
  bad("tokenizer.ggml.unknown_token_id", -1, /"tokenizer.ggml.unknown_token_id"/);
  bad("tokenizer.ggml.padding_token_id", 1.5, /"tokenizer.ggml.padding_token_id"/);
  bad("tokenizer.ggml.eot_token_id", 99999, /"tokenizer.ggml.eot_token_id"/);
  bad(
    "tokenizer.ggml.add_bos_token",
    1,
    /"tokenizer.ggml.add_bos_token" .* is number 1, expected a boolean/,
  );
  bad(
    "tokenizer.ggml.add_space_prefix",
    "yes",
    /"tokenizer.ggml.add_space_prefix" .* expected a boolean/,
  );
});

Deno.test("tokenizerFromMetadata() without token_type or ids falls back like llama.cpp", () => {
  const meta = spmMeta(BYTE_MODEL);
  for (const key of ["token_type", "bos_token_id", "eos_token_id", "unknown_token_id"]) {
    meta.delete(`tokenizer.ggml.${key}`);
  }
  const tok = tokenizerFromMetadata(meta);
  assert.deepEqual([tok.bos, tok.eos, tok.unk], [1, 2, 0]);
  for (const c of BYTE_MODEL.encoded) assert.deepEqual(tok.encode(c.text, { bos: false }), c.ids);
  assert.equal(tok.decode([1, ...BYTE_MODEL.encoded[1].ids, 2]), BYTE_MODEL.encoded[1].text);
});

Deno.test("Tokenizer.decoder() keeps the leading space when continuing earlier text", () => {
  const tok = byteTok;
  const ids = tok.encode(" world", { bos: false });
  let fresh = "", cont = "";
  const a = tok.decoder(), b = tok.decoder({ continuing: true });
  for (const id of ids) {
    fresh += a.push(id);
    cont += b.push(id);
  }
  assert.equal(fresh + a.flush(), tok.decode(ids));
  assert.equal(cont + b.flush(), " " + tok.decode(ids));
});
