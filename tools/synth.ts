/**
 * Synthetic random-weight models in llama.cpp's llama/Mistral GGUF layout (optionally Mixtral
 * experts), or in PowerInfer's sparse layout with random predictors (`layout: "powerinfer"`,
 * also with experts: the project's sparse MoE layout), for tests, benchmarks and the demo. Weights are seeded and deterministic, scaled
 * by 1/sqrt(fan_in) so activations stay O(1); norms are F32 near 1. Large files stream to disk
 * one tensor at a time (a 7B F16 model is ~14 GB).
 *
 * CLI:
 * ```sh
 * deno run --allow-write tools/synth.ts --out build/tiny.gguf --dtype f16 --seed 1
 * deno run --allow-write tools/synth.ts --out build/7b.gguf --preset 7b --dtype f16
 * deno run --allow-write tools/synth.ts --out build/sparse.gguf --arch bamboo --layout powerinfer \
 *   --rank 64 --active-fraction 0.1
 * ```
 *
 * @example
 * ```ts
 * import { synthBytes } from "./synth.ts";
 * import { parseGGUF } from "../core/gguf.ts";
 * const file = parseGGUF(synthBytes({ nLayer: 1 }), "synthetic");
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DType, dtypeName, parseDType, rowBytes } from "../core/dtype.ts";
import { GGUFType } from "../core/gguf.ts";
import {
  encodeGGUF,
  encodeHeader,
  meta,
  type MetaEntry,
  type TensorSpec,
  writeGGUF,
} from "../core/gguf_write.ts";
import { type Init, randomTensor, streamSeed } from "./_synth_fill.ts";
import {
  checkSparse,
  planFFN,
  scaled,
  sparseMetadata,
  type SparseSynthOptions,
} from "./_synth_sparse.ts";
import { llamaVocab } from "./_synth_vocab.ts";

/** Shape and storage of a synthetic model; every field has a small default. */
export interface SynthOptions extends SparseSynthOptions {
  readonly arch?: "llama" | "bamboo";
  readonly nEmbd?: number;
  readonly nFF?: number;
  readonly nLayer?: number;
  readonly nHead?: number;
  readonly nKV?: number;
  readonly nCtx?: number;
  readonly nVocab?: number;
  readonly ropeBase?: number;
  readonly eps?: number;
  /** Matrix and token_embd storage type; norms (and expert gates) are always F32. */
  readonly dtype?: DType;
  readonly seed?: number;
  /** Omit output.weight: logits reuse token_embd. */
  readonly tied?: boolean;
  /** Experts per layer (Mixtral; or bamboo with layout "powerinfer"); 0 means a dense FFN. */
  readonly nExpert?: number;
  readonly nExpertUsed?: number;
  readonly magic?: "GGUF" | "PWRI";
  /** Power-of-two data alignment; written as `general.alignment` when given. */
  readonly alignment?: number;
  /** Called as bytes reach the file (synthModel only). */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** A tiny default model: fast to build, big enough to exercise every tensor. */
export const TINY: Required<
  Omit<SynthOptions, "onProgress" | "alignment" | "magic" | keyof SparseSynthOptions>
> = {
  arch: "llama",
  nEmbd: 64,
  nFF: 128,
  nLayer: 2,
  nHead: 4,
  nKV: 2,
  nCtx: 128,
  nVocab: 512,
  ropeBase: 10000,
  eps: 1e-5,
  dtype: DType.F16,
  seed: 1,
  tied: false,
  nExpert: 0,
  nExpertUsed: 0,
};

/** Mistral-7B's shape (the TurboSparse-Mistral base): ~14 GB in F16. */
export const PRESET_7B: SynthOptions = {
  nEmbd: 4096,
  nFF: 14336,
  nLayer: 32,
  nHead: 32,
  nKV: 8,
  nCtx: 4096,
  nVocab: 32000,
};

/** llama.cpp's `general.file_type` for a model whose matrices are `dtype`. */
const FILE_TYPE: Record<number, number> = {
  [DType.F32]: 0,
  [DType.F16]: 1,
  [DType.Q4_0]: 2,
  [DType.Q8_0]: 7,
  [DType.BF16]: 32,
};

type Resolved = typeof TINY & Pick<SynthOptions, "magic" | "alignment"> & SparseSynthOptions;

/** Defaults filled in and every size checked; throws naming the option. */
function resolve(o: SynthOptions): Resolved {
  const pwri = o.layout === "powerinfer" ? { magic: "PWRI" as const } : {};
  const r: Resolved = { ...TINY, ...pwri, ...withoutUndefined(o) };
  const ints = ["nEmbd", "nFF", "nLayer", "nHead", "nKV", "nCtx", "nVocab"] as const;
  for (const k of ints) {
    if (!Number.isInteger(r[k]) || r[k] < 1) {
      throw new Error(`synth: ${k} must be a positive integer, got ${r[k]}`);
    }
  }
  if (r.nEmbd % r.nHead !== 0) {
    throw new Error(`synth: nEmbd ${r.nEmbd} is not a multiple of nHead ${r.nHead}`);
  }
  if (r.nHead % r.nKV !== 0) {
    throw new Error(`synth: nHead ${r.nHead} is not a multiple of nKV ${r.nKV}`);
  }
  if ((r.nEmbd / r.nHead) % 2 !== 0) {
    throw new Error(`synth: head dim ${r.nEmbd / r.nHead} must be even for RoPE`);
  }
  if (FILE_TYPE[r.dtype] === undefined) {
    throw new Error(
      `synth: dtype ${dtypeName(r.dtype)} cannot hold weights (use F32, F16, BF16, Q8_0, Q4_0)`,
    );
  }
  for (const k of ["nEmbd", "nFF"] as const) {
    try {
      rowBytes(r.dtype, r[k]);
    } catch (e) {
      throw new Error(
        `synth: ${k} ${r[k]} does not fit ${dtypeName(r.dtype)}: ${(e as Error).message}`,
      );
    }
  }
  if (r.nExpert < 0 || !Number.isInteger(r.nExpert)) throw new Error(`synth: nExpert must be >= 0`);
  if (r.layout === "powerinfer") checkSparse(r);
  if (r.nExpert > 0) {
    if (r.arch !== "llama" && r.layout !== "powerinfer") {
      throw new Error(`synth: experts need arch "llama" or layout "powerinfer", got "${r.arch}"`);
    }
    if (r.nExpertUsed < 1 || r.nExpertUsed > r.nExpert) {
      throw new Error(
        `synth: nExpertUsed must be in 1..nExpert (${r.nExpert}), got ${r.nExpertUsed}`,
      );
    }
  }
  return r;
}

function withoutUndefined(o: SynthOptions): Partial<Resolved> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && k !== "onProgress") out[k] = v;
  return out as Partial<Resolved>;
}

