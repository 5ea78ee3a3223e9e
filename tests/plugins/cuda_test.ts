/**
 * The CUDA plugin: the shared conformance suite (skipped with the probe's reason where no
 * GPU runs), the sources compiling with nvcc (skipped where nvcc is absent), and cases the
 * shared suite does not reach: the tensor-core GEMM (more than 8 tokens) and split attention
 * (long contexts).
 */

import { DType, dtypeName } from "../../core/dtype.ts";
import { ABI_VERSION, SYMBOLS } from "../../plugins/cuda/_ffi.ts";
import { buildLibrary, findNvcc } from "../../plugins/cuda/_build.ts";
import { plugin } from "../../plugins/cuda/mod.ts";
import { ReferenceBackend } from "../../plugins/reference/mod.ts";
import { conformance, runCase, TOLERANCE } from "../conformance.ts";
import {
  type ConformanceCase,
  normals,
  output,
  result,
  seedOf,
  upload,
  weightOf,
} from "../_conformance_util.ts";

await conformance("cuda");

const probe = await plugin.probe();
const nvcc = await findNvcc();

Deno.test("cuda probe() scores 100 with a GPU, else 0 with a reason", () => {
  if (probe.score !== 100 && (probe.score !== 0 || !probe.reason)) {
    throw new Error(`score ${probe.score} "${probe.reason}"`);
  }
});

Deno.test({
  name: "kernels/cuda compile with nvcc and export the ABI" + (nvcc ? "" : " — skipped: no nvcc"),
  ignore: !nvcc,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ts_cuda_" });
    try {
      const path = await buildLibrary(nvcc!, `${dir}/libts_cuda.so`, dir);
      // dlopen needs no GPU (the static runtime loads the driver lazily) and checks that
      // every symbol of the FFI table is exported.
      const lib = Deno.dlopen(path, SYMBOLS);
      try {
        const abi = lib.symbols.ts_cuda_abi_version();
        if (abi !== ABI_VERSION) throw new Error(`ABI ${abi}, expected ${ABI_VERSION}`);
      } finally {
        lib.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function gemmCase(type: DType, rows: number, cols: number, nTok: number): ConformanceCase {
  const name = `matmul ${dtypeName(type)} [${rows}, ${cols}] nTok=${nTok}`;
  const seed = seedOf(name);
  return {
    name,
    tolerance: TOLERANCE.matmul[dtypeName(type)],
    minScale: Math.sqrt(cols),
    op(b) {
      const w = weightOf(b, type, [rows, cols], normals(rows * cols, seed));
      const x = upload(b, normals(nTok * cols, seed + 1));
      const out = output(b, nTok * rows);
      b.matmul(out, w, x, nTok);
      return result(b, out, nTok * rows, name);
    },
  };
}

function longAttention(nTok: number, pos0: number, nHead: number, nKV: number): ConformanceCase {
  const headDim = 128, name = `attention nTok=${nTok} pos0=${pos0} nHead=${nHead} nKV=${nKV}`;
  const seed = seedOf(name), used = (pos0 + nTok) * nKV * headDim;
  return {
    name,
    tolerance: TOLERANCE.attention,
    op(b) {
      const q = upload(b, normals(nTok * nHead * headDim, seed, 2));
      const k = upload(b, normals(used, seed + 1));
      const v = upload(b, normals(used, seed + 2));
      const out = output(b, nTok * nHead * headDim);
      b.attention(out, q, k, v, { nTok, pos0, nHead, nKV, headDim, scale: 1 / Math.sqrt(headDim) });
      return result(b, out, nTok * nHead * headDim, name);
    },
  };
}

const EXTRA = [
  ...[DType.F16, DType.BF16].flatMap((t) => [
    gemmCase(t, 100, 1024, 9),
    gemmCase(t, 37, 256, 64),
    gemmCase(t, 300, 4096, 70),
  ]),
  gemmCase(DType.F16, 7, 50, 20), // cols not a multiple of 32: the matvec loop
  gemmCase(DType.Q8_0, 64, 1024, 20),
  longAttention(1, 1000, 8, 2),
  longAttention(64, 448, 8, 2),
  longAttention(3, 2000, 32, 8),
];

Deno.test({
  name: "cuda matches the reference on the GEMM and split-attention paths" +
    (probe.score > 0 ? "" : ` — skipped: ${probe.reason}`),
  ignore: probe.score <= 0,
  async fn(t) {
    const backend = await plugin.open();
    const reference = new ReferenceBackend();
    try {
      for (const c of EXTRA) await t.step(c.name, () => runCase(c, backend, reference));
    } finally {
      backend.close?.();
    }
  },
});
