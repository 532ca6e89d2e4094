/* Distributed detection (kdflow/dist.h, the _sharded kernels of kdflow/detect.h) under
 * mpirun: every rank computes each method once as one process does, on the whole
 * arrays, and once sharded, and the two must agree bit for bit — flags, ranks, groups,
 * thresholds, the confident joint and its calibration, prune counts, issue order.
 *
 * The sharded call gets copies of its inputs in which every row outside this rank's
 * block is poisoned (NaN probabilities and losses, a wrong but valid label), so a
 * kernel that read another rank's rows instead of reducing would differ. Data: ties
 * everywhere (probabilities from a few row patterns, quantised losses and scores, −0
 * and +0) and the real out-of-sample probabilities of data/label-errors. TAP from
 * rank 0; a failed assertion on any rank fails the job. */
#include <kdflow/data.h>
#include <kdflow/detect.h>
#include <kdflow/dist.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int64_t lo_, hi_; /* this rank's block of the current data set */

/* ---- data ------------------------------------------------------------------ */

typedef struct {
  const char *name;
  int64_t n;
  int c;
  float *p;  /* N×C */
  int32_t *y;
} Set;

/* Probabilities from six row patterns (multiples of 1/16) over random class
 * permutations: margins and self-confidences tie exactly across thousands of rows. */
static Set
tie_set (int64_t n, int c, guint32 seed)
{
  static const double pattern[6][4] = {
    { 10, 4, 2, 0 }, { 8, 8, 0, 0 }, { 6, 5, 5, 0 }, { 16, 0, 0, 0 }, { 4, 4, 4, 4 }, { 9, 7, 0, 0 },
  };
  Set s = { "ties", n, c, g_new (float, n * c), g_new (int32_t, n) };
  GRand *r = g_rand_new_with_seed (seed);
  int *perm = g_new (int, c);
  for (int64_t i = 0; i < n; i++) {
    for (int j = 0; j < c; j++)
      perm[j] = j;
    for (int j = c - 1; j > 0; j--) {
      int k = g_rand_int_range (r, 0, j + 1), t = perm[j];
      perm[j] = perm[k];
      perm[k] = t;
    }
    const double *pt = pattern[g_rand_int_range (r, 0, 6)];
    double rest = 16 - (pt[0] + pt[1] + pt[2] + pt[3]);
    for (int j = 0; j < c; j++)
      s.p[i * c + perm[j]] = (float) ((j < 4 ? pt[j] : 0) / 16.0);
    s.p[i * c + perm[c - 1]] += (float) (rest / 16.0);
    /* the label: mostly the top class, sometimes another */
    s.y[i] = g_rand_int_range (r, 0, 10) < 7 ? perm[0] : g_rand_int_range (r, 0, c);
  }
  g_free (perm);
  g_rand_free (r);
  return s;
}

static Set
real_set (const char *name)
{
  g_autofree char *pp = g_strdup_printf ("%s/%s_test_set_pyx.npy", DIST_DATA, name);
  g_autofree char *yp = g_strdup_printf ("%s/%s_test_set_original_labels.npy", DIST_DATA, name);
  GError *error = NULL;
  KdfTensor *p = kdf_npy_read (pp, KDF_DTYPE_F32, &error);
  g_assert_no_error (error);
  KdfTensor *y = kdf_npy_read (yp, KDF_DTYPE_I32, &error);
  g_assert_no_error (error);
  Set s = { name, p->shape[0], (int) p->shape[1], g_memdup2 (kdf_tensor_f32 (p), p->shape[0] * p->shape[1] * 4),
            g_memdup2 (kdf_tensor_i32 (y), y->shape[0] * 4) };
  g_assert_cmpint (y->shape[0], ==, s.n);
  kdf_tensor_unref (p);
  kdf_tensor_unref (y);
  return s;
}

static void
set_free (Set *s)
{
  g_free (s->p);
  g_free (s->y);
}