/** Metadata exactly as llama.cpp's converters write it for llama/Mistral (and Mixtral). */
function metadata(r: Resolved): MetaEntry[] {
  const a = r.arch;
  const headDim = r.nEmbd / r.nHead;
  const vocab = llamaVocab(r.nVocab);
  const entries: MetaEntry[] = [
    meta.str("general.architecture", a),
    meta.str("general.name", `synthetic-${a}-${r.nEmbd}x${r.nLayer}`),
    meta.u32("general.file_type", FILE_TYPE[r.dtype]),
  ];
  if (r.alignment !== undefined) entries.push(meta.u32("general.alignment", r.alignment));
  entries.push(
    meta.u32(`${a}.context_length`, r.nCtx),
    meta.u32(`${a}.embedding_length`, r.nEmbd),
    meta.u32(`${a}.feed_forward_length`, r.nFF),
    meta.u32(`${a}.block_count`, r.nLayer),
    meta.u32(`${a}.attention.head_count`, r.nHead),
    meta.u32(`${a}.attention.head_count_kv`, r.nKV),
    meta.f32(`${a}.rope.freq_base`, r.ropeBase),
    meta.u32(`${a}.rope.dimension_count`, headDim),
    meta.f32(`${a}.attention.layer_norm_rms_epsilon`, r.eps),
    meta.u32(`${a}.vocab_size`, r.nVocab),
  );
  if (r.nExpert > 0) {
    entries.push(meta.u32(`${a}.expert_count`, r.nExpert));
    entries.push(meta.u32(`${a}.expert_used_count`, r.nExpertUsed));
  }
  entries.push(...sparseMetadata(r));
  entries.push(
    meta.str("tokenizer.ggml.model", "llama"),
    meta.arr("tokenizer.ggml.tokens", GGUFType.STRING, vocab.tokens),
    meta.arr("tokenizer.ggml.scores", GGUFType.FLOAT32, vocab.scores),
    meta.arr("tokenizer.ggml.token_type", GGUFType.INT32, vocab.types),
    meta.u32("tokenizer.ggml.bos_token_id", 1),
    meta.u32("tokenizer.ggml.eos_token_id", 2),
    meta.u32("tokenizer.ggml.unknown_token_id", 0),
    meta.bool("tokenizer.ggml.add_bos_token", true),
    meta.bool("tokenizer.ggml.add_eos_token", false),
  );
  return entries;
}

