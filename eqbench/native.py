"""Native CPU kernels for the evaluation's hot loops, compiled on first use and called through ctypes.

The C source below is compiled once per machine with the system C compiler (`cc`, or $CC) into the user
cache folder ($XDG_CACHE_HOME or ~/.cache)/eqbench/native/<digest>/ (the digest covers the source, the
compiler's version, the flags and the CPU's feature flags, so a shared home folder never loads a library
built for another CPU); the library is written to a temporary name and renamed, so concurrent first runs
are safe. Where no compiler works (or EQBENCH_NATIVE=0), `lib()` is None and the callers use their torch
code, which computes the same quantities (tests compare the two paths).

Kernels:
  eqb_ssim_sum  the sum of the 'valid' SSIM map of two float64 images (eqbench.metrics.core.ssim): one
                pass over the input with the separable Gaussian window accumulated in cache-resident row
                buffers, the four filtered maps and the SSIM formula fused (nothing image-sized allocated).
  eqb_resample_rows / eqb_resample_cols
                one 1-D pass of MATLAB's bicubic imresize (eqbench.data.resize) along rows / columns from
                the taps and weights of `contributions`, optionally with the uint8 rounding fused.
  eqb_score_rgb the scoring domain of an RGB output (clamp, x255, 8-bit rounding), its Y and the
                reference's, and the squared-error sums of PSNR-RGB and PSNR-Y, in one pass over the
                border-shaved region (eqbench.scoring.score); SSIM then runs on the two Y images.
  eqb_involution  EQSR's 3x3 involution (baselines/eqsr_kriging.py), equal to its torch code bit for bit.
  eqb_wino_in / eqb_wino_out
                the input and output transforms of a Winograd F(4x4, 3x3) convolution (eqbench/fastconv.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

SOURCE = r"""
#include <math.h>
#include <stddef.h>
#include <string.h>

/* 4 doubles: GCC/Clang generic vectors, lowered to the widest unit -march allows. */
typedef double v4 __attribute__((vector_size(32)));
static inline v4 ld(const double *p) { v4 v; memcpy(&v, p, sizeof v); return v; }
static inline void st(double *p, v4 v) { memcpy(p, &v, sizeof v); }

/* Sum of the 'valid' SSIM map of float64 images x and y (h rows, w columns, unit column stride, row
 * strides sx and sy in elements); k-tap window g applied separably; constants c1, c2:
 *   ((2 mx my + c1)(2 cov + c2)) / ((mx^2 + my^2 + c1)(var_x + var_y + c2)).
 * For each output row, the window's rows are filtered down in blocks of 8 columns held in registers
 * (x, y, x^2 + y^2 and xy), then across in blocks of 4 with the formula applied as each block is done.
 * scratch: 4 * (w + 8) doubles. */
