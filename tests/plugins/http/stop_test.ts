import assert from "node:assert/strict";
import { StopMatcher } from "../../../plugins/http/stop.ts";

/** Feed pieces; return the released text and whether it stopped. */
function run(stops: string[], pieces: string[]): { text: string; stopped: boolean } {
  const m = new StopMatcher(stops);
  let text = "";
  for (const p of pieces) {
    const r = m.push(p);
    text += r.text;
    if (r.stopped) return { text, stopped: true };
  }
  return { text: text + m.flush(), stopped: false };
}

Deno.test("StopMatcher.push() cuts at a stop string inside one piece", () => {
  assert.deepEqual(run(["END"], ["abcENDdef"]), { text: "abc", stopped: true });
});

Deno.test("StopMatcher.push() finds a stop split across pieces and never releases its prefix", () => {
  const m = new StopMatcher(["</answer>"]);
  assert.deepEqual(m.push("yes </an"), { text: "yes ", stopped: false });
  assert.deepEqual(m.push("sw"), { text: "", stopped: false });
  assert.deepEqual(m.push("er> tail"), { text: "", stopped: true });
});

Deno.test("StopMatcher.push() releases held text once it can no longer start a stop", () => {
  const m = new StopMatcher(["\n\n"]);
  assert.deepEqual(m.push("line\n"), { text: "line", stopped: false });
  assert.deepEqual(m.push("next"), { text: "\nnext", stopped: false });
});

Deno.test("StopMatcher.push() stops at the earliest of several stops", () => {
  assert.deepEqual(run(["cd", "b"], ["a", "bcd"]), { text: "a", stopped: true });
  assert.deepEqual(run(["xyz", "yq"], ["xy", "q"]), { text: "x", stopped: true });
});

Deno.test("StopMatcher.flush() returns a held prefix that never completed", () => {
  assert.deepEqual(run(["STOP"], ["go ST", "O"]), { text: "go STO", stopped: false });
});

Deno.test("StopMatcher.push() passes everything through with no stops", () => {
  const m = new StopMatcher([]);
  assert.deepEqual(m.push("anything"), { text: "anything", stopped: false });
  assert.equal(m.flush(), "");
});

Deno.test("StopMatcher.push() handles every split of the text the same way", () => {
  const text = "one two <|im_end|> three";
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      const r = run(["<|im_end|>"], [text.slice(0, i), text.slice(i, j), text.slice(j)]);
      assert.deepEqual(r, { text: "one two ", stopped: true }, `split at ${i}, ${j}`);
    }
  }
});
