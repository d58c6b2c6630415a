/* Motion compensation on the CPU (kernels/compensate.c): the flow against a plain
 * double-precision one written from compensate.h's description (every level, every candidate,
 * the parabola) on tiny planes, the warp against a plain bilinear sampler, a texture moved by
 * a known shift found again and undone, the spread of the distances moved, the same planes
 * from one thread and from a team, a still picture left exactly as it is, and the arguments
 * refused. */
#include "compensate.h"
#include "resize.h"

#include <glib.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static GRand *rng;

/* ---- the oracle ---- */

typedef struct {
  double *grey, *kept;
  int w, h;
} Plane2;

static double
at (const double *p, int w, int h, int x, int y)
{
  return p[CLAMP (y, 0, h - 1) * w + CLAMP (x, 0, w - 1)];
}

static double
cost (const Plane2 *l, int block, int bx, int by, int ux, int uy)
{
  double sum = 0.0;
  int n = 0;

  for (int y = by * block; y < MIN ((by + 1) * block, l->h); y++)
    for (int x = bx * block; x < MIN ((bx + 1) * block, l->w); x++, n++) {
      const double d = l->grey[y * l->w + x] - at (l->kept, l->w, l->h, x + ux, y + uy);
      sum += d * d;
    }
  return sum / n;
}

static void
consider (const Plane2 *l, int block, int bx, int by, int ux, int uy, double bias,
          double *best, int *bx_out, int *by_out)
{
  const double c = cost (l, block, bx, by, ux, uy) + bias * (abs (ux) + abs (uy));
  if (c < *best) {
    *best = c;
    *bx_out = ux;
    *by_out = uy;
  }
}

static double
parabola (double m, double c, double p)
{
  const double curve = m - 2 * c + p;
  return curve > 0 ? CLAMP (0.5 * (m - p) / curve, -0.5, 0.5) : 0.0;
}