double eqb_ssim_sum(const double *x, ptrdiff_t sx, const double *y, ptrdiff_t sy, ptrdiff_t h, ptrdiff_t w,
                    const double *g, int k, double c1, double c2, double *scratch)
{
    const ptrdiff_t ho = h - k + 1, wo = w - k + 1, wp = w + 8;
    double *restrict vx = scratch, *restrict vy = scratch + wp, *restrict vs = scratch + 2 * wp,
           *restrict vp = scratch + 3 * wp;
    double total = 0.0;
    for (ptrdiff_t i = 0; i < ho; i++) {
        const double *x0 = x + i * sx, *y0 = y + i * sy;
        ptrdiff_t j = 0;
        for (; j + 8 <= w; j += 8) {
            v4 ax0 = {0}, ax1 = {0}, ay0 = {0}, ay1 = {0}, as0 = {0}, as1 = {0}, ap0 = {0}, ap1 = {0};
            for (int t = 0; t < k; t++) {
                const double gt = g[t], *xr = x0 + t * sx + j, *yr = y0 + t * sy + j;
                const v4 a0 = ld(xr), a1 = ld(xr + 4), b0 = ld(yr), b1 = ld(yr + 4);
                ax0 += gt * a0; ax1 += gt * a1; ay0 += gt * b0; ay1 += gt * b1;
                as0 += gt * (a0 * a0 + b0 * b0); as1 += gt * (a1 * a1 + b1 * b1);
                ap0 += gt * (a0 * b0); ap1 += gt * (a1 * b1);
            }
            st(vx + j, ax0); st(vx + j + 4, ax1); st(vy + j, ay0); st(vy + j + 4, ay1);
            st(vs + j, as0); st(vs + j + 4, as1); st(vp + j, ap0); st(vp + j + 4, ap1);
        }
        for (; j < w; j++) {
            double ax = 0, ay = 0, as = 0, ap = 0;
            for (int t = 0; t < k; t++) {
                const double gt = g[t], a = x0[t * sx + j], b = y0[t * sy + j];
                ax += gt * a; ay += gt * b; as += gt * (a * a + b * b); ap += gt * (a * b);
            }
            vx[j] = ax; vy[j] = ay; vs[j] = as; vp[j] = ap;
        }
        v4 acc = {0};
        j = 0;
        for (; j + 4 <= wo; j += 4) {
            v4 mx = {0}, my = {0}, ms = {0}, mp = {0};
            for (int t = 0; t < k; t++) {
                const double gt = g[t];
                mx += gt * ld(vx + j + t); my += gt * ld(vy + j + t);
                ms += gt * ld(vs + j + t); mp += gt * ld(vp + j + t);
            }
            const v4 mxy = mx * my, msq = mx * mx + my * my;
            acc += ((2.0 * mxy + c1) * (2.0 * (mp - mxy) + c2)) / ((msq + c1) * (ms - msq + c2));
        }
        double row = 0.0;
        for (; j < wo; j++) {
            double mx = 0, my = 0, ms = 0, mp = 0;
            for (int t = 0; t < k; t++) {
                const double gt = g[t];
                mx += gt * vx[j + t]; my += gt * vy[j + t]; ms += gt * vs[j + t]; mp += gt * vp[j + t];
            }
            const double mxy = mx * my, msq = mx * mx + my * my;
            row += ((2.0 * mxy + c1) * (2.0 * (mp - mxy) + c2)) / ((msq + c1) * (ms - msq + c2));
        }
        total += row + (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    return total;
}

/* floor(v + 0.5) clipped to [0, 255]: MATLAB's uint8 cast, over a row. */
static void round_clip_row(double *restrict y, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++) {
        const double v = floor(y[j] + 0.5);
        y[j] = v < 0.0 ? 0.0 : (v > 255.0 ? 255.0 : v);
    }
}

/* One 1-D resampling pass along the rows axis: x (n, in_len, w) -> y (n, out_len, w), both contiguous;
 * output row o = sum over its p taps t of wt[o, t] * input row ind[o, t] (taps in order), accumulated
 * in registers over blocks of 8 columns. round != 0: then MATLAB's uint8 cast. */
void eqb_resample_rows(const double *x, double *y, ptrdiff_t n, ptrdiff_t in_len, ptrdiff_t out_len, ptrdiff_t w,
                       const long long *ind, const double *wt, int p, int round)
{
    for (ptrdiff_t c = 0; c < n; c++) {
        const double *xc = x + c * in_len * w;
        for (ptrdiff_t o = 0; o < out_len; o++) {
            double *restrict yr = y + (c * out_len + o) * w;
            const long long *io = ind + o * p;
            const double *wo = wt + o * p;
            ptrdiff_t j = 0;
            for (; j + 8 <= w; j += 8) {
                const double *x0 = xc + io[0] * w + j;
                v4 a0 = wo[0] * ld(x0), a1 = wo[0] * ld(x0 + 4);
                for (int t = 1; t < p; t++) {
                    const double *xr = xc + io[t] * w + j;
                    a0 += wo[t] * ld(xr);
                    a1 += wo[t] * ld(xr + 4);
                }
                st(yr + j, a0);
                st(yr + j + 4, a1);
            }
            for (; j < w; j++) {
                double v = wo[0] * xc[io[0] * w + j];
                for (int t = 1; t < p; t++)
                    v += wo[t] * xc[io[t] * w + j];
                yr[j] = v;
            }
            if (round)
                round_clip_row(yr, w);
        }
    }
}

/* The same pass along the last axis: x (rows, in_len) -> y (rows, out_len), both contiguous. Outputs
 * whose taps are a contiguous run of inputs (all but the mirrored borders: contiguous[o] != 0, first
 * input lo[o]) take a dot product of 4-wide loads with their weights zero-padded to p4 taps (wpad,
 * (out_len, p4)); the others gather with ind/wt (out_len, p). */
void eqb_resample_cols(const double *x, double *y, ptrdiff_t rows, ptrdiff_t in_len, ptrdiff_t out_len,
                       const long long *ind, const double *wt, int p, const long long *lo,
                       const signed char *contiguous, const double *wpad, int p4, int round)
{
    for (ptrdiff_t r = 0; r < rows; r++) {
        const double *restrict xr = x + r * in_len;
        double *restrict yr = y + r * out_len;
        for (ptrdiff_t o = 0; o < out_len; o++) {
            if (contiguous[o]) {
                const double *xs = xr + lo[o], *wo = wpad + o * p4;
                v4 acc = ld(wo) * ld(xs);
                for (int t = 4; t < p4; t += 4)
                    acc += ld(wo + t) * ld(xs + t);
                yr[o] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            } else {
                const long long *io = ind + o * p;
                const double *wo = wt + o * p;
                double v = wo[0] * xr[io[0]];
                for (int t = 1; t < p; t++)
                    v += wo[t] * xr[io[t]];
                yr[o] = v;
            }
        }
        if (round)
            round_clip_row(yr, out_len);
    }
}

/* Squared-difference sum of two rows, in 4 vector lanes. */
static double sum_sq_diff(const double *a, const double *b, ptrdiff_t n)
{
    v4 acc = {0};
    ptrdiff_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const v4 d = ld(a + j) - ld(b + j);
        acc += d * d;
    }
    double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; j < n; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

#if defined(__GNUC__) && !defined(__clang__)
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define NO_CONTRACT
#endif

/* The scoring domain of one RGB output and what PSNR-Y / PSNR-RGB / SSIM-Y need, in one pass over the
 * border-shaved region (rows [sh, h - sh), columns [sw, w - sw)):
 *   q = clamp(sr, 0, 1) * 255, then floor(q + 0.5) if quantize (MATLAB's uint8 cast), as separate
 *       roundings (no fused multiply-add: the same values as eqbench.scoring.to_scoring_domain);
 *   sums[0] += (q - hr)^2 over the three channels; Y of q and of hr (BT.601; round_y: MATLAB's
 *   rgb2ycbcr on 8-bit values, computed exactly in integers, else 16 + (65.481 r + 128.553 g +
 *   24.966 b) / 255) into y_sr, y_hr (rows of w - 2 sw); sums[1] += (y_sr - y_hr)^2.
 * sr: (3, h, w) contiguous, float64 (sr64) or float32 (sr32, the other NULL); hr: (3, h, w) float64.
 * rowbuf: 3 * w doubles. round_y needs integer-valued q and hr (quantize, 8-bit references). */
NO_CONTRACT void eqb_score_rgb(const double *sr64, const float *sr32, const double *hr, ptrdiff_t h, ptrdiff_t w,
                               ptrdiff_t sh, ptrdiff_t sw, int quantize, int round_y, double *y_sr, double *y_hr,
                               double *sums, double *rowbuf)
{
    const ptrdiff_t plane = h * w, n = w - 2 * sw;
    const double a0 = 65.481 / 255.0, a1 = 128.553 / 255.0, a2 = 24.966 / 255.0;
    double sq_rgb = 0.0, sq_y = 0.0;
    for (ptrdiff_t i = sh; i < h - sh; i++) {
        const ptrdiff_t off = i * w + sw;
        for (int c = 0; c < 3; c++) {
            double *restrict q = rowbuf + c * w;
            if (sr64) {
                const double *restrict src = sr64 + c * plane + off;
                for (ptrdiff_t j = 0; j < n; j++) {
                    const double v = src[j];
                    q[j] = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
                }
            } else {
                const float *restrict src = sr32 + c * plane + off;
                for (ptrdiff_t j = 0; j < n; j++) {
                    const double v = (double)src[j];
                    q[j] = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
                }
            }
            for (ptrdiff_t j = 0; j < n; j++)
                q[j] = q[j] * 255.0;
            if (quantize)
                for (ptrdiff_t j = 0; j < n; j++)
                    q[j] = floor(q[j] + 0.5);
            sq_rgb += sum_sq_diff(q, hr + c * plane + off, n);
        }
        const double *restrict r = rowbuf, *restrict g = rowbuf + w, *restrict b = rowbuf + 2 * w;
        const double *restrict hr0 = hr + off, *restrict hg = hr + plane + off, *restrict hb = hr + 2 * plane + off;
        double *restrict ys = y_sr + (i - sh) * n, *restrict yh = y_hr + (i - sh) * n;
        if (round_y)
            for (ptrdiff_t j = 0; j < n; j++) {
                ys[j] = floor((65481.0 * r[j] + 128553.0 * g[j] + 24966.0 * b[j] + 127500.0) / 255000.0) + 16.0;
                yh[j] = floor((65481.0 * hr0[j] + 128553.0 * hg[j] + 24966.0 * hb[j] + 127500.0) / 255000.0)
                        + 16.0;
            }
        else
            for (ptrdiff_t j = 0; j < n; j++) {
                ys[j] = 16.0 + (a0 * r[j] + a1 * g[j] + a2 * b[j]);
                yh[j] = 16.0 + (a0 * hr0[j] + a1 * hg[j] + a2 * hb[j]);
            }
        sq_y += sum_sq_diff(ys, yh, n);
    }
    sums[0] = sq_rgb;
    sums[1] = sq_y;
}

/* EQSR's involution (baselines/eqsr_kriging.involution), float32, for one call:
 *   out[b, c] = sum over the 3x3 taps t in kh-major order of K[b, g(c), t] * u[b, c] shifted by (t/3 - 1,
 *   t%3 - 1), zero-padded, where K = kern (B, G, 9, H, W), times dist (B, 1, 9, H, W) if given, and g(c) =
 *   c / (C/G). The same roundings as the torch code: K = kern * dist rounded, then out = K0 u0 and
 *   out = fma(Ki, ui, out) in order (torch's addcmul_ is one fused multiply-add per element on CPUs with
 *   FMA; fma(K0, u0, 0) is K0 u0); taps that fall in the padding add zero and are skipped.
 * Only groups [g0, g1) are computed (callers split the groups over threads, each with its own kbuf).
 * u, out: (B, C, H, W); all contiguous. kbuf: 9 * w floats (one image row of K). */
NO_CONTRACT void eqb_involution(const float *u, const float *kern, const float *dist, float *out, ptrdiff_t nb,
                                ptrdiff_t c, ptrdiff_t g, ptrdiff_t h, ptrdiff_t w, ptrdiff_t g0, ptrdiff_t g1,
                                float *kbuf)
{
    const ptrdiff_t cpg = c / g, plane = h * w;
    for (ptrdiff_t b = 0; b < nb; b++)
        for (ptrdiff_t gi = g0; gi < g1; gi++) {
            const float *kg = kern + (b * g + gi) * 9 * plane;
            const float *db = dist ? dist + b * 9 * plane : NULL;
            for (ptrdiff_t i = 0; i < h; i++) {
                for (int t = 0; t < 9; t++) {
                    const float *restrict kr = kg + t * plane + i * w;
                    float *restrict kb = kbuf + t * w;
                    if (db) {
                        const float *restrict dr = db + t * plane + i * w;
                        for (ptrdiff_t j = 0; j < w; j++)
                            kb[j] = kr[j] * dr[j];
                    } else {
                        for (ptrdiff_t j = 0; j < w; j++)
                            kb[j] = kr[j];
                    }
                }
                for (ptrdiff_t cc = 0; cc < cpg; cc++) {
                    const ptrdiff_t ch = b * c + gi * cpg + cc;
                    const float *uc = u + ch * plane;
                    float *restrict o = out + ch * plane + i * w;
                    for (ptrdiff_t j = 0; j < w; j++)
                        o[j] = 0.0f;
                    for (int t = 0; t < 9; t++) {
                        const ptrdiff_t r = i + t / 3 - 1, s = t % 3 - 1;
                        if (r < 0 || r >= h)
                            continue;
                        const float *restrict ur = uc + r * w;
                        const float *restrict kb = kbuf + t * w;
                        const ptrdiff_t j0 = s < 0 ? 1 : 0, j1 = s > 0 ? w - 1 : w;
                        for (ptrdiff_t j = j0; j < j1; j++)
                            o[j] = fmaf(kb[j], ur[j + s], o[j]);
                    }
                }
            }
        }
}

/* Winograd F(4x4, 3x3) convolution (Lavin & Gray 2016), channels-last float32, zero padding 1, in three
 * steps: eqb_wino_in transforms the input tiles, a batched matrix product (torch.bmm) multiplies each of
 * the 36 transformed positions by the transformed weights, eqb_wino_out transforms back.
 *   input transform  B^T d B, d the 6x6 input patch of a 4x4 output tile
 *   output transform A^T m A (+ bias, optional ReLU)
 * Vectorised over channels (16 at a time, then one by one). Out-of-image taps read `zero` (C zeros);
 * out-of-image outputs of edge tiles go to `sink` (Co floats). One call covers the band of tile rows
 * [ty0, ty1), tw tiles per row, T = (ty1 - ty0) tw tiles; V is 36 x T x C and M 36 x T x Co.
 * With `sums` (Co doubles), eqb_wino_out also adds up every output channel over the written pixels (a tile's
 * 16 in float32, then into the double total), for a global average pool that follows the convolution. */
typedef float v16 __attribute__((vector_size(64)));
typedef int i16 __attribute__((vector_size(64)));
static inline v16 ldv16(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
static inline void stv16(float *p, v16 v) { memcpy(p, &v, sizeof v); }
static inline float ld1(const float *p) { return *p; }
static inline void st1(float *p, float v) { *p = v; }
static inline v16 relu16(v16 v) { v16 z = {0}; i16 m = v > z; return (v16)((i16)v & m); }
static inline float relu1(float v) { return v > 0 ? v : 0; }

#define WINO_BT(d0, d1, d2, d3, d4, d5, o) do { \
    o[0] = 4 * d0 - 5 * d2 + d4; o[1] = d3 + d4 - 4 * (d1 + d2); o[2] = 4 * (d1 - d2) - d3 + d4; \
    o[3] = d4 - d2 - 2 * (d1 - d3); o[4] = 2 * (d1 - d3) - d2 + d4; o[5] = 4 * d1 - 5 * d3 + d5; } while (0)
#define WINO_AT(m0, m1, m2, m3, m4, m5, o) do { \
    __typeof__(m0) p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4; \
    o[0] = m0 + p12 + p34; o[1] = n12 + 2 * n34; o[2] = p12 + 4 * p34; o[3] = n12 + 8 * n34 + m5; } while (0)

