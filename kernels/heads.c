#include "heads.h"
#include "box.h"
#include "resize.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* e^x in a form the heads' loops vectorise (libm's expf is a call per value): Cephes' expf,
 * x = n ln 2 + r with |r| <= ln 2 / 2, e^r by its polynomial, 2^n put into the exponent bits;
 * within 2 ulp of expf. x is clamped to -87..88 so that 2^n stays a normal float: below e^-87
 * (1.6e-38) the value only feeds a softmax's ratios or 1 / (1 + e^x), which it cannot move. */
static inline float
exp_vectorised (float x)
{
  const float magic = 12582912.0f; /* 1.5 x 2^23: adding and taking it away rounds to an integer */
  x = x > -87.0f ? x : -87.0f;
  x = x < 88.0f ? x : 88.0f;
  const float n = (x * 1.44269504088896341f + magic) - magic;
  /* ln 2 in two parts, so that n ln 2 is taken away exactly */
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  const float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                     + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f)
                  * (r * r) + r + 1.0f;
  const int32_t bits = ((int32_t) n + 127) * (1 << 23);
  float scale;
  memcpy (&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float
sigmoid (float x)
{
  return 1.0f / (1.0f + exp_vectorised (-x));
}

/* The pixels a thread takes at a time; the planes split among the team from
 * HFAM_PARALLEL_MIN_VALUES pixels on, as the frame functions do */
#define HEAD_CHUNK 16384

/* the end of the chunk of n pixels that starts at i */
static inline size_t
chunk_end (size_t i, size_t n)
{
  return i + HEAD_CHUNK < n ? i + HEAD_CHUNK : n;
}

/* Softmax over the 3 planes of pixels i0..i1-1, in place */
HFAM_VECTOR_CLONES static void
softmax3_span (float *prob, size_t n, size_t i0, size_t i1)
{
  for (size_t i = i0; i < i1; i++) {
    const float l0 = prob[i], l1 = prob[n + i], l2 = prob[2 * n + i];
    float m = l0 > l1 ? l0 : l1;
    m = m > l2 ? m : l2;
    const float e0 = exp_vectorised (l0 - m), e1 = exp_vectorised (l1 - m),
                e2 = exp_vectorised (l2 - m);
    const float inv = 1.0f / (e0 + e1 + e2);
    prob[i] = e0 * inv;
    prob[n + i] = e1 * inv;
    prob[2 * n + i] = e2 * inv;
  }
}

int
hfam_semantic_head (const float *logits, int w, int h, float *prob)
{
  const size_t n = (size_t) w * h;
  if (w < 2 || h < 2 || w % 2 || h % 2)
    return -1;
  for (int k = 0; k < 3; k++)
    if (hfam_resize_plane (logits + (size_t) k * (w / 2) * (h / 2), w / 2, h / 2, w / 2,
                           prob + k * n, w, h, w) != 0)
      return -1;
#pragma omp parallel for if (n >= HFAM_PARALLEL_MIN_VALUES)
  for (size_t i = 0; i < n; i += HEAD_CHUNK)
    softmax3_span (prob, n, i, chunk_end (i, n));
  return 0;
}

HFAM_VECTOR_CLONES static void
attention_span (const float *prob, size_t n, size_t i0, size_t i1, const float weight[3],
                float bias, float *map)
{
  for (size_t i = i0; i < i1; i++)
    map[i] = sigmoid (weight[0] * prob[i] + weight[1] * prob[n + i] + weight[2] * prob[2 * n + i]
                      + bias);
}

void
hfam_attention_map (const float *prob, int n_pixels, const float weight[3], float bias,
                    float *map)
{
  const size_t n = (size_t) n_pixels;
#pragma omp parallel for if (n >= HFAM_PARALLEL_MIN_VALUES)
  for (size_t i = 0; i < n; i += HEAD_CHUNK)
    attention_span (prob, n, i, chunk_end (i, n), weight, bias, map);
}

void
hfam_pool_plane (const float *src, int w, int h, int factor, float *dst)
{
  const int ow = w / factor, oh = h / factor;
  const float inv = 1.0f / (float) (factor * factor);
#pragma omp parallel for if ((size_t) w * h >= HFAM_PARALLEL_MIN_VALUES)
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++) {
      float sum = 0.0f;
      for (int dy = 0; dy < factor; dy++) {
        const float *row = src + (size_t) (y * factor + dy) * w + (size_t) x * factor;
        for (int dx = 0; dx < factor; dx++)
          sum += row[dx];
      }
      dst[(size_t) y * ow + x] = sum * inv;
    }
}

void
hfam_scale_blocked (const float *src, int n_blocks, int n_pixels, int block, const float *map,
                    float *dst)
{
#pragma omp parallel for
  for (int b = 0; b < n_blocks; b++) {
    const float *s = src + (size_t) b * n_pixels * block;
    float *d = dst + (size_t) b * n_pixels * block;
    for (int p = 0; p < n_pixels; p++) {
      const float m = map[p];
      for (int j = 0; j < block; j++)
        d[(size_t) p * block + j] = s[(size_t) p * block + j] * m;
    }
  }
}

