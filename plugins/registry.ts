/**
 * The backend registry: every backend plugin in priority order, imported only when probed.
 * Choice: an explicit name (CLI `--backend`, env `TURBOSPARSE_BACKEND`), else the highest
 * probe score; a chosen backend that fails to open falls back to the next.
 *
 * @module
 */

import type { Backend, BackendOptions, BackendPlugin, Probe } from "../core/backend.ts";

interface Entry {
  readonly name: string;
  readonly load: () => Promise<{ plugin: BackendPlugin }>;
}

/** Highest priority first. */
const ENTRIES: readonly Entry[] = [
  { name: "cuda", load: () => import("./cuda/mod.ts") },
  { name: "cpu_x86", load: () => import("./cpu_x86/mod.ts") },
  { name: "cpu_neon", load: () => import("./cpu_neon/mod.ts") },
  { name: "cpu_scalar", load: () => import("./cpu_scalar/mod.ts") },
  { name: "reference", load: () => import("./reference/mod.ts") },
];

/** Names of every registered backend. */
export const backendNames: readonly string[] = ENTRIES.map((e) => e.name);

/** A probe result per registered backend, in priority order. */
export async function probeAll(): Promise<{ name: string; probe: Probe }[]> {
  const out = [];
  for (const e of ENTRIES) {
    let probe: Probe;
    try {
      probe = await (await e.load()).plugin.probe();
    } catch (err) {
      probe = { score: 0, reason: `probe failed: ${(err as Error).message}` };
    }
    out.push({ name: e.name, probe });
  }
  return out;
}

/** The opened backend and why it was chosen. */
export interface Chosen {
  readonly backend: Backend;
  readonly reason: string;
}

/** Says why an opened backend cannot run the model at hand, or undefined when it can. */
export type Requirement = (backend: Backend) => string | undefined;

/**
 * Open the backend named `name` (or `TURBOSPARSE_BACKEND`), else the best-scoring one,
 * falling back down the list when one fails to open or does not meet `require`
 * (e.g. a sparse model on a backend without the sparse ops).
 */
export async function chooseBackend(
  name?: string,
  options?: BackendOptions,
  require?: Requirement,
): Promise<Chosen> {
  const forced = name ?? envBackend();
  if (forced) {
    const e = ENTRIES.find((x) => x.name === forced);
    if (!e) {
      throw new Error(`unknown backend "${forced}": expected one of ${backendNames.join(", ")}`);
    }
    const plugin = (await e.load()).plugin;
    const probe = await plugin.probe();
    if (probe.score <= 0) throw new Error(`backend "${forced}" cannot run here: ${probe.reason}`);
    const backend = await plugin.open(options);
    const unmet = require?.(backend);
    if (unmet) {
      backend.close?.();
      throw new Error(`backend "${forced}" cannot run this model: ${unmet}`);
    }
    return { backend, reason: `forced (${probe.reason})` };
  }
  const ranked = (await probeAll()).filter((p) => p.probe.score > 0)
    .sort((a, b) => b.probe.score - a.probe.score);
  const failures: string[] = [];
  for (const r of ranked) {
    const e = ENTRIES.find((x) => x.name === r.name)!;
    try {
      const backend = await (await e.load()).plugin.open(options);
      const unmet = require?.(backend);
      if (unmet) {
        backend.close?.();
        failures.push(`${r.name} (${unmet})`);
        continue;
      }
      const why = failures.length ? `; skipped ${failures.join("; ")}` : "";
      return { backend, reason: `best probe score ${r.probe.score}: ${r.probe.reason}${why}` };
    } catch (err) {
      failures.push(`${r.name} (${(err as Error).message})`);
    }
  }
  throw new Error(`no backend could be opened: ${failures.join("; ") || "none usable"}`);
}

function envBackend(): string | undefined {
  try {
    return Deno.env.get("TURBOSPARSE_BACKEND") || undefined;
  } catch {
    return undefined; // no --allow-env: behave as unset
  }
}
