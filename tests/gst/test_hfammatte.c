/* Tests of the hfammatte element: GstHarness on small frames, a tiny generated
 * model ($HFAM_TEST_MODEL), and libhfam called directly for the expected
 * mattes. One suite, a TCase a theme: test_caps.c, test_outputs.c,
 * test_temporal.c, test_properties.c, test_running.c, test_edges.c and
 * test_cuda_memory.c; harness.c holds what they share. */
#include "harness.h"

static Suite *
hfammatte_suite (void)
{
  Suite *s = suite_create ("hfammatte");

  suite_add_tcase (s, caps_tcase ());
  suite_add_tcase (s, outputs_tcase ());
  suite_add_tcase (s, temporal_tcase ());
  suite_add_tcase (s, properties_tcase ());
  suite_add_tcase (s, running_tcase ());
  suite_add_tcase (s, edges_tcase ());
#ifdef HFAM_HAVE_GST_CUDA
  suite_add_tcase (s, cuda_memory_tcase ());
#endif
  return s;
}

GST_CHECK_MAIN (hfammatte);
