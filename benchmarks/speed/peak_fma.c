/* Measured fp32 FMA peak of this CPU: independent AVX-512 (or AVX2) FMA chains on every thread.
   Built and run by benchmarks/clip_speed.py: gcc -O3 -march=native -fopenmp peak_fma.c */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  const long iters = 50000000;
#ifdef __AVX512F__
  typedef __m512 vec;
  const int lanes = 16;
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define SUM _mm512_reduce_add_ps
#else
  typedef __m256 vec;
  const int lanes = 8;
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
  static float sum8(__m256 v) { float f[8]; _mm256_storeu_ps(f, v); return f[0]+f[1]+f[2]+f[3]+f[4]+f[5]+f[6]+f[7]; }
#define SUM sum8
#endif
  double sink = 0;
  double t0 = now();
#pragma omp parallel reduction(+ : sink)
  {
    vec a0 = SET1(1), a1 = SET1(2), a2 = SET1(3), a3 = SET1(4), a4 = SET1(5), a5 = SET1(6);
    vec a6 = SET1(7), a7 = SET1(8), a8 = SET1(9), a9 = SET1(10), a10 = SET1(11), a11 = SET1(12);
    const vec b = SET1(1.0000001f), c = SET1(1e-7f);
    for (long k = 0; k < iters; k++) {
      a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);
      a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);
      a8 = FMA(a8, b, c); a9 = FMA(a9, b, c); a10 = FMA(a10, b, c); a11 = FMA(a11, b, c);
    }
    sink += SUM(a0) + SUM(a1) + SUM(a2) + SUM(a3) + SUM(a4) + SUM(a5) + SUM(a6) + SUM(a7)
          + SUM(a8) + SUM(a9) + SUM(a10) + SUM(a11);
  }
  double dt = now() - t0;
  int threads = omp_get_max_threads();
  printf("{\"threads\": %d, \"lanes\": %d, \"gflops\": %.2f, \"sink\": %g}\n", threads, lanes,
         threads * (double)iters * 12 * lanes * 2 / dt / 1e9, sink);
  return 0;
}
