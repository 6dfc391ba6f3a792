/* Checks Tern's aarch64 NEON kernels against a scalar reference on ragged shapes: the ARMv8.0
 * GEMMs always, the sdot GEMMs when the CPU has the dot-product extension, and the attention and
 * f16 kernels (ARMv8.0). Built by Tests/arm/run.sh with aarch64-linux-gnu-gcc -march=armv8-a and
 * run under qemu-aarch64 with a CPU that has sdot (-cpu max) and one that does not (-cpu
 * cortex-a72, the Pi 4's core); EXPECT_DOTPROD=0|1 says which, and the CPU feature detection
 * must agree. Prints "N passed, M failed". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tern_kernels.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }
static float frand(float lo, float hi) { return lo + (hi - lo) * (next() & 0xFFFFFF) / 16777216.0f; }

static uint16_t to_f16(float x) { __fp16 h = (__fp16)x; uint16_t u; memcpy(&u, &h, 2); return u; }
static float from_f16(uint16_t u) { __fp16 h; memcpy(&h, &u, 2); return (float)h; }

static int passed = 0, failed = 0;
static void check(int ok, const char *what) {
    if (ok) passed++; else { failed++; fprintf(stderr, "FAIL: %s\n", what); }
}

/* Reference for one row (lane) of an interleaved group against activation vector b. */
static double ref_dot(int q4, const uint8_t *grp, int lane, int blocks, const int8_t *aq, const float *as, const float *ass, double *mag) {
    double s = 0;
    *mag = 0;
    for (int k = 0; k < blocks; k++) {
        const uint8_t *gb = grp + k * (q4 ? 80 : 136);
        const float d = from_f16(gb[2 * lane] | gb[2 * lane + 1] << 8);
        long isum = 0;
        for (int i = 0; i < 32; i++) {
            int w;
            if (q4) {
                const int h = i / 16, j = i % 8, hi = (i % 16) >= 8;
                const uint8_t b = gb[16 + h * 32 + lane * 8 + j];
                w = hi ? b >> 4 : b & 15;
            } else {
                w = (int8_t)gb[8 + (i / 8) * 32 + lane * 8 + i % 8];
            }
            isum += (long)w * aq[k * 32 + i];
        }
        double t = (double)d * as[k] * isum;
        if (q4) {
            const float m = from_f16(gb[8 + 2 * lane] | gb[9 + 2 * lane] << 8);
            t += (double)m * ass[k];
            *mag += fabs((double)m * ass[k]);
        }
        *mag += fabs((double)d * as[k] * isum);
        s += t;
    }
    return s;
}

typedef void (*gemm_fn)(const uint8_t *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const tern_acts *, int, float *,
                        ptrdiff_t);

