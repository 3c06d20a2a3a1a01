// Which 512-bit operations of the quantised decode kernels compete for the same execution ports on
// this CPU: a loop of 24 independent vpdpbusd (enough chains to hide their latency) alone, then with
// a few other operations added; cycles per iteration by thread CPU time against a dependent imul
// chain (3-cycle latency) for the clock. If the extra operations cost a cycle per two, they share
// the two 512-bit ports with vpdpbusd (bench/kernel-notes.md, "mxfp4 decode").
//   g++ -O2 -mavx512f -mavx512bw -mavx512vnni -mavx512vbmi bench/vector_ports.cc -o /tmp/vector_ports &&
//   /tmp/vector_ports
#include <time.h>

#include <cstdio>

static double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

static const long kIters = 10000000;

// Best of 7 runs of `kIters` iterations of the loop body, in seconds per iteration.
#define TIME_LOOP(body, result)                                                                                        \
  do {                                                                                                                 \
    double best = 1e9;                                                                                                 \
    for (int rep = 0; rep < 7; ++rep) {                                                                                \
      long n = kIters;                                                                                                 \
      const double t0 = thread_seconds();                                                                              \
      asm volatile("1:\n" body "dec %0\n jnz 1b\n"                                                                     \
                   : "+r"(n)                                                                                           \
                   :                                                                                                   \
                   : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                     "xmm12", "xmm13", "xmm14", "xmm15", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",         \
                     "xmm26", "xmm27", "cc");                                                                          \
      const double dt = (thread_seconds() - t0) / double(kIters);                                                      \
      if (dt < best) best = dt;                                                                                        \
    }                                                                                                                  \
    result = best;                                                                                                     \
  } while (0)

#define DP(i) "vpdpbusd %%zmm20, %%zmm21, %%zmm" #i "\n"
#define DOTS24                                                                                                      \
  DP(0)                                                                                                             \
  DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10) DP(11) DP(12) DP(13) DP(14) DP(15) DP(0) DP(1) DP(2) \
      DP(3) DP(4) DP(5) DP(6) DP(7)
#define X4(op) op "%%zmm24\n" op "%%zmm25\n" op "%%zmm26\n" op "%%zmm27\n"

int main() {
  asm volatile(
      "vpxord %%zmm20, %%zmm20, %%zmm20\n vpternlogd $0xff, %%zmm21, %%zmm21, %%zmm21\n"
      "vpxord %%zmm22, %%zmm22, %%zmm22\n vpxord %%zmm23, %%zmm23, %%zmm23\n" ::
          : "xmm20", "xmm21", "xmm22", "xmm23");
  double clock_s = 1e9;
  for (int rep = 0; rep < 7; ++rep) {
    long n = kIters, v = 3;
    const double t0 = thread_seconds();
    asm volatile("1:\n imul %1, %1\n imul %1, %1\n imul %1, %1\n imul %1, %1\n dec %0\n jnz 1b\n"
                 : "+r"(n), "+r"(v)
                 :
                 : "cc");
    const double dt = (thread_seconds() - t0) / double(kIters);
    if (dt < clock_s) clock_s = dt;
  }
  const double cycle = clock_s / 12;  // 4 dependent imul of 3 cycles
  std::printf("clock %.2f GHz (dependent imul)\n", 1e-9 / cycle);
  // 24 dots plus `extra`: cycles per iteration, printed as measured.
#define CASE(name, extra)                                               \
  do {                                                                  \
    double s;                                                           \
    TIME_LOOP(DOTS24 extra, s);                                         \
    std::printf("%-24s %5.1f cycles per iteration\n", name, s / cycle); \
  } while (0)
  CASE("24 vpdpbusd", "");
  CASE("+ 4 vpermb", X4("vpermb %%zmm23, %%zmm21, "));
  CASE("+ 4 vpsrlw", X4("vpsrlw $4, %%zmm21, "));
  CASE("+ 4 vpandnd", X4("vpandnd %%zmm23, %%zmm21, "));
  CASE("+ 4 vcvtdq2ps", X4("vcvtdq2ps %%zmm21, "));
  CASE("+ 4 vscalefps", X4("vscalefps %%zmm21, %%zmm22, "));
  CASE("+ 4 vpmovzxbd", X4("vpmovzxbd %%xmm21, "));
  CASE("+ 4 vpermb + 4 vpsrlw", X4("vpermb %%zmm23, %%zmm21, ") X4("vpsrlw $4, %%zmm22, "));
  return 0;
}
