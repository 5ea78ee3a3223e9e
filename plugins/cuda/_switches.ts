/**
 * The CUDA backend's switches for benches and tests (`CudaBackend.switches`): each picks
 * between a landed fast path and the older or plainer one it replaced, so that both can be
 * timed or compared in one process. Each flushes the held-back ops first, so it applies to
 * the ops queued after it. Both paths give the same results (the tests compare them).
 *
 * @module
 */

import type { Ctx } from "./_args.ts";

/** The switches of one CudaBackend. */
export class CudaSwitches {
  readonly #c: Ctx;

  constructor(ctx: Ctx) {
    this.#c = ctx;
  }

  /** The matvec's launch shape (kernels/cuda/matvec.cu g_grid); 0, 0, 6 = default. */
  matvecConfig(grid: number, wpr: number, prefetch: number): void {
    this.#c.q.flush();
    this.#c.lib.symbols.ts_matvec_config(grid, wpr, prefetch);
  }

  /**
   * Decode attention's splits of a KV head run as one thread-block cluster that merges them
   * itself, without the merge launch, when there are at most `blocks` (2–16; default 8) of
   * them; 0 always uses the merge launch.
   */
  attentionCluster(blocks: number): void {
    this.#c.q.flush();
    this.#c.check("attentionCluster", this.#c.lib.symbols.ts_attention_config(blocks));
  }

  /** False runs the sparse down as split partial sums and a sum launch. */
  sparseDownCols(on: boolean): void {
    this.#c.q.flush();
    this.#c.lib.symbols.ts_sparse_config(on ? 1 : 0);
  }

  /** False gives a decode step's rope and KV store their own launch again. */
  ropeInAttention(on: boolean): void {
    this.#c.q.flush();
    this.#c.q.fuseRope = on;
  }

  /**
   * `on` false runs rmsnorm, add and select beside the matvec, not in it; `select` false
   * keeps only select as its own launch. See _queue.ts.
   */
  matvecFuse(on: boolean, select = true): void {
    this.#c.q.flush();
    this.#c.q.fuse = on;
    this.#c.q.fuseSelect = select;
  }

  /**
   * False makes the fused select complete the index list itself, not leave per-block lists
   * for the gathered glu that follows to place (_queue.ts `selectInGlu`).
   */
  selectInGlu(on: boolean): void {
    this.#c.q.flush();
    this.#c.q.selectInGlu = on;
  }
}
