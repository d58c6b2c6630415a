/* Video frames in and out of the network, on the CPU: the oracles of preprocess.cu and
 * matte.cu.
 *
 * In: an 8-bit frame (RGB, BGR, RGBA, BGRA, NV12 or I420) to the normalised inference tensor.
 * Every source pixel is first taken to R'G'B' in float on 0..255: the bytes as they are for the
 * RGB formats; for YUV, the 3x3 matrix of HfamYuvToRgb (BT.601 or BT.709, limited or full
 * range) applied to (Y, Cb, Cr), clamped to 0..255 and not requantised; 4:2:0 chroma is taken
 * from the sample covering the pixel, (x / 2, y / 2), no chroma interpolation. Then, exactly as
 * hfam_preprocess_rgb8 (resize.h, model/README.md): reordered to the network's channel order,
 * resized with PyTorch's antialiased bilinear filter, and normalised:
 *   out[k] = (v[order[k]] / 255 * scale - mean[k]) / std[k].
 * The result here is planar NCHW float; the CUDA op writes NHWC (fp32 or fp16).
 *
 * Out: alpha (the network's alpha_p at the inference size) resized to the frame's size with the
 * same filter (plain bilinear when enlarging), clamped to 0..1 and rounded to nearest:
 * a8 = floor(a * 255 + 0.5), a16 = floor(a * 65535 + 0.5), written as a GRAY8 or GRAY16 key or
 * as the alpha of an RGBA/BGRA copy of the frame, its colours straight or premultiplied
 * (c' = (c * a8 + 127) / 255 in integers: c * a8 / 255 rounded to nearest). YUV frames' colours
 * go through the matrix as above and are rounded to nearest, floor(v + 0.5).
 *
 * Over time: hfam_matte_blend, the temporal smoothing of a matte with the one kept from the
 * frames before. */
#ifndef HFAM_KERNELS_FRAME_H
#define HFAM_KERNELS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "resize.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HFAM_FRAME_RGB,   /* 3 bytes per pixel */
  HFAM_FRAME_BGR,
  HFAM_FRAME_RGBA,  /* 4 bytes per pixel; the 4th is not read (RGBx works the same) */
  HFAM_FRAME_BGRA,
  HFAM_FRAME_NV12,  /* plane 0: Y; plane 1: Cb Cr interleaved, (w + 1) / 2 x (h + 1) / 2 */
  HFAM_FRAME_I420,  /* plane 0: Y; plane 1: Cb; plane 2: Cr, each (w + 1) / 2 x (h + 1) / 2 */
} HfamFrameFormat;

#define HFAM_FRAME_N_FORMATS 6

/* A frame in host memory (for the CPU functions here) or device memory (for the CUDA ops). */
typedef struct {
  const uint8_t *planes[3];
  int strides[3];   /* bytes per row of each plane */
  int width, height;
  HfamFrameFormat format;
} HfamFrame;

typedef enum {
  HFAM_MATRIX_BT601,
  HFAM_MATRIX_BT709,
} HfamColorMatrix;

typedef enum {
  HFAM_RANGE_LIMITED,  /* Y 16..235, Cb Cr 16..240 */
  HFAM_RANGE_FULL,     /* all 0..255 */
} HfamColorRange;

/* (R', G', B') = m (Y, Cb, Cr) + offset, m row-major, rows R, G, B; then clamped to 0..255. */
typedef struct {
  float m[9];
  float offset[3];
} HfamYuvToRgb;

void hfam_yuv_to_rgb_init (HfamYuvToRgb *c, HfamColorMatrix matrix, HfamColorRange range);

/* R'G'B' of pixel (x, y) of a host frame, unclamped for YUV before the clamp, in 0..255. */
void hfam_frame_pixel_rgb (const HfamFrame *frame, const HfamYuvToRgb *yuv, int x, int y,
                           float rgb[3]);

/* Row y of a host frame as R'G'B' floats, 3 per pixel, each as hfam_frame_pixel_rgb gives it
 * (bit for bit) times `gain` (1 for 0..255, 1 / 255 for 0..1), into rgb (3 * width floats).
 * The fast path of the engine's host frames: YUV rows convert in a loop that vectorises. */
void hfam_frame_row_rgb (const HfamFrame *frame, const HfamYuvToRgb *yuv, int y, float gain,
                         float *rgb);

/* Whether the frame's planes and strides are consistent with its format and size. */
int hfam_frame_valid (const HfamFrame *frame);


typedef struct {
  int order[3];          /* network channel k is R (0), G (1) or B (2) */
  float scale;           /* input_scale */
  float mean[3], std[3]; /* per network channel */
  HfamYuvToRgb yuv;      /* for NV12 and I420 */
} HfamPreprocessParams;

/* The frame to `dst`, 3 planes of dw x dh (see the top of this file). 0, or -1 on a bad frame
 * or size or no memory. */
int hfam_frame_preprocess (const HfamFrame *frame, const HfamPreprocessParams *p, float *dst,
                           int dw, int dh);

/* The same as hfam_frame_preprocess to float rounding (the order of the filter's sums),
 * fast: hfam_preprocess_rows (resize.h) over hfam_frame_row_rgb, each source row the filter
 * reads converted about once and nothing at the frame's size kept. What the engine runs for
 * host frames in YUV. 0, or -1 as hfam_frame_preprocess. */
int hfam_frame_preprocess_rows (const HfamFrame *frame, const HfamPreprocessParams *p,
                                float *dst, int dw, int dh);

typedef enum {
  HFAM_MATTE_GRAY8,                 /* the key: 1 byte per pixel */
  HFAM_MATTE_GRAY16,                /* the key: 2 bytes per pixel, native endianness */
  HFAM_MATTE_RGBA,                  /* the frame's colours and the alpha, straight */
  HFAM_MATTE_BGRA,
  HFAM_MATTE_RGBA_PREMULTIPLIED,    /* colours multiplied by the alpha */
  HFAM_MATTE_BGRA_PREMULTIPLIED,
} HfamMatteFormat;

#define HFAM_MATTE_N_FORMATS 6

typedef struct {
  uint8_t *data;
  int stride;        /* bytes per row */
  int width, height;
  HfamMatteFormat format;
} HfamMatteImage;

/* Bytes per pixel of a matte format. */
int hfam_matte_bytes_per_pixel (HfamMatteFormat format);

/* alpha (aw x ah, tightly packed) to `out` at its size (no resize when the sizes are equal);
 * `frame` (same size as out) supplies the colours of the RGBA/BGRA formats and may be NULL for
 * the keys; `yuv` is needed for NV12 and I420 frames only. 0, or -1 on bad arguments or no
 * memory. */
int hfam_matte_write (const float *alpha, int aw, int ah, const HfamFrame *frame,
                      const HfamYuvToRgb *yuv, const HfamMatteImage *out);

/* Temporal smoothing in place, n floats: matte[i] = (1 - smoothing) * fresh[i] +
 * smoothing * matte[i], smoothing in 0..1 (the weight of the matte kept from earlier frames).
 * The element blends at the frame's size, the CUDA backend (hfam_cuda_matte_blend,
 * matte.cuh) at the inference size, before the resize. */
void hfam_matte_blend (float *matte, const float *fresh, size_t n, float smoothing);

#ifdef __cplusplus
}
#endif

#endif
