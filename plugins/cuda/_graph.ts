/**
 * Decode-step capture for the CUDA backend (kernels/cuda/graph.cu): the first run of a step
 * goes op by op (scratch areas reach their size), the second is captured into a CUDA graph,
 * later ones replay it after writing pos and token to the device. Graphs captured before a
 * scratch area moved are captured again. Also a bench helper that times a captured sequence.
 *
 * @module
 */

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
