/**
 * `plugins/cli/serve.ts`: flags → server options (the command itself is exercised end to end
 * through `serve()` in e2e_test.ts).
 */

import assert from "node:assert/strict";
import { SERVE_FLAGS, serveOptions } from "../../../plugins/cli/serve.ts";
import { parse } from "../../../plugins/cli/args.ts";

Deno.test("serveOptions() binds loopback on 8080 with no key, CORS off by default", async () => {
  const o = await serveOptions(parse(["--model", "m.gguf"], SERVE_FLAGS));
  assert.equal(o.hostname, "127.0.0.1");
  assert.equal(o.port, 8080);
  assert.equal(o.apiKey, undefined);
  assert.equal(o.cors, false);
});

Deno.test("serveOptions() maps every flag", async () => {
  const o = await serveOptions(parse([
    "--host=0.0.0.0",
    "--port=0",
    "--api-key=sk-1",
    "--cors",
    "--chat-template=mistral",
    "--max-queue=3",
    "--timeout-s=9",
    "--parallel=2",
    "--model-id=ts",
    "--sparsity-stats",
  ], SERVE_FLAGS));
  assert.deepEqual(
    [
      o.hostname,
      o.port,
      o.apiKey,
      o.cors,
      o.chatTemplate,
      o.maxQueue,
      o.timeoutS,
      o.parallel,
      o.modelId,
    ],
    ["0.0.0.0", 0, "sk-1", true, "mistral", 3, 9, 2, "ts"],
  );
  assert.equal(o.sparsityStats, true);
  assert.equal((await serveOptions(parse([], SERVE_FLAGS))).sparsityStats, false);
});

Deno.test("serveOptions() reads --api-key-file and refuses both key flags", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "sk-from-file\n");
    assert.equal(
      (await serveOptions(parse(["--api-key-file", file], SERVE_FLAGS))).apiKey,
      "sk-from-file",
    );
    await assert.rejects(
      () => serveOptions(parse(["--api-key-file", file, "--api-key", "x"], SERVE_FLAGS)),
      /not both/,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("serveOptions() names a flag that is not a number", async () => {
  await assert.rejects(
    () => serveOptions(parse(["--port", "http"], SERVE_FLAGS)),
    /--port expects a number/,
  );
});
