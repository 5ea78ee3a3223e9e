/**
 * Command-line parsing: the one place that wraps `node:util` parseArgs (JSR's `@std/cli` is
 * not reachable here). Unknown flags and bad numbers are errors that name the flag.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Flag definitions: `string` or `boolean`, with optional short alias and help text. */
export type Flags = Record<
  string,
  { type: "string" | "boolean"; short?: string; help: string; default?: string | boolean }
>;

/** Parsed flags and positional arguments. */
export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parse `args` against `flags`; throws a readable error for unknown or malformed flags. */
export function parse(args: string[], flags: Flags): Parsed {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; default?: string | boolean }
  > = {};
  for (const [name, f] of Object.entries(flags)) {
    options[name] = { type: f.type };
    if (f.short) options[name].short = f.short;
    if (f.default !== undefined) options[name].default = f.default;
  }
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed["values"], positionals };
  } catch (err) {
    throw new Error((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
}

/** A numeric flag: undefined when absent, an error naming the flag when not a number. */
export function num(p: Parsed, name: string): number | undefined {
  const v = p.values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new Error(`--${name} expects a number, got "${v}"`);
  }
  return n;
}

/** A string flag or undefined. */
export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === "string" ? v : undefined;
}

/** Help text listing the flags. */
export function usage(command: string, summary: string, flags: Flags): string {
  const lines = [`usage: ${command}`, "", summary, "", "options:"];
  for (const [name, f] of Object.entries(flags)) {
    const left = `  ${f.short ? `-${f.short}, ` : "    "}--${name}${
      f.type === "string" ? " VALUE" : ""
    }`;
    lines.push(`${left.padEnd(32)}${f.help}`);
  }
  return lines.join("\n");
}
