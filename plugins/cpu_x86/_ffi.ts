/**
 * FFI of the x86 plugin: `build/libts_x86.so` (AVX2+FMA+F16C kernels, runtime dispatch) and
 * its symbols (shared by every libts_* build).
 *
 * @module
 */

export { X86 as LIB } from "../_native/libs.ts";
export { CPU_FEATURES, featureNames, SYMBOLS } from "../_native/symbols.ts";