static void
flow_oracle (const float *grey, const float *kept, int w, int h, const HfamFlowParams *p,
             double *ux, double *uy)
{
  Plane2 level[HFAM_FLOW_MAX_LEVELS];
  int *vx[HFAM_FLOW_MAX_LEVELS], *vy[HFAM_FLOW_MAX_LEVELS], nbx[HFAM_FLOW_MAX_LEVELS];
  int levels = 1;

  while (levels < p->levels && (w >> levels) >= p->block && (h >> levels) >= p->block)
    levels++;
  for (int l = 0; l < levels; l++) {
    const int lw = w >> l, lh = h >> l;
    level[l] = (Plane2) { g_new (double, lw * lh), g_new (double, lw * lh), lw, lh };
    for (int y = 0; y < lh; y++)
      for (int x = 0; x < lw; x++) {
        if (l == 0) {
          level[l].grey[y * lw + x] = grey[y * w + x];
          level[l].kept[y * lw + x] = kept[y * w + x];
          continue;
        }
        const Plane2 *u = &level[l - 1];
        for (int k = 0; k < 2; k++) {
          const double *s = k ? u->kept : u->grey;
          (k ? level[l].kept : level[l].grey)[y * lw + x]
              = 0.25 * (s[2 * y * u->w + 2 * x] + s[2 * y * u->w + 2 * x + 1]
                        + s[(2 * y + 1) * u->w + 2 * x] + s[(2 * y + 1) * u->w + 2 * x + 1]);
        }
      }
    nbx[l] = (lw + p->block - 1) / p->block;
    vx[l] = g_new0 (int, nbx[l] * ((lh + p->block - 1) / p->block));
    vy[l] = g_new0 (int, nbx[l] * ((lh + p->block - 1) / p->block));
  }
  for (int l = levels - 1; l >= 0; l--) {
    const Plane2 *lv = &level[l];
    const double bias = p->bias * (1 << l);
    for (int by = 0; by < (lv->h + p->block - 1) / p->block; by++)
      for (int bx = 0; bx < nbx[l]; bx++) {
        int bestx = 0, besty = 0;
        double best = cost (lv, p->block, bx, by, 0, 0);
        if (l == levels - 1) {
          for (int cy = -p->search; cy <= p->search; cy++)
            for (int cx = -p->search; cx <= p->search; cx++)
              consider (lv, p->block, bx, by, cx, cy, bias, &best, &bestx, &besty);
        } else {
          const int pbh = ((lv->h >> 1) + p->block - 1) / p->block;
          const int px = MIN ((bx * p->block + p->block / 2) / 2 / p->block, nbx[l + 1] - 1);
          const int py = MIN ((by * p->block + p->block / 2) / 2 / p->block, pbh - 1);
          const int cx[2] = { 0, 2 * vx[l + 1][py * nbx[l + 1] + px] };
          const int cy[2] = { 0, 2 * vy[l + 1][py * nbx[l + 1] + px] };
          for (int c = 0; c < 2; c++)
            for (int dy = -1; dy <= 1; dy++)
              for (int dx = -1; dx <= 1; dx++)
                consider (lv, p->block, bx, by, cx[c] + dx, cy[c] + dy, bias, &best, &bestx,
                          &besty);
        }
        if (l == 0) {
          ux[by * nbx[0] + bx] = bestx;
          uy[by * nbx[0] + bx] = besty;
        }
        vx[l][by * nbx[l] + bx] = bestx;
        vy[l][by * nbx[l] + bx] = besty;
        if (l == 0 && (bestx || besty)) {
          const double c0 = cost (lv, p->block, bx, by, bestx, besty);
          ux[by * nbx[0] + bx]
              += parabola (cost (lv, p->block, bx, by, bestx - 1, besty), c0,
                                  cost (lv, p->block, bx, by, bestx + 1, besty));
          uy[by * nbx[0] + bx]
              += parabola (cost (lv, p->block, bx, by, bestx, besty - 1), c0,
                                  cost (lv, p->block, bx, by, bestx, besty + 1));
        }
      }
  }
  for (int l = 0; l < levels; l++) {
    g_free (level[l].grey);
    g_free (level[l].kept);
    g_free (vx[l]);
    g_free (vy[l]);
  }
}

/* a smooth random texture, bright blobs on a ramp, at (x - dx, y - dy) */
static void
texture (float *plane, int w, int h, double dx, double dy, const double *blobs, int n_blobs)
{
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const double sx = x - dx, sy = y - dy;
      double v = 0.2 + 0.002 * sx;
      for (int b = 0; b < n_blobs; b++) {
        const double *k = blobs + 4 * b;
        v += k[3] * exp (-((sx - k[0]) * (sx - k[0]) + (sy - k[1]) * (sy - k[1])) / k[2]);
      }
      plane[y * w + x] = (float) v;
    }
}

static double *
random_blobs (int n, int w, int h)
{
  double *blobs = g_new (double, 4 * n);

  for (int b = 0; b < n; b++) {
    blobs[4 * b] = g_rand_double_range (rng, -10, w + 10);
    blobs[4 * b + 1] = g_rand_double_range (rng, -10, h + 10);
    blobs[4 * b + 2] = g_rand_double_range (rng, 3, 12);
    blobs[4 * b + 3] = g_rand_double_range (rng, -0.3, 0.3);
  }
  return blobs;
}

/* ---- the tests ---- */