/** A tensor to generate: its spec and value distribution. */
interface Planned {
  readonly spec: TensorSpec;
  readonly init: Init;
}

const NORM: Init = { center: 1, halfWidth: 0.1 };

/** Every tensor in file order, with llama.cpp's names and shapes (outermost first). */
function plan(r: Resolved): Planned[] {
  const { nEmbd, nVocab, dtype } = r;
  const qDim = r.nHead * (nEmbd / r.nHead);
  const kvDim = r.nKV * (nEmbd / r.nHead);
  const out: Planned[] = [];
  const add = (name: string, type: DType, shape: number[], init: Init) =>
    out.push({ spec: { name, type, shape }, init });

  add("token_embd.weight", dtype, [nVocab, nEmbd], scaled(nEmbd));
  for (let l = 0; l < r.nLayer; l++) {
    const b = `blk.${l}`;
    add(`${b}.attn_norm.weight`, DType.F32, [nEmbd], NORM);
    add(`${b}.attn_q.weight`, dtype, [qDim, nEmbd], scaled(nEmbd));
    add(`${b}.attn_k.weight`, dtype, [kvDim, nEmbd], scaled(nEmbd));
    add(`${b}.attn_v.weight`, dtype, [kvDim, nEmbd], scaled(nEmbd));
    add(`${b}.attn_output.weight`, dtype, [nEmbd, qDim], scaled(qDim));
    add(`${b}.ffn_norm.weight`, DType.F32, [nEmbd], NORM);
    planFFN(r, l, add);
  }
  add("output_norm.weight", DType.F32, [nEmbd], NORM);
  if (!r.tied) add("output.weight", dtype, [nVocab, nEmbd], scaled(nEmbd));
  return out;
}

/** Data of planned tensor `index`: seeded by (seed, index), so any order gives equal bytes. */
function produce(r: Resolved, p: Planned, index: number): Uint8Array {
  return randomTensor(p.spec.type, p.spec.shape, p.init, streamSeed(r.seed, index));
}

/**
 * A whole synthetic model in memory (small models: tests, fixtures).
 * @param o model options; unset fields take `TINY`'s values
 */
export function synthBytes(o: SynthOptions = {}): Uint8Array {
  const r = resolve(o);
  const planned = plan(r);
  const tensors = planned.map((p, i) => ({ spec: p.spec, data: produce(r, p, i) }));
  return encodeGGUF(metadata(r), tensors, { magic: r.magic, alignment: r.alignment });
}

/**
 * Stream a synthetic model to `path`, one tensor in memory at a time. Bytes equal
 * `synthBytes(o)` for the same options.
 * @param path file to create
 * @param o model options; `onProgress` reports bytes written
 */
export async function synthModel(path: string, o: SynthOptions = {}): Promise<void> {
  const r = resolve(o);
  const planned = plan(r);
  await writeGGUF(
    path,
    metadata(r),
    planned.map((p) => p.spec),
    (_spec, i) => produce(r, planned[i], i),
    { magic: r.magic, alignment: r.alignment },
    o.onProgress,
  );
}

/**
 * Regenerate in place the tensors of `path` (written by `synthModel`) whose names match
 * `names`, from `o`: a 15 GB file takes another `activeFraction` by rewriting only its fc2
 * predictors. The file's header must equal the one `o` gives (same shapes, types and metadata).
 * @param path a file `synthModel` wrote
 * @param o the options, with only what changes the matched tensors' values changed
 * @param names which tensors to rewrite
 * @returns bytes rewritten
 */
export async function rewriteTensors(
  path: string,
  o: SynthOptions,
  names: RegExp,
): Promise<number> {
  const r = resolve(o);
  const planned = plan(r);
  const layout = encodeHeader(metadata(r), planned.map((p) => p.spec), {
    magic: r.magic,
    alignment: r.alignment,
  });
  const file = await Deno.open(path, { read: true, write: true });
  try {
    const head = new Uint8Array(layout.header.length);
    let got = 0;
    while (got < head.length) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (got !== head.length || !head.every((b, i) => b === layout.header[i])) {
      throw new Error(`synth: ${path} was not written with these options (its header differs)`);
    }
    let bytes = 0;
    for (let i = 0; i < planned.length; i++) {
      if (!names.test(planned[i].spec.name)) continue;
      const data = produce(r, planned[i], i);
      await file.seek(layout.header.length + layout.offsets[i], Deno.SeekMode.Start);
      for (let done = 0; done < data.length;) done += await file.write(data.subarray(done));
      bytes += data.length;
    }
    return bytes;
  } finally {
    file.close();
  }
}