static void test_gemm(const char *path, gemm_fn fq8, gemm_fn fq4, int q4, int rows, int cols, int batch) {
    const int blocks = cols / 32, groups = (rows + 3) / 4, gbytes = blocks * (q4 ? 80 : 136);
    uint8_t *w = calloc((size_t)groups * gbytes, 1);
    for (int g = 0; g < groups; g++)
        for (int k = 0; k < blocks; k++) {
            uint8_t *gb = w + (size_t)g * gbytes + k * (q4 ? 80 : 136);
            for (int lane = 0; lane < 4; lane++) {
                if (4 * g + lane >= rows) continue; /* padding rows stay zero */
                uint16_t d = to_f16(frand(0.001f, 0.05f)), m = to_f16(frand(-0.3f, 0.1f));
                gb[2 * lane] = d & 0xFF; gb[2 * lane + 1] = d >> 8;
                if (q4) { gb[8 + 2 * lane] = m & 0xFF; gb[9 + 2 * lane] = m >> 8; }
            }
            for (int i = q4 ? 16 : 8; i < (q4 ? 80 : 136); i++) gb[i] = next() & 0xFF;
            if (!q4) for (int i = 8; i < 136; i++) if ((int8_t)gb[i] == -128) gb[i] = 0x81;
        }
    int8_t *aq = malloc((size_t)batch * cols);
    float *as = malloc(sizeof(float) * batch * blocks), *ass = malloc(sizeof(float) * batch * blocks);
    int32_t *bias = malloc(sizeof(int32_t) * 2 * batch * blocks);
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < blocks; k++) {
            int sum = 0;
            for (int i = 0; i < 32; i++) { aq[b * cols + k * 32 + i] = (int8_t)((int)(next() % 255) - 127); sum += aq[b * cols + k * 32 + i]; }
            as[b * blocks + k] = frand(0.01f, 0.1f);
            ass[b * blocks + k] = as[b * blocks + k] * sum;
            bias[2 * (b * blocks + k)] = bias[2 * (b * blocks + k) + 1] = 0;
        }
    tern_acts a = {.q = aq, .scale = as, .ssum = ass, .bias = bias, .hoff = NULL, .q_stride = cols, .s_stride = blocks};
    float *out = malloc(sizeof(float) * (batch * rows + 1));
    for (int i = 0; i <= batch * rows; i++) out[i] = NAN;
    out[batch * rows] = 12345;
    /* Two calls over split group ranges, as two threads would. */
    const int mid = groups / 2;
    (q4 ? fq4 : fq8)(w, gbytes, 0, mid, rows, blocks, &a, batch, out, rows);
    (q4 ? fq4 : fq8)(w, gbytes, mid, groups, rows, blocks, &a, batch, out, rows);
    int ok = out[batch * rows] == 12345;
    for (int b = 0; b < batch && ok; b++)
        for (int r = 0; r < rows; r++) {
            double mag;
            const double ref = ref_dot(q4, w + (size_t)(r / 4) * gbytes, r % 4, blocks, aq + b * cols, as + b * blocks, ass + b * blocks, &mag);
            if (!(fabs(out[b * rows + r] - ref) <= 8 * 0x1p-24 * mag + 1e-30)) {
                fprintf(stderr, "  %s %s %dx%d batch %d: out[%d][%d] = %.9g, reference %.9g\n", path, q4 ? "q4" : "q8", rows, cols, batch,
                        b, r, out[b * rows + r], ref);
                ok = 0;
                break;
            }
        }
    char what[96];
    snprintf(what, sizeof what, "%s gemm %s %dx%d batch %d", path, q4 ? "q4" : "q8", rows, cols, batch);
    check(ok, what);
    free(w); free(aq); free(as); free(ass); free(bias); free(out);
}

/* Attention for `heads` query heads sharing one KV head over `count` positions, read as two
 * segments (a wrapped ring buffer) split at `split`, f16 and q8 rows, against a double reference.
 * Scores grow along the positions (`ramp`), so the running maximum moves inside and across blocks
 * of 32 positions and the output is rescaled. */
