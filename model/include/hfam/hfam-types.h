/* libhfam's plain types: the error domain, the choices a caller makes and the one image type.
 * A leaf: it includes only GLib, so that every layer of the engine, from the weight loader up,
 * can name them without depending on the API above it (hfam.h). */
#ifndef HFAM_TYPES_H
#define HFAM_TYPES_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Every failure is reported through GError in this domain, with a message that names the
 * file, tensor, parameter or argument at fault. */
#define HFAM_ERROR (hfam_error_quark ())
GQuark hfam_error_quark (void);

typedef enum {
  HFAM_ERROR_IO,          /* cannot open, map or read a file */
  HFAM_ERROR_FORMAT,      /* the weight file is malformed or inconsistent */
  HFAM_ERROR_UNSUPPORTED, /* valid request this build or backend cannot serve */
  HFAM_ERROR_BACKEND,     /* a backend call failed (oneDNN, CUDA, out of memory) */
  HFAM_ERROR_ARGUMENT,    /* bad argument: size, format, NULL, call out of order */
  HFAM_ERROR_BUDGET,      /* the request would commit more host memory than the context's
                             memory budget (HfamOptions.memory_budget) allows */
} HfamError;

typedef enum {
  HFAM_BACKEND_AUTO,  /* CUDA when a device opens, else the CPU */
  HFAM_BACKEND_CPU,
  HFAM_BACKEND_CUDA,
} HfamBackendKind;

typedef enum {
  HFAM_PRECISION_DEFAULT,  /* fp16 on CUDA; on the CPU int8 for a file with activation
                              ranges on a CPU with VNNI, and bf16 for the rest on a CPU with
                              AVX512-BF16 (INT8_BF16, or BF16 without ranges), else fp32 */
  HFAM_PRECISION_FP32,
  HFAM_PRECISION_FP16,     /* CUDA only: the CPU backend computes in fp32 whatever is asked */
  HFAM_PRECISION_INT8,     /* CPU: the encoder, and L-BB and the decoders where the file
                              has their ranges, in int8 (needs the file's ranges); CUDA
                              computes fp16 */
  HFAM_PRECISION_BF16,     /* CPU with AVX512-BF16: the convolutions in bf16; CUDA computes
                              fp16 */
  HFAM_PRECISION_INT8_BF16,/* CPU with VNNI and AVX512-BF16: INT8's int8 layers, the
                              other convolutions in bf16; CUDA computes fp16 */
} HfamPrecision;

/* What an image holds. Frames (what the network sees): RGB to I420. Outputs: the frame's
 * colours with the matte as alpha (RGBA, BGRA), or the matte alone (the GRAY formats). */
typedef enum {
  HFAM_FORMAT_RGB,     /* 3 bytes per pixel */
  HFAM_FORMAT_BGR,
  HFAM_FORMAT_RGBA,    /* 4 bytes per pixel; as a frame the 4th is not read (RGBx alike) */
  HFAM_FORMAT_BGRA,
  HFAM_FORMAT_NV12,    /* plane 0: Y; plane 1: Cb Cr interleaved, (w + 1) / 2 x (h + 1) / 2 */
  HFAM_FORMAT_I420,    /* plane 0: Y; planes 1, 2: Cb, Cr, each (w + 1) / 2 x (h + 1) / 2 */
  HFAM_FORMAT_GRAY8,   /* outputs: the matte, 0..255 */
  HFAM_FORMAT_GRAY16,  /* outputs: the matte, 0..65535, native endianness */
  HFAM_FORMAT_GRAY32F, /* outputs in host memory: the matte as floats in 0..1 */
} HfamFormat;

typedef enum {
  HFAM_MEMORY_HOST,
  HFAM_MEMORY_CUDA,    /* device memory of the CUDA context the HfamContext runs on */
} HfamMemory;

/* How NV12 and I420 frames' Y'CbCr become R'G'B' (kernels/frame.h has the arithmetic). */
typedef enum {
  HFAM_YUV_BT601,
  HFAM_YUV_BT709,
} HfamYuvMatrix;

/* A frame in, or an output image. Rows are `strides[i]` bytes apart; only the planes the
 * format has are read. Every image of one call must be in the same memory. */
typedef struct {
  uint8_t *planes[3];
  int strides[3];
  int width, height;
  HfamFormat format;
  HfamMemory memory;
  HfamYuvMatrix yuv_matrix;  /* NV12 and I420 */
  gboolean yuv_full_range;   /* NV12 and I420: Y'CbCr on 0..255 rather than 16..235/240 */
  gboolean premultiplied;    /* RGBA and BGRA outputs: colours multiplied by the alpha */
} HfamImage;

G_END_DECLS

#endif
