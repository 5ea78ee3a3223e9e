/**
 * Layout conversion between llama.cpp's dense GGUF and PowerInfer's sparse layout (magic PWRI,
 * `ffn_down` stored transposed as `ffn_down_t`, predictors `fc1`/`fc2`), both ways. A plan
 * lists the output's metadata and tensors; each tensor's bytes are produced on demand, so
 * `writeGGUF` streams a large model one tensor at a time.
 *
 * Transposing F32, F16 and BF16 is exact; Q8_0 and Q4_0 are dequantised, transposed and
 * re-quantised (their blocks run along the other dimension), which rounds once more. The
 * predictors can be re-encoded on the way (`predictorType`, e.g. F16 → Q8_0: half the bytes
 * a sparse decode step reads for them).
 *
 * @module
 */

import { blockOf, DType, dtypeName } from "./dtype.ts";
import { type GGUFFile, GGUFType } from "./gguf.ts";
import { meta, type MetaEntry, type TensorSpec } from "./gguf_write.ts";
import { dequantize, quantize, requantize } from "./quant.ts";
import { numel, type Tensor, tensorBytes } from "./tensor.ts";
import { CATS_THRESHOLDS, POWERINFER_THRESHOLD, SPARSE_THRESHOLDS } from "./weights.ts";

/** Where predictor tensors come from: a GGUF file or a safetensors file (same tensor names). */
export interface TensorSource {
  has(name: string): boolean;
  get(name: string): Tensor;
}

/** The output of a conversion, ready for `writeGGUF`/`encodeGGUF`. */
export interface ConvertPlan {
  readonly magic: "GGUF" | "PWRI";
  readonly entries: MetaEntry[];
  readonly specs: TensorSpec[];
  /** The bytes of tensor `index` of `specs`. */
  produce(index: number): Uint8Array;
}

/** Options of `toPowerInfer`. */
export interface ToPowerInferOptions {
  /** Predictors `blk.N.fc1[.E].weight`, `blk.N.fc2[.E].weight` to attach. */
  readonly predictors?: TensorSource;
  /** `turbosparse.sparse_thresholds`, one per layer (× expert). */
  readonly thresholds?: readonly number[];
  /** `powerinfer.sparse_threshold`. */
  readonly threshold?: number;
  /** `turbosparse.cats_thresholds`, one per layer (× expert). */
  readonly catsThresholds?: readonly number[];
  /** Re-encode every predictor tensor (attached or already in the file) as this type. */
  readonly predictorType?: DType;
}

/** Predictor tensors: `blk.N.fc1[.E].weight`, `blk.N.fc2[.E].weight`. */
export const PREDICTOR = /\.fc[12](\.\d+)?\.weight$/;

/** Keys the conversions set themselves; copied keys with these names are dropped. */
const SPARSE_KEYS = [POWERINFER_THRESHOLD, SPARSE_THRESHOLDS, CATS_THRESHOLDS];
const ACTIVATION = "turbosparse.ffn_activation";

/** `ffn_down` names and their transposed twins, dense first. */
const DOWN = [
  /^(blk\.\d+\.ffn_down)(_exps)?(\.\d+)?\.weight$/,
  /^(blk\.\d+\.ffn_down)_t(_exps)?(\.\d+)?\.weight$/,
];

/**
 * Plan the PowerInfer layout of `file`: every down projection transposed, predictors and
 * thresholds attached when given, everything else copied.
 * @param glu the model's FFN activation, written explicitly (PWRI changes llama's default)
 */
export function toPowerInfer(
  file: GGUFFile,
  glu: string,
  o: ToPowerInferOptions = {},
): ConvertPlan {
  const entries = copyMetadata(file, [...SPARSE_KEYS, ACTIVATION]);
  entries.push(meta.str(ACTIVATION, glu));
  const threshold = o.threshold ?? numberKey(file, POWERINFER_THRESHOLD);
  if (threshold !== undefined) entries.push(meta.f32(POWERINFER_THRESHOLD, threshold));
  const thresholds = o.thresholds ?? numbersKey(file, SPARSE_THRESHOLDS);
  if (thresholds) entries.push(meta.arr(SPARSE_THRESHOLDS, GGUFType.FLOAT32, [...thresholds]));
  const cats = o.catsThresholds ?? numbersKey(file, CATS_THRESHOLDS);
  if (cats) entries.push(meta.arr(CATS_THRESHOLDS, GGUFType.FLOAT32, [...cats]));
  const out: { spec: TensorSpec; make: () => Uint8Array }[] = [];
  for (const t of file.tensors.values()) {
    const m = DOWN[0].exec(t.name);
    if (m) {
      const name = `${m[1]}_t${m[2] ?? ""}${m[3] ?? ""}.weight`;
      out.push({ spec: transposedSpec(t, name), make: () => transpose(t) });
    } else if (PREDICTOR.test(t.name)) {
      if (!o.predictors) out.push(recoded(t.name, t, o.predictorType));
    } else {
      out.push({ spec: specOf(t), make: () => t.data });
    }
    const layer = /^blk\.(\d+)\.ffn_norm\.weight$/.exec(t.name);
    if (layer && o.predictors) {
      out.push(...predictorTensors(file, o.predictors, +layer[1], o.predictorType));
    }
  }
  return plan("PWRI", entries, out);
}