static void attention_case(int dim, int count, int heads, int split, float ramp) {
    const int stride = dim + 8, rb = dim / 32 * 4 + dim;
    float *q = malloc(sizeof(float) * heads * dim), *out = malloc(sizeof(float) * heads * dim);
    uint16_t *k = malloc(2 * (size_t)count * stride), *v = malloc(2 * (size_t)count * stride);
    uint8_t *kq = malloc((size_t)count * rb), *vq = malloc((size_t)count * rb);
    double *sc = malloc(sizeof(double) * count);
    for (int i = 0; i < heads * dim; i++) q[i] = frand(-1, 1);
    for (int t = 0; t < count; t++)
        for (int i = 0; i < stride; i++) {
            /* key t leans toward query 0 by ramp * t / count: its scores rise with t */
            k[t * stride + i] = to_f16(frand(-1, 1) + (i < dim ? ramp * t / count * q[i] : 0));
            v[t * stride + i] = to_f16(frand(-1, 1));
        }
    /* The same positions as q8 rows [dim/32 f32 scales][dim int8]. */
    for (int t = 0; t < count; t++)
        for (int g = 0; g < dim / 32; g++) {
            float amk = 0, amv = 0;
            for (int i = 0; i < 32; i++) {
                float a = fabsf(from_f16(k[t * stride + g * 32 + i])), b = fabsf(from_f16(v[t * stride + g * 32 + i]));
                if (a > amk) amk = a;
                if (b > amv) amv = b;
            }
            float dk = amk / 127, dv = amv / 127;
            memcpy(kq + t * rb + 4 * g, &dk, 4);
            memcpy(vq + t * rb + 4 * g, &dv, 4);
            for (int i = 0; i < 32; i++) {
                kq[t * rb + dim / 8 + g * 32 + i] = (uint8_t)(int8_t)lrintf(from_f16(k[t * stride + g * 32 + i]) / dk);
                vq[t * rb + dim / 8 + g * 32 + i] = (uint8_t)(int8_t)lrintf(from_f16(v[t * stride + g * 32 + i]) / dv);
            }
        }
    for (int q8 = 0; q8 < 2; q8++) {
        float st[2 * TERN_ATTEND_MAX_HEADS];
        for (int h = 0; h < heads; h++) { st[2 * h] = -INFINITY; st[2 * h + 1] = 0; }
        for (int i = 0; i < heads * dim; i++) out[i] = 0;
        if (q8) {
            tern_attend_q8_neon(q, heads, kq, vq, rb, split, dim, 0.0625f, out, st);
            tern_attend_q8_neon(q, heads, kq + split * rb, vq + split * rb, rb, count - split, dim, 0.0625f, out, st);
        } else {
            tern_attend_f16_neon(q, heads, k, v, stride, split, dim, 0.0625f, out, st);
            tern_attend_f16_neon(q, heads, k + split * stride, v + split * stride, stride, count - split, dim, 0.0625f, out, st);
        }
        int ok = 1;
        for (int h = 0; h < heads; h++) {
            double mx = -1e300, tot = 0;
            for (int t = 0; t < count; t++) {
                double a = 0;
                for (int i = 0; i < dim; i++) {
                    double kv = from_f16(k[t * stride + i]);
                    if (q8) { float d; memcpy(&d, kq + t * rb + 4 * (i / 32), 4); kv = (double)d * (int8_t)kq[t * rb + dim / 8 + i]; }
                    a += q[h * dim + i] * kv;
                }
                sc[t] = a * 0.0625;
                if (sc[t] > mx) mx = sc[t];
            }
            for (int t = 0; t < count; t++) { sc[t] = exp(sc[t] - mx); tot += sc[t]; }
            for (int i = 0; i < dim; i++) {
                double want = 0;
                for (int t = 0; t < count; t++) {
                    double vv = from_f16(v[t * stride + i]);
                    if (q8) { float d; memcpy(&d, vq + t * rb + 4 * (i / 32), 4); vv = (double)d * (int8_t)vq[t * rb + dim / 8 + i]; }
                    want += sc[t] / tot * vv;
                }
                if (fabs(out[h * dim + i] / st[2 * h + 1] - want) > 1e-5) ok = 0;
            }
        }
        char what[96];
        snprintf(what, sizeof what, "attend_%s dim %d, %d positions (%d + %d), %d heads", q8 ? "q8" : "f16", dim, count, split,
                 count - split, heads);
        check(ok, what);
    }
    free(q); free(out); free(k); free(v); free(kq); free(vq); free(sc);
}

static void test_attention(void) {
    attention_case(256, 37, 1, 20, 0);
    attention_case(64, 100, 3, 45, 6);
    attention_case(128, 71, 8, 64, 6);
    attention_case(64, 33, 7, 1, 6);
    attention_case(96, 5, 2, 3, 0);
    float x[19];
    uint16_t h[19];
    for (int i = 0; i < 19; i++) x[i] = frand(-70000, 70000) * (i % 3 ? 1e-4f : 1);
    tern_f32_to_f16_neon(x, h, 19);
    int same = 1;
    for (int i = 0; i < 19; i++) same &= h[i] == to_f16(x[i]);
    check(same, "f32_to_f16");
}

/* Extreme values: weights -128 (q8) or 15 (q4) and activations +-127 everywhere, the largest
 * partial sums the 16-bit lanes of the ARMv8.0 kernels must hold. */
static void test_extremes(const char *path, gemm_fn fq8, gemm_fn fq4) {
    for (int q4 = 0; q4 < 2; q4++) {
        const int rows = 4, blocks = 2, cols = 64, gbytes = blocks * (q4 ? 80 : 136);
        uint8_t w[2 * 136];
        memset(w, 0, sizeof w);
        for (int k = 0; k < blocks; k++) {
            uint8_t *gb = w + k * (q4 ? 80 : 136);
            for (int lane = 0; lane < 4; lane++) { uint16_t d = to_f16(1.0f); gb[2 * lane] = d & 0xFF; gb[2 * lane + 1] = d >> 8; }
            memset(gb + (q4 ? 16 : 8), q4 ? 0xFF : 0x80, q4 ? 64 : 128);
        }
        int8_t aq[64];
        float as[2] = {1, 1}, ass[2];
        int32_t bias[4] = {0};
        for (int sign = -1; sign <= 1; sign += 2) {
            for (int i = 0; i < cols; i++) aq[i] = (int8_t)(127 * sign);
            ass[0] = ass[1] = 32.0f * 127 * sign;
            tern_acts a = {.q = aq, .scale = as, .ssum = ass, .bias = bias, .hoff = NULL, .q_stride = cols, .s_stride = blocks};
            float out[4];
            (q4 ? fq4 : fq8)(w, gbytes, 0, 1, rows, blocks, &a, 1, out, rows);
            const double want = q4 ? 64.0 * 15 * 127 * sign : 64.0 * -128 * 127 * sign;
            int ok = 1;
            for (int r = 0; r < 4; r++) ok &= out[r] == (float)want;
            char what[96];
            snprintf(what, sizeof what, "%s gemm %s extreme values, activations %+d", path, q4 ? "q4" : "q8", 127 * sign);
            check(ok, what);
        }
    }
}