static void
test_flow_oracle (void)
{
  /* w, h, block, levels, search; the shift of the texture between the planes */
  static const int cases[][7] = { { 16, 12, 4, 1, 2, 1, -1 }, { 37, 21, 4, 2, 2, 3, 2 },
                                  { 64, 40, 4, 3, 2, -5, 4 }, { 50, 34, 6, 2, 3, 2, 0 } };

  for (size_t c = 0; c < G_N_ELEMENTS (cases); c++) {
    const int w = cases[c][0], h = cases[c][1];
    const HfamFlowParams p = { cases[c][2], cases[c][3], cases[c][4], 1e-5f, 0 };
    int bw, bh;
    hfam_flow_blocks (w, h, &p, &bw, &bh);
    g_autofree double *blobs = random_blobs (40, w, h);
    g_autofree float *grey = g_new (float, w * h), *kept = g_new (float, w * h);
    g_autofree float *ux = g_new (float, bw * bh), *uy = g_new (float, bw * bh);
    g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, &p));
    g_autofree double *wx = g_new (double, bw * bh), *wy = g_new (double, bw * bh);
    int moved = 0;

    texture (kept, w, h, 0, 0, blobs, 40);
    texture (grey, w, h, cases[c][5], cases[c][6], blobs, 40);
    for (int i = 0; i < w * h; i++)
      grey[i] += (float) g_rand_double_range (rng, -0.01, 0.01);
    g_assert_cmpint (hfam_block_flow (grey, kept, w, h, &p, ux, uy, scratch), ==, 0);
    flow_oracle (grey, kept, w, h, &p, wx, wy);
    for (int b = 0; b < bw * bh; b++) {
      g_assert_cmpfloat_with_epsilon (ux[b], wx[b], 1e-3);
      g_assert_cmpfloat_with_epsilon (uy[b], wy[b], 1e-3);
      moved += ux[b] != 0.0f || uy[b] != 0.0f;
    }
    /* the texture moved, so the blocks did */
    g_assert_cmpint (moved, >, bw * bh / 2);
  }
}

static void
test_warp_oracle (void)
{
  const int w = 23, h = 17, block = 5, bw = 5, bh = 4;
  float plane[23 * 17], out[23 * 17], moved[23 * 17], ux[5 * 4], uy[5 * 4];

  for (int i = 0; i < w * h; i++)
    plane[i] = (float) g_rand_double (rng);
  for (int b = 0; b < bw * bh; b++) {
    ux[b] = (float) g_rand_double_range (rng, -6, 6);
    uy[b] = (float) g_rand_double_range (rng, -6, 6);
  }
  /* a still corner (the top left 2 x 2 blocks), where the warp takes its shortcut */
  for (int by = 0; by < 2; by++)
    for (int bx = 0; bx < 2; bx++)
      ux[by * bw + bx] = uy[by * bw + bx] = 0.0f;
  g_assert_cmpint (hfam_warp_planes (plane, NULL, w, h, block, ux, uy, out, NULL, moved), ==, 0);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      /* the vector: bilinear between block centres b * 5 + 2, clamped */
      const double fx = CLAMP ((x - 2.0) / block, 0.0, bw - 1.0);
      const double fy = CLAMP ((y - 2.0) / block, 0.0, bh - 1.0);
      const int c0 = (int) fx, r0 = (int) fy;
      const int c1 = MIN (c0 + 1, bw - 1), r1 = MIN (r0 + 1, bh - 1);
      const double tx = fx - c0, ty = fy - r0;
      double v[2];
      for (int k = 0; k < 2; k++) {
        const float *u = k ? uy : ux;
        v[k] = (1 - ty) * ((1 - tx) * u[r0 * bw + c0] + tx * u[r0 * bw + c1])
               + ty * ((1 - tx) * u[r1 * bw + c0] + tx * u[r1 * bw + c1]);
      }
      /* the plane there, bilinear, clamped */
      const double sx = CLAMP (x + v[0], 0.0, w - 1.0), sy = CLAMP (y + v[1], 0.0, h - 1.0);
      const int x0 = (int) sx, y0 = (int) sy;
      const double ax = sx - x0, ay = sy - y0;
      const double want = (1 - ay) * ((1 - ax) * plane[y0 * w + x0]
                                      + ax * plane[y0 * w + MIN (x0 + 1, w - 1)])
                          + ay * ((1 - ax) * plane[MIN (y0 + 1, h - 1) * w + x0]
                                  + ax * plane[MIN (y0 + 1, h - 1) * w + MIN (x0 + 1, w - 1)]);
      g_assert_cmpfloat_with_epsilon (out[y * w + x], want, 1e-4);
      g_assert_cmpfloat_with_epsilon (moved[y * w + x], hypot (v[0], v[1]), 1e-4);
    }
}

