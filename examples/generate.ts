/**
 * Generate text from a GGUF model through the library API.
 *
 *   deno run --allow-read --allow-ffi --allow-env examples/generate.ts [MODEL] [PROMPT]
 */

import { loadModel } from "../mod.ts";

const [path = "models/tiny-turbosparse.gguf", prompt = "It is a truth universally acknowledged"] =
  Deno.args;
const model = await loadModel(path);
const gen = model.generate(prompt, { maxTokens: 48, temperature: 0 });
const enc = new TextEncoder();
Deno.stdout.writeSync(enc.encode(prompt));
for await (const piece of gen) Deno.stdout.writeSync(enc.encode(piece));
console.log(`\n\n${gen.stats?.decodeTokensPerSecond.toFixed(1)} tokens/s on ${model.backend.name}`);
model.close();