/* Element-wise kernels against C written as Ops.swift / Activations.swift are (same fused
 * multiply-adds in the same order, round half to even): equal bit for bit. */
static float tanh_ref(float x) {
    const float lim = 7.90531110763549805f;
    x = fminf(fmaxf(x, -lim), lim);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    const float pc[] = {2.00018790482477e-13f, -8.60467152213735e-11f, 5.12229709037114e-08f, 1.48572235717979e-05f,
                        6.37261928875436e-04f, 4.89352455891786e-03f};
    for (int i = 0; i < 6; i++) p = fmaf(x2, p, pc[i]);
    p = x * p;
    float q = 1.19825839466702e-06f;
    const float qc[] = {1.18534705686654e-04f, 2.26843463243900e-03f, 4.89352518554385e-03f};
    for (int i = 0; i < 3; i++) q = fmaf(x2, q, qc[i]);
    return p / q;
}

/* exp as Ops.expApprox: Cephes' expf polynomial after Cody-Waite range reduction. */
static float exp_ref(float x) {
    x = fmaxf(fminf(x, 87.0f), -87.0f);
    const float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    const float z = r * r;
    float y = 1.9875691500e-4f;
    const float c[] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
    for (int i = 0; i < 5; i++) y = fmaf(y, r, c[i]);
    y = fmaf(y, z, r) + 1.0f;
    union { int32_t i; float f; } e = {.i = ((int32_t)n + 127) << 23};
    return y * e.f;
}

/* The quantizers' reference scale of n values: d = max|x| / 127, and its inverse (0 for all zeros). */
static float ref_scale(const float *x, int n, float *inv) {
    float amax = 0;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127;
    *inv = d == 0 ? 0 : 1 / d;
    return d;
}

