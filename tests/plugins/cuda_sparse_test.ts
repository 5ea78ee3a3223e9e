/**
 * The CUDA plugin's sparse decode paths beyond the shared conformance suite (each skipped with
 * the probe's reason where no GPU runs): select fused into the predictor's matvec, the select's
 * per-block lists placed by the gathered glu, and the one-launch sparse down.
 */

import { DType, dtypeName } from "../../core/dtype.ts";
import { normals, upload, weightOf } from "../_conformance_util.ts";
import { gpuTest, near } from "./_cuda_gpu.ts";

gpuTest("cuda select fused into the matvec lists the same ids as select alone", (b) => {
  const rows = 14336, cols = 1024;
  const x = upload(b, normals(cols, 8));
  const score = b.alloc(rows), idx = b.allocIndex(rows);
  for (const type of [DType.F16, DType.Q8_0, DType.Q4_0]) {
    const w = weightOf(b, type, [rows, cols], normals(rows * cols, 7));
    for (const thr of [-1e30, 0, 20, 1e30]) {
      const lists: Int32Array[] = [];
      for (const fuse of [true, false]) {
        b.switches.matvecFuse(fuse, fuse);
        b.writeIndex(idx, Int32Array.of(5)); // stale contents must be overwritten
        b.matmul(score, w, x, 1);
        b.select(idx, score, 0, rows, thr);
        lists.push(b.readIndex(idx));
      }
      const [f, p] = lists;
      if (f.length !== p.length || f.some((v, i) => v !== p[i])) {
        throw new Error(
          `${dtypeName(type)} threshold ${thr}: fused ${f.length} ids, plain ${p.length}`,
        );
      }
    }
  }
});

gpuTest(
  "cuda select placed by the gathered glu gives the list and activations it gives alone",
  (b) => {
    const nFF = 8192, rank = 1024, nEmbd = 2048; // fc2 rows two blocks of 4 share; 2 warps per glu row
    const h = upload(b, normals(rank, 8)), x = upload(b, normals(nEmbd, 9));
    const gate = weightOf(b, DType.F16, [nFF, nEmbd], normals(nFF * nEmbd, 10));
    const up = weightOf(b, DType.F16, [nFF, nEmbd], normals(nFF * nEmbd, 11));
    const score = b.alloc(nFF), act = b.alloc(nFF), idx = b.allocIndex(nFF);
    for (const type of [DType.F16, DType.Q4_0]) {
      const fc2 = weightOf(b, type, [nFF, rank], normals(nFF * rank, 7));
      for (const thr of [-1e30, 0, 20, 1e30]) {
        const runs: { ids: Int32Array; act: Float32Array }[] = [];
        for (const inGlu of [true, false]) {
          b.switches.selectInGlu(inGlu);
          b.writeIndex(idx, Int32Array.of(5)); // stale contents must be overwritten
          b.matmul(score, fc2, h, 1);
          b.select(idx, score, 0, nFF, thr);
          b.gluSparse(act, gate, up, x, 0, idx, "swiglu");
          const ids = b.readIndex(idx);
          runs.push({ ids, act: b.read(act, 0, ids.length) });
        }
        const [g, m] = runs;
        const what = `${dtypeName(type)} threshold ${thr}`;
        if (g.ids.length !== m.ids.length || g.ids.some((v, i) => v !== m.ids[i])) {
          throw new Error(`${what}: ${g.ids.length} ids placed by glu, ${m.ids.length} by select`);
        }
        const i = g.act.findIndex((v, k) => !Object.is(v, m.act[k]));
        if (i >= 0) throw new Error(`${what}: act[${i}] ${g.act[i]} vs ${m.act[i]}`);
        if (thr === 0 && (g.ids.length < nFF / 4 || g.ids.length > (3 * nFF) / 4)) {
          throw new Error(`${what}: ${g.ids.length} of ${nFF} kept, expected about half`);
        }
      }
    }
    b.switches.selectInGlu(true);
  },
);

gpuTest("cuda sparse down in one launch matches the split sums and repeats its bits", (b) => {
  const nFF = 4096;
  const shapes: [DType, number][] = [
    [DType.F16, 1064], // a last block of 8 columns
    [DType.BF16, 1056],
    [DType.Q8_0, 1056],
    [DType.Q4_0, 1056],
  ];
  // 3 of 4 neurons listed: more rows than one pass of the block's loads
  const ids = Int32Array.from({ length: nFF }, (_, i) => i).filter((i) => i % 4 !== 1);
  const a = normals(ids.length, 12);
  for (let k = 0; k < a.length; k += 5) a[k] = 0; // listed but inactive
  const idx = b.allocIndex(nFF), act = upload(b, a);
  b.writeIndex(idx, ids);
  for (const [type, cols] of shapes) {
    const downT = weightOf(b, type, [nFF, cols], normals(nFF * cols, 13));
    const out = b.alloc(cols), runs: Float32Array[] = [];
    for (const cols1 of [true, true, false]) {
      b.switches.sparseDownCols(cols1);
      b.write(out, new Float32Array(cols).fill(NaN)); // every column must be written
      b.downSparse(out, 0, downT, act, idx);
      runs.push(b.read(out, 0, cols));
    }
    b.switches.sparseDownCols(true);
    const [one, again, split] = runs, what = `${dtypeName(type)} [${nFF}, ${cols}]`;
    const i = one.findIndex((v, k) => !Object.is(v, again[k]));
    if (i >= 0) throw new Error(`${what}: out[${i}] ${one[i]}, then ${again[i]}`);
    near(`${what} one launch vs split`, one, split, 1e-5);
  }
});
