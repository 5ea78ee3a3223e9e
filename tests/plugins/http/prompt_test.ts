import assert from "node:assert/strict";
import { encodePrompt, specialsFromMetadata, tokenText } from "../../../plugins/http/prompt.ts";
import { testModel } from "./_model.ts";

const model = await testModel();
const tok = model.tokenizer;
const specials = specialsFromMetadata(model.file.metadata);

Deno.test("specialsFromMetadata() lists the control pieces of the vocabulary", () => {
  const pieces = [...specials.values()].flat().map((s) => s.piece).sort();
  assert.deepEqual(pieces, ["</s>", "<s>"]);
});

Deno.test("encodePrompt() matches control pieces written in the text as single ids", () => {
  const ids = encodePrompt(tok, specials, "<s>hello</s>world");
  assert.equal(ids[0], tok.bos);
  assert.equal(ids.filter((id) => id === tok.bos).length, 1, "BOS is not added twice");
  const eosAt = ids.indexOf(tok.eos);
  assert.ok(eosAt > 1);
  assert.deepEqual(ids.slice(1, eosAt), tok.encode("hello", { bos: false }));
  assert.deepEqual(ids.slice(eosAt + 1), tok.encode("world", { bos: false }));
});

Deno.test("encodePrompt() adds BOS when the vocabulary wants it, like encode()", () => {
  assert.deepEqual(encodePrompt(tok, specials, "the model"), tok.encode("the model"));
});

Deno.test("tokenText() shows SentencePiece spaces and byte pieces", () => {
  const word = tok.encode(" model", { bos: false }).at(-1)!;
  assert.equal(tokenText(tok, word).token.trim(), tok.decode([word]).trim());
  const byteId = [...Array(tok.vocabSize).keys()].find((id) => tok.piece(id) === "<0xE2>")!;
  assert.deepEqual(tokenText(tok, byteId), { token: "\\xe2", bytes: [0xe2] });
  const a = [...Array(tok.vocabSize).keys()].find((id) => tok.piece(id) === "<0x41>")!;
  assert.deepEqual(tokenText(tok, a), { token: "A", bytes: [0x41] });
});
