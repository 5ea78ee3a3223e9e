/**
 * `turbosparse convert`: a dense GGUF to PowerInfer's sparse layout (down projections
 * transposed, predictors attached from a GGUF or safetensors file, thresholds set) and back;
 * `--calibrate-cats` also calibrates the training-free threshold predictor on sample text.
 *
 *   main.ts convert --model dense.gguf --out sparse.gguf --predictors preds.safetensors
 *   main.ts convert --model sparse.gguf --out dense.gguf --to dense
 *   main.ts convert --model dense.gguf --out cats.gguf --calibrate-cats --cats-sparsity 0.5
 *   main.ts convert --model sparse.gguf --out sparse-q8p.gguf --to powerinfer --predictor-type q8_0
 *
 * @module
 */

import { loadModel } from "../../mod.ts";
import { parseDType } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { writeGGUF } from "../../core/gguf_write.ts";
import { parseSafetensors } from "../../core/safetensors.ts";
import { calibrateCats } from "../../core/sparse_calibrate.ts";
import {
  type ConvertPlan,
  type TensorSource,
  toDense,
  toPowerInfer,
  type ToPowerInferOptions,
} from "../../core/sparse_convert.ts";
import { type Flags, num, parse, str, usage } from "./args.ts";
import { progressBar } from "./progress.ts";

/** Flags of `convert`. */
export const CONVERT_FLAGS: Flags = {
  model: { type: "string", short: "m", help: "input GGUF model" },
  out: { type: "string", short: "o", help: "output GGUF file" },
  to: {
    type: "string",
    help: "powerinfer | dense (default: the other layout; powerinfer with the predictor flags)",
  },
  predictors: { type: "string", help: "fc1/fc2 predictors from a .gguf or .safetensors file" },
  threshold: { type: "string", help: "powerinfer.sparse_threshold for every predictor" },
  "predictor-type": {
    type: "string",
    help: "re-encode the predictors as f32 | f16 | bf16 | q8_0 | q4_0 (default: as they are)",
  },
  "calibrate-cats": { type: "boolean", help: "calibrate the threshold predictor (cats)" },
  "cats-sparsity": { type: "string", help: "fraction of neurons cats skips (default 0.5)" },
  calibration: { type: "string", help: "text file to calibrate on (default: a built-in sample)" },
  backend: { type: "string", short: "b", help: "backend for calibration (default reference)" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Calibration text when none is given: varied English prose. */
const SAMPLE_TEXT = [
  "It is a truth universally acknowledged, that a single man in possession of a good fortune, " +
  "must be in want of a wife.",
  "The quick brown fox jumps over the lazy dog while the farmer counts his sheep at dusk.",
  "In 1969 two astronauts walked on the Moon; millions watched the grainy pictures at home.",
  "To bake bread, mix flour, water, salt and yeast, knead the dough and let it rise twice.",
];

/** Run `convert` with command-line arguments. */
export async function convertCommand(args: string[]): Promise<void> {
  const p = parse(args, CONVERT_FLAGS);
  if (p.values.help) {
    console.log(
      usage(
        "main.ts convert --model IN --out OUT [options]",
        "Convert layouts; attach, re-encode or calibrate predictors.",
        CONVERT_FLAGS,
      ),
    );
    return;
  }
  const input = str(p, "model") ?? p.positionals[0];
  const out = str(p, "out") ?? p.positionals[1];
  if (!input || !out) throw new Error("convert needs --model IN and --out OUT (see --help)");
  const to = str(p, "to");
  if (to !== undefined && to !== "powerinfer" && to !== "dense") {
    throw new Error(`--to must be "powerinfer" or "dense", got "${to}"`);
  }
  const cats = p.values["calibrate-cats"] === true;
  const predType = str(p, "predictor-type");
  const sparseOnly = cats || str(p, "predictors") !== undefined || predType !== undefined;
  const model = await loadModel(input, { backend: str(p, "backend") ?? "reference" });
  try {
    const file = model.file;
    const sparseIn = [...file.tensors.keys()].some((n) => n.includes("ffn_down_t"));
    // the other layout, unless a flag only the sparse layout has asks for that one
    const target = to ?? (sparseIn && !sparseOnly ? "dense" : "powerinfer");
    if (target === "dense" && sparseOnly) {
      throw new Error(
        "--predictors, --predictor-type and --calibrate-cats need the powerinfer layout",
      );
    }
    let plan: ConvertPlan;
    if (target === "dense") {
      plan = toDense(file, model.config.glu);
    } else {
      const found = await predictorOptions(str(p, "predictors"));
      const opts = {
        ...found,
        threshold: num(p, "threshold") ?? found.threshold,
        predictorType: predType === undefined ? undefined : parseDType(predType),
      };
      const catsThresholds = cats
        ? Array.from(
          calibrateCats(model, await calibrationText(str(p, "calibration")), sparsity(p)),
        )
        : undefined;
      plan = toPowerInfer(file, model.config.glu, { ...opts, catsThresholds });
    }
    await write(out, plan);
    console.error(`convert: wrote ${out} (${target} layout, ${plan.specs.length} tensors)`);
  } finally {
    model.close();
  }
}

function sparsity(p: ReturnType<typeof parse>): number {
  const s = num(p, "cats-sparsity") ?? 0.5;
  if (!(s >= 0 && s < 1)) throw new Error(`--cats-sparsity must be in [0, 1), got ${s}`);
  return s;
}

async function calibrationText(path: string | undefined): Promise<string[]> {
  if (!path) return SAMPLE_TEXT;
  const text = await Deno.readTextFile(path);
  return text.split(/\n\s*\n/).filter((t) => t.trim().length > 0);
}

/** Predictors (and their thresholds) from a .gguf or .safetensors file. */
export async function predictorOptions(path: string | undefined): Promise<ToPowerInferOptions> {
  if (!path) return {};
  const bytes = await Deno.readFile(path);
  if (path.endsWith(".safetensors")) {
    const st = parseSafetensors(bytes, path);
    const meta = st.metadata.turbosparse ? JSON.parse(st.metadata.turbosparse) : {};
    const thresholds = Array.isArray(meta.sparse_thresholds) ? meta.sparse_thresholds : undefined;
    return { predictors: st, thresholds };
  }
  const g = parseGGUF(bytes, path);
  const source: TensorSource = {
    has: (name) => g.tensors.has(name),
    get: (name) => g.tensors.get(name)!,
  };
  const list = g.metadata.get("turbosparse.sparse_thresholds");
  const one = g.metadata.get("powerinfer.sparse_threshold");
  return {
    predictors: source,
    thresholds: Array.isArray(list) ? list as number[] : undefined,
    threshold: typeof one === "number" ? one : undefined,
  };
}

/** Stream the plan to `path` with a progress bar. */
export async function write(path: string, plan: ConvertPlan): Promise<void> {
  const bar = progressBar(`writing ${path}`);
  try {
    await writeGGUF(
      path,
      plan.entries,
      plan.specs,
      (_spec, i) => plan.produce(i),
      { magic: plan.magic },
      bar.update,
    );
  } finally {
    bar.end();
  }
}
