// What the x86 kernel files use beyond the intrinsics, spelled for each compiler. GCC and clang:
// the builtins and empty asm statements as written before this header; MSVC has neither inline
// asm on x64 nor __builtin_memcpy, so there a volatile round trip hides a value from the optimiser
// and std::memcpy (an intrinsic there too) copies, also between vector types of one size. Not compiled with MSVC here:
// unverified.
#pragma once
#include <cstring>

#if defined(_MSC_VER) && !defined(__clang__)
#define MOECAP_MEMCPY(dst, src, n) std::memcpy(dst, src, n)
#define MOECAP_NOINLINE __declspec(noinline)
template <class T>
inline void moecap_opaque(T& v) {
  volatile T t = v;
  v = t;
}
// Keeps the peak loops' operands out of constant folding (a and b: vector registers).
#define MOECAP_OPAQUE_ZMM(a, b) (moecap_opaque(a), moecap_opaque(b))
#define MOECAP_OPAQUE_YMM(a, b) (moecap_opaque(a), moecap_opaque(b))
template <class To, class From>
inline To moecap_bits_as(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "a bit copy between types of one size");
  To r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}
// A 512-bit integer vector as the bf16 pairs vdpbf16ps takes: a byte copy, as MSVC has no vector casts.
#define MOECAP_AS_BF16_PAIRS(v) moecap_bits_as<__m512bh>(v)
#else
#define MOECAP_MEMCPY(dst, src, n) __builtin_memcpy(dst, src, n)
#define MOECAP_NOINLINE __attribute__((noinline))
#define MOECAP_OPAQUE_ZMM(a, b) __asm__ volatile("" : "+v"(a), "+v"(b))
#define MOECAP_OPAQUE_YMM(a, b) __asm__ volatile("" : "+x"(a), "+x"(b))
// A 512-bit integer vector as the bf16 pairs vdpbf16ps takes: a vector cast, no instruction.
#define MOECAP_AS_BF16_PAIRS(v) ((__m512bh)(v))
#endif
