/**
 * bench/cuda_decode.ts: the kernels timed alone before the decode runs. Per weight shape, the
 * matvec's GB/s for each launch shape of matvec.cu (`grid,wpr,prefetch`; skipped with
 * `quick`), a check that the two matvec kernels agree, and the one-block kernels' µs per
 * launch (add + rmsnorm; select when sparse).
 *
 * @module
 */

import type { Weight } from "../core/backend.ts";
import type { ModelConfig } from "../core/config.ts";
import type { DenseFFN, Layer, SparseFFN, Weights } from "../core/weights.ts";
import type { CudaBackend, CudaWeight } from "../plugins/cuda/mod.ts";

/** Set the matvec's launch shape from `grid,wpr,prefetch` (kernels/cuda/matvec.cu). */
export function setMatvecConfig(be: CudaBackend, c: string): void {
  const [g, r, p] = c.split(",").map(Number);
  be.switches.matvecConfig(g, r, p);
}

/** What `kernelTables` times: the bench's model and options. */
export interface KernelBench {
  cfg: ModelConfig;
  layers: Layer[];
  w: Weights;
  /** Fraction of neurons active (0: dense). */
  sparse: number;
  /** Skip the per-shape tables and the agreement check. */
  quick: boolean;
  /** Measured read bandwidth (GB/s), for the percentages. */
  bandwidth: number;
}

/** Prints the tables; returns the matvec's GB/s per launch shape and weight shape. */
export function kernelTables(
  be: CudaBackend,
  { cfg, layers, w, sparse, quick, bandwidth }: KernelBench,
): Record<string, Record<string, number>> {
  const { nEmbd, nFF, nVocab } = cfg, nLayer = layers.length;
  // The matvec alone, per shape: GB/s of weights, one CUDA graph of one launch per layer
  // (distinct matrices, so L2 holds none of them; x alternates so no two launches merge),
  // median of 20 replays; for each launch shape of matvec.cu (`grid,wpr,prefetch`).
  const matvec: Record<string, Record<string, number>> = {};
  const xs = [be.alloc(nFF), be.alloc(nFF)], ys = [be.alloc(nVocab), be.alloc(nVocab)];
  const q2 = be.alloc(nVocab);
  for (const b of xs) be.write(b, Float32Array.from({ length: nFF }, (_, i) => Math.sin(i)));
  const dense0 = layers[0].ffn.kind === "dense";
  const shapes: Record<string, Weight[]> = {
    q: layers.map((l) => l.wq),
    k: layers.map((l) => l.wk),
    gate: layers.map((l) => (l.ffn as DenseFFN | SparseFFN).gate),
    ...(dense0 ? { down: layers.map((l) => (l.ffn as DenseFFN).down) } : {}),
    output: [w.output],
  };
  // 0,0,x: matvec_xreg.cu (x in registers); 3,0,x: the general kernel (matvec.cu).
  const configs = ["0,0,6", "0,0,2", "0,0,1", "0,0,0", "3,0,1", "3,0,0"];
  for (const c of quick ? [] : configs) {
    setMatvecConfig(be, c);
    const row: Record<string, number> = {};
    for (const [name, ws] of Object.entries(shapes)) {
      const bytes = ws.reduce((n, m) => n + (m as CudaWeight).bytes, 0);
      const ms = be.timeGraph(
        () => ws.forEach((m, i) => be.matmul(ys[i % 2], m, xs[i % 2], 1)),
        20,
      );
      row[name] = bytes / (ms * 1e6);
    }
    // Q, K and V of each layer as the decode step runs them (one merged launch).
    const qkvBytes = layers.reduce(
      (n, l) => n + [l.wq, l.wk, l.wv].reduce((m, t) => m + (t as CudaWeight).bytes, 0),
      0,
    );
    const qkvMs = be.timeGraph(() => {
      layers.forEach((l, i) => {
        const xb = xs[i % 2];
        be.matmul(ys[0], l.wq, xb, 1), be.matmul(ys[1], l.wk, xb, 1), be.matmul(q2, l.wv, xb, 1);
      });
    }, 20);
    row.qkv = qkvBytes / (qkvMs * 1e6);
    matvec[c] = row;
    console.log(
      `matvec GB/s [grid,wpr,prefetch = ${c}]: ` +
        Object.entries(row).map(([k, v]) =>
          `${k} ${v.toFixed(0)} (${(100 * v / bandwidth).toFixed(0)}%)`
        ).join(", "),
    );
  }
  // The two kernels agree on every shape (max |Δ| over max |y|, fresh x).
  be.write(xs[0], Float32Array.from({ length: nFF }, () => Math.random() * 2 - 1));
  for (const [name, ws] of Object.entries(quick ? {} : shapes)) {
    const m = ws[0] as CudaWeight, out: Float32Array[] = [];
    for (const c of ["0,0,6", "3,0,1"]) {
      setMatvecConfig(be, c);
      be.matmul(ys[0], m, xs[0], 1);
      out.push(be.read(ys[0], 0, m.rows));
    }
    let d = 0, mx = 0;
    out[0].forEach((
      v,
      i,
    ) => (d = Math.max(d, Math.abs(v - out[1][i])), mx = Math.max(mx, Math.abs(v))));
    console.log(
      `matvec check ${name}: max |xreg - general| / max |y| = ${(d / mx).toExponential(1)}`,
    );
  }
  {
    // One-block kernels, 32 launches each in one graph: add+rmsnorm; select (sparse only).
    const normMs = be.timeGraph(() => {
      for (const l of layers) {
        be.add(xs[0], xs[0], xs[1], nEmbd), be.rmsnorm(ys[0], xs[0], l.attnNorm, 1, 1e-5);
      }
    }, 20);
    let line = `one-block kernels: add+rmsnorm ${(1000 * normMs / nLayer).toFixed(2)} µs`;
    if (sparse > 0) {
      const score = be.alloc(nFF), ix = be.allocIndex!(nFF);
      be.write(
        score,
        Float32Array.from({ length: nFF }, (_, i) => Math.sin(i * 12.9898) * 0.5 + 0.5),
      );
      const selMs = be.timeGraph(() => {
        for (let l = 0; l < nLayer; l++) be.select!(ix, score, 0, nFF, 1 - sparse);
      }, 20);
      line += `, select ${(1000 * selMs / nLayer).toFixed(2)} µs (${
        be.readIndex!(ix).length
      } of ${nFF})`;
    }
    console.log(`${line} per launch`);
  }
  return matvec;
}