/* Copies with every row outside this rank's block of N poisoned. */
static float *
poison_f32 (const float *x, int64_t n, int64_t width)
{
  float *o = g_memdup2 (x, (gsize) (n * width) * sizeof *x);
  kdf_dist_shard (n, &lo_, &hi_);
  for (int64_t i = 0; i < n * width; i++)
    if (i / width < lo_ || i / width >= hi_)
      o[i] = NAN;
  return o;
}

static int32_t *
poison_labels (const int32_t *y, int64_t n, int c)
{
  int32_t *o = g_memdup2 (y, (gsize) n * sizeof *y);
  kdf_dist_shard (n, &lo_, &hi_);
  for (int64_t i = 0; i < n; i++)
    if (i < lo_ || i >= hi_)
      o[i] = (y[i] + 1) % c;
  return o;
}

/* Losses with many exact ties, −0 and +0 among them. */
static float *
tie_losses (int64_t n, guint32 seed)
{
  float *l = g_new (float, n);
  GRand *r = g_rand_new_with_seed (seed);
  for (int64_t i = 0; i < n; i++) {
    int q = g_rand_int_range (r, 0, 40);
    l[i] = q == 0 ? (g_rand_boolean (r) ? -0.0f : 0.0f) : (float) (q / 8.0);
  }
  g_rand_free (r);
  return l;
}

/* ---- the checks -------------------------------------------------------------- */

static void
assert_same_bytes (const void *a, const void *b, gsize bytes, const char *what)
{
  if (memcmp (a, b, bytes) != 0) {
    const guint8 *x = a, *y = b;
    gsize at = 0;
    while (x[at] == y[at])
      at++;
    g_error ("rank %d: %s differs from one process (first at byte %zu of %zu)", kdf_dist_rank (),
             what, at, bytes);
  }
}

static void
check_cl (const Set *s, const KdfClOptions *opt, gboolean f64, const char *what)
{
  const int64_t n = s->n;
  const int c = s->c;
  GError *error = NULL;
  uint8_t *one = g_new (uint8_t, n), *dist = g_new (uint8_t, n);
  KdfClResult r1 = { 0 }, rd = { 0 };
  float *pp = poison_f32 (s->p, n, c);
  int32_t *yp = poison_labels (s->y, n, c);
  double *p64 = NULL, *pp64 = NULL;
  if (f64) {
    /* full-precision doubles: sums of f32 values in [0,1] are mostly exact in double
     * whatever the order, so without the jitter a reduction that summed per rank
     * could pass by luck */
    p64 = g_new (double, n * c);
    pp64 = g_new (double, n * c);
    GRand *jit = g_rand_new_with_seed (7);
    for (int64_t e = 0; e < n * c; e++) {
      p64[e] = s->p[e] * (1.0 + 1e-7 * g_rand_double (jit));
      pp64[e] = isnan (pp[e]) ? NAN : p64[e];
    }
    g_rand_free (jit);
    g_assert_true (kdf_confident_learning_f64 (one, p64, s->y, n, c, opt, &r1, &error));
    memset (dist, 0xAA, (size_t) n);
    g_assert_true (kdf_confident_learning_sharded_f64 (dist, pp64, yp, n, c, opt, &rd, &error));
  } else {
    g_assert_true (kdf_confident_learning_f32 (one, s->p, s->y, n, c, opt, &r1, &error));
    memset (dist, 0xAA, (size_t) n);
    g_assert_true (kdf_confident_learning_sharded_f32 (dist, pp, yp, n, c, opt, &rd, &error));
  }
  g_assert_no_error (error);
  g_autofree char *w = g_strdup_printf ("%s %s: ", s->name, what);
#define SAME(a, b, bytes, field)                                                   \
  do {                                                                            \
    g_autofree char *ww = g_strconcat (w, field, NULL);                           \
    assert_same_bytes (a, b, bytes, ww);                                          \
  } while (0)
  SAME (one, dist, (gsize) n, "flags");
  SAME (r1.thresholds, rd.thresholds, c * sizeof (double), "thresholds");
  SAME (r1.confident_joint, rd.confident_joint, (gsize) c * c * sizeof (int64_t), "confident joint");
  SAME (r1.calibrated_joint, rd.calibrated_joint, (gsize) c * c * sizeof (int64_t), "calibrated joint");
  SAME (r1.prune_counts, rd.prune_counts, (gsize) c * c * sizeof (int64_t), "prune counts");
  g_assert_cmpint (r1.n_confident, ==, rd.n_confident);
  g_assert_cmpint (r1.n_off_diagonal, ==, rd.n_off_diagonal);
  g_assert_cmpint (r1.n_flagged, ==, rd.n_flagged);

  /* the issue order, both rankings */
  for (int rb = 0; rb < 2; rb++) {
    int64_t *o1 = g_new (int64_t, MAX (r1.n_flagged, 1)), *od = g_new (int64_t, MAX (r1.n_flagged, 1));
    int64_t m1 = -1, md = -2;
    if (f64) {
      g_assert_true (kdf_cl_order_issues_f64 (o1, &m1, one, p64, s->y, n, c, rb, &error));
      g_assert_true (kdf_cl_order_issues_sharded_f64 (od, &md, dist, pp64, yp, n, c, rb, &error));
    } else {
      g_assert_true (kdf_cl_order_issues_f32 (o1, &m1, one, s->p, s->y, n, c, rb, &error));
      g_assert_true (kdf_cl_order_issues_sharded_f32 (od, &md, dist, pp, yp, n, c, rb, &error));
    }
    g_assert_cmpint (m1, ==, md);
    SAME (o1, od, (gsize) m1 * sizeof *o1, "issue order");
    g_free (o1);
    g_free (od);
  }
#undef SAME
  kdf_cl_result_clear (&r1);
  kdf_cl_result_clear (&rd);
  g_free (p64);
  g_free (pp64);
  g_free (pp);
  g_free (yp);
  g_free (one);
  g_free (dist);
}

