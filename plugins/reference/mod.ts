/**
 * The reference backend plugin: pure TypeScript, runs everywhere, defines every op.
 *
 * @example
 * ```ts
 * import { plugin } from "./mod.ts";
 * const backend = await plugin.open();
 * const x = backend.alloc(4);
 * backend.write(x, new Float32Array([1, 2, 3, 4]));
 * ```
 *
 * @module
 */

import type { Backend, BackendPlugin, Probe } from "../../core/backend.ts";
import { ReferenceBackend } from "./backend.ts";

export { RefBuf, ReferenceBackend, RefIndex, RefWeight } from "./backend.ts";

/** The registry entry of the reference backend; its probe always succeeds with score 1. */
export const plugin: BackendPlugin = {
  name: "reference",
  probe(): Promise<Probe> {
    return Promise.resolve({ score: 1, reason: "pure TypeScript, runs everywhere" });
  },
  open(): Promise<Backend> {
    return Promise.resolve(new ReferenceBackend());
  },
};