/* v clamped to lo..hi, then rounded to the nearest, ties to even: adding and taking away
 * 1.5 x 2^23 leaves no fraction bits (exact in the default rounding mode for |v| < 2^22), and
 * unlike lrintf it vectorises. */
static inline float
round_into (float v, float lo, float hi)
{
  const float magic = 12582912.0f;
  v = v < lo ? lo : v > hi ? hi : v;
  return (v + magic) - magic;
}

/* Pixels p0..p1-1 of hfam_scale_nhwc_int8. */
HFAM_VECTOR_CLONES static void
scale_int8_rows (const void *src, int channels, int p0, int p1, int is_unsigned,
                 const float *map, float scale, void *dst)
{
  for (int p = p0; p < p1; p++) {
    const float m = map[p] * scale;
    const size_t row = (size_t) p * channels;
    if (is_unsigned) {
      const uint8_t *s = (const uint8_t *) src + row;
      uint8_t *d = (uint8_t *) dst + row;
      for (int c = 0; c < channels; c++)
        d[c] = (uint8_t) (int) round_into (s[c] * m, 0.0f, 255.0f);
    } else {
      const int8_t *s = (const int8_t *) src + row;
      int8_t *d = (int8_t *) dst + row;
      for (int c = 0; c < channels; c++)
        d[c] = (int8_t) (int) round_into (s[c] * m, -128.0f, 127.0f);
    }
  }
}

void
hfam_scale_nhwc_int8 (const void *src, int channels, int n_pixels, int is_unsigned,
                      const float *map, float scale, void *dst)
{
  const int rows = 256;

#pragma omp parallel for
  for (int p = 0; p < n_pixels; p += rows)
    scale_int8_rows (src, channels, p, p + rows < n_pixels ? p + rows : n_pixels, is_unsigned,
                     map, scale, dst);
}

/* alpha_d (the enlarged logits in) and alpha_p of pixels i0..i1-1 */
HFAM_VECTOR_CLONES static void
fusion_span (const float *prob, size_t n, size_t i0, size_t i1, float *alpha_d, float *alpha_p)
{
  for (size_t i = i0; i < i1; i++) {
    const int class = hfam_semantic_class (prob, n, i);
    const float d = sigmoid (alpha_d[i]);
    alpha_d[i] = d;
    alpha_p[i] = class == 2 ? 1.0f : class == 1 ? d : 0.0f;
  }
}

int
hfam_fusion (const float *detail_logit, int w, int h, const float *prob, float *alpha_d,
             float *alpha_p)
{
  const size_t n = (size_t) w * h;
  if (w < 2 || h < 2 || w % 2 || h % 2
      || hfam_resize_plane (detail_logit, w / 2, h / 2, w / 2, alpha_d, w, h, w) != 0)
    return -1;
#pragma omp parallel for if (n >= HFAM_PARALLEL_MIN_VALUES)
  for (size_t i = 0; i < n; i += HEAD_CHUNK)
    fusion_span (prob, n, i, chunk_end (i, n), alpha_d, alpha_p);
  return 0;
}

int
hfam_sk_fold (const float *gap, const float *pooled, int cm, int d, const float *squeeze_w,
              const float *squeeze_b, const float *select_w, const float *select_b,
              const float *project_w, const float *project_b, float *weight_out,
              float *bias_out)
{
  float *s = malloc (sizeof (float) * (size_t) (cm + d + 5 * cm));
  float *z, *a;

  if (!s)
    return -1;
  z = s + cm;
  a = z + d;

  for (int c = 0; c < cm; c++)
    s[c] = gap[c] + gap[cm + c] + gap[2 * cm + c] + gap[3 * cm + c] + pooled[c];
  for (int j = 0; j < d; j++) {
    float acc = squeeze_b[j];
    for (int c = 0; c < cm; c++)
      acc += squeeze_w[(size_t) j * cm + c] * s[c];
    z[j] = acc > 0.0f ? acc : 0.0f;
  }
  for (int i = 0; i < 5 * cm; i++) {
    float acc = select_b[i];
    for (int j = 0; j < d; j++)
      acc += select_w[(size_t) i * d + j] * z[j];
    a[i] = acc;
  }
  for (int c = 0; c < cm; c++) {  /* softmax over the 5 branches of each channel */
    float m = a[c], sum = 0.0f;
    for (int k = 1; k < 5; k++)
      m = fmaxf (m, a[k * cm + c]);
    for (int k = 0; k < 5; k++)
      sum += (a[k * cm + c] = expf (a[k * cm + c] - m));
    for (int k = 0; k < 5; k++)
      a[k * cm + c] /= sum;
  }
  for (int o = 0; o < cm; o++) {
    const float *wp = project_w + (size_t) o * 5 * cm;
    float bias = project_b[o];
    for (int i = 0; i < 4 * cm; i++)
      weight_out[(size_t) o * 4 * cm + i] = wp[i] * a[i];
    for (int c = 0; c < cm; c++)
      bias += wp[4 * cm + c] * a[4 * cm + c] * pooled[c];
    bias_out[o] = bias;
  }
  free (s);
  return 0;
}
