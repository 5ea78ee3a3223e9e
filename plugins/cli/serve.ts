/**
 * `turbosparse serve`: the OpenAI-compatible HTTP server on one model.
 *
 *   deno run --allow-read --allow-ffi --allow-net=127.0.0.1 main.ts serve --model FILE
 *
 * @module
 */

import {
  loadModel,
  type RunningServer,
  serve,
  type ServeOptions,
  TEMPLATE_NAMES,
} from "../../mod.ts";
import { type Flags, num, parse, str, usage } from "./args.ts";

/** Flags of `serve`. */
export const SERVE_FLAGS: Flags = {
  model: { type: "string", short: "m", help: "GGUF model file" },
  host: { type: "string", help: "address to bind (default 127.0.0.1, loopback only)" },
  port: { type: "string", short: "p", help: "port, 0 = any free one (default 8080)" },
  "api-key": { type: "string", help: "require 'Authorization: Bearer KEY' (default: no key)" },
  "api-key-file": { type: "string", help: "read the API key from a file (keeps it out of ps)" },
  "model-id": { type: "string", help: "the model name clients send (default: file name)" },
  backend: { type: "string", short: "b", help: "backend name (default: best available)" },
  threads: { type: "string", help: "CPU threads (default: all cores)" },
  ctx: { type: "string", help: "context length per request (default 2048)" },
  parallel: {
    type: "string",
    help: "requests generating at once, each with its own KV cache (default 4)",
  },
  "max-queue": {
    type: "string",
    help: "requests that may wait for a slot before 429 (default 64)",
  },
  "timeout-s": { type: "string", help: "seconds a request may take, 0 = no limit (default 300)" },
  "chat-template": {
    type: "string",
    help: `${TEMPLATE_NAMES.join("|")} or Jinja source (default: the model's, else chatml)`,
  },
  cors: { type: "boolean", help: "send CORS headers allowing any origin (default off)" },
  "sparsity-stats": {
    type: "boolean",
    help: "record the FFN active fraction for /metrics (slower)",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Server options from parsed flags (without loading anything). */
export async function serveOptions(p: ReturnType<typeof parse>): Promise<ServeOptions> {
  let apiKey = str(p, "api-key");
  const keyFile = str(p, "api-key-file");
  if (apiKey !== undefined && keyFile !== undefined) {
    throw new Error("give --api-key or --api-key-file, not both");
  }
  if (keyFile !== undefined) {
    apiKey = (await Deno.readTextFile(keyFile)).trim();
    if (!apiKey) throw new Error(`--api-key-file ${keyFile} is empty`);
  }
  return {
    hostname: str(p, "host") ?? "127.0.0.1",
    port: num(p, "port") ?? 8080,
    apiKey,
    modelId: str(p, "model-id"),
    cors: p.values.cors === true,
    chatTemplate: str(p, "chat-template"),
    parallel: num(p, "parallel"),
    maxQueue: num(p, "max-queue"),
    timeoutS: num(p, "timeout-s"),
    sparsityStats: p.values["sparsity-stats"] === true,
  };
}

/** Run `serve` with command-line arguments; returns when the process is interrupted. */
export async function serveCommand(args: string[]): Promise<void> {
  const p = parse(args, SERVE_FLAGS);
  if (p.values.help) {
    console.log(
      usage("main.ts serve --model FILE [options]", "Serve the OpenAI API over HTTP.", SERVE_FLAGS),
    );
    return;
  }
  const path = str(p, "model") ?? p.positionals[0];
  if (!path) throw new Error("serve needs --model FILE (see --help)");
  const options = await serveOptions(p);
  const model = await loadModel(path, {
    backend: str(p, "backend"),
    threads: num(p, "threads"),
    contextLength: num(p, "ctx"),
  });
  let server: RunningServer;
  try {
    server = serve(model, options);
  } catch (err) {
    model.close();
    throw err;
  }
  const host = server.addr.hostname;
  console.error(`backend   ${model.backendReason}`);
  console.error(`listening on ${server.url} (model id "${server.state.modelId}")`);
  if (!options.apiKey && !isLoopback(host)) {
    console.error(
      `warning: bound to ${host} without --api-key: anyone who can reach it may use it`,
    );
  }
  await waitForInterrupt();
  console.error("shutting down");
  await server.shutdown();
  model.close();
}

function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "::1" || host === "localhost";
}

/** Resolves on SIGINT or SIGTERM (SIGINT only where signals are limited). */
function waitForInterrupt(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const done = () => {
      for (const s of signals) Deno.removeSignalListener(s, done);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, done);
  });
}
