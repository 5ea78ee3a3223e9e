/**
 * `turbosparse inspect`: what a model file holds and which backend would run it.
 *
 * @module
 */

import { configFromGGUF } from "../../core/config.ts";
import { dtypeName } from "../../core/dtype.ts";
import { parseGGUF } from "../../core/gguf.ts";
import { tensorBytes } from "../../core/tensor.ts";
import { tokenizerFromMetadata } from "../../core/tokenizer.ts";
import { openFile, probeAll } from "../../mod.ts";
import { type Flags, parse, str, usage } from "./args.ts";

const FLAGS: Flags = {
  model: { type: "string", short: "m", help: "GGUF model file" },
  metadata: { type: "boolean", help: "also list every metadata key" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Run `inspect` with command-line arguments. */
export async function inspectCommand(args: string[]): Promise<void> {
  const p = parse(args, FLAGS);
  if (p.values.help) {
    console.log(usage("main.ts inspect --model FILE", "Describe a model file.", FLAGS));
    return;
  }
  const path = str(p, "model") ?? p.positionals[0];
  if (!path) throw new Error("inspect needs --model FILE (see --help)");
  const file = await openFile(path);
  try {
    const gguf = parseGGUF(file.bytes, path);
    const cfg = configFromGGUF(gguf, path);
    const tok = tokenizerFromMetadata(gguf.metadata, path);
    const out: string[] = [];
    out.push(
      `file          ${path} (${mb(file.bytes.byteLength)}, ${
        file.mapped ? "memory-mapped" : "read into memory"
      })`,
    );
    out.push(
      `format        ${gguf.magic} v${gguf.version}${
        gguf.magic === "PWRI" ? " (PowerInfer sparse layout)" : ""
      }, alignment ${gguf.alignment}`,
    );
    out.push(
      `architecture  ${cfg.arch} "${cfg.name}", FFN ${cfg.glu}${
        cfg.nExpert ? `, ${cfg.nExpert} experts (top ${cfg.nExpertUsed})` : ""
      }`,
    );
    out.push(
      `shape         n_embd ${cfg.nEmbd}, n_ff ${cfg.nFF}, layers ${cfg.nLayer}, heads ${cfg.nHead} (kv ${cfg.nKV}, dim ${cfg.headDim})`,
    );
    out.push(
      `context       ${cfg.nCtx}, rope base ${cfg.ropeBase} dim ${cfg.ropeDim}, rms eps ${cfg.eps}`,
    );
    out.push(
      `tokenizer     ${tok.kind}, ${tok.vocabSize} tokens, bos ${tok.bos} ${
        JSON.stringify(tok.piece(tok.bos))
      }, eos ${tok.eos} ${JSON.stringify(tok.piece(tok.eos))}, add_bos ${tok.addBos}`,
    );
    out.push("", "backends");
    for (const { name, probe } of await probeAll()) {
      out.push(`  ${name.padEnd(12)} score ${String(probe.score).padStart(3)}  ${probe.reason}`);
    }
    if (p.values.metadata) {
      out.push("", "metadata");
      for (const [k, v] of gguf.metadata) out.push(`  ${k.padEnd(44)} ${preview(v)}`);
    }
    out.push("", `tensors (${gguf.tensors.size})`);
    let total = 0;
    for (const t of gguf.tensors.values()) {
      const bytes = tensorBytes(t.type, t.shape);
      total += bytes;
      out.push(
        `  ${t.name.padEnd(32)} ${dtypeName(t.type).padEnd(5)} [${t.shape.join(", ")}]`.padEnd(72) +
          mb(bytes),
      );
    }
    out.push(`  total ${mb(total)}`);
    console.log(out.join("\n"));
  } finally {
    file.close();
  }
}

function mb(bytes: number): string {
  return bytes >= 1 << 20
    ? `${(bytes / (1 << 20)).toFixed(1)} MiB`
    : `${(bytes / 1024).toFixed(1)} KiB`;
}

function preview(v: unknown): string {
  if (Array.isArray(v)) {
    return `[${v.slice(0, 5).map((x) => JSON.stringify(x)).join(", ")}${
      v.length > 5 ? `, … ${v.length} items` : ""
    }]`;
  }
  return typeof v === "bigint" ? `${v}` : JSON.stringify(v);
}