static void test_elementwise(void) {
    enum { n = 103 };
    float g[n], u[n], want[n];
    for (int i = 0; i < n; i++) {
        g[i] = frand(-9, 9) * (i % 7 == 0 ? 0.01f : 1);
        u[i] = frand(-2, 2);
        const float inner = 0.7978845608f * fmaf(0.044715f * g[i], g[i] * g[i], g[i]);
        want[i] = (0.5f * g[i]) * (1 + tanh_ref(inner)) * u[i];
    }
    tern_gelu_mul_neon(g, u, n);
    check(memcmp(g, want, sizeof g) == 0, "gelu_mul bit-exact (103 values, ragged tail)");

    float sg[n], swant[n];
    double worst = 0;
    for (int i = 0; i < n; i++) {
        sg[i] = i % 17 == 0 ? (i % 2 ? -120.0f : 120.0f) : frand(-12, 12);
        swant[i] = sg[i] / (1 + exp_ref(-sg[i])) * u[i];
        const double x = sg[i], t = x / (1 + exp(-x)) * u[i];
        const double err = fabs(swant[i] - t) / fmax(1, fabs(t));
        if (err > worst) worst = err;
    }
    tern_silu_mul_neon(sg, u, n);
    check(memcmp(sg, swant, sizeof sg) == 0, "silu_mul bit-exact (103 values, ragged tail)");
    check(worst < 4e-7, "silu_mul within 4e-7 of libm");

    enum { cols = 96 };
    float x[cols];
    for (int i = 0; i < cols; i++) x[i] = frand(-3, 3);
    for (int i = 32; i < 64; i++) x[i] = 0; /* an all-zero group: scale 0 */
    x[70] = 127.5f / 127 * 2; x[71] = -x[70];
    int8_t q[cols], rq[cols];
    float sc[3], ss[3], rsc[3], rss[3];
    int32_t bias[6], rbias[6], hs[6], rhs[6];
    tern_quantize_neon(x, cols, q, sc, ss, bias, hs);
    for (int g2 = 0; g2 < cols / 32; g2++) {
        float inv;
        const float d = ref_scale(x + g2 * 32, 32, &inv);
        int s = 0, even = 0;
        for (int i = 0; i < 32; i++) { rq[g2 * 32 + i] = (int8_t)nearbyintf(x[g2 * 32 + i] * inv); s += rq[g2 * 32 + i]; }
        for (int c = 0; c < 4; c++) for (int j = 0; j < 4; j++) even += rq[g2 * 32 + 8 * c + j];
        rsc[g2] = d; rss[g2] = d * (float)s; rbias[2 * g2] = -128 * even; rbias[2 * g2 + 1] = -128 * (s - even);
        int h0 = 0;
        for (int i = 0; i < 16; i++) h0 += rq[g2 * 32 + i];
        rhs[2 * g2] = -32 * h0; rhs[2 * g2 + 1] = -32 * (s - h0);
    }
    check(memcmp(q, rq, sizeof q) == 0 && memcmp(sc, rsc, sizeof sc) == 0 && memcmp(ss, rss, sizeof ss) == 0 &&
          memcmp(bias, rbias, sizeof bias) == 0 && memcmp(hs, rhs, sizeof hs) == 0, "quantize bit-exact (3 groups, one all zero)");

    /* the per-256 form: one scale per 256 columns (Activations.swift quantizeSuperBlocks) */
    enum { sbcols = 512 };
    float xs[sbcols];
    for (int i = 0; i < sbcols; i++) xs[i] = i < 256 ? frand(-3, 3) : 0; /* the second super-block all zero */
    xs[40] = 5.5f; xs[41] = -xs[40];
    int8_t sq[sbcols], rsq[sbcols];
    float ssc[16], sss[16], rssc[16], rsss[16];
    int16_t sbs[16], shs[32], rsbs[16], rshs[32];
    tern_quantize_sb_neon(xs, sbcols, sq, ssc, sss, sbs, shs);
    for (int s2 = 0; s2 < sbcols / 256; s2++) {
        float inv;
        const float d = ref_scale(xs + s2 * 256, 256, &inv);
        for (int g2 = 8 * s2; g2 < 8 * s2 + 8; g2++) {
            int s = 0, h0 = 0;
            for (int i = 0; i < 32; i++) {
                rsq[g2 * 32 + i] = (int8_t)nearbyintf(xs[g2 * 32 + i] * inv);
                s += rsq[g2 * 32 + i];
                if (i == 15) h0 = s;
            }
            rssc[g2] = d; rsss[g2] = d * (float)s; rsbs[g2] = (int16_t)s;
            rshs[2 * g2] = (int16_t)h0; rshs[2 * g2 + 1] = (int16_t)(s - h0);
        }
    }
    check(memcmp(sq, rsq, sizeof sq) == 0 && memcmp(ssc, rssc, sizeof ssc) == 0 && memcmp(sss, rsss, sizeof sss) == 0 &&
          memcmp(sbs, rsbs, sizeof sbs) == 0 && memcmp(shs, rshs, sizeof shs) == 0,
          "quantize per-256 bit-exact (2 super-blocks, one all zero)");
}

/* q5 / q6 / q4k / q5k / q5_1 (docs/format.md), decoded here from the byte layout on its own. q5 group block (88
 * bytes): [d0..d3][qh 16][nibbles 64]; column 8c + j of row r is position p = 8r + j of chunk c,
 * its low bits the nibble (low for even c) of byte 24 + 32 (c / 2) + p, its fifth bit bit
 * c + 4 (p / 16) of qh byte p % 16; x = d (q - 16). q6 group super-block (840 bytes):
 * [d0..d3][scales: 8k + 4h + r][8 x (nibbles 64, qh 32)]: top bits of chunk c at bits 2c, 2c + 1
 * of qh byte p; x = d sc (q - 32). */