static void
check_cl_options (const Set *s)
{
  static const int64_t remove[20] = { 3, 0, 5, 1, 2, 0, 4, 1, 0, 2, 1, 1, 0, 3, 2, 1, 0, 0, 1, 2 };
  for (int filter = KDF_CL_PRUNE_BY_NOISE_RATE; filter <= KDF_CL_PREDICTED_NEQ_GIVEN; filter++) {
    KdfClOptions opt;
    kdf_cl_options_init (&opt);
    opt.filter = filter;
    g_autofree char *w = g_strdup_printf ("filter %d", filter);
    check_cl (s, &opt, FALSE, w);
  }
  KdfClOptions opt;
  kdf_cl_options_init (&opt);
  check_cl (s, &opt, TRUE, "f64");
  opt.argmax_above_threshold = TRUE;
  opt.frac_noise = 0.5;
  opt.min_examples_per_class = 5;
  opt.filter = KDF_CL_BOTH;
  check_cl (s, &opt, FALSE, "above-threshold, frac 0.5, min 5, both");
  if (s->c <= 20) {
    kdf_cl_options_init (&opt);
    opt.num_to_remove_per_class = remove;
    check_cl (s, &opt, FALSE, "num_to_remove_per_class");
  }
}

static void
check_otsu (const float *scores, int64_t n, const char *name)
{
  gboolean unit = TRUE; /* scores in [0,1]: the modes without normalize apply */
  for (int64_t i = 0; i < n; i++)
    unit = unit && scores[i] >= 0.0f && scores[i] <= 1.0f;
  for (int mode = unit ? 0 : 4; mode < 8; mode++) {
    KdfOtsuOptions opt;
    kdf_otsu_options_init (&opt);
    opt.criterion = mode & 1 ? KDF_OTSU_CRITERION_BLIND : KDF_OTSU_CRITERION_OTSU;
    opt.exact = (mode & 2) != 0;
    opt.normalize = (mode & 4) != 0;
    opt.bins = mode & 4 ? 1000 : 64;
    KdfOtsuResult r1, rd;
    uint8_t *m1 = g_new (uint8_t, n), *md = g_new (uint8_t, n);
    int32_t *g1 = g_new (int32_t, n), *gd = g_new (int32_t, n);
    GError *error = NULL;
    float *sp = poison_f32 (scores, n, 1);
    g_assert_true (kdf_otsu_threshold (scores, n, &opt, &r1, m1, g1, &error));
    g_assert_true (kdf_otsu_threshold_sharded (sp, n, &opt, &rd, md, gd, &error));
    g_assert_no_error (error);
    g_autofree char *w = g_strdup_printf ("%s otsu mode %d", name, mode);
    g_autofree char *wm = g_strconcat (w, ": mask", NULL), *wg = g_strconcat (w, ": groups", NULL),
                    *wr = g_strconcat (w, ": result", NULL);
    assert_same_bytes (m1, md, (gsize) n, wm);
    assert_same_bytes (g1, gd, (gsize) n * 4, wg);
    assert_same_bytes (&r1, &rd, sizeof r1, wr);
    g_free (sp);
    g_free (m1);
    g_free (md);
    g_free (g1);
    g_free (gd);
  }
}

