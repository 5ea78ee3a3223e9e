/**
 * Load test of the HTTP server on loopback: N concurrent streaming chats (greedy) must all
 * complete without errors and give the same text as each prompt run alone; a client that
 * disconnects mid-stream must free its slot. Prints requests/s, tokens/s and time to first
 * token (p50/p99); `--append` adds the figures to BENCHMARKS.md. Bounded: N requests of at
 * most `--max-tokens` tokens, and a wall-clock limit.
 *
 * @example
 * ```sh
 * deno run --allow-read --allow-write=BENCHMARKS.md,build --allow-ffi --allow-run=cc \
 *   --allow-env --allow-net=127.0.0.1 --allow-sys=loadavg bench/serve_load.ts -c 32 --append
 * ```
 *
 * @module
 */

import { parseGGUF } from "../core/gguf.ts";
import { Model } from "../core/model.ts";
import { loadModel } from "../mod.ts";
import { type Flags, num, parse, str, usage } from "../plugins/cli/args.ts";
import { serve } from "../plugins/http/mod.ts";
import { chooseBackend } from "../plugins/registry.ts";
import { synthBytes, type SynthOptions } from "../tools/synth.ts";

/** The synthetic model benchmarked when no `--model` is given. */
export const BENCH_SHAPE: SynthOptions = {
  arch: "llama",
  nEmbd: 256,
  nFF: 688,
  nLayer: 4,
  nHead: 8,
  nKV: 4,
  nCtx: 512,
  nVocab: 512,
  dtype: 0,
  seed: 7,
};

/** The permissions this benchmark runs with (recorded with its figures). */
const PERMISSIONS =
  "--allow-read --allow-write=BENCHMARKS.md,build --allow-ffi --allow-run=cc --allow-env " +
  "--allow-net=127.0.0.1 --allow-sys=loadavg";

const WORDS =
  "the of and to in is it you that he was for on are with as they be at one have this from".split(
    " ",
  );

/** `n` distinct short prompts. */
export function prompts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const w = (k: number) => WORDS[(i * 7 + k * 3 + (i >> 2)) % WORDS.length];
    return `${w(0)} ${w(1)} ${w(2)} number ${i} ${w(3)}`;
  });
}

/** One streamed chat: its text, time to first content chunk, and tokens generated. */
export interface StreamResult {
  text: string;
  ttftMs: number;
  completionTokens: number;
  finishReason: string;
}

/**
 * Stream one greedy chat completion with fetch and parse its SSE chunks.
 * @param url the server's base URL
 * @param prompt the user message
 * @param maxTokens tokens to generate
 * @param signal stops the request (bound the run)
 */
export async function streamChat(
  url: string,
  model: string,
  prompt: string,
  maxTokens: number,
  signal?: AbortSignal,
): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      messages: [{ role: "user", content: prompt }],
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
    signal,
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = "", text = "", ttftMs = -1, completionTokens = -1, finishReason = "", done = false;
  for await (const bytes of res.body!) {
    buffer += decoder.decode(bytes, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(`stream error: ${chunk.error.message}`);
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.finish_reason) finishReason = choice.finish_reason;
      if (choice.delta.content) {
        if (ttftMs < 0) ttftMs = performance.now() - t0;
        text += choice.delta.content;
      }
    }
  }
  if (!done) throw new Error("the stream ended without data: [DONE]");
  return { text, ttftMs, completionTokens, finishReason };
}

/** Results of a concurrent run. */
export interface LoadReport {
  results: StreamResult[];
  wallS: number;
  /** Prompts whose concurrent text differs from their solo text. */
  mismatches: number[];
}

/**
 * Run each prompt alone, then all at once, and compare the texts.
 * @param url the server's base URL
 * @param model the model id
 * @param list prompts
 * @param maxTokens tokens per request
 * @param signal bounds the whole run
 */
export async function concurrentRun(
  url: string,
  model: string,
  list: string[],
  maxTokens: number,
  signal?: AbortSignal,
): Promise<LoadReport> {
  const solo: string[] = [];
  for (const p of list) solo.push((await streamChat(url, model, p, maxTokens, signal)).text);
  const t0 = performance.now();
  const results = await Promise.all(list.map((p) => streamChat(url, model, p, maxTokens, signal)));
  const wallS = (performance.now() - t0) / 1000;
  const mismatches = results.flatMap((r, i) => (r.text === solo[i] ? [] : [i]));
  return { results, wallS, mismatches };
}

/** Server health: queued and active requests. */
export async function health(url: string): Promise<{ queue_depth: number; active: number }> {
  return await (await fetch(`${url}/health`)).json();
}

/**
 * Start a long stream (`maxTokens`), read a little, hang up; resolves with the health once
 * the server has freed the slot (polling at most `attempts` times, 10 ms apart).
 */
export async function disconnectRun(
  url: string,
  model: string,
  maxTokens = 150,
  attempts = 200,
): Promise<{ before: number; after: { queue_depth: number; active: number } }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      messages: [{ role: "user", content: "hello" }],
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
    }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body!.getReader();
  await reader.read();
  await reader.read();
  const before = (await health(url)).active;
  await reader.cancel();
  let after = await health(url);
  for (let i = 0; i < attempts && (after.active > 0 || after.queue_depth > 0); i++) {
    await new Promise((r) => setTimeout(r, 10));
    after = await health(url);
  }
  return { before, after };
}