/* A texture moved by a known shift, whole and sub-pixel: the blocks away from the borders
 * find it, and the warped kept plane matches the new one there. */
static void
test_shift (void)
{
  static const double shifts[][2] = { { 3, -2 }, { 1.5, 0.25 }, { -9, 5 } };
  const int w = 128, h = 72;
  const HfamFlowParams p = { 8, 3, 4, 1e-5f, 0 };
  int bw, bh;
  hfam_flow_blocks (w, h, &p, &bw, &bh);
  g_autofree double *blobs = random_blobs (500, w, h);
  g_autofree float *grey = g_new (float, w * h), *kept = g_new (float, w * h);
  g_autofree float *matte = g_new (float, w * h), *moved = g_new (float, w * h);
  g_autofree float *ux = g_new (float, bw * bh);
  g_autofree float *uy = g_new (float, bw * bh);
  g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, &p));

  for (size_t s = 0; s < G_N_ELEMENTS (shifts); s++) {
    const double dx = shifts[s][0], dy = shifts[s][1];
    double before = 0.0, after = 0.0;

    texture (kept, w, h, 0, 0, blobs, 500);
    texture (grey, w, h, dx, dy, blobs, 500);
    memcpy (matte, kept, sizeof (float) * w * h);
    g_assert_cmpint (hfam_block_flow (grey, kept, w, h, &p, ux, uy, scratch), ==, 0);
    /* the new picture at p is the old one at p - shift, found within the parabola's error
     * (up to about 0.3 px at half-pixel shifts); a block where the texture is nearly flat
     * may keep a smaller vector (the bias) */
    int found = 0, inner = 0;
    for (int by = 2; by < bh - 2; by++)
      for (int bx = 2; bx < bw - 2; bx++, inner++)
        found += fabs (ux[by * bw + bx] + dx) < 0.35 && fabs (uy[by * bw + bx] + dy) < 0.35;
    g_assert_cmpint (found, >=, inner * 9 / 10);
    for (int y = 16; y < h - 16; y++)
      for (int x = 16; x < w - 16; x++)
        before += fabs (kept[y * w + x] - grey[y * w + x]);
    g_assert_cmpint (hfam_motion_compensate (matte, kept, grey, w, h, &p, moved, scratch), ==,
                     0);
    int moved_as_shifted = 0;
    for (int y = 16; y < h - 16; y++)
      for (int x = 16; x < w - 16; x++) {
        after += fabs (kept[y * w + x] - grey[y * w + x]);
        /* the matte went with its grey */
        g_assert_cmpfloat (matte[y * w + x], ==, kept[y * w + x]);
        moved_as_shifted += fabs (moved[y * w + x] - hypot (dx, dy)) < 0.5;
      }
    g_assert_cmpfloat (after, <, 0.2 * before);
    /* and says how far, as the vectors found it */
    g_assert_cmpint (moved_as_shifted, >=, (w - 32) * (h - 32) * 9 / 10);
  }
}

/* moved with a spread: the largest of the distances without one over the window around each
 * pixel (clipped to the image); the planes are warped the same either way. The picture moves
 * on its left half only, so that the distances vary. Radii with an odd and an even number of
 * doubling steps, one of a single step, and one wider than the picture. */