static int q56_value(int six, const uint8_t *grp, int lane, int col) {
    const int c = (col % 32) / 8, p = 8 * lane + col % 8;
    if (!six) {
        const uint8_t *gb = grp + (col / 32) * 88;
        const uint8_t b = gb[24 + 32 * (c / 2) + p];
        const int low = c % 2 ? b >> 4 : b & 15, hi = (gb[8 + p % 16] >> (c + 4 * (p / 16))) & 1;
        return (low | hi << 4) - 16;
    }
    const uint8_t *gb = grp + (col / 256) * 840 + 72 + ((col % 256) / 32) * 96;
    const uint8_t b = gb[32 * (c / 2) + p];
    const int low = c % 2 ? b >> 4 : b & 15, hi = (gb[64 + p] >> (2 * c)) & 3;
    return (low | hi << 4) - 32;
}

/* q4k group super-block (576 bytes): [d0..d3][dmin0..dmin3][3 planes: byte 4j + r of plane i =
 * byte 4i + j of row r's packed Q4_K scales][8 blocks x 64 nibble bytes as q4]; x = d sc q - dmin m.
 * q5k (five, 704 bytes): the same 64 bytes of factors, then 8 blocks of [qh 16][nibbles 64] whose
 * values are a q5 block's (fifth bit c + 4 (p / 16) of qh byte p % 16), unsigned. */
