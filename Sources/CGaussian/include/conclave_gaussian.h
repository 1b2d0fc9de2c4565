// DP-SGD's per-step Gaussian noise, vectorised: the loop Swift cannot compile for AVX-512 or AVX2 without
// making the whole binary require them, so it lives here, built three times and chosen at run time.
#ifndef CONCLAVE_GAUSSIAN_H
#define CONCLAVE_GAUSSIAN_H

#include <stddef.h>
#include <stdint.h>

/// The kernels, widest first. `conclave_gaussian_best` is the widest this CPU (and its OS) runs.
typedef enum {
    conclave_gaussian_portable = 0,
    conclave_gaussian_avx2 = 1,
    conclave_gaussian_avx512 = 2,
} conclave_gaussian_kernel;

conclave_gaussian_kernel conclave_gaussian_best(void);

/// Random words the kernels read for `count` coordinates: 32 per block of 16 coordinates.
static inline size_t conclave_gaussian_words(size_t count) { return (count + 15) / 16 * 32; }

/// dst[i] ← decay·dst[i] + R_i·factor, where R_i = src[i] + scale·(z_i + z'_i) rounded to float once (an FMA with
/// scale rounded up to float; in double where the kernel has no FMA) and z_i, z'_i are independent standard
/// normals by Box–Muller from `words` (conclave_gaussian_words(count) of them). With decay 0, dst is only written
/// (it may be src). Each block of 16 coordinates reads 16 radius words then 16 angle words; pair k gives
/// R_k·cos θ_k and R_k·sin θ_k, and coordinate k sums the cosine of pair k and the sine of pair k+1 (mod 16), so
/// no coordinate's two draws share a pair (R(cos θ + sin θ) would be one draw in disguise).
void conclave_gaussian_noised(conclave_gaussian_kernel kernel, const float *src, size_t count, const uint32_t *words,
                              double scale, double factor, float *dst, float decay);

#endif
