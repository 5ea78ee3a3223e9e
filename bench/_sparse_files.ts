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
import { synthModel, type SynthOptions } from "../tools/synth.ts";

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