static double ref_dot4k(int five, const uint8_t *grp, int lane, int blocks, const int8_t *aq, const float *as, const float *ass,
                        double *mag) {
    double s = 0;
    *mag = 0;
    for (int k = 0; k < blocks; k++) {
        const uint8_t *sb = grp + (k / 8) * (five ? 704 : 576);
        uint8_t q[12];
        for (int i = 0; i < 12; i++) q[i] = sb[16 + 16 * (i / 4) + 4 * (i % 4) + lane];
        const int j = k % 8;
        const int sc = j < 4 ? q[j] & 63 : (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        const int m = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        const float d = from_f16(sb[2 * lane] | sb[2 * lane + 1] << 8), dmin = from_f16(sb[8 + 2 * lane] | sb[9 + 2 * lane] << 8);
        long isum = 0;
        for (int i = 0; i < 32; i++) {
            const int c = i / 8, p = 8 * lane + i % 8;
            const uint8_t *blk = five ? sb + 64 + 80 * j : sb + 64 + 64 * j, *nib = five ? blk + 16 : blk;
            const uint8_t b = nib[32 * (c / 2) + p];
            const int hi = five ? (blk[p % 16] >> (c + 4 * (p / 16))) & 1 : 0;
            isum += (long)((c % 2 ? b >> 4 : b & 15) | hi << 4) * aq[k * 32 + i];
        }
        const double t = (double)d * sc * as[k] * isum, u = (double)dmin * m * ass[k];
        s += t - u;
        *mag += fabs(t) + fabs(u);
    }
    return s;
}

/* q5_1 group block (96 bytes): [d0..d3][m0..m3][qh 16][nibbles 64], the values placed as in a
 * q5 block (from byte 16 on); x = d q + m, q unsigned. */
static double ref_dot51(const uint8_t *grp, int lane, int blocks, const int8_t *aq, const float *as, const float *ass, double *mag) {
    double s = 0;
    *mag = 0;
    for (int k = 0; k < blocks; k++) {
        const uint8_t *gb = grp + k * 96;
        const float d = from_f16(gb[2 * lane] | gb[2 * lane + 1] << 8), m = from_f16(gb[8 + 2 * lane] | gb[9 + 2 * lane] << 8);
        long isum = 0;
        for (int i = 0; i < 32; i++) {
            const int c = i / 8, p = 8 * lane + i % 8;
            const uint8_t b = gb[32 + 32 * (c / 2) + p];
            const int hi = (gb[16 + p % 16] >> (c + 4 * (p / 16))) & 1;
            isum += (long)((c % 2 ? b >> 4 : b & 15) | hi << 4) * aq[k * 32 + i];
        }
        const double t = (double)d * as[k] * isum, u = (double)m * ass[k];
        s += t + u;
        *mag += fabs(t) + fabs(u);
    }
    return s;
}

static double ref_dot56(int six, const uint8_t *grp, int lane, int blocks, const int8_t *aq, const float *as, double *mag) {
    double s = 0;
    *mag = 0;
    for (int k = 0; k < blocks; k++) {
        const uint8_t *sc = six ? grp + (k / 8) * 840 : grp + k * 88;
        const float d = from_f16(sc[2 * lane] | sc[2 * lane + 1] << 8);
        long isum = 0;
        for (int h = 0; h < 2; h++) {
            long hsum = 0;
            for (int i = 16 * h; i < 16 * h + 16; i++) hsum += (long)q56_value(six, grp, lane, 32 * k + i) * aq[k * 32 + i];
            isum += six ? (int8_t)sc[8 + 8 * (k % 8) + 4 * h + lane] * hsum : hsum;
        }
        s += (double)d * as[k] * isum;
        *mag += fabs((double)d * as[k] * isum);
    }
    return s;
}

/* kind 0: q5, 1: q6, 2: q4k, 3: q5k, 4: q5_1. sb (q6, q4k): the activations also in the per-256 form
 * (tern_acts sb_*), which those kernels then read: one scale per super-block, so the per-32 fields the
 * reference reads hold the same values; vector 0 all 127, the largest sums. */
static void test_gemm56(const char *path, gemm_fn f, int kind, int rows, int cols, int batch, int sb) {
    static const char *names[] = {"q5", "q6", "q4k", "q5k", "q5_1"};
    const int six = kind == 1, sbytes = kind == 0 ? 88 : kind == 1 ? 840 : kind == 2 ? 576 : kind == 3 ? 704 : 96;
    const int per32 = kind == 0 || kind == 4;
    const int blocks = cols / 32, groups = (rows + 3) / 4, gbytes = (per32 ? blocks : cols / 256) * sbytes;
    uint8_t *w = calloc((size_t)groups * gbytes, 1);
    for (int g = 0; g < groups; g++) {
        uint8_t *grp = w + (size_t)g * gbytes;
        for (int i = 0; i < gbytes; i++) grp[i] = next() & 0xFF;
        for (int sbk = 0; sbk < (per32 ? blocks : cols / 256); sbk++) {
            uint8_t *gb = grp + sbk * sbytes;
            for (int lane = 0; lane < 4; lane++) {
                const uint16_t d = 4 * g + lane < rows ? to_f16(frand(0.0005f, 0.02f)) : 0;
                const uint16_t dm = 4 * g + lane < rows ? to_f16(frand(0.0005f, 0.02f)) : 0;
                gb[2 * lane] = d & 0xFF; gb[2 * lane + 1] = d >> 8;
                if (kind >= 2) { gb[8 + 2 * lane] = dm & 0xFF; gb[9 + 2 * lane] = dm >> 8; }
            }
        }
    }
    int8_t *aq = malloc((size_t)batch * cols);
    float *as = malloc(sizeof(float) * batch * blocks), *ass = malloc(sizeof(float) * batch * blocks);
    int32_t *hs = malloc(sizeof(int32_t) * 2 * batch * blocks);
    int16_t *bsum = malloc(sizeof(int16_t) * batch * blocks), *hsum = malloc(sizeof(int16_t) * 2 * batch * blocks);
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < blocks; k++) {
            int h0 = 0, h1 = 0;
            for (int i = 0; i < 32; i++) {
                const int8_t v = sb && b == 0 ? 127 : (int8_t)((int)(next() % 255) - 127);
                aq[b * cols + k * 32 + i] = v;
                if (i < 16) h0 += v; else h1 += v;
            }
            as[b * blocks + k] = sb && k % 8 ? as[b * blocks + k - 1] : frand(0.01f, 0.1f);
            ass[b * blocks + k] = as[b * blocks + k] * (h0 + h1);
            int32_t *o = hs + 2 * (b * blocks + k);
            o[0] = -32 * h0; o[1] = -32 * h1;
            bsum[b * blocks + k] = (int16_t)(h0 + h1);
            hsum[2 * (b * blocks + k)] = (int16_t)h0;
            hsum[2 * (b * blocks + k) + 1] = (int16_t)h1;
        }
    tern_acts a = {.q = aq, .scale = as, .ssum = ass, .bias = NULL, .hoff = hs, .q_stride = cols, .s_stride = blocks};
    if (sb) {
        a.sb_q = aq; a.sb_scale = as; a.sb_ssum = ass; a.sb_bsum = bsum; a.sb_hsum = hsum;
    }
    float *out = malloc(sizeof(float) * (batch * rows + 1));
    for (int i = 0; i <= batch * rows; i++) out[i] = NAN;
    out[batch * rows] = 12345;
    const int mid = groups / 2;
    f(w, gbytes, 0, mid, rows, blocks, &a, batch, out, rows);
    f(w, gbytes, mid, groups, rows, blocks, &a, batch, out, rows);
    int ok = out[batch * rows] == 12345;
    for (int b = 0; b < batch && ok; b++)
        for (int r = 0; r < rows; r++) {
            double mag;
            const uint8_t *grp = w + (size_t)(r / 4) * gbytes;
            const double ref = kind == 4 ? ref_dot51(grp, r % 4, blocks, aq + b * cols, as + b * blocks, ass + b * blocks, &mag)
                             : kind >= 2 ? ref_dot4k(kind == 3, grp, r % 4, blocks, aq + b * cols, as + b * blocks, ass + b * blocks, &mag)
                                         : ref_dot56(six, grp, r % 4, blocks, aq + b * cols, as + b * blocks, &mag);
            if (!(fabs(out[b * rows + r] - ref) <= 8 * 0x1p-24 * mag + 1e-30)) {
                fprintf(stderr, "  %s %s %dx%d batch %d: out[%d][%d] = %.9g, reference %.9g\n", path, names[kind], rows, cols,
                        batch, b, r, out[b * rows + r], ref);
                ok = 0;
                break;
            }
        }
    char what[96];
    snprintf(what, sizeof what, "%s gemm %s%s %dx%d batch %d", path, names[kind], sb ? " per-256" : "", rows, cols, batch);
    check(ok, what);
    free(w); free(aq); free(as); free(ass); free(hs); free(bsum); free(hsum); free(out);
}