static void
check_rank (const float *loss, int64_t n, const int32_t *labels, int c, const char *name)
{
  struct {
    KdfRankScope scope;
    double keep;
    int64_t batch;
  } cases[] = {
    { KDF_RANK_SCOPE_GLOBAL, 0.7, 0 },    { KDF_RANK_SCOPE_GLOBAL, 0.0, 0 },
    { KDF_RANK_SCOPE_GLOBAL, 1.0, 0 },    { KDF_RANK_SCOPE_PER_CLASS, 0.55, 0 },
    { KDF_RANK_SCOPE_BATCH, 0.5, 7 },     { KDF_RANK_SCOPE_BATCH, 0.8, 128 },
    { KDF_RANK_SCOPE_BATCH, 0.3, n },
  };
  float *lp = poison_f32 (loss, n, 1);
  int32_t *yp = poison_labels (labels, n, c);
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    for (int form = 0; form < 3; form++) {
      KdfRankOptions o1, od;
      kdf_rank_options_init (&o1);
      o1.scope = cases[k].scope;
      o1.keep = cases[k].keep;
      o1.batch = cases[k].batch > 0 ? cases[k].batch : 128;
      o1.n_classes = c;
      o1.labels = labels;
      od = o1;
      od.labels = yp;
      uint8_t *c1 = g_new (uint8_t, n), *cd = g_new (uint8_t, n);
      int32_t *r1 = g_new (int32_t, n), *rd = g_new (int32_t, n);
      int64_t k1 = -1, kd = -2;
      GError *error = NULL;
      KdfOtsuResult t1, td;
      if (form == 0) {
        g_assert_true (kdf_loss_rank (loss, n, &o1, c1, r1, &k1, &error));
        g_assert_true (kdf_loss_rank_sharded (lp, n, &od, cd, rd, &kd, &error));
      } else if (form == 1) {
        g_assert_true (kdf_loss_rank_threshold (loss, n, 2.25, &o1, c1, r1, &k1, &error));
        g_assert_true (kdf_loss_rank_threshold_sharded (lp, n, 2.25, &od, cd, rd, &kd, &error));
      } else {
        g_assert_true (kdf_loss_rank_otsu (loss, n, NULL, &o1, c1, r1, &k1, &t1, &error));
        g_assert_true (kdf_loss_rank_otsu_sharded (lp, n, NULL, &od, cd, rd, &kd, &td, &error));
        g_autofree char *wt = g_strdup_printf ("%s rank case %u otsu: result", name, k);
        assert_same_bytes (&t1, &td, sizeof t1, wt);
      }
      g_assert_no_error (error);
      g_autofree char *w = g_strdup_printf ("%s rank case %u form %d", name, k, form);
      g_autofree char *wc = g_strconcat (w, ": clean", NULL), *wr = g_strconcat (w, ": rank", NULL);
      assert_same_bytes (c1, cd, (gsize) n, wc);
      assert_same_bytes (r1, rd, (gsize) n * 4, wr);
      g_assert_cmpint (k1, ==, kd);
      g_free (c1);
      g_free (cd);
      g_free (r1);
      g_free (rd);
    }
  }
  g_free (lp);
  g_free (yp);
}

