import assert from "node:assert/strict";
import { parseGGUF } from "../../core/gguf.ts";
import { openFile } from "../../plugins/mmap/mod.ts";
import { synthBytes } from "../../tools/synth.ts";

const ffi = (await Deno.permissions.query({ name: "ffi" })).state === "granted";
const canMap = ffi && (Deno.build.os === "linux" || Deno.build.os === "darwin");

async function withFile(bytes: Uint8Array, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await Deno.writeFile(path, bytes);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

const MODEL = synthBytes({ nLayer: 1, nVocab: 300, nEmbd: 32, nFF: 64 });

Deno.test({
  name: "openFile() maps a file read-only and parseGGUF() reads it in place",
  ignore: !canMap,
  fn: () =>
    withFile(MODEL, async (path) => {
      const f = await openFile(path);
      try {
        assert.equal(f.mapped, true, f.fallbackReason);
        assert.deepEqual(f.bytes, MODEL);
        const file = parseGGUF(f.bytes, path);
        const t = file.tensors.get("blk.0.ffn_up.weight")!;
        assert.equal(t.data.buffer, f.bytes.buffer);
        assert.deepEqual([...t.shape], [64, 32]);
      } finally {
        f.close();
        f.close(); // a second close is a no-op
      }
    }),
});

Deno.test("openFile() reads the file into memory when mmap is switched off", () =>
  withFile(MODEL, async (path) => {
    const f = await openFile(path, { mmap: false });
    assert.equal(f.mapped, false);
    assert.equal(f.fallbackReason, "mmap disabled by option");
    assert.deepEqual(f.bytes, MODEL);
    assert.equal(parseGGUF(f.bytes, path).tensors.size, parseGGUF(MODEL, "m").tensors.size);
    f.close();
  }));

Deno.test({
  name: "openFile() falls back to reading when --allow-ffi is not granted",
  ignore: (await Deno.permissions.query({ name: "run" })).state !== "granted",
  fn: () =>
    withFile(MODEL, async (path) => {
      const mod = new URL("../../plugins/mmap/mod.ts", import.meta.url).href;
      const code = `import { openFile } from "${mod}";
        const f = await openFile(${JSON.stringify(path)});
        console.log(JSON.stringify({ mapped: f.mapped, n: f.bytes.length, why: f.fallbackReason }));`;
      // `deno eval` grants everything, so run a script file with read permission only
      const script = await Deno.makeTempFile({ suffix: ".ts" });
      await Deno.writeTextFile(script, code);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "--allow-read", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      await Deno.remove(script);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const got = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(got.mapped, false);
      assert.equal(got.n, MODEL.length);
      assert.match(got.why, /cannot load .*lib/);
    }),
});

Deno.test("openFile() names the path of an empty file, a directory or a missing file", async () => {
  await withFile(new Uint8Array(0), async (path) => {
    await assert.rejects(openFile(path), { message: `model file "${path}" is empty (0 bytes)` });
    await assert.rejects(openFile(path, { mmap: false }), /is empty/);
  });
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(openFile(dir), {
      message: `"${dir}" is a directory, expected a model file`,
    });
    await assert.rejects(
      openFile(`${dir}/missing.gguf`),
      /cannot open model file ".*missing\.gguf"/,
    );
  } finally {
    await Deno.remove(dir);
  }
});