#define WINO_IN_BODY(T, LD, ST, c) do { \
    T u[6][6]; \
    for (int s = 0; s < 6; s++) { \
        T o[6]; \
        WINO_BT(LD(p[s] + c), LD(p[6 + s] + c), LD(p[12 + s] + c), LD(p[18 + s] + c), LD(p[24 + s] + c), \
                LD(p[30 + s] + c), o); \
        for (int i = 0; i < 6; i++) u[i][s] = o[i]; } \
    for (int i = 0; i < 6; i++) { \
        T o[6]; \
        WINO_BT(u[i][0], u[i][1], u[i][2], u[i][3], u[i][4], u[i][5], o); \
        for (int j = 0; j < 6; j++) ST(out + (i * 6 + j) * ks + c, o[j]); } } while (0)

void eqb_wino_in(const float *x, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t H, ptrdiff_t W, ptrdiff_t C,
                 ptrdiff_t ty0, ptrdiff_t ty1, ptrdiff_t tw, float *restrict V, const float *zero)
{
    const ptrdiff_t ks = (ty1 - ty0) * tw * C;
    for (ptrdiff_t ty = ty0; ty < ty1; ty++)
        for (ptrdiff_t tx = 0; tx < tw; tx++) {
            const float *p[36];
            for (int r = 0; r < 6; r++)
                for (int s = 0; s < 6; s++) {
                    const ptrdiff_t yy = 4 * ty - 1 + r, xx = 4 * tx - 1 + s;
                    p[r * 6 + s] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? x + yy * sh + xx * sw : zero;
                }
            float *restrict out = V + ((ty - ty0) * tw + tx) * C;
            ptrdiff_t c = 0;
            for (; c + 16 <= C; c += 16)
                WINO_IN_BODY(v16, ldv16, stv16, c);
            for (; c < C; c++)
                WINO_IN_BODY(float, ld1, st1, c);
        }
}