/* Self-confidence and −log of it: the scores and losses of graphs/lib/label_errors.lua. */
static void
self_scores (const Set *s, float **score, float **loss)
{
  *score = g_new (float, s->n);
  *loss = g_new (float, s->n);
  for (int64_t i = 0; i < s->n; i++) {
    (*score)[i] = s->p[i * s->c + s->y[i]];
    (*loss)[i] = (float) -log (MAX ((double) (*score)[i], 1e-12));
  }
}

static void
check_agreement (const Set *t, const Set *st)
{
  const int64_t n = MIN (t->n, st->n);
  const int c = t->c;
  g_assert_cmpint (c, ==, st->c);
  float *a1 = g_new (float, n * c), *ad = g_new (float, n * c);
  float *s1 = g_new (float, n), *sd = g_new (float, n);
  float *tp = poison_f32 (t->p, n, c), *sp = poison_f32 (st->p, n, c);
  int32_t *yp = poison_labels (t->y, n, c);
  GError *error = NULL;
  g_assert_true (kdf_agreement (s1, a1, t->p, st->p, t->y, n, c, &error));
  g_assert_true (kdf_agreement_sharded (sd, ad, tp, sp, yp, n, c, &error));
  g_assert_no_error (error);
  assert_same_bytes (a1, ad, (gsize) n * c * 4, "agreement probs");
  assert_same_bytes (s1, sd, (gsize) n * 4, "agreement scores");
  g_free (tp);
  g_free (sp);
  g_free (yp);
  g_free (a1);
  g_free (ad);
  g_free (s1);
  g_free (sd);
}

/* ---- tests ----------------------------------------------------------------- */

static void
test_ranks (void)
{
  /* the test is about several ranks: one would pass trivially */
  g_assert_cmpint (kdf_dist_size (), >=, 2);
}

static void
test_ties (void)
{
  for (int v = 0; v < 3; v++) {
    const int64_t n = v == 0 ? 3001 : v == 1 ? 997 : 64;
    const int c = v == 0 ? 10 : v == 1 ? 3 : 4;
    Set s = tie_set (n, c, 11 + v);
    check_cl_options (&s);
    float *score, *loss;
    self_scores (&s, &score, &loss);
    check_otsu (score, n, "ties");
    float *tl = tie_losses (n, 5 + v);
    check_rank (tl, n, s.y, c, "tie losses");
    check_rank (loss, n, s.y, c, "ties");
    Set s2 = tie_set (n, c, 99 + v);
    check_agreement (&s, &s2);
    g_free (tl);
    g_free (score);
    g_free (loss);
    set_free (&s);
    set_free (&s2);
  }
}

static void
test_real (void)
{
  static const char *names[] = { "mnist", "cifar10", "20news", "imdb" };
  Set sets[4];
  for (int k = 0; k < 4; k++) {
    sets[k] = real_set (names[k]);
    check_cl_options (&sets[k]);
    float *score, *loss;
    self_scores (&sets[k], &score, &loss);
    check_otsu (score, sets[k].n, names[k]);
    check_otsu (loss, sets[k].n, names[k]);
    check_rank (loss, sets[k].n, sets[k].y, sets[k].c, names[k]);
    g_free (score);
    g_free (loss);
  }
  check_agreement (&sets[0], &sets[1]); /* two different networks' views of 10 classes */
  for (int k = 0; k < 4; k++)
    set_free (&sets[k]);
}

