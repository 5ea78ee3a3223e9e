/**
 * FFI of the scalar plugin: the portable library `build/libts_scalar_<arch>.so` and its
 * symbols (shared by every libts_* build).
 *
 * @module
 */

export { SCALAR as LIB } from "../_native/libs.ts";
export { SYMBOLS } from "../_native/symbols.ts";
