/**
 * FFI of the NEON plugin: `build/libts_neon.so` (Advanced SIMD kernels, dot-product variant
 * picked from HWCAP) and its symbols (shared by every libts_* build).
 *
 * @module
 */

export { NEON as LIB } from "../_native/libs.ts";
export { CPU_FEATURES, featureNames, SYMBOLS } from "../_native/symbols.ts";
