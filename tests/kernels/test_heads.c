/* kernels/heads.c's int8 scaling (the CPU backend's detail skips in int8): hand-computed
 * values, rounding ties to even, saturation, in place. */
#include "heads.h"

#include <glib.h>
#include <stdint.h>

static void
test_scale_u8 (void)
{
  /* two pixels of three channels */
  const uint8_t src[6] = { 10, 3, 255, 200, 1, 7 };
  const float map[2] = { 0.5f, 1.0f };
  uint8_t dst[6];
  /* x 0.5 x 2: 10, 3, 255 as they are; x 1 x 2: 200 -> 400, saturated to 255; 1 -> 2; 7 -> 14 */
  const uint8_t expected[6] = { 10, 3, 255, 255, 2, 14 };

  hfam_scale_nhwc_int8 (src, 3, 2, 1, map, 2.0f, dst);
  for (int i = 0; i < 6; i++)
    g_assert_cmpint (dst[i], ==, expected[i]);
}

static void
test_scale_rounding (void)
{
  /* x 0.5: 1 -> 0.5 -> 0, 3 -> 1.5 -> 2, 5 -> 2.5 -> 2, 7 -> 3.5 -> 4 (ties to even), and
   * 9 -> 4.5 -> 4 */
  const uint8_t src[5] = { 1, 3, 5, 7, 9 };
  const float map[1] = { 0.5f };
  const uint8_t expected[5] = { 0, 2, 2, 4, 4 };
  uint8_t dst[5];

  hfam_scale_nhwc_int8 (src, 5, 1, 1, map, 1.0f, dst);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (dst[i], ==, expected[i]);
}

static void
test_scale_s8_in_place (void)
{
  int8_t v[4] = { -100, 100, -3, 127 };
  const float map[2] = { 1.0f, 0.25f };
  /* x 1.5: -150 -> -128, 150 -> 127; x 0.375: -1.125 -> -1, 47.625 -> 48 */
  const int8_t expected[4] = { -128, 127, -1, 48 };

  hfam_scale_nhwc_int8 (v, 2, 2, 0, map, 1.5f, v);
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (v[i], ==, expected[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/heads/scale-int8/u8", test_scale_u8);
  g_test_add_func ("/heads/scale-int8/rounding", test_scale_rounding);
  g_test_add_func ("/heads/scale-int8/s8-in-place", test_scale_s8_in_place);
  return g_test_run ();
}