/** Percentile (0..100) of a list, nearest rank. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const FLAGS: Flags = {
  model: { type: "string", short: "m", help: "GGUF model (default: a synthetic 4-layer model)" },
  backend: { type: "string", short: "b", help: "backend name (default: best available)" },
  concurrency: { type: "string", short: "c", help: "concurrent streaming chats (default 32)" },
  parallel: { type: "string", help: "server slots (default 8)" },
  "max-tokens": { type: "string", short: "n", help: "tokens per request (default 32)" },
  "limit-s": { type: "string", help: "wall-clock bound of the whole run (default 600)" },
  append: { type: "boolean", help: "append the figures to BENCHMARKS.md" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

async function openBenchModel(
  path: string | undefined,
  backendName: string | undefined,
): Promise<Model> {
  if (path) return await loadModel(path, { backend: backendName });
  const { backend, reason } = await chooseBackend(backendName);
  const name = "synthetic-bench.gguf";
  return new Model(parseGGUF(synthBytes(BENCH_SHAPE), name), backend, name, {
    backendReason: `${backend.name}: ${reason}`,
  });
}

async function main(): Promise<void> {
  const p = parse(Deno.args, FLAGS);
  if (p.values.help) {
    return console.log(usage("bench/serve_load.ts [options]", "HTTP server load test.", FLAGS));
  }
  const n = num(p, "concurrency") ?? 32, maxTokens = num(p, "max-tokens") ?? 32;
  const parallel = num(p, "parallel") ?? 8;
  const signal = AbortSignal.timeout((num(p, "limit-s") ?? 600) * 1000);
  const model = await openBenchModel(str(p, "model"), str(p, "backend"));
  const server = serve(model, { port: 0, parallel, maxQueue: n });
  const id = server.state.modelId;
  try {
    const load = await concurrentRun(server.url, id, prompts(n), maxTokens, signal);
    const disconnect = await disconnectRun(server.url, id);
    const tokens = load.results.reduce((s, r) => s + r.completionTokens, 0);
    const ttft = load.results.map((r) => r.ttftMs);
    const lines = [
      `model        ${id}${
        str(p, "model") ? "" : ` (${shapeText(BENCH_SHAPE)})`
      }, backend ${model.backendReason}`,
      `requests     ${n} concurrent streaming chats, ${maxTokens} tokens each, ${parallel} slots`,
      `completed    ${load.results.length}/${n}, errors 0, identical to solo runs: ` +
      `${n - load.mismatches.length}/${n}`,
      `throughput   ${(n / load.wallS).toFixed(2)} requests/s, ${
        (tokens / load.wallS).toFixed(1)
      } tokens/s`,
      `ttft         p50 ${percentile(ttft, 50).toFixed(1)} ms, p99 ${
        percentile(ttft, 99).toFixed(1)
      } ms`,
      `disconnect   active ${disconnect.before} → ${disconnect.after.active}, ` +
      `queue ${disconnect.after.queue_depth}`,
    ];
    console.log(lines.join("\n"));
    const failed = load.mismatches.length > 0 || disconnect.after.active !== 0 ||
      disconnect.after.queue_depth !== 0;
    if (p.values.append && !failed) {
      await appendBenchmarks(lines, n, maxTokens, parallel, str(p, "model"));
    }
    if (failed) throw new Error(`load test failed: mismatches ${load.mismatches.join(",")}`);
  } finally {
    await server.shutdown();
    model.close();
  }
}

async function appendBenchmarks(
  lines: string[],
  n: number,
  maxTokens: number,
  parallel: number,
  path?: string,
) {
  const command =
    `deno run ${PERMISSIONS} bench/serve_load.ts -c ${n} -n ${maxTokens} --parallel ${parallel}` +
    (path ? ` --model ${path}` : "") + " --append";
  const machine = `${navigator.hardwareConcurrency} cores, ${Deno.build.os}/${Deno.build.arch}, ` +
    `Deno ${Deno.version.deno}, 1-min load average ${loadAverage()} at the end`;
  const file = new URL("../BENCHMARKS.md", import.meta.url);
  const exists = await Deno.stat(file).then(() => true, () => false);
  const section = [
    ...(exists ? [""] : []), // a blank line after the previous section
    `## HTTP server load (bench/serve_load.ts), ${new Date().toISOString().slice(0, 10)}`,
    "",
    `Machine: ${machine}`,
    "",
    "```sh",
    command,
    "```",
    "",
    "```",
    ...lines,
    "```",
    "",
  ].join("\n");
  await Deno.writeTextFile(file, section, { append: true });
  console.log("appended to BENCHMARKS.md");
}

/** A synthetic shape in words. */
function shapeText(o: SynthOptions): string {
  return `synthetic ${o.arch}: ${o.nLayer} layers, n_embd ${o.nEmbd}, n_ff ${o.nFF}, vocab ${o.nVocab}, F32`;
}

/** The 1-minute load average (other work on the machine skews the figures), if permitted. */
function loadAverage(): string {
  try {
    return Deno.loadavg()[0].toFixed(2);
  } catch {
    return "unknown (needs --allow-sys=loadavg)";
  }
}

if (import.meta.main) await main();
