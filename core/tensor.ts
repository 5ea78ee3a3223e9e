/**
 * A named tensor stored in a model file: its element type, its shape and its raw bytes.
 *
 * Shapes are written outermost first, as PyTorch writes them: a weight that maps n_embd inputs
 * to n_ff outputs has shape `[n_ff, n_embd]` and is stored as n_ff rows of n_embd elements.
 * (GGUF lists dimensions innermost first, `ne = {n_embd, n_ff}`; the reader reverses them.)
 *
 * @module
 */

import { DType, dtypeName, rowBytes } from "./dtype.ts";

/** A tensor viewed in place inside a model file (or built in memory by the writer). */
export interface Tensor {
  readonly name: string;
  readonly type: DType;
  /** Outermost first: `[rows, cols]` for a matrix. */
  readonly shape: readonly number[];
  /** The encoded elements, row after row; a view into the mapped file where possible. */
  readonly data: Uint8Array;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes a tensor of this type and shape occupies; throws when rows are not whole blocks. */
export function tensorBytes(type: DType, shape: readonly number[]): number {
  if (shape.length === 0) return rowBytes(type, 1);
  const cols = shape[shape.length - 1];
  return rowBytes(type, cols) * (numel(shape) / cols);
}

/** Human-readable `name F16 [4096, 14336]`. */
export function describe(t: Tensor): string {
  return `${t.name} ${dtypeName(t.type)} [${t.shape.join(", ")}]`;
}
