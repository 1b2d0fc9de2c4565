// The DP-SGD noise loop's rectangle pass (two 32-bit ziggurat draws per coordinate, folded into a momentum
// buffer), scalar C against AVX-512 gathers, to size what a C kernel would buy over the Swift loop. A measuring
// tool only, not part of Conclave: gcc -O2 -o /tmp/rectangle_pass Benchmarks/noise-kernel/rectangle_pass.c -lm && /tmp/rectangle_pass
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double xs[257], scale[512]; static uint32_t bound[256];
static void tables(void) {
  double r = 3.654152885361008796, v = 0.00492867323399;
  xs[0] = v / exp(-r * r / 2); xs[1] = r;
  for (int i = 1; i < 255; i++) { double nx = exp(-xs[i] * xs[i] / 2) + v / xs[i]; xs[i + 1] = sqrt(-2 * log(nx < 1 ? nx : 1)); }
  xs[256] = 0;
  for (int i = 0; i < 256; i++) { scale[i] = xs[i] * 0x1p-23; scale[i + 256] = -xs[i] * 0x1p-23; bound[i] = (uint32_t)floor(xs[i + 1] / xs[i] * 0x1p23); }
}
// d[j] = mu*d[j] + (float)((s[j] + (a+b)*k)*f); returns fails
__attribute__((noinline)) static int scalar(const uint32_t *h, const float *s, float *d, int m, double k, double f, float mu) {
  int fails = 0;
  for (int j = 0; j < m; j++) {
    uint32_t a = h[2 * j], b = h[2 * j + 1];
    uint32_t pa = a >> 9, pb = b >> 9;
    fails += (pa >= bound[a & 0xff]) | (pb >= bound[b & 0xff]);
    double t = pa * scale[a & 0x1ff] + pb * scale[b & 0x1ff];
    d[j] = mu * d[j] + (float)((s[j] + t * k) * f);
  }
  return fails;
}
__attribute__((noinline, target("avx512f,avx512dq,avx512vl,fma,avx2"))) static int simd(const uint32_t *h, const float *s, float *d, int m, double k, double f, float mu) {
  int fails = 0;
  const __m512i lo9 = _mm512_set1_epi32(0x1ff), lo8 = _mm512_set1_epi32(0xff);
  const __m512d vk = _mm512_set1_pd(k), vf = _mm512_set1_pd(f); const __m256 vmu = _mm256_set1_ps(mu);
  const __m512i evens = _mm512_setr_epi32(0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30), odds = _mm512_setr_epi32(1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31);
  int j = 0;
  for (; j + 16 <= m; j += 16) {
    __m512i w0 = _mm512_loadu_si512(h + 2 * j), w1 = _mm512_loadu_si512(h + 2 * j + 16);
    __m512i a = _mm512_permutex2var_epi32(w0, evens, w1), b = _mm512_permutex2var_epi32(w0, odds, w1);
    __m512i pa = _mm512_srli_epi32(a, 9), pb = _mm512_srli_epi32(b, 9);
    __m512i ba = _mm512_i32gather_epi32(_mm512_and_si512(a, lo8), (const int *)bound, 4);
    __m512i bb = _mm512_i32gather_epi32(_mm512_and_si512(b, lo8), (const int *)bound, 4);
    __mmask16 bad = _mm512_cmpge_epu32_mask(pa, ba) | _mm512_cmpge_epu32_mask(pb, bb);
    fails += __builtin_popcount(bad);
    __m512i ia = _mm512_and_si512(a, lo9), ib = _mm512_and_si512(b, lo9);
    for (int half = 0; half < 2; half++) {
      __m256i ial = half ? _mm512_extracti32x8_epi32(ia, 1) : _mm512_castsi512_si256(ia);
      __m256i ibl = half ? _mm512_extracti32x8_epi32(ib, 1) : _mm512_castsi512_si256(ib);
      __m256i pal = half ? _mm512_extracti32x8_epi32(pa, 1) : _mm512_castsi512_si256(pa);
      __m256i pbl = half ? _mm512_extracti32x8_epi32(pb, 1) : _mm512_castsi512_si256(pb);
      __m512d sa = _mm512_i32gather_pd(ial, scale, 8), sb = _mm512_i32gather_pd(ibl, scale, 8);
      __m512d t = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(pal), sa), _mm512_mul_pd(_mm512_cvtepi32_pd(pbl), sb));
      __m512d sv = _mm512_cvtps_pd(_mm256_loadu_ps(s + j + 8 * half));
      __m256 rel = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_fmadd_pd(t, vk, sv), vf));
      __m256 old = _mm256_loadu_ps(d + j + 8 * half);
      _mm256_storeu_ps(d + j + 8 * half, _mm256_fmadd_ps(vmu, old, rel));
    }
  }
  fails += scalar(h + 2 * j, s + j, d + j, m - j, k, f, mu);
  return fails;
}
int main(void) {
  tables();
  int m = 8192, reps = 23900000 / 8192;
  uint32_t *h = malloc(8 * m); float *s = malloc(4 * m), *d = malloc(4 * m);
  srand(1); for (int i = 0; i < 2 * m; i++) h[i] = ((uint32_t)rand() << 16) ^ (uint32_t)rand();
  for (int i = 0; i < m; i++) { s[i] = 0.01f * (i % 100); d[i] = 0; }
  // Each variant from fresh buffers, three rounds, best of each.
  double best[2] = {1e9, 1e9}; long fails[2] = {0, 0};
  for (int round = 0; round < 3; round++) {
    for (int v = 0; v < 2; v++) {
      for (int i = 0; i < m; i++) d[i] = 0;
      double t0 = now(); long f = 0;
      for (int r = 0; r < reps; r++) f += v == 0 ? scalar(h, s, d, m, 0.7, 0.004, 0.5f) : simd(h, s, d, m, 0.7, 0.004, 0.5f);
      double t = now() - t0;
      if (t < best[v]) best[v] = t;
      fails[v] = f;
    }
  }
  printf("per coordinate (%d coordinates): scalar %.2f ns, avx512 gathers %.2f ns (draws failing the rectangle: %ld, %ld)\n",
         reps * m, best[0] / (reps * (double)m) * 1e9, best[1] / (reps * (double)m) * 1e9, fails[0], fails[1]);
}
