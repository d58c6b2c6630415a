/* __half for the CUDA emulator (README.md here): IEEE binary16 in 16 bits, converted in
 * software with round-to-nearest-even as the device's __float2half_rn rounds, subnormals, infinities
 * and NaN included, so that an fp16 path computes on the CPU what it computes on a GPU. */
#ifndef HFAM_CUDA_EMULATOR_FP16_H
#define HFAM_CUDA_EMULATOR_FP16_H

#include <cmath>
#include <cstdint>
#include <cstring>

struct __half {
  std::uint16_t bits;
};

inline __half
__float2half_rn (float f)
{
  std::uint32_t x;
  std::memcpy (&x, &f, sizeof x);
  const std::uint16_t sign = (std::uint16_t) ((x >> 16) & 0x8000u);
  const std::uint32_t magnitude = x & 0x7fffffffu;

  if (magnitude >= 0x7f800000u) /* infinity, or NaN (kept quiet) */
    return { (std::uint16_t) (sign | (magnitude > 0x7f800000u ? 0x7e00u : 0x7c00u)) };
  if (magnitude >= 0x477ff000u) /* from halfway between 65504 and 65536 on: infinity */
    return { (std::uint16_t) (sign | 0x7c00u) };
  if (magnitude < 0x38800000u) { /* below 2^-14: a subnormal, in steps of 2^-24 */
    float m;
    std::memcpy (&m, &magnitude, sizeof m);
    return { (std::uint16_t) (sign | (std::uint16_t) std::nearbyint (m * 16777216.0f)) };
  }
  std::uint32_t h = ((magnitude >> 23) - 112u) << 10 | (magnitude & 0x7fffffu) >> 13;
  const std::uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    h++; /* a carry out of the mantissa raises the exponent, as it should */
  return { (std::uint16_t) (sign | h) };
}

inline __half
__float2half (float f)
{
  return __float2half_rn (f);
}

inline float
__half2float (__half h)
{
  const std::uint32_t sign = (std::uint32_t) (h.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (h.bits >> 10) & 0x1fu, mantissa = h.bits & 0x3ffu;
  std::uint32_t x;
  float f;

  if (exponent == 0) { /* zero or subnormal: mantissa x 2^-24, exact in a float */
    f = (float) mantissa * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  if (exponent == 31)
    x = sign | 0x7f800000u | mantissa << 13;
  else
    x = sign | (exponent + 112u) << 23 | mantissa << 13;
  std::memcpy (&f, &x, sizeof f);
  return f;
}

#endif
