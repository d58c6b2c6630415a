/* The matte's islands dropped on the CPU (kernels/islands.c), the twin of islands.cu: a scene
 * drawn by hand (a person, a flower apart, a strand joined by a diagonal only, a faint haze
 * under the floor), and random mattes against a plain oracle that grows each region by a
 * breadth-first flood fill and sums its mass in double precision, also with the most runs a
 * row can hold; the two ends of `share`, and the arguments it refuses. */
#include "islands.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static GRand *rng;

/* The matte after dropping, by flood fill: regions of 8-connected pixels above floor. */
static void
drop_oracle (const float *matte, int w, int h, const HfamIslandParams *p, float *out)
{
  const size_t n = (size_t) w * h;
  g_autofree int *region = g_new (int, n);
  g_autofree int *queue = g_new (int, n);
  g_autofree double *mass = g_new0 (double, n);
  int regions = 0;
  double largest = 0.0;

  for (size_t i = 0; i < n; i++)
    region[i] = -1;
  for (size_t s = 0; s < n; s++) {
    if (region[s] >= 0 || !(matte[s] > p->floor))
      continue;
    int head = 0, tail = 0;
    region[s] = regions;
    queue[tail++] = (int) s;
    while (head < tail) {
      const int i = queue[head++], x = i % w, y = i / w;
      mass[regions] += matte[i];
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          const int u = x + dx, v = y + dy;
          if (u < 0 || u >= w || v < 0 || v >= h || region[v * w + u] >= 0
              || !(matte[v * w + u] > p->floor))
            continue;
          region[v * w + u] = regions;
          queue[tail++] = v * w + u;
        }
    }
    largest = MAX (largest, mass[regions]);
    regions++;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = region[i] >= 0 && mass[region[i]] < p->share * largest ? 0.0f : matte[i];
}

static void
test_scene (void)
{
  /* 1: the person (mass 20); 2: a flower apart (mass 1.5); s: a strand touching the person
   * at a corner only; h: haze at the floor and under it */
  static const char *const rows[] = {
    "..........",
    ".1111...2.",
    ".1111..22.",
    ".1111.....",
    ".1111s....",
    ".1111.s.h.",
    "..........",
  };
  const int w = 10, h = 7;
  float matte[70], expected[70];
  g_autofree void *scratch = g_malloc (hfam_islands_scratch_bytes (w, h));
  const HfamIslandParams p = { .floor = 0.05f, .share = 0.1f };

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const char c = rows[y][x];
      matte[y * w + x] = c == '1' ? 1.0f : c == '2' ? 0.5f : c == 's' ? 0.3f
                         : c == 'h' ? 0.05f : 0.0f;
    }
  memcpy (expected, matte, sizeof matte);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (rows[y][x] == '2')
        expected[y * w + x] = 0.0f;
  g_assert_cmpint (hfam_matte_drop_islands (matte, w, h, &p, scratch), ==, 0);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpfloat (matte[i], ==, expected[i]);

  /* share 0 keeps everything; share 1 keeps the largest alone (the strand is part of it) */
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (rows[y][x] == '2')
        matte[y * w + x] = 0.5f;
  memcpy (expected, matte, sizeof matte);
  const HfamIslandParams keep_all = { .floor = 0.05f, .share = 0.0f };
  g_assert_cmpint (hfam_matte_drop_islands (matte, w, h, &keep_all, scratch), ==, 0);
  g_assert_cmpmem (matte, sizeof matte, expected, sizeof expected);
  const HfamIslandParams largest = { .floor = 0.05f, .share = 1.0f };
  g_assert_cmpint (hfam_matte_drop_islands (matte, w, h, &largest, scratch), ==, 0);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      g_assert_cmpfloat (matte[y * w + x], ==, rows[y][x] == '2' ? 0.0f : expected[y * w + x]);
}

static void
test_random (void)
{
  static const int sizes[][2] = { { 1, 1 }, { 1, 17 }, { 23, 1 }, { 31, 19 }, { 64, 48 } };

  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int round = 0; round < 20; round++) {
      const int w = sizes[s][0], h = sizes[s][1];
      const size_t n = (size_t) w * h;
      const HfamIslandParams p = { .floor = (float) g_rand_double_range (rng, 0.0, 0.5),
                                   .share = (float) g_rand_double_range (rng, 0.0, 0.6) };
      g_autofree float *matte = g_new (float, n);
      g_autofree float *expected = g_new (float, n);
      g_autofree void *scratch = g_malloc (hfam_islands_scratch_bytes (w, h));
      /* sparse enough that there are many regions */
      const double density = g_rand_double_range (rng, 0.2, 0.6);
      for (size_t i = 0; i < n; i++)
        matte[i] = g_rand_double (rng) < density ? (float) g_rand_double (rng) : 0.0f;
      drop_oracle (matte, w, h, &p, expected);
      g_assert_cmpint (hfam_matte_drop_islands (matte, w, h, &p, scratch), ==, 0);
      for (size_t i = 0; i < n; i++)
        g_assert_cmpfloat (matte[i], ==, expected[i]);
    }
}

/* The most runs a row can hold, (w + 1) / 2 (every other pixel, columns of their own), with a
 * dot now and then in the gaps that joins two columns: the host's runs fill its scratch. */
static void
test_most_runs (void)
{
  static const int sizes[][2] = { { 1, 5 }, { 9, 7 }, { 33, 20 } };
  const HfamIslandParams p = { .floor = 0.05f, .share = 0.5f };

  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++) {
    const int w = sizes[s][0], h = sizes[s][1];
    const size_t n = (size_t) w * h;
    g_autofree float *matte = g_new (float, n);
    g_autofree float *expected = g_new (float, n);
    g_autofree void *scratch = g_malloc (hfam_islands_scratch_bytes (w, h));
    for (size_t i = 0; i < n; i++)
      matte[i] = (i % w) % 2 == 0 ? (float) g_rand_double_range (rng, 0.1, 1.0)
                 : g_rand_double (rng) < 0.02 ? 1.0f : 0.0f;
    drop_oracle (matte, w, h, &p, expected);
    g_assert_cmpint (hfam_matte_drop_islands (matte, w, h, &p, scratch), ==, 0);
    for (size_t i = 0; i < n; i++)
      g_assert_cmpfloat (matte[i], ==, expected[i]);
  }
}

static void
test_refused (void)
{
  float matte[4] = { 0 };
  char scratch[64];
  const HfamIslandParams p = { .floor = 0.05f, .share = 0.1f };
  const HfamIslandParams bad[] = { { -0.1f, 0.1f }, { 1.5f, 0.1f }, { 0.05f, -1.0f },
                                   { 0.05f, 2.0f }, { NAN, 0.1f }, { 0.05f, NAN } };

  g_assert_cmpint (hfam_matte_drop_islands (NULL, 2, 2, &p, scratch), ==, -1);
  g_assert_cmpint (hfam_matte_drop_islands (matte, 2, 2, &p, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_drop_islands (matte, 0, 2, &p, scratch), ==, -1);
  g_assert_cmpint (hfam_matte_drop_islands (matte, 2, 2, NULL, scratch), ==, -1);
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_cmpint (hfam_matte_drop_islands (matte, 2, 2, &bad[i], scratch), ==, -1);
  g_assert_cmpuint (hfam_islands_scratch_bytes (0, 3), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (19);
  g_test_add_func ("/islands/scene", test_scene);
  g_test_add_func ("/islands/random", test_random);
  g_test_add_func ("/islands/most-runs", test_most_runs);
  g_test_add_func ("/islands/refused", test_refused);
  const int result = g_test_run ();
  g_rand_free (rng);
  return result;
}
