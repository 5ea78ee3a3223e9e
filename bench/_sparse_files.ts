/**
 * Benchmark model files shared by bench/sparse_decode.ts and bench/sparse_moe_decode.ts:
 * synthesised on first use, mapped, and the weight bytes a decode step reads outside the FFNs.
 *
 * @module
 */

import { rowBytes } from "../core/dtype.ts";
import { type GGUFFile, parseGGUF } from "../core/gguf.ts";
import { tensorBytes } from "../core/tensor.ts";
import { type OpenedFile, openFile } from "../plugins/mmap/mod.ts";
import { FC2_TENSORS, rewriteTensors, synthModel, type SynthOptions } from "../tools/synth.ts";

/** The file at `path` mapped, written by the synthesiser first when missing (atomically). */
export async function ensure(path: string, o: SynthOptions): Promise<[GGUFFile, OpenedFile]> {
  try {
    Deno.statSync(path);
  } catch {
    await Deno.mkdir("build/bench", { recursive: true });
    console.error(`writing ${path}…`);
    await synthModel(`${path}.part`, o);
    await Deno.rename(`${path}.part`, path);
  }
  const f = await openFile(path);
  return [parseGGUF(f.bytes, path), f];
}

/**
 * `ensure` for a sparse file whose active fraction changes from run to run: an existing file
 * gets its fc2 tensors rewritten in place for `o` (the rest of the file is the same), a missing
 * one is written whole.
 */
export async function ensureActive(path: string, o: SynthOptions): Promise<[GGUFFile, OpenedFile]> {
  try {
    Deno.statSync(path);
    const t0 = performance.now();
    const n = await rewriteTensors(path, o, FC2_TENSORS);
    const s = (performance.now() - t0) / 1000;
    console.error(
      `rewrote fc2 of ${path} for ${o.activeFraction}: ${(n / 1e6).toFixed(0)} MB in ${
        s.toFixed(1)
      } s`,
    );
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return await ensure(path, o);
}

/**
 * Weight bytes a decode step reads outside the FFNs and predictors: attention, norms, the
 * output matrix, a router, and one embedding row.
 */
export function fixedBytes(file: GGUFFile): number {
  let bytes = 0;
  for (const t of file.tensors.values()) {
    if (/ffn_(gate|up|down)(_t)?(_exps)?\.|\.fc[12]\./.test(t.name)) continue;
    bytes += t.name === "token_embd.weight"
      ? rowBytes(t.type, t.shape[1])
      : tensorBytes(t.type, t.shape);
  }
  return bytes;
}
