/**
 * The sparsity table `generate --stats` prints: one line per FFN (layer, or layer and expert)
 * and a total line.
 *
 * @module
 */

import type { SparsityStats } from "../../core/stats.ts";

const pct = (
  v: number | undefined,
) => (v === undefined ? "     -" : `${(100 * v).toFixed(1)}%`.padStart(6));

/** A readable table of `s`. */
export function formatSparsity(s: SparsityStats): string {
  const lines = [
    `sparsity  predictor ${s.predictor}, ${s.tokens} tokens`,
    "  ffn          tokens  predicted   true  recall  precision  KiB/token",
  ];
  for (const u of s.units) {
    const name = u.expert >= 0 ? `L${u.layer}.E${u.expert}` : `L${u.layer}`;
    lines.push(
      `  ${name.padEnd(10)} ${String(u.tokens).padStart(7)}     ${pct(u.predictedActive)} ` +
        `${pct(u.trueActive)}  ${pct(u.recall)}     ${pct(u.precision)}  ` +
        `${(u.bytesPerToken / 1024).toFixed(1).padStart(9)}`,
    );
  }
  lines.push(
    `  all        ${String(s.tokens).padStart(7)}     ${pct(s.predictedActive)} ` +
      `${pct(s.trueActive)}  ${pct(s.recall)}     ${pct(s.precision)}  ` +
      `${(s.bytesPerToken / 1024).toFixed(1).padStart(9)}  (dense ${
        (s.denseBytesPerToken / 1024).toFixed(1)
      } KiB/token)`,
  );
  return lines.join("\n");
}
