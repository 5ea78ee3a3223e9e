/**
 * The device layouts of the CUDA plugin (plugins/cuda/_layout.ts), checked on the host: Q8_0
 * and Q4_0 rows regrouped at upload keep every block's scale and values, in the places the
 * kernels read them (kernels/cuda/ts_cuda.h `Elems<TS_Q8_0>`, `Elems<TS_Q4_0>`), with zeroed
 * padding.
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { DType } from "../../core/dtype.ts";
import { quantize } from "../../core/quant.ts";
import { tensorBytes } from "../../core/tensor.ts";
import {
  deviceBytes,
  Q4G_BYTES,
  q4Groups,
  Q8G_BYTES,
  q8Groups,
  toDevice,
} from "../../plugins/cuda/_layout.ts";
import { normals } from "../_conformance_util.ts";

/** Throws unless every byte of `dst` not marked in `used` is zero (the padding). */
function zeroPadding(dst: Uint8Array, used: Uint8Array, what: string): void {
  for (let i = 0; i < dst.byteLength; i++) {
    if (!used[i] && dst[i] !== 0) throw new Error(`${what}: padding byte ${i} is ${dst[i]}`);
  }
}

Deno.test("Q8_0 rows regroup into aligned groups of 8 blocks, every block kept", () => {
  for (const [rows, cols] of [[3, 64], [2, 256], [5, 1056], [1, 4096]]) {
    const src = quantize(DType.Q8_0, normals(rows * cols, rows * 7919 + cols));
    const dst = q8Groups(src, rows, cols);
    const groups = Math.ceil(cols / 256), rowBytes = groups * Q8G_BYTES;
    strictEqual(dst.byteLength, deviceBytes(DType.Q8_0, [rows, cols]));
    strictEqual(dst.byteLength, rows * rowBytes);
    const used = new Uint8Array(dst.byteLength);
    for (let r = 0; r < rows; r++) {
      for (let b = 0; b < cols / 32; b++) {
        const s = r * (cols / 32) * 34 + b * 34;
        const g = r * rowBytes + Math.floor(b / 8) * Q8G_BYTES, k = b % 8;
        // the scale of value c sits at group + 2·((c / 32) % 8), value c at group + 16 + c % 256
        deepStrictEqual(dst.subarray(g + 2 * k, g + 2 * k + 2), src.subarray(s, s + 2));
        deepStrictEqual(
          dst.subarray(g + 16 + 32 * k, g + 48 + 32 * k),
          src.subarray(s + 2, s + 34),
        );
        used.fill(1, g + 2 * k, g + 2 * k + 2);
        used.fill(1, g + 16 + 32 * k, g + 48 + 32 * k);
      }
    }
    zeroPadding(dst, used, `[${rows}, ${cols}]`);
  }
});

Deno.test("Q4_0 rows regroup with values 2k and 2k + 1 in byte k, every block kept", () => {
  for (const [rows, cols] of [[3, 64], [2, 256], [5, 1056], [1, 4096]]) {
    const src = quantize(DType.Q4_0, normals(rows * cols, rows * 104729 + cols));
    const dst = q4Groups(src, rows, cols);
    const rowBytes = Math.ceil(cols / 256) * Q4G_BYTES;
    strictEqual(dst.byteLength, deviceBytes(DType.Q4_0, [rows, cols]));
    strictEqual(dst.byteLength, rows * rowBytes);
    const used = new Uint8Array(dst.byteLength);
    for (let r = 0; r < rows; r++) {
      for (let b = 0; b < cols / 32; b++) {
        const s = r * (cols / 32) * 18 + b * 18;
        const g = r * rowBytes + Math.floor(b / 8) * Q4G_BYTES, k = b % 8;
        deepStrictEqual(dst.subarray(g + 2 * k, g + 2 * k + 2), src.subarray(s, s + 2));
        used.fill(1, g + 2 * k, g + 2 * k + 2);
        for (let v = 0; v < 32; v++) {
          // GGUF: byte j holds value j (low nibble) and j + 16 (high)
          const want = v < 16 ? src[s + 2 + v] & 15 : src[s + 2 + v - 16] >> 4;
          const at = g + 16 + 16 * k + (v >> 1);
          strictEqual((dst[at] >> (4 * (v & 1))) & 15, want, `[${r}, ${32 * b + v}]`);
          used[at] = 1;
        }
      }
    }
    zeroPadding(dst, used, `[${rows}, ${cols}]`);
  }
});

Deno.test("device bytes: Q8_0 and Q4_0 rows padded to whole groups, other types as in the file", () => {
  strictEqual(deviceBytes(DType.Q8_0, [10, 4096]), tensorBytes(DType.Q8_0, [10, 4096]));
  strictEqual(deviceBytes(DType.Q8_0, [10, 32]), 10 * Q8G_BYTES);
  strictEqual(deviceBytes(DType.Q4_0, [2, 96]), 2 * Q4G_BYTES);
  strictEqual(deviceBytes(DType.F16, [3, 100]), tensorBytes(DType.F16, [3, 100]));
  const f16 = new Uint8Array(3 * 100 * 2 + 7);
  strictEqual(toDevice(DType.F16, f16, 3, 100).byteLength, 600); // as in the file, no copy
});

Deno.test("q8Groups and q4Groups refuse data too short for the shape", () => {
  throws(() => q8Groups(new Uint8Array(33), 1, 32), /33 bytes do not hold Q8_0 \[1, 32\]/);
  throws(() => q4Groups(new Uint8Array(17), 1, 32), /17 bytes do not hold Q4_0 \[1, 32\]/);
});
