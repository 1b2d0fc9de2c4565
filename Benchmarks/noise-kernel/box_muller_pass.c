// Times the DP-SGD noise kernel (Sources/CGaussian) alone, each build this CPU runs, on fixed pseudo-random
// words (the keystream is not part of this figure), and checks its output against libm's double-precision
// Box–Muller for the same words. A measuring tool, not built into Conclave:
//   /opt/swift/usr/bin/clang -O2 -I Sources/CGaussian/include Benchmarks/noise-kernel/box_muller_pass.c \
//       Sources/CGaussian/gaussian.c -lm -o /tmp/box_muller_pass && D=8192 /tmp/box_muller_pass
// D is the coordinates per call (default 101,770, the 784-128-10 model); ~23.9 M coordinates in all, the noise
// of one 60,000-record epoch at batch 256. The pass folds into a buffer with decay 0.5, as DP-SGD's step does.
#include "conclave_gaussian.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    size_t d = getenv("D") ? (size_t)atol(getenv("D")) : 101770, steps = 23900000 / d, nw = conclave_gaussian_words(d);
    uint32_t *w = malloc(nw * 4);
    float *src = calloc(d, 4), *dst = calloc(d, 4);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nw; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; w[i] = (uint32_t)(s >> 32); }
    const char *names[] = {"portable", "avx2", "avx512"};
    for (int k = 0; k <= (int)conclave_gaussian_best(); k++) {
        double best = 1e9;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            for (size_t i = 0; i < steps; i++) conclave_gaussian_noised(k, src, d, w, 1.0 / sqrt(2), 1.0, dst, 0.5f);
            double t = now() - t0;
            if (t < best) best = t;
        }
        double worst = 0;
        conclave_gaussian_noised(k, src, d, w, 1.0, 1.0, dst, 0);
        for (size_t i = 0; i < d; i++) {
            const uint32_t *b = w + 32 * (i / 16);
            int j = i % 16, j1 = (j + 1) % 16;
            double r0 = sqrt(-2 * log(((double)(b[j] >> 1) + 0.5) * 0x1p-31));
            double r1 = sqrt(-2 * log(((double)(b[j1] >> 1) + 0.5) * 0x1p-31));
            double ref = r0 * cos(2 * M_PI * b[16 + j] * 0x1p-32) + r1 * sin(2 * M_PI * b[16 + j1] * 0x1p-32);
            if (fabs(ref - dst[i]) > worst) worst = fabs(ref - dst[i]);
        }
        printf("%-8s %.4f s for %zu × %zu coordinates: %.3f ns per coordinate; worst |error| vs libm %.2g\n",
               names[k], best, steps, d, best / steps / d * 1e9, worst);
    }
    free(w); free(src); free(dst);
    return 0;
}
