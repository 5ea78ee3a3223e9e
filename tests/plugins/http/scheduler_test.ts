import assert from "node:assert/strict";
import type { RunState } from "../../../core/forward.ts";
import type { ApiError } from "../../../plugins/http/errors.ts";
import { Metrics } from "../../../plugins/http/metrics.ts";
import { Scheduler, sequentialStep, type StepRunner } from "../../../plugins/http/scheduler.ts";
import type { SequenceEvent, SequenceSpec } from "../../../plugins/http/sequence.ts";
import { testModel } from "./_model.ts";

const model = await testModel();
const greedy = { temperature: 0 };

/** The text, end event and error of one sequence, once it has ended. */
function collect(scheduler: Scheduler, spec: SequenceSpec) {
  const texts: string[] = [];
  let resolve!: (v: { text: string; end?: SequenceEvent; error?: ApiError }) => void;
  const done = new Promise<{ text: string; end?: SequenceEvent; error?: ApiError }>((
    r,
  ) => (resolve = r));
  const seq = scheduler.submit(spec, (e) => {
    if (e.type === "text") texts.push(e.text);
    else if (e.type === "end") resolve({ text: texts.join(""), end: e });
    else resolve({ text: texts.join(""), error: e.error });
  });
  return { seq, done };
}

function spec(prompt: string, maxTokens: number, extra: Partial<SequenceSpec> = {}): SequenceSpec {
  return {
    promptIds: model.tokenizer.encode(prompt),
    maxTokens,
    sampling: greedy,
    stops: [],
    ...extra,
  };
}

/** A step runner that records which state each forward ran on. */
function recording(log: RunState[], inner: StepRunner = sequentialStep): StepRunner {
  return (m, items) => {
    for (const it of items) log.push(it.state);
    return inner(m, items);
  };
}

Deno.test("Scheduler interleaves active sequences round-robin, one forward each", async () => {
  const log: RunState[] = [];
  const s = new Scheduler(model, { parallel: 3, maxQueue: 0, step: recording(log) });
  const jobs = ["the model", "a sparse layer", "hello world"].map((p) => collect(s, spec(p, 6)));
  await Promise.all(jobs.map((j) => j.done));
  await s.idle();
  // short prompts: one prefill forward, then 5 decode forwards each (the 6th token needs none)
  assert.equal(log.length, 3 * 6);
  const states = [...new Set(log)];
  assert.equal(states.length, 3, "every request has its own RunState");
  for (let i = 0; i < log.length; i++) {
    assert.equal(log[i], states[i % 3], `forward ${i} out of turn`);
  }
});

Deno.test("Scheduler gives concurrent sequences the same greedy text as solo runs", async () => {
  const prompts = ["the model", "a sparse layer", "hello world", "water and fire"];
  const solo: string[] = [];
  for (const p of prompts) {
    const s = new Scheduler(model, { parallel: 1, maxQueue: 0 });
    solo.push((await collect(s, spec(p, 20)).done).text);
  }
  const s = new Scheduler(model, { parallel: 4, maxQueue: 0 });
  const together = await Promise.all(prompts.map((p) => collect(s, spec(p, 20)).done));
  assert.deepEqual(together.map((r) => r.text), solo);
  assert.ok(new Set(solo).size > 1, "different prompts should give different text");
});

Deno.test("Scheduler queues past its slots and refuses past its queue with 429", async () => {
  const metrics = new Metrics({
    queueDepth: () => s.queueDepth,
    activeSequences: () => 0,
    ffnActiveFraction: () => 1,
  });
  const s: Scheduler = new Scheduler(model, { parallel: 1, maxQueue: 1, metrics });
  const a = collect(s, spec("the model", 4));
  const b = collect(s, spec("the model", 4));
  assert.equal(s.queueDepth, 2, "nothing is admitted before submit returns to the event loop");
  assert.throws(() => s.submit(spec("the model", 4), () => {}), (e: ApiError) => e.status === 429);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.text, rb.text);
  await s.idle();
  assert.equal(s.queueDepth, 0);
  assert.equal(s.activeCount, 0);
  assert.equal(metrics.completionTokens, 8);
});

Deno.test("Scheduler.cancel() stops a sequence before its next forward and frees the slot", async () => {
  const log: RunState[] = [];
  const s = new Scheduler(model, { parallel: 2, maxQueue: 0, step: recording(log) });
  const ctrl = new AbortController();
  let pieces = 0, stepsAtAbort = -1, victimState: RunState | undefined;
  const victim = s.submit(spec("the model", 100, { signal: ctrl.signal }), (e) => {
    if (e.type !== "text" || ++pieces !== 3) return;
    victimState = victim.state;
    stepsAtAbort = log.filter((st) => st === victimState).length;
    ctrl.abort(); // the client goes away mid-stream
    assert.equal(s.activeCount, 1, "the slot is free as soon as the abort is seen");
  });
  const other = await collect(s, spec("hello world", 30)).done;
  await s.idle();
  assert.equal(other.end?.type, "end");
  assert.ok(victim.done, "the cancelled sequence is finished");
  assert.equal(victim.state, undefined, "its KV cache is released");
  assert.ok(stepsAtAbort > 0);
  assert.equal(
    log.filter((st) => st === victimState).length,
    stepsAtAbort,
    "no forward after the abort",
  );
  assert.equal(s.activeCount, 0);
});

Deno.test("Scheduler ends a sequence past its time limit with 504", async () => {
  const slow: StepRunner = (m, items) => {
    const until = performance.now() + 5;
    while (performance.now() < until) { /* a slow backend */ }
    return sequentialStep(m, items);
  };
  const s = new Scheduler(model, { parallel: 1, maxQueue: 0, step: slow });
  const r = await collect(s, spec("the model", 200, { timeoutMs: 30 })).done;
  await s.idle();
  assert.equal(r.error?.status, 504);
  assert.match(r.error!.message, /time limit of 0.03 s/);
  assert.equal(s.activeCount, 0);
});

Deno.test("Scheduler.close() ends queued and active sequences with 503 and refuses new ones", async () => {
  const s = new Scheduler(model, { parallel: 1, maxQueue: 4 });
  const a = collect(s, spec("the model", 50));
  const b = collect(s, spec("the model", 50));
  s.close();
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.error?.status, 503);
  assert.equal(rb.error?.status, 503);
  assert.throws(() => s.submit(spec("x", 1), () => {}), (e: ApiError) => e.status === 503);
  await s.idle();
});
