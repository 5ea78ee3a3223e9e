/**
 * Decode-step capture for the CUDA backend (kernels/cuda/graph.cu): the first run of a step
 * goes op by op (scratch areas reach their size), the second is captured into a CUDA graph,
 * later ones replay it after writing pos and token to the device. Graphs captured before a
 * scratch area moved are captured again. Also a bench helper that times a captured sequence.
 *
 * @module
 */

import type { GreedySteps } from "../../core/backend.ts";
import type { Ctx } from "./_args.ts";

/** A captured decode step: its graph, and the scratch epoch it was captured in. */
interface Graph {
  exec: Deno.PointerObject | null;
  epoch: number;
}

/** The captured steps of one CudaBackend. */
export class StepGraphs {
  readonly #c: Ctx;
  /** Captured decode steps by key, and every graph for close(). */
  readonly #graphs = new WeakMap<object, Graph>();
  readonly #execs = new Set<Deno.PointerObject>();
  /** The key of each step's greedy variant (the step plus its argmax), by the step's key. */
  readonly #greedyKeys = new WeakMap<object, object>();
  /** True while a capture records: a read back would break it. */
  capturing = false;

  constructor(ctx: Ctx) {
    this.#c = ctx;
  }

  /** Backend.step: run, capture or replay the decode step `key` at pos with one token. */
  step(key: object, pos: number, tokens: Int32Array, record: () => void): void {
    const { lib, q } = this.#c;
    const s = lib.symbols;
    q.flush();
    const ptr = s.ts_step_ptr();
    if (!ptr || tokens.length !== 1) {
      record();
      return;
    }
    this.#c.check("step", s.ts_step_set(pos, tokens[0]));
    const g = this.#graphs.get(key);
    if (g?.exec && g.epoch === s.ts_scratch_epoch()) {
      this.#c.check("step", s.ts_graph_launch(g.exec));
      return;
    }
    q.dyn = { pos, token: tokens[0], ptr };
    try {
      if (!g) {
        this.#graphs.set(key, { exec: null, epoch: -1 });
        record();
        q.flush();
        return;
      }
      if (g.exec) this.#free(g);
      this.#capture(g, record);
    } finally {
      q.dyn = null;
    }
    this.#c.check("step", s.ts_graph_launch(g.exec!));
  }

  /**
   * Backend.stepGreedy: `r.n` decode steps of `r.key` from `r.pos`, fed `r.token` first;
   * `argmax` queues the device argmax that ends each step (kernels/cuda/graph.cu). Until the
   * step's graph exists, steps go through step() (op by op, then captured), each fed the token
   * read back from the one before; then the graph replays back to back, the device carrying
   * pos and token from step to step. One read at the end returns the n tokens picked.
   */
  greedy(r: GreedySteps, argmax: () => void): Int32Array {
    const { key, pos, token, n, record } = r;
    const { lib, q, check } = this.#c;
    const s = lib.symbols;
    q.flush();
    check("stepGreedy", s.ts_greedy_begin());
    let gkey = this.#greedyKeys.get(key);
    if (!gkey) this.#greedyKeys.set(key, gkey = {});
    const full = (p: number, t: number) => {
      record(p, t);
      q.flush();
      argmax();
    };
    const out = new Int32Array(n);
    let i = 0;
    for (; i < n; i++) {
      const g = this.#graphs.get(gkey);
      if (g?.exec && g.epoch === s.ts_scratch_epoch()) break;
      const fed = i === 0 ? token : this.#readTokens(out, i)[i - 1];
      this.step(gkey, pos + i, Int32Array.of(fed), () => full(pos + i, fed));
    }
    if (i < n) {
      // replays: the device holds the position and token the last step left (or these)
      if (i === 0) check("stepGreedy", s.ts_step_set(pos, token));
      const exec = this.#graphs.get(gkey)!.exec!;
      for (; i < n; i++) check("stepGreedy", s.ts_graph_launch(exec));
    }
    return this.#readTokens(out, n);
  }

  #readTokens(out: Int32Array, n: number): Int32Array {
    this.#c.check("stepGreedy", this.#c.lib.symbols.ts_greedy_read(out, n));
    const bad = out.subarray(0, n).indexOf(-1);
    if (bad >= 0) throw new Error(`cuda stepGreedy: the logits of step ${bad} contain NaN`);
    return out;
  }

  /**
   * Bench only: milliseconds per replay (median of `reps`) of the ops `record` queues,
   * captured once into a graph. `record` runs once op by op first, so scratch areas settle.
   */
  time(record: () => void, reps: number): number {
    const s = this.#c.lib.symbols;
    record();
    this.#c.q.flush();
    const g: Graph = { exec: null, epoch: -1 };
    this.#capture(g, record);
    try {
      return s.ts_graph_time(g.exec, reps);
    } finally {
      this.#free(g);
    }
  }

  /** Free every graph (the backend closes). */
  close(): void {
    for (const e of this.#execs) this.#c.lib.symbols.ts_graph_free(e);
    this.#execs.clear();
  }

  #capture(g: Graph, record: () => void): void {
    const { lib, q } = this.#c;
    const s = lib.symbols;
    this.#c.check("step", s.ts_graph_begin());
    this.capturing = true;
    const handle = new BigUint64Array(1);
    let rc = 0;
    try {
      record();
      q.flush();
    } finally {
      this.capturing = false;
      rc = s.ts_graph_end(handle);
    }
    this.#c.check("step capture", rc);
    g.exec = Deno.UnsafePointer.create(handle[0]);
    g.epoch = s.ts_scratch_epoch();
    this.#execs.add(g.exec!);
  }

  #free(g: Graph): void {
    this.#execs.delete(g.exec!);
    this.#c.lib.symbols.ts_graph_free(g.exec);
    g.exec = null;
  }
}