/* Fewer rows than ranks (-np 3: a rank with an empty block), and a few more. */
static void
test_tiny (void)
{
  for (int64_t n = 2; n <= 7; n++) {
    Set s = tie_set (n, 3, 40 + (guint32) n);
    /* every class present, scores spread */
    for (int64_t i = 0; i < n; i++)
      s.y[i] = (int32_t) (i % 3);
    check_cl_options (&s);
    float *score, *loss;
    self_scores (&s, &score, &loss);
    for (int64_t i = 0; i < n; i++)
      loss[i] = (float) ((i * 7) % 5);
    check_rank (loss, n, s.y, 3, "tiny");
    check_otsu (loss, n, "tiny");
    Set s2 = tie_set (n, 3, 90 + (guint32) n);
    check_agreement (&s, &s2);
    g_free (score);
    g_free (loss);
    set_free (&s);
    set_free (&s2);
  }
}

/* Bad input in one rank's block only: every rank fails, the one that saw it with the
 * reason, the others naming it. */
static void
test_bad_input_one_rank (void)
{
  const int last = kdf_dist_size () - 1;
  Set s = tie_set (500, 4, 3);
  int64_t lo, hi;
  kdf_dist_shard_of (s.n, last, &lo, &hi);
  s.p[hi * s.c - 1] = NAN;
  uint8_t *flags = g_new (uint8_t, s.n);
  GError *error = NULL;
  g_assert_false (kdf_confident_learning_sharded_f32 (flags, s.p, s.y, s.n, s.c, NULL, NULL, &error));
  g_assert_nonnull (error);
  if (kdf_dist_rank () == last)
    g_assert_nonnull (strstr (error->message, "probabilities"));
  else
    g_assert_nonnull (strstr (error->message, "stopped on bad input"));
  g_clear_error (&error);
  float *sc = g_new (float, s.n);
  for (int64_t i = 0; i < s.n; i++)
    sc[i] = (float) i / (float) s.n;
  sc[lo] = 2.0f;
  KdfOtsuResult r;
  g_assert_false (kdf_otsu_threshold_sharded (sc, s.n, NULL, &r, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  /* and the job goes on afterwards */
  sc[lo] = 0.5f;
  g_assert_true (kdf_otsu_threshold_sharded (sc, s.n, NULL, &r, NULL, NULL, &error));
  g_assert_no_error (error);
  g_free (sc);
  g_free (flags);
  set_free (&s);
}

/* kdf_dist_allgatherv: parts of different lengths (one empty), in rank order. */
static void
test_allgatherv (void)
{
  const int me = kdf_dist_rank (), size = kdf_dist_size ();
  const int64_t mine = me == 1 ? 0 : 3 + me;
  int32_t *send = g_new (int32_t, MAX (mine, 1));
  for (int64_t k = 0; k < mine; k++)
    send[k] = me * 100 + (int32_t) k;
  int64_t total = -1, *off = g_new (int64_t, size + 1);
  GError *error = NULL;
  int32_t *all = kdf_dist_allgatherv (send, mine * 4, &total, off, &error);
  g_assert_no_error (error);
  int64_t at = 0;
  for (int r = 0; r < size; r++) {
    g_assert_cmpint (off[r], ==, at * 4);
    const int64_t len = r == 1 ? 0 : 3 + r;
    for (int64_t k = 0; k < len; k++)
      g_assert_cmpint (all[at + k], ==, r * 100 + k);
    at += len;
  }
  g_assert_cmpint (total, ==, at * 4);
  g_assert_cmpint (off[size], ==, total);
  g_free (all);
  g_free (off);
  g_free (send);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (!kdf_dist_init (&argc, &argv, &error)) {
    fprintf (stderr, "test-dist-detect: %s\n", error->message);
    return 1;
  }
  if (kdf_dist_rank () > 0 && !freopen ("/dev/null", "w", stdout))
    return 1;
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dist/detect/ranks", test_ranks);
  g_test_add_func ("/dist/detect/allgatherv", test_allgatherv);
  g_test_add_func ("/dist/detect/ties", test_ties);
  g_test_add_func ("/dist/detect/label-errors", test_real);
  g_test_add_func ("/dist/detect/tiny", test_tiny);
  g_test_add_func ("/dist/detect/bad-input-one-rank", test_bad_input_one_rank);
  int status = g_test_run ();
  kdf_dist_finalize ();
  return status;
}
