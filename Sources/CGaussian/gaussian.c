#include "conclave_gaussian.h"
#include <string.h>

// One implementation in clang's generic vectors (16 lanes), compiled for three targets: AVX-512 runs a vector as
// one zmm register, AVX2 as two ymm, the portable build as four xmm (SSE2, the x86-64 baseline) or whatever the
// architecture has. Draws in float, as PyTorch's vectorised normal.
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));
typedef double vd __attribute__((vector_size(64)));
typedef float hf __attribute__((vector_size(32)));

/// The release of 16 coordinates where the CPU has FMA: R = s + N·scale rounded to float once (an FMA), with
/// scale rounded up to float so the noise is never smaller than asked; then dst ← decay·dst + R·factor, which
/// only post-processes R.
#define RELEASE_FMA(in, out)                                                                                     \
    do {                                                                                                         \
        vf sv, dv;                                                                                               \
        memcpy(&sv, (in), 64);                                                                                   \
        vf released = __builtin_elementwise_fma(z0 + z1, (vf){} + scale_up, sv) * (float)factor;                 \
        if (decay != 0) { memcpy(&dv, (out), 64); released = decay * dv + released; }                           \
        memcpy((out), &released, 64);                                                                            \
    } while (0)

/// The same without FMA: s + N·scale formed in double and rounded to float once (eight lanes at a time).
#define RELEASE_DOUBLE(in, out)                                                                                  \
    do {                                                                                                         \
        vf n = z0 + z1;                                                                                          \
        for (int h = 0; h < 16; h += 8) {                                                                        \
            hf sv, dv, nh;                                                                                       \
            memcpy(&sv, (in) + h, 32);                                                                           \
            memcpy(&nh, (float *)&n + h, 32);                                                                    \
            hf released = __builtin_convertvector(__builtin_convertvector(sv, vd) + __builtin_convertvector(nh, vd) * scale, hf) \
                          * (float)factor;                                                                       \
            if (decay != 0) { memcpy(&dv, (out) + h, 32); released = decay * dv + released; }                   \
            memcpy((out) + h, &released, 32);                                                                    \
        }                                                                                                        \
    } while (0)

#define BODY(RELEASE)                                                                                               \
    float scale_up = (float)scale;                                                                               \
    if ((double)scale_up < scale) scale_up = __builtin_nextafterf(scale_up, __builtin_inff());                   \
    (void)scale_up;                                                                                              \
    for (size_t start = 0; start < count; start += 16, words += 32) {                                            \
        vu w1, w2;                                                                                               \
        memcpy(&w1, words, 64);                                                                                  \
        memcpy(&w2, words + 16, 64);                                                                             \
        /* u = (⌊w1/2⌋ + ½)·2⁻³¹ ∈ (0, 1), so R = √(−2 ln u) ≤ √(64 ln 2) ≈ 6.66. */                               \
        vf u = (__builtin_convertvector((vi)(w1 >> 1), vf) + 0.5f) * 0x1p-31f;                                   \
        /* ln u, Cephes logf without branches: u = m·2^e, m ∈ [√½, √2). */                                        \
        vi bits = (vi)u;                                                                                         \
        vi e = ((bits >> 23) & 0xff) - 126;                                                                      \
        vf m = (vf)((bits & 0x007fffff) | 0x3f000000);                                                           \
        vi small = m < 0.707106781186547524f;                                                                    \
        e += small;                                                                                              \
        vf x = (vf)(((vi)(m + m) & small) | ((vi)m & ~small)) - 1.0f;                                            \
        vf z = x * x;                                                                                            \
        vf p = 7.0376836292e-2f * x - 1.1514610310e-1f;                                                          \
        p = p * x + 1.1676998740e-1f;                                                                            \
        p = p * x - 1.2420140846e-1f;                                                                            \
        p = p * x + 1.4249322787e-1f;                                                                            \
        p = p * x - 1.6668057665e-1f;                                                                            \
        p = p * x + 2.0000714765e-1f;                                                                            \
        p = p * x - 2.4999993993e-1f;                                                                            \
        p = p * x + 3.3333331174e-1f;                                                                            \
        vf ef = __builtin_convertvector(e, vf);                                                                  \
        vf ln = x + (p * x * z + ef * -2.12194440e-4f - 0.5f * z) + ef * 0.693359375f;                           \
        vf r = __builtin_elementwise_sqrt(-2.0f * ln);                                                           \
        /* θ = 2π·w2/2³² = q·π/2 + a: q the nearest quadrant, a ∈ [−π/4, π/4) (Cephes sinf/cosf there). */       \
        vu t = w2 + 0x20000000u;                                                                                 \
        vi q = (vi)(t >> 30);                                                                                    \
        vf a = __builtin_convertvector((vi)(t & 0x3fffffffu) - 0x20000000, vf) * (float)(1.5707963267948966 / 0x1p30); \
        vf a2 = a * a;                                                                                           \
        vf s = ((-1.9515295891e-4f * a2 + 8.3321608736e-3f) * a2 - 1.6666654611e-1f) * a2 * a + a;               \
        vf c = ((2.443315711809948e-5f * a2 - 1.388731625493765e-3f) * a2 + 4.166664568298827e-2f) * a2 * a2     \
               - 0.5f * a2 + 1.0f;                                                                               \
        vi odd = -(q & 1);                                                                                       \
        vi cq = ((vi)s & odd) | ((vi)c & ~odd), sq = ((vi)c & odd) | ((vi)s & ~odd);                             \
        vu flip_c = (vu)((q + 1) & 2) << 30, flip_s = (vu)(q & 2) << 30; /* sign bits: unsigned, no overflow */  \
        vf z0 = r * (vf)(cq ^ (vi)flip_c), z1 = r * (vf)(sq ^ (vi)flip_s);                                       \
        /* Coordinate k: cosine of pair k, sine of pair k + 1 (mod 16). */                                        \
        z1 = __builtin_shufflevector(z1, z1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0);              \
        if (count - start >= 16) {                                                                               \
            RELEASE(src + start, dst + start);                                                                   \
        } else {                                                                                                 \
            float in[16] = {0}, out[16] = {0};                                                                   \
            size_t n = count - start;                                                                            \
            memcpy(in, src + start, n * sizeof(float));                                                          \
            if (decay != 0) memcpy(out, dst + start, n * sizeof(float));                                         \
            RELEASE(in, out);                                                                                    \
            memcpy(dst + start, out, n * sizeof(float));                                                         \
        }                                                                                                        \
    }

#define KERNEL(name, release)                                                                                    \
    static void name(const float *src, size_t count, const uint32_t *words, double scale, double factor,        \
                     float *dst, float decay) { BODY(release) }

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma"))) KERNEL(noised_avx512, RELEASE_FMA)
__attribute__((target("avx2,fma"))) KERNEL(noised_avx2, RELEASE_FMA)
#endif
KERNEL(noised_portable, RELEASE_DOUBLE)

conclave_gaussian_kernel conclave_gaussian_best(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw")) return conclave_gaussian_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return conclave_gaussian_avx2;
#endif
    return conclave_gaussian_portable;
}

void conclave_gaussian_noised(conclave_gaussian_kernel kernel, const float *src, size_t count, const uint32_t *words,
                              double scale, double factor, float *dst, float decay) {
#if defined(__x86_64__)
    if (kernel == conclave_gaussian_avx512) { noised_avx512(src, count, words, scale, factor, dst, decay); return; }
    if (kernel == conclave_gaussian_avx2) { noised_avx2(src, count, words, scale, factor, dst, decay); return; }
#endif
    noised_portable(src, count, words, scale, factor, dst, decay);
}
