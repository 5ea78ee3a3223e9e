/**
 * The shipped model against its model card (`models/tiny-turbosparse.md`), on held-out text
 * (`tests/fixtures/models/heldout.txt`: validation paragraphs from three books, never trained
 * on). Margins are wide because ~250 tokens are a small sample of the card's 50k tokens:
 * loss 3.30 ± 0.5 nats; true activity 7.5% within [4%, 12%]; predictor recall 96% ≥ 92%;
 * predicted-sparse loss within 2% of dense (the card: +0.04%).
 */

import assert from "node:assert/strict";
import { crossEntropySum, SparsityRecorder } from "../../core/stats.ts";
import { loadModel } from "../../mod.ts";

const MODEL = new URL("../../models/tiny-turbosparse.gguf", import.meta.url).pathname;
const TEXT = await Deno.readTextFile(new URL("../fixtures/models/heldout.txt", import.meta.url));

/** Mean next-token cross-entropy (nats) of `logits` `[n, vocab]` against `tokens[1..]`. */
function crossEntropy(logits: Float32Array, tokens: number[], vocab: number): number {
  return crossEntropySum(logits, tokens.slice(1), vocab) / (tokens.length - 1);
}

Deno.test("tiny-turbosparse matches its model card on held-out text", async () => {
  const model = await loadModel(MODEL);
  try {
    const vocab = model.config.nVocab;
    const tokens = model.tokenizer.encode(TEXT).slice(0, 256);
    model.setPredictor("oracle"); // exact active sets: the dense model's output
    const dense = crossEntropy(model.eval(model.newState(), tokens, true), tokens, vocab);
    model.setPredictor("lowrank");
    const rec = new SparsityRecorder(model.backend, model.config, true);
    const sparse = crossEntropy(model.eval(model.newState(), tokens, true, rec), tokens, vocab);
    const s = rec.summary("lowrank");
    console.log(
      `  ${model.backend.name}: loss dense ${dense.toFixed(4)}, predicted-sparse ${
        sparse.toFixed(4)
      }; ` +
        `true active ${(100 * s.trueActive!).toFixed(1)}%, predicted ${
          (100 * s.predictedActive).toFixed(1)
        }%, ` +
        `recall ${(100 * s.recall!).toFixed(1)}%, precision ${(100 * s.precision!).toFixed(1)}%`,
    );
    assert.ok(Math.abs(dense - 3.30) < 0.5, `dense loss ${dense} far from the card's 3.30`);
    assert.ok(
      sparse <= dense * 1.02,
      `predicted-sparse loss ${sparse} is over 2% above dense ${dense}`,
    );
    assert.ok(s.trueActive! > 0.04 && s.trueActive! < 0.12, `true activity ${s.trueActive}`);
    assert.ok(s.recall! >= 0.92, `recall ${s.recall}`);
    assert.ok(s.predictedActive < 0.35, `predicted activity ${s.predictedActive}`);
  } finally {
    model.close();
  }
});

Deno.test("tiny-turbosparse greedy output is stable and English-like", async () => {
  const model = await loadModel(MODEL);
  try {
    const run = async () => {
      let text = "";
      const opts = { maxTokens: 24, temperature: 0 };
      for await (const piece of model.generate("It is a truth universally acknowledged", opts)) {
        text += piece;
      }
      return text;
    };
    const a = await run(), b = await run();
    assert.equal(a, b);
    const words = a.trim().split(/\s+/);
    assert.ok(words.length >= 10, `too few words: ${JSON.stringify(a)}`);
    const common = words.filter((w) =>
      /^(the|of|and|to|a|that|in|it|he|she|was|be|is|his|her|not|as|for|with|by|i|you)$/i.test(
        w.replace(/[^a-z]/gi, ""),
      )
    );
    assert.ok(common.length >= 2, `no common English words in ${JSON.stringify(a)}`);
  } finally {
    model.close();
  }
});