/**
 * The predictors' fc2 tensors, of a dense layer (`blk.3.fc2.weight`) or of each expert
 * (`blk.3.fc2.5.weight`): what `rewriteTensors` regenerates for another `activeFraction`.
 */
export const FC2_TENSORS = /\.fc2(\.\d+)?\.weight$/;

/** The CLI: parse flags, write the file, print progress and speed to stderr. */
async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      preset: { type: "string" },
      arch: { type: "string" },
      dtype: { type: "string" },
      "n-embd": { type: "string" },
      "n-ff": { type: "string" },
      "n-layer": { type: "string" },
      "n-head": { type: "string" },
      "n-kv": { type: "string" },
      "n-ctx": { type: "string" },
      "n-vocab": { type: "string" },
      experts: { type: "string" },
      "experts-used": { type: "string" },
      seed: { type: "string" },
      magic: { type: "string" },
      layout: { type: "string" },
      rank: { type: "string" },
      "active-fraction": { type: "string" },
      tied: { type: "boolean" },
      quiet: { type: "boolean" },
    },
  });
  if (!values.out) throw new Error("synth: --out <file.gguf> is required");
  const num = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`synth: --${flag} expects a number, got "${v}"`);
    return n;
  };
  if (values.preset !== undefined && values.preset !== "7b" && values.preset !== "tiny") {
    throw new Error(`synth: --preset must be "tiny" or "7b", got "${values.preset}"`);
  }
  if (values.arch !== undefined && values.arch !== "llama" && values.arch !== "bamboo") {
    throw new Error(`synth: --arch must be "llama" or "bamboo", got "${values.arch}"`);
  }
  if (values.magic !== undefined && values.magic !== "GGUF" && values.magic !== "PWRI") {
    throw new Error(`synth: --magic must be "GGUF" or "PWRI", got "${values.magic}"`);
  }
  if (values.layout !== undefined && values.layout !== "dense" && values.layout !== "powerinfer") {
    throw new Error(`synth: --layout must be "dense" or "powerinfer", got "${values.layout}"`);
  }
  const start = performance.now();
  let lastLog = 0;
  const o: SynthOptions = {
    ...(values.preset === "7b" ? PRESET_7B : {}),
    ...withoutUndefined({
      arch: values.arch as SynthOptions["arch"],
      dtype: values.dtype ? parseDType(values.dtype) : undefined,
      nEmbd: num("n-embd", values["n-embd"]),
      nFF: num("n-ff", values["n-ff"]),
      nLayer: num("n-layer", values["n-layer"]),
      nHead: num("n-head", values["n-head"]),
      nKV: num("n-kv", values["n-kv"]),
      nCtx: num("n-ctx", values["n-ctx"]),
      nVocab: num("n-vocab", values["n-vocab"]),
      nExpert: num("experts", values.experts),
      nExpertUsed: num("experts-used", values["experts-used"]),
      seed: num("seed", values.seed),
      magic: values.magic as SynthOptions["magic"],
      layout: values.layout as SynthOptions["layout"],
      rank: num("rank", values.rank),
      activeFraction: num("active-fraction", values["active-fraction"]),
      tied: values.tied,
    }),
    onProgress: values.quiet ? undefined : (done, total) => {
      const now = performance.now();
      if (now - lastLog < 1000 && done < total) return; // at most one line a second
      lastLog = now;
      const rate = done / 1e6 / ((now - start) / 1000);
      const pct = ((100 * done) / total).toFixed(1);
      console.error(`synth: ${pct}% of ${(total / 1e6).toFixed(0)} MB, ${rate.toFixed(0)} MB/s`);
    },
  };
  await synthModel(values.out, o);
  const secs = (performance.now() - start) / 1000;
  const size = (await Deno.stat(values.out)).size;
  console.error(
    `synth: wrote ${values.out}: ${(size / 1e6).toFixed(1)} MB in ${secs.toFixed(1)} s`,
  );
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
