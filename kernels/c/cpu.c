/*
 * cpu.c: library identity and CPU features.
 *   ts_abi_version()   TS_ABI_VERSION, checked by the plugins at load
 *   ts_build_id()      hash of sources and flags baked in by plugins/_native/build.ts
 *   ts_cpu_features()  TS_CPU_* bits: cpuid + xgetbv on x86, HWCAP on aarch64
 * Compiled without SIMD flags in every library, so it runs on any CPU of the architecture.
 */
#include "ts.h"

#ifndef TS_BUILD_ID
#define TS_BUILD_ID "dev"
#endif

int ts_abi_version(void) { return TS_ABI_VERSION; }

const char *ts_build_id(void) { return TS_BUILD_ID; }

#if defined(__x86_64__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

uint32_t ts_cpu_features(void) {
  uint32_t a, b, c, d, f = TS_CPU_SSE2;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  int osxsave = (c >> 27) & 1;
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  int os_avx = (xcr0 & 0x6) == 0x6;      /* XMM and YMM state enabled */
  int os_avx512 = (xcr0 & 0xe6) == 0xe6; /* plus opmask, ZMM_Hi256, Hi16_ZMM */
  if (os_avx && ((c >> 12) & 1)) f |= TS_CPU_FMA;
  if (os_avx && ((c >> 29) & 1)) f |= TS_CPU_F16C;
  if (__get_cpuid_max(0, NULL) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  if (os_avx && ((b >> 5) & 1)) f |= TS_CPU_AVX2;
  if (os_avx512 && ((b >> 16) & 1)) f |= TS_CPU_AVX512F;
  if (os_avx512 && ((b >> 30) & 1)) f |= TS_CPU_AVX512BW;
  if (os_avx512 && ((b >> 31) & 1)) f |= TS_CPU_AVX512VL;
  if (os_avx512 && ((c >> 11) & 1)) f |= TS_CPU_AVX512VNNI;
  uint32_t a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  if (os_avx && ((a1 >> 4) & 1)) f |= TS_CPU_AVXVNNI;
  if (os_avx512 && ((a1 >> 5) & 1)) f |= TS_CPU_AVX512BF16;
  return f;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

uint32_t ts_cpu_features(void) {
  unsigned long hw = getauxval(AT_HWCAP);
  uint32_t f = 0;
  if (hw & (1UL << 1)) f |= TS_CPU_ASIMD;    /* HWCAP_ASIMD */
  if (hw & (1UL << 20)) f |= TS_CPU_DOTPROD; /* HWCAP_ASIMDDP */
  if (hw & (1UL << 10)) f |= TS_CPU_FP16;    /* HWCAP_ASIMDHP */
  return f;
}

#elif defined(__aarch64__)
/* Apple silicon: every M-series core has NEON, dot product and fp16 arithmetic. */
uint32_t ts_cpu_features(void) { return TS_CPU_ASIMD | TS_CPU_DOTPROD | TS_CPU_FP16; }

#else
uint32_t ts_cpu_features(void) { return 0; }
#endif