static void
test_spread (void)
{
  static const int radii[] = { 5, 8, 1, 45 };
  const int w = 64, h = 40;
  g_autofree double *blobs = random_blobs (60, w, h);
  float grey[64 * 40], shifted[64 * 40], kept[2][64 * 40], matte[2][64 * 40], moved[2][64 * 40];

  texture (shifted, w, h, 3, 1, blobs, 60);
  for (size_t k = 0; k < G_N_ELEMENTS (radii); k++) {
    const int r = radii[k];
    const HfamFlowParams p = { 8, 2, 3, 1e-5f, r }, raw = { 8, 2, 3, 1e-5f, 0 };
    g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, &p));
    int spread_out = 0;

    texture (kept[0], w, h, 0, 0, blobs, 60);
    for (int i = 0; i < w * h; i++) {
      grey[i] = i % w < w / 2 ? shifted[i] : kept[0][i];
      matte[0][i] = matte[1][i] = (float) g_rand_double (rng);
    }
    memcpy (kept[1], kept[0], sizeof kept[0]);
    g_assert_cmpint (hfam_motion_compensate (matte[0], kept[0], grey, w, h, &raw, moved[0],
                                             scratch), ==, 0);
    g_assert_cmpint (hfam_motion_compensate (matte[1], kept[1], grey, w, h, &p, moved[1],
                                             scratch), ==, 0);
    g_assert_cmpmem (matte[0], sizeof matte[0], matte[1], sizeof matte[1]);
    g_assert_cmpmem (kept[0], sizeof kept[0], kept[1], sizeof kept[1]);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float want = 0.0f;
        for (int j = MAX (0, y - r); j <= MIN (h - 1, y + r); j++)
          for (int i = MAX (0, x - r); i <= MIN (w - 1, x + r); i++)
            want = MAX (want, moved[0][j * w + i]);
        g_assert_cmpfloat (moved[1][y * w + x], ==, want);
        spread_out += moved[1][y * w + x] > moved[0][y * w + x];
      }
    /* the window reached pixels that did not move as far themselves */
    g_assert_cmpint (spread_out, >, 0);
  }
}

/* At the inference size of a 1080p frame the steps run on a team of threads (planes of
 * HFAM_PARALLEL_MIN_VALUES and more), their passes separated by barriers: one thread and two
 * give the same planes, bit for bit, and the flow is the oracle's. */
static void
test_team (void)
{
  const int w = 384, h = 216, n = w * h;
  const HfamFlowParams p = { 8, 3, 4, 2e-5f, 8 };
  int bw, bh;
  hfam_flow_blocks (w, h, &p, &bw, &bh);
  g_autofree double *blobs = random_blobs (300, w, h);
  g_autofree double *wx = g_new (double, bw * bh), *wy = g_new (double, bw * bh);
  g_autofree float *grey = g_new (float, n), *kept = g_new (float, 2 * n);
  g_autofree float *matte = g_new (float, 2 * n), *moved = g_new (float, 2 * n);
  g_autofree float *ux = g_new (float, bw * bh), *uy = g_new (float, bw * bh);
  g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, &p));
  const int threads = omp_get_max_threads ();

  g_assert_cmpint (n, >=, HFAM_PARALLEL_MIN_VALUES);
  texture (kept, w, h, 0, 0, blobs, 300);
  texture (grey, w, h, 2.3, -1.7, blobs, 300);
  for (int i = 0; i < n; i++)
    matte[i] = (float) g_rand_double (rng);
  memcpy (kept + n, kept, sizeof (float) * n);
  memcpy (matte + n, matte, sizeof (float) * n);
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads (t ? 2 : 1);
    g_assert_cmpint (hfam_motion_compensate (matte + t * n, kept + t * n, grey, w, h, &p,
                                             moved + t * n, scratch), ==, 0);
  }
  g_assert_cmpmem (matte, sizeof (float) * n, matte + n, sizeof (float) * n);
  g_assert_cmpmem (kept, sizeof (float) * n, kept + n, sizeof (float) * n);
  g_assert_cmpmem (moved, sizeof (float) * n, moved + n, sizeof (float) * n);
  /* (the texture moved, and the planes with it, nearly everywhere) */
  int far = 0;
  for (int i = 0; i < n; i++)
    far += moved[n + i] > 1.0f;
  g_assert_cmpint (far, >, n * 9 / 10);

  texture (kept, w, h, 0, 0, blobs, 300);
  g_assert_cmpint (hfam_block_flow (grey, kept, w, h, &p, ux, uy, scratch), ==, 0);
  flow_oracle (grey, kept, w, h, &p, wx, wy);
  for (int b = 0; b < bw * bh; b++) {
    g_assert_cmpfloat_with_epsilon (ux[b], wx[b], 1e-3);
    g_assert_cmpfloat_with_epsilon (uy[b], wy[b], 1e-3);
  }
  omp_set_num_threads (threads);
}