/** Plan the dense layout of a PowerInfer file: down projections transposed back, no predictors. */
export function toDense(file: GGUFFile, glu: string): ConvertPlan {
  const entries = copyMetadata(file, [...SPARSE_KEYS, ACTIVATION]);
  entries.push(meta.str(ACTIVATION, glu));
  const out: { spec: TensorSpec; make: () => Uint8Array }[] = [];
  for (const t of file.tensors.values()) {
    if (PREDICTOR.test(t.name)) continue;
    const m = DOWN[1].exec(t.name);
    if (m) {
      const name = `${m[1]}${m[2] ?? ""}${m[3] ?? ""}.weight`;
      out.push({ spec: transposedSpec(t, name), make: () => transpose(t) });
    } else {
      out.push({ spec: specOf(t), make: () => t.data });
    }
  }
  return plan("GGUF", entries, out);
}

function plan(
  magic: "GGUF" | "PWRI",
  entries: MetaEntry[],
  out: { spec: TensorSpec; make: () => Uint8Array }[],
): ConvertPlan {
  return { magic, entries, specs: out.map((x) => x.spec), produce: (i) => out[i].make() };
}

/** The predictor tensors of layer `l` (one pair, or one per expert) from `src`. */
function predictorTensors(file: GGUFFile, src: TensorSource, l: number, type?: DType) {
  const arch = file.metadata.get("general.architecture");
  const nExpert = Number(file.metadata.get(`${arch}.expert_count`) ?? 0);
  const out: { spec: TensorSpec; make: () => Uint8Array }[] = [];
  for (let e = 0; e < Math.max(nExpert, 1); e++) {
    for (const fc of ["fc1", "fc2"]) {
      const name = `blk.${l}.${fc}${nExpert > 0 ? `.${e}` : ""}.weight`;
      if (!src.has(name)) throw new Error(`predictor source has no tensor "${name}"`);
      out.push(recoded(name, src.get(name), type));
    }
  }
  return out;
}

/** The weight types a predictor may be re-encoded as. */
const PREDICTOR_TYPES: readonly DType[] = [
  DType.F32,
  DType.F16,
  DType.BF16,
  DType.Q8_0,
  DType.Q4_0,
];

/**
 * Tensor `t` written as `name`, re-encoded as `type` when given and different (dequantised
 * to f32, then encoded; rows must hold whole blocks of `type`).
 */
function recoded(name: string, t: Tensor, type?: DType) {
  if (type === undefined || type === t.type) {
    return { spec: { name, type: t.type, shape: t.shape }, make: () => t.data };
  }
  if (!PREDICTOR_TYPES.includes(type)) {
    throw new Error(
      `predictor type ${dtypeName(type)} is not a weight type: expected one of ` +
        PREDICTOR_TYPES.map(dtypeName).join(", "),
    );
  }
  const cols = t.shape[t.shape.length - 1] ?? 1, { elems } = blockOf(type);
  if (cols % elems !== 0) {
    throw new Error(
      `${name}: ${dtypeName(type)} needs rows of whole ${elems}-value blocks, ` +
        `the rows have ${cols} values`,
    );
  }
  return {
    spec: { name, type, shape: t.shape },
    make: () => requantize(t, type),
  };
}

function specOf(t: Tensor): TensorSpec {
  return { name: t.name, type: t.type, shape: t.shape };
}

function transposedSpec(t: Tensor, name: string): TensorSpec {
  const s = [...t.shape];
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
  return { name, type: t.type, shape: s };
}

/**
 * The bytes of `t` with its last two dimensions swapped (per expert for 3-D tensors).
 * Exact for float types; quantised types round again after the transpose.
 */
export function transpose(t: Tensor): Uint8Array {
  const rows = t.shape[t.shape.length - 2], cols = t.shape[t.shape.length - 1];
  const mats = numel(t.shape) / (rows * cols);
  const out = new Uint8Array(tensorBytes(t.type, t.shape));
  const matBytes = out.length / mats;
  for (let m = 0; m < mats; m++) {
    const src = t.data.subarray(m * matBytes, (m + 1) * matBytes);
    out.set(transposeMatrix(t.type, src, rows, cols), m * matBytes);
  }
  return out;
}

function transposeMatrix(type: DType, src: Uint8Array, rows: number, cols: number): Uint8Array {
  if (type === DType.F32 || type === DType.F16 || type === DType.BF16) {
    const size = type === DType.F32 ? 4 : 2;
    const out = new Uint8Array(src.length);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const from = (r * cols + c) * size, to = (c * rows + r) * size;
        for (let b = 0; b < size; b++) out[to + b] = src[from + b];
      }
    }
    return out;
  }
  if (type !== DType.Q8_0 && type !== DType.Q4_0) {
    throw new Error(`cannot transpose ${dtypeName(type)} tensors`);
  }
  const f = new Float32Array(rows * cols);
  dequantize(type, src, 0, rows * cols, f);
  const tr = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) tr[c * rows + r] = f[r * cols + c];
  return quantize(type, tr);
}

/** Every metadata entry of `file` except `drop`, with its GGUF type. */
function copyMetadata(file: GGUFFile, drop: readonly string[]): MetaEntry[] {
  const out: MetaEntry[] = [];
  for (const [key, value] of file.metadata) {
    if (drop.includes(key)) continue;
    const type = file.metadataTypes.get(key)!;
    if (type !== GGUFType.ARRAY) {
      out.push({ key, type, value });
      continue;
    }
    const arrayType = file.metadataArrayTypes?.get(key);
    if (arrayType === undefined || arrayType === GGUFType.ARRAY) {
      throw new Error(`metadata "${key}": nested arrays cannot be copied`);
    }
    out.push({ key, type, value, arrayType });
  }
  return out;
}

function numberKey(file: GGUFFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  return typeof v === "number" ? v : undefined;
}

function numbersKey(file: GGUFFile, key: string): number[] | undefined {
  const v = file.metadata.get(key);
  return Array.isArray(v) ? v as number[] : undefined;
}