#define WINO_OUT_BODY(T, LD, ST, RELU, c, b) do { \
    T a[4][6]; \
    for (int s = 0; s < 6; s++) { \
        T o[4]; \
        WINO_AT(LD(m + s * ks + c), LD(m + (6 + s) * ks + c), LD(m + (12 + s) * ks + c), \
                LD(m + (18 + s) * ks + c), LD(m + (24 + s) * ks + c), LD(m + (30 + s) * ks + c), o); \
        for (int i = 0; i < 4; i++) a[i][s] = o[i]; } \
    for (int i = 0; i < 4; i++) { \
        T o[4]; \
        WINO_AT(a[i][0], a[i][1], a[i][2], a[i][3], a[i][4], a[i][5], o); \
        for (int j = 0; j < 4; j++) { \
            T v = o[j] + b; \
            if (relu) \
                v = RELU(v); \
            ST(q[i * 4 + j] + c, v); \
            if (sums) \
                acc += v * valid[i * 4 + j]; } } } while (0)

void eqb_wino_out(const float *restrict M, ptrdiff_t Co, ptrdiff_t ty0, ptrdiff_t ty1, ptrdiff_t tw, ptrdiff_t H,
                  ptrdiff_t W, const float *bias, int relu, float *y, ptrdiff_t sh, ptrdiff_t sw, float *sink,
                  double *sums)
{
    const ptrdiff_t ks = (ty1 - ty0) * tw * Co;
    float valid[16];
    for (ptrdiff_t ty = ty0; ty < ty1; ty++)
        for (ptrdiff_t tx = 0; tx < tw; tx++) {
            float *q[16];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    const ptrdiff_t yy = 4 * ty + i, xx = 4 * tx + j;
                    q[i * 4 + j] = (yy < H && xx < W) ? y + yy * sh + xx * sw : sink;
                    valid[i * 4 + j] = yy < H && xx < W;
                }
            const float *m = M + ((ty - ty0) * tw + tx) * Co;
            ptrdiff_t c = 0;
            for (; c + 16 <= Co; c += 16) {
                v16 b = {0};
                if (bias)
                    b = ldv16(bias + c);
                v16 acc = {0};
                WINO_OUT_BODY(v16, ldv16, stv16, relu16, c, b);
                if (sums)
                    for (int k = 0; k < 16; k++)
                        sums[c + k] += acc[k];
            }
            for (; c < Co; c++) {
                float b = bias ? bias[c] : 0.0f, acc = 0.0f;
                WINO_OUT_BODY(float, ld1, st1, relu1, c, b);
                if (sums)
                    sums[c] += acc;
            }
        }
}
"""

# -march=native lets the vector code use the CPU's units (the cache key has its feature flags); a compiler
# that refuses it gets the portable set. No -ffast-math: IEEE arithmetic, except that gnu99 lets the
# compiler contract a*b+c into one fused multiply-add.
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=gnu99")
PORTABLE_FLAGS = ("-O3", "-fPIC", "-shared", "-std=gnu99")
_D, _P = ctypes.c_double, ctypes.c_ssize_t


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eqbench" / "native"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def _compiler() -> str:
    return os.environ.get("CC") or "cc"


def _build(cc: str) -> Path | None:
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for flags in (FLAGS, PORTABLE_FLAGS):
        so = _compile(cc, version, flags)
        if so is not None:
            return so
    return None


def _compile(cc: str, version: str, flags: tuple[str, ...]) -> Path | None:
    key = hashlib.sha256("\0".join((SOURCE, cc, version, " ".join(flags), platform.machine(),
                                    _cpu_flags())).encode()).hexdigest()[:16]
    folder = _cache_root() / key
    so = folder / "libeqbench_native.so"
    if so.is_file():
        return so
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / "kernels.c"
            src.write_text(SOURCE, encoding="utf-8")
            out = Path(tmp) / so.name
            r = subprocess.run([cc, *flags, "-o", str(out), str(src), "-lm"], capture_output=True, text=True,
                               timeout=120)
            if r.returncode != 0 or not out.is_file():
                return None
            os.replace(out, so)
    except (OSError, subprocess.SubprocessError):
        return None
    return so


@lru_cache(maxsize=1)
def lib() -> ctypes.CDLL | None:
    """The compiled kernels, or None (no compiler, not Linux/macOS, or EQBENCH_NATIVE=0)."""
    if os.environ.get("EQBENCH_NATIVE", "1") == "0" or platform.system() not in ("Linux", "Darwin"):
        return None
    so = _build(_compiler())
    if so is None:
        return None
    try:
        dll = ctypes.CDLL(str(so))
    except OSError:
        return None
    ptr, i32 = ctypes.c_void_p, ctypes.c_int
    signatures = {  # name: (return type, argument types), as declared in SOURCE
        "eqb_ssim_sum": (_D, [ptr, _P, ptr, _P, _P, _P, ptr, i32, _D, _D, ptr]),
        "eqb_resample_rows": (None, [ptr, ptr, _P, _P, _P, _P, ptr, ptr, i32, i32]),
        "eqb_resample_cols": (None, [ptr, ptr, _P, _P, _P, ptr, ptr, i32, ptr, ptr, ptr, i32, i32]),
        "eqb_score_rgb": (None, [ptr, ptr, ptr, _P, _P, _P, _P, i32, i32, ptr, ptr, ptr, ptr]),
        "eqb_involution": (None, [ptr, ptr, ptr, ptr, _P, _P, _P, _P, _P, _P, _P, ptr]),
        "eqb_wino_in": (None, [ptr, _P, _P, _P, _P, _P, _P, _P, _P, ptr, ptr]),
        "eqb_wino_out": (None, [ptr, _P, _P, _P, _P, _P, _P, ptr, i32, ptr, _P, _P, ptr, ptr]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(dll, name)
        fn.restype, fn.argtypes = restype, argtypes
    return dll


def available() -> bool:
    return lib() is not None


_POOL: list = []


def run_parallel(fn, chunks: list) -> None:
    """fn(chunk) for every chunk, on up to len(chunks) threads (ctypes releases the GIL during a kernel,
    so the calls run at once); the caller sizes `chunks` by torch's thread count."""
    if len(chunks) <= 1:
        for ch in chunks:
            fn(ch)
        return
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="eqbench-native"))
    for f in [_POOL[0].submit(fn, ch) for ch in chunks]:
        f.result()


def plain_cpu(*tensors) -> bool:
    """True when every given tensor (None is skipped) is an ordinary CPU tensor with memory: only those
    may be handed to the kernels by address (not a FakeTensor, a meta tensor or another subclass, e.g.
    while FLOPs are counted with fake tensors or a model is traced)."""
    import torch

    plain = (torch.Tensor, torch.nn.Parameter)  # a Parameter of a FakeTensor has the FakeTensor's type
    return all(t is None or (type(t) in plain and t.device.type == "cpu") for t in tensors)