/* The same picture twice: every vector 0, and the planes come back exactly. */
static void
test_still (void)
{
  const int w = 40, h = 30;
  const HfamFlowParams p = { 8, 2, 3, 1e-5f, 4 };
  g_autofree double *blobs = random_blobs (20, w, h);
  float grey[40 * 30], kept[40 * 30], matte[40 * 30], was[40 * 30], moved[40 * 30];
  g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, &p));

  texture (grey, w, h, 0, 0, blobs, 20);
  memcpy (kept, grey, sizeof kept);
  for (int i = 0; i < w * h; i++) {
    was[i] = matte[i] = (float) g_rand_double (rng);
    moved[i] = 1.0f;
  }
  g_assert_cmpint (hfam_motion_compensate (matte, kept, grey, w, h, &p, moved, scratch), ==, 0);
  g_assert_cmpmem (matte, sizeof matte, was, sizeof was);
  g_assert_cmpmem (kept, sizeof kept, grey, sizeof grey);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpfloat (moved[i], ==, 0.0f);
}

static void
test_arguments (void)
{
  float m[16] = { 0 }, g[16] = { 0 }, k[16] = { 0 }, scratch[256];
  HfamFlowParams p = { 2, 1, 1, 0.0f, 1 };

  g_assert_cmpuint (hfam_compensate_scratch_floats (4, 4, &p), <=, G_N_ELEMENTS (scratch));
  g_assert_cmpint (hfam_motion_compensate (m, k, g, 4, 4, &p, NULL, scratch), ==, 0);
  g_assert_cmpint (hfam_motion_compensate (m, k, g, 0, 4, &p, NULL, scratch), ==, -1);
  g_assert_cmpint (hfam_motion_compensate (NULL, k, g, 4, 4, &p, NULL, scratch), ==, -1);
  p.block = 1;
  g_assert_false (hfam_flow_params_valid (&p));
  p.block = 2;
  p.levels = HFAM_FLOW_MAX_LEVELS + 1;
  g_assert_false (hfam_flow_params_valid (&p));
  p.levels = 1;
  p.search = 0;
  g_assert_false (hfam_flow_params_valid (&p));
  p.search = 1;
  p.spread = HFAM_FLOW_MAX_SPREAD + 1;
  g_assert_false (hfam_flow_params_valid (&p));
  p.spread = -1;
  g_assert_false (hfam_flow_params_valid (&p));
  p.spread = 1;
  p.bias = NAN;
  g_assert_cmpint (hfam_motion_compensate (m, k, g, 4, 4, &p, NULL, scratch), ==, -1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (17);
  g_test_add_func ("/compensate/flow-oracle", test_flow_oracle);
  g_test_add_func ("/compensate/warp-oracle", test_warp_oracle);
  g_test_add_func ("/compensate/shift", test_shift);
  g_test_add_func ("/compensate/spread", test_spread);
  g_test_add_func ("/compensate/team", test_team);
  g_test_add_func ("/compensate/still", test_still);
  g_test_add_func ("/compensate/arguments", test_arguments);
  return g_test_run ();
}