static void test_paths56(const char *path, gemm_fn fq5, gemm_fn fq6, gemm_fn fq4k, gemm_fn fq5k, gemm_fn fq51) {
    const int shapes[][2] = {{1, 256}, {2, 512}, {3, 768}, {5, 2048}, {66, 256}, {13, 4864}};
    const int batches[] = {1, 2, 3, 4, 5, 17};
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (unsigned b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            test_gemm56(path, fq5, 0, shapes[s][0], shapes[s][1] == 256 ? 96 : shapes[s][1], batches[b], 0);
            for (int sb = 0; sb < 2; sb++) {
                test_gemm56(path, fq6, 1, shapes[s][0], shapes[s][1], batches[b], sb);
                test_gemm56(path, fq4k, 2, shapes[s][0], shapes[s][1], batches[b], sb);
            }
            test_gemm56(path, fq5k, 3, shapes[s][0], shapes[s][1], batches[b], 0);
            test_gemm56(path, fq51, 4, shapes[s][0], shapes[s][1] == 256 ? 96 : shapes[s][1], batches[b], 0);
        }
}

static void test_paths(const char *path, gemm_fn fq8, gemm_fn fq4) {
    const int shapes[][2] = {{1, 32}, {2, 64}, {3, 96}, {5, 640}, {7, 160}, {13, 2048}, {66, 640}, {129, 96}};
    const int batches[] = {1, 2, 3, 4, 5, 8, 17};
    for (int q4 = 0; q4 < 2; q4++)
        for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (unsigned b = 0; b < sizeof batches / sizeof batches[0]; b++) test_gemm(path, fq8, fq4, q4, shapes[s][0], shapes[s][1], batches[b]);
    test_extremes(path, fq8, fq4);
}

int main(void) {
    const int dot = tern_cpu_has_neon_dotprod(), simd = tern_cpu_has_neon();
    const char *expect = getenv("EXPECT_DOTPROD");
    printf("HWCAP: asimd %d, asimddp %d (expected %s)\n", simd, dot, expect ? expect : "unset");
    check(simd == 1, "Advanced SIMD detected");
    if (expect) check(dot == atoi(expect), "dot product detected as expected (the sdot path is chosen only where it runs)");
    test_paths("neon-v8", tern_gemm_q8_neon_v8, tern_gemm_q4_neon_v8);
    if (dot) test_paths("neon", tern_gemm_q8_neon, tern_gemm_q4_neon);
    test_paths56("neon-v8", tern_gemm_q5_neon_v8, tern_gemm_q6_neon_v8, tern_gemm_q4k_neon_v8, tern_gemm_q5k_neon_v8,
                 tern_gemm_q5_1_neon_v8);
    if (dot) test_paths56("neon", tern_gemm_q5_neon, tern_gemm_q6_neon, tern_gemm_q4k_neon, tern_gemm_q5k_neon,
                          tern_gemm_q5_1_neon);
    test_attention();
    test_elementwise();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
