/* Noise models: exact counts, seed reproducibility, the statistics each model
 * promises (uniform targets, the transition matrix, the instance-dependent mean rate),
 * open-set provenance, composition, and every invalid setting. */
#include "data-test-util.h"

#include <math.h>

#define N 60000
#define C 10

/* Balanced labels in a scrambled order: class (7i + i/10) mod 10 → 6000 per class. */
static KdfTensor *
balanced_labels (int64_t n, int n_classes)
{
  KdfTensor *y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int64_t i = 0; i < n; i++)
    kdf_tensor_i32 (y)[i] = (int32_t) ((7 * i + i / n_classes) % n_classes);
  return y;
}

static void
apply_ok (const KdfNoiseSpec *spec, const KdfTensor *y, int n_classes, const KdfTensor *x,
          KdfNoiseResult *res)
{
  GError *error = NULL;
  g_assert_true (kdf_noise_apply (spec, y, n_classes, x, NULL, res, &error));
  g_assert_no_error (error);
  /* the mask is exactly "noisy label differs" for every label-only model */
  if (spec->kind != KDF_NOISE_OPENSET) {
    int64_t ones = 0;
    for (int64_t i = 0; i < y->shape[0]; i++) {
      gboolean differs = kdf_tensor_i32 (res->labels)[i] != kdf_tensor_i32 (y)[i];
      g_assert_cmpint (kdf_tensor_u8 (res->noisy_mask)[i], ==, differs);
      ones += differs;
      g_assert_cmpint (kdf_tensor_i32 (res->labels)[i], >=, 0);
      g_assert_cmpint (kdf_tensor_i32 (res->labels)[i], <, n_classes);
    }
    g_assert_cmpint (res->n_noisy, ==, ones);
  }
}

/* Same seed → the same labels; another seed → different labels. */
static void
check_reproducible (KdfNoiseSpec spec, const KdfTensor *y, int n_classes, const KdfTensor *x)
{
  KdfNoiseResult a, b, c;
  apply_ok (&spec, y, n_classes, x, &a);
  apply_ok (&spec, y, n_classes, x, &b);
  spec.seed += 1;
  apply_ok (&spec, y, n_classes, x, &c);
  g_assert_cmpmem (a.labels->data, kdf_tensor_nbytes (a.labels), b.labels->data,
                   kdf_tensor_nbytes (b.labels));
  g_assert_cmpmem (a.noisy_mask->data, kdf_tensor_nbytes (a.noisy_mask), b.noisy_mask->data,
                   kdf_tensor_nbytes (b.noisy_mask));
  if (a.x)
    g_assert_cmpmem (a.x->data, kdf_tensor_nbytes (a.x), b.x->data, kdf_tensor_nbytes (b.x));
  g_assert_true (memcmp (a.noisy_mask->data, c.noisy_mask->data,
                         kdf_tensor_nbytes (a.noisy_mask)) != 0);
  kdf_noise_result_clear (&a);
  kdf_noise_result_clear (&b);
  kdf_noise_result_clear (&c);
}

/* A fingerprint of a label vector, to pin the documented RNG stream. */
static guint64
fingerprint (const KdfTensor *labels)
{
  guint64 h = 1469598103934665603ull;
  for (int64_t i = 0; i < labels->shape[0]; i++) {
    h ^= (guint64) kdf_tensor_i32 (labels)[i] + 1;
    h *= 1099511628211ull;
  }
  return h;
}

static void
test_symmetric (void)
{
  g_autoptr (KdfTensor) y = balanced_labels (N, C);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_SYMMETRIC;
  spec.seed = 42;
  const double rates[] = { 0.0, 0.2, 0.4, 0.6, 0.8, 0.29 };
  const int64_t want[] = { 0, 12000, 24000, 36000, 48000, 17400 };
  for (guint k = 0; k < G_N_ELEMENTS (rates); k++) {
    spec.rate = rates[k];
    KdfNoiseResult res;
    apply_ok (&spec, y, C, NULL, &res);
    g_assert_cmpint (res.n_noisy, ==, want[k]); /* ⌊rN⌋, every pick really changed */
    if (rates[k] == 0.4) {
      /* each flip goes to one of the 9 other classes uniformly: from class 0, the
       * 2400 flips give 266.7 ± 15.7 per target; allow 5σ */
      int64_t to[C] = { 0 };
      for (int64_t i = 0; i < N; i++)
        if (kdf_tensor_i32 (y)[i] == 0 && kdf_tensor_u8 (res.noisy_mask)[i])
          to[kdf_tensor_i32 (res.labels)[i]]++;
      g_assert_cmpint (to[0], ==, 0);
      for (int c = 1; c < C; c++)
        g_assert_cmpfloat (fabs (to[c] - 2400.0 / 9), <, 5 * sqrt (2400 * (1 / 9.0) * (8 / 9.0)));
      /* picks are uniform over samples: each class gets 2400 ± 44 flips */
      for (int c = 0; c < C; c++) {
        int64_t f = 0;
        for (int64_t i = 0; i < N; i++)
          f += kdf_tensor_i32 (y)[i] == c && kdf_tensor_u8 (res.noisy_mask)[i];
        g_assert_cmpfloat (fabs (f - 2400.0), <, 5 * sqrt (24000 * 0.1 * 0.9));
      }
      /* the documented stream (GRand from 42, partial Fisher–Yates) pinned */
      g_assert_cmpuint (fingerprint (res.labels), ==, 15985558631171206467ull);
    }
    kdf_noise_result_clear (&res);
  }
  spec.rate = 0.4;
  check_reproducible (spec, y, C, NULL);
}

static void
test_symmetric_inclusive (void)
{
  g_autoptr (KdfTensor) y = balanced_labels (N, C);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_SYMMETRIC_INCLUSIVE;
  spec.rate = 0.4;
  spec.seed = 42;
  KdfNoiseResult res;
  apply_ok (&spec, y, C, NULL, &res);
  /* 24000 picks, each keeps its class with probability 1/10: 21600 ± 46.5 flips */
  g_test_message ("symmetric_inclusive flipped %" G_GINT64_FORMAT, res.n_noisy);
  g_assert_cmpfloat (fabs (res.n_noisy - 21600.0), <, 4 * sqrt (24000 * 0.1 * 0.9));
  g_assert_cmpint (res.n_noisy, ==, 21694); /* the documented stream from seed 42, pinned */
  kdf_noise_result_clear (&res);
  check_reproducible (spec, y, C, NULL);
}

static void
test_pairflip (void)
{
  g_autoptr (KdfTensor) y = balanced_labels (N, C);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_PAIRFLIP;
  spec.rate = 0.45;
  spec.seed = 3;
  KdfNoiseResult res;
  apply_ok (&spec, y, C, NULL, &res);
  g_assert_cmpint (res.n_noisy, ==, 27000);
  for (int64_t i = 0; i < N; i++)
    if (kdf_tensor_u8 (res.noisy_mask)[i])
      g_assert_cmpint (kdf_tensor_i32 (res.labels)[i], ==, (kdf_tensor_i32 (y)[i] + 1) % C);
  kdf_noise_result_clear (&res);
  check_reproducible (spec, y, C, NULL);
}

static const char *const fmnist_names[] = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
                                            NULL };

static void
test_asymmetric (void)
{
  g_autoptr (KdfTensor) y = balanced_labels (N, C);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_ASYMMETRIC;
  spec.rate = 0.4;
  spec.seed = 5;
  KdfNoiseResult res;
  apply_ok (&spec, y, C, NULL, &res); /* default: the Fashion-MNIST map */
  const int32_t *map = kdf_noise_fashion_mnist_map ();
  g_assert_cmpint (map[0], ==, 6);
  g_assert_cmpint (map[2], ==, 4);
  g_assert_cmpint (map[5], ==, 7);
  g_assert_cmpint (map[6], ==, 0);
  g_assert_cmpint (map[4], ==, 2);
  int64_t per[C] = { 0 };
  for (int64_t i = 0; i < N; i++)
    if (kdf_tensor_u8 (res.noisy_mask)[i]) {
      int32_t c = kdf_tensor_i32 (y)[i];
      per[c]++;
      g_assert_cmpint (kdf_tensor_i32 (res.labels)[i], ==, map[c]);
    }
  for (int c = 0; c < C; c++)
    g_assert_cmpint (per[c], ==, map[c] >= 0 ? 2400 : 0); /* ⌊r·N_c⌋ per mapped class */
  g_assert_cmpint (res.n_noisy, ==, 5 * 2400);
  kdf_noise_result_clear (&res);
  check_reproducible (spec, y, C, NULL);

  /* a configured map, by names and indices */
  GError *error = NULL;
  int32_t custom[C];
  g_assert_true (kdf_noise_parse_class_map ("Bag->Sneaker, 1:2 , ankle BOOT : 0", C, fmnist_names,
                                            custom, &error));
  g_assert_no_error (error);
  g_assert_cmpint (custom[8], ==, 7);
  g_assert_cmpint (custom[1], ==, 2);
  g_assert_cmpint (custom[9], ==, 0);
  g_assert_cmpint (custom[0], ==, -1);
  spec.class_map = custom;
  spec.rate = 0.25;
  apply_ok (&spec, y, C, NULL, &res);
  g_assert_cmpint (res.n_noisy, ==, 3 * 1500);
  kdf_noise_result_clear (&res);

  /* a map naming a class that does not exist */
  g_assert_false (kdf_noise_parse_class_map ("Hat:Shirt", C, fmnist_names, custom, &error));
  assert_error (&error, KDF_ERROR_PARAM, "'Hat'", "Ankle boot", NULL);
  g_assert_false (kdf_noise_parse_class_map ("3:10", C, NULL, custom, &error));
  assert_error (&error, KDF_ERROR_PARAM, "'10'", NULL);
  g_assert_false (kdf_noise_parse_class_map ("3-4", C, NULL, custom, &error));
  assert_error (&error, KDF_ERROR_PARAM, "from:to", NULL);
  g_assert_false (kdf_noise_parse_class_map ("3:4,3:5", C, NULL, custom, &error));
  assert_error (&error, KDF_ERROR_PARAM, "twice", NULL);
  int32_t wild[C] = { 12, -1, -1, -1, -1, -1, -1, -1, -1, -1 };
  spec.class_map = wild;
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "class 0 to 12", "does not exist", NULL);
  int32_t self[C] = { -1, 1, -1, -1, -1, -1, -1, -1, -1, -1 };
  spec.class_map = self;
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "itself", NULL);
  /* the default map is for 10 classes only */
  g_autoptr (KdfTensor) y3 = balanced_labels (300, 3);
  spec.class_map = NULL;
  g_assert_false (kdf_noise_apply (&spec, y3, 3, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "class map", NULL);
}

static void
test_transition (void)
{
  const int K = 3;
  g_autoptr (KdfTensor) y = balanced_labels (N, K); /* 20 000 per class */
  const float Tv[9] = { 0.7f, 0.2f, 0.1f, 0.05f, 0.9f, 0.05f, 0.25f, 0.25f, 0.5f };
  int64_t sh[2] = { 3, 3 };
  g_autoptr (KdfTensor) T = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, sh, Tv);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_TRANSITION;
  spec.transition = T;
  spec.seed = 11;
  KdfNoiseResult res;
  apply_ok (&spec, y, K, NULL, &res);
  double cnt[3][3] = { { 0 } };
  for (int64_t i = 0; i < N; i++)
    cnt[kdf_tensor_i32 (y)[i]][kdf_tensor_i32 (res.labels)[i]]++;
  for (int a = 0; a < K; a++)
    for (int b = 0; b < K; b++) {
      double p = Tv[a * K + b], n_a = N / K;
      double sigma = sqrt (p * (1 - p) / n_a);
      g_assert_cmpfloat (fabs (cnt[a][b] / n_a - p), <, 4 * sigma);
    }
  kdf_noise_result_clear (&res);
  check_reproducible (spec, y, K, NULL);

  /* strides are honoured: the rows of the view Tᵀ are T's columns; column 0 sums to 1,
   * column 1 to 0.2 + 0.9 + 0.25 = 1.35 */
  g_autoptr (KdfTensor) Tt = kdf_tensor_transpose (T, 0, 1);
  GError *error = NULL;
  spec.transition = Tt;
  g_assert_false (kdf_noise_apply (&spec, y, K, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "row 1", "sums to 1.35", NULL);
  /* wrong shape */
  int64_t sh23[2] = { 2, 3 };
  g_autoptr (KdfTensor) T23 = kdf_tensor_new (KDF_DTYPE_F32, 2, sh23);
  spec.transition = T23;
  g_assert_false (kdf_noise_apply (&spec, y, K, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "f32[2,3]", "expected f32[3,3]", NULL);
  spec.transition = NULL;
  g_assert_false (kdf_noise_apply (&spec, y, K, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "transition", NULL);
  /* rows that do not sum to 1; a negative entry */
  const float bad[9] = { 0.7f, 0.2f, 0.1f, 0.05f, 0.8f, 0.05f, 0.25f, 0.25f, 0.5f };
  g_autoptr (KdfTensor) Tb = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, sh, bad);
  spec.transition = Tb;
  g_assert_false (kdf_noise_apply (&spec, y, K, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "row 1", "sums to 0.9", NULL);
  const float neg[9] = { 1.2f, -0.2f, 0, 0, 1, 0, 0, 0, 1 };
  g_autoptr (KdfTensor) Tn = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, sh, neg);
  spec.transition = Tn;
  g_assert_false (kdf_noise_apply (&spec, y, K, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "T[0,1]", NULL);
}

/* N×D inputs: Fashion-MNIST's training images scaled to [0,1] when installed, else
 * uniform noise of the same size. */
static KdfTensor *
instance_inputs (KdfTensor **labels)
{
  GError *error = NULL;
  g_autoptr (KdfDataset) ds = kdf_dataset_load_fashion_mnist (NULL, &error);
  if (ds) {
    g_test_message ("instance noise on Fashion-MNIST inputs");
    kdf_dataset_normalize (ds, KDF_NORMALIZE_UNIT, &error);
    g_assert_no_error (error);
    *labels = kdf_tensor_ref (ds->labels);
    return kdf_tensor_ref (ds->x);
  }
  g_test_message ("instance noise on synthetic inputs (%s)", error->message);
  g_clear_error (&error);
  KdfTensor *x = kdf_tensor_new_2d (KDF_DTYPE_F32, N, 784);
  GRand *r = g_rand_new_with_seed (9);
  for (int64_t i = 0; i < (int64_t) N * 784; i++)
    kdf_tensor_f32 (x)[i] = (float) g_rand_double (r);
  g_rand_free (r);
  *labels = balanced_labels (N, C);
  return x;
}

static void
test_instance (void)
{
  g_autoptr (KdfTensor) y = NULL;
  g_autoptr (KdfTensor) x = instance_inputs (&y);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_INSTANCE;
  spec.seed = 17;
  const double rates[] = { 0.2, 0.4 };
  for (guint k = 0; k < G_N_ELEMENTS (rates); k++) {
    spec.rate = rates[k];
    KdfNoiseResult res;
    apply_ok (&spec, y, C, x, &res);
    double mean = (double) res.n_noisy / N;
    g_test_message ("instance r=%.2f: mean flip rate %.4f", rates[k], mean);
    g_assert_cmpfloat (fabs (mean - rates[k]), <=, 0.01);
    /* instance-dependent, not uniform: the flips out of a class concentrate on a few
     * targets (with uniform targets the largest share would be ≈ 1/9) */
    int64_t to[C] = { 0 }, tot = 0, mx = 0;
    for (int64_t i = 0; i < N; i++)
      if (kdf_tensor_i32 (y)[i] == 0 && kdf_tensor_u8 (res.noisy_mask)[i]) {
        to[kdf_tensor_i32 (res.labels)[i]]++;
        tot++;
      }
    for (int c = 0; c < C; c++)
      mx = MAX (mx, to[c]);
    g_assert_cmpfloat ((double) mx / tot, >, 0.2);
    kdf_noise_result_clear (&res);
  }
  spec.rate = 0.4;
  check_reproducible (spec, y, C, x);
  spec.rate = 0.0;
  KdfNoiseResult res;
  apply_ok (&spec, y, C, x, &res);
  g_assert_cmpint (res.n_noisy, ==, 0);
  kdf_noise_result_clear (&res);
  /* x is required, with one row per label */
  GError *error = NULL;
  spec.rate = 0.4;
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "instance", "f32[N,D]", NULL);
  g_autoptr (KdfTensor) x_short = kdf_tensor_slice (x, 0, 0, 100);
  g_assert_false (kdf_noise_apply (&spec, y, C, x_short, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "f32[100,784]", NULL);
}

static void
test_openset (void)
{
  g_autoptr (KdfTensor) y = balanced_labels (N, C);
  /* row i of x is (i, i+0.5): an input tells where it came from */
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, N, 2);
  for (int64_t i = 0; i < N; i++) {
    kdf_tensor_f32 (x)[2 * i] = (float) i;
    kdf_tensor_f32 (x)[2 * i + 1] = (float) i + 0.5f;
  }
  int32_t held[2] = { 8, 3 };
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_OPENSET;
  spec.rate = 0.2;
  spec.seed = 23;
  spec.heldout = held;
  spec.n_heldout = 2;
  KdfNoiseResult res;
  apply_ok (&spec, y, C, x, &res);
  g_assert_cmpint (res.n_classes, ==, 8);
  g_assert_cmpint (res.labels->shape[0], ==, 48000);
  g_assert_cmpint (res.x->shape[0], ==, 48000);
  g_assert_cmpint (res.n_noisy, ==, 9600); /* ⌊0.2 · 48000⌋ */
  const int32_t remap_want[C] = { 0, 1, 2, -1, 3, 4, 5, 6, -1, 7 };
  for (int c = 0; c < C; c++)
    g_assert_cmpint (res.class_remap[c], ==, remap_want[c]);
  g_autoptr (GHashTable) used = g_hash_table_new (NULL, NULL);
  int64_t replaced = 0;
  for (int64_t r = 0; r < 48000; r++) {
    int32_t kept = kdf_tensor_i32 (res.kept_index)[r];
    int32_t src = kdf_tensor_i32 (res.input_index)[r];
    float x0 = kdf_tensor_f32 (res.x)[2 * r], x1 = kdf_tensor_f32 (res.x)[2 * r + 1];
    int32_t yk = kdf_tensor_i32 (y)[kept];
    g_assert_cmpint (yk, !=, 3);
    g_assert_cmpint (yk, !=, 8);
    /* the label is the in-set sample's, renumbered; clean == noisy label */
    g_assert_cmpint (kdf_tensor_i32 (res.labels)[r], ==, remap_want[yk]);
    g_assert_cmpint (kdf_tensor_i32 (res.clean_labels)[r], ==, remap_want[yk]);
    g_assert_cmpfloat (x0, ==, (float) src);
    g_assert_cmpfloat (x1, ==, (float) src + 0.5f);
    if (kdf_tensor_u8 (res.noisy_mask)[r]) {
      /* the input really comes from a held-out class, each held-out input used once */
      int32_t ys = kdf_tensor_i32 (y)[src];
      g_assert_true (ys == 3 || ys == 8);
      g_assert_false (g_hash_table_contains (used, GINT_TO_POINTER (src)));
      g_hash_table_add (used, GINT_TO_POINTER (src));
      replaced++;
    } else {
      g_assert_cmpint (src, ==, kept);
    }
    if (r > 0)
      g_assert_cmpint (kept, >, kdf_tensor_i32 (res.kept_index)[r - 1]); /* order kept */
  }
  g_assert_cmpint (replaced, ==, 9600);
  kdf_noise_result_clear (&res);
  check_reproducible (spec, y, C, x);

  GError *error = NULL;
  spec.rate = 0.3; /* 14 400 replacements, only 12 000 held-out inputs */
  g_assert_false (kdf_noise_apply (&spec, y, C, x, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "14400", "12000", NULL);
  spec.rate = 0.2;
  int32_t nosuch[1] = { 10 };
  spec.heldout = nosuch;
  spec.n_heldout = 1;
  g_assert_false (kdf_noise_apply (&spec, y, C, x, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "held-out class 10", NULL);
  spec.n_heldout = 0;
  g_assert_false (kdf_noise_apply (&spec, y, C, x, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "held-out", NULL);
  int n_list = 0;
  g_autofree int32_t *list = kdf_noise_parse_class_list ("Bag, ankle boot", C, fmnist_names,
                                                         &n_list, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n_list, ==, 2);
  g_assert_cmpint (list[0], ==, 8);
  g_assert_cmpint (list[1], ==, 9);
  g_assert_null (kdf_noise_parse_class_list ("8,Hat", C, fmnist_names, &n_list, &error));
  assert_error (&error, KDF_ERROR_PARAM, "'Hat'", NULL);
}

static void
test_file (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  g_autoptr (KdfTensor) y = balanced_labels (1000, C);
  g_autoptr (KdfTensor) given = kdf_tensor_copy (y);
  for (int i = 0; i < 1000; i += 7)
    kdf_tensor_i32 (given)[i] = (kdf_tensor_i32 (given)[i] + 3) % C;
  g_autofree char *p = g_build_filename (dir, "labels.npy", NULL);
  g_assert_true (kdf_npy_write (p, given, &error));
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_FILE;
  spec.file = p;
  KdfNoiseResult res;
  apply_ok (&spec, y, C, NULL, &res);
  g_assert_cmpint (res.n_noisy, ==, 143);
  g_assert_cmpmem (res.labels->data, 4000, given->data, 4000);
  kdf_noise_result_clear (&res);
  /* int64 labels from numpy convert */
  int64_t n1[1] = { 1000 };
  g_autofree int64_t *l64 = g_new (int64_t, 1000);
  for (int i = 0; i < 1000; i++)
    l64[i] = kdf_tensor_i32 (given)[i];
  g_assert_true (kdf_npy_write_raw (p, "<i8", 1, n1, l64, &error));
  apply_ok (&spec, y, C, NULL, &res);
  g_assert_cmpint (res.n_noisy, ==, 143);
  kdf_noise_result_clear (&res);
  /* wrong length, a label out of range, a missing file */
  g_autoptr (KdfTensor) shorter = kdf_tensor_slice (given, 0, 0, 999);
  g_assert_true (kdf_npy_write (p, shorter, &error));
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_SHAPE, p, "i32[999]", "expected i32[1000]", NULL);
  kdf_tensor_i32 (given)[5] = 10;
  g_assert_true (kdf_npy_write (p, given, &error));
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_VALUE, p, "label 5 is 10", NULL);
  g_autofree char *missing = g_build_filename (dir, "nope.npy", NULL);
  spec.file = missing;
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_IO, missing, NULL);
  tmpdir_free (dir);
}

static void
test_invalid (void)
{
  GError *error = NULL;
  KdfNoiseResult res;
  g_autoptr (KdfTensor) y = balanced_labels (100, C);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_SYMMETRIC;
  const double bad_rates[] = { 1.0, -0.1, NAN, 2 };
  for (guint k = 0; k < G_N_ELEMENTS (bad_rates); k++) {
    spec.rate = bad_rates[k];
    g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
    assert_error (&error, KDF_ERROR_PARAM, "rate", "outside [0, 1)", NULL);
  }
  spec.rate = 0.5;
  kdf_tensor_i32 (y)[17] = 10;
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_VALUE, "labels row 17 is 10", "[0, 10)", NULL);
  kdf_tensor_i32 (y)[17] = -1;
  g_assert_false (kdf_noise_apply (&spec, y, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_VALUE, "labels row 17 is -1", NULL);
  g_autoptr (KdfTensor) y1 = kdf_tensor_new_1d (KDF_DTYPE_I32, 10);
  g_assert_false (kdf_noise_apply (&spec, y1, 1, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "at least 2 classes", NULL);
  g_autoptr (KdfTensor) yf = kdf_tensor_new_1d (KDF_DTYPE_F32, 10);
  g_assert_false (kdf_noise_apply (&spec, yf, C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "i32[N]", NULL);

  KdfNoiseKind kind;
  g_assert_true (kdf_noise_kind_from_name ("symmetric_inclusive", &kind));
  g_assert_cmpint (kind, ==, KDF_NOISE_SYMMETRIC_INCLUSIVE);
  g_assert_cmpstr (kdf_noise_kind_name (KDF_NOISE_PAIRFLIP), ==, "pairflip");
  g_assert_false (kdf_noise_kind_from_name ("gaussian", &kind));
}

/* Open-set then closed-set noise on a dataset: disjoint, counts add up. */
static void
test_dataset_composition (void)
{
  GError *error = NULL;
  g_autoptr (KdfTensor) y = balanced_labels (N, C);
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, N, 1);
  for (int64_t i = 0; i < N; i++)
    kdf_tensor_f32 (x)[i] = (float) i;
  g_autoptr (KdfTensor) yt = balanced_labels (1000, C);
  g_autoptr (KdfTensor) xt = kdf_tensor_new_2d (KDF_DTYPE_F32, 1000, 1);
  g_autoptr (KdfDataset) ds = kdf_dataset_new ("t", x, y, xt, yt, C, &error);
  g_assert_no_error (error);
  kdf_dataset_set_class_names (ds, fmnist_names);

  int32_t held[2] = { 8, 9 };
  KdfNoiseSpec open = KDF_NOISE_SPEC_INIT;
  open.kind = KDF_NOISE_OPENSET;
  open.rate = 0.2;
  open.seed = 1;
  open.heldout = held;
  open.n_heldout = 2;
  g_assert_true (kdf_dataset_add_noise (ds, &open, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ds->n_classes, ==, 8);
  g_assert_cmpint (ds->x->shape[0], ==, 48000);
  g_assert_cmpint (ds->y_test->shape[0], ==, 800);
  g_assert_cmpstr (ds->class_names[7], ==, "Sneaker");
  g_assert_null (ds->class_names[8]);
  KdfNoiseSpec sym = KDF_NOISE_SPEC_INIT;
  sym.kind = KDF_NOISE_SYMMETRIC;
  sym.rate = 0.2;
  sym.seed = 2;
  g_assert_true (kdf_dataset_add_noise (ds, &sym, &error));
  g_assert_no_error (error);
  int64_t noisy = 0, flipped = 0, both = 0, opened = 0;
  for (int64_t r = 0; r < 48000; r++) {
    gboolean m = kdf_tensor_u8 (ds->noisy_mask)[r];
    gboolean f = kdf_tensor_i32 (ds->labels)[r] != kdf_tensor_i32 (ds->clean_labels)[r];
    gboolean o = (int64_t) kdf_tensor_f32 (ds->x)[r] != kdf_tensor_i32 (ds->index)[r];
    noisy += m;
    flipped += f;
    opened += o;
    both += f && o;
    g_assert_true (m == (f || o));
  }
  g_assert_cmpint (opened, ==, 9600);
  g_assert_cmpint (flipped, ==, 9600);
  g_assert_cmpint (both, ==, 0);
  g_assert_cmpint (noisy, ==, 19200);
  g_assert_true (kdf_tensor_is_oracle (ds->noisy_mask));
  g_assert_true (kdf_tensor_is_oracle (ds->clean_labels));

  /* open-set after other noise, or any noise after the split, is refused */
  g_assert_false (kdf_dataset_add_noise (ds, &open, &error));
  assert_error (&error, KDF_ERROR_PARAM, "before any other noise", NULL);
  g_assert_true (kdf_dataset_split_validation (ds, 0.1, 3, &error));
  g_assert_false (kdf_dataset_add_noise (ds, &sym, &error));
  assert_error (&error, KDF_ERROR_PARAM, "validation split", NULL);
}

/* Confusable clusters on a constructed set: 6 classes, rows equal to their class's
 * prototype. Groups A = {0,1,2} along e0, B = {3,4} along e1, C = {5} along e2, equal
 * group totals (200, 300, 600 rows per class) so the mean is (1,1,1)/3; inside a group
 * the classes differ by zero-sum offsets on their own axes (A: norm 0.3 at 120° in
 * e3/e4, B: ±0.5 e5). Centred rows: (2/3, −1/3, −1/3) up to order plus the offset, so
 * across groups the dot product is −1/3 and the cosine −1/3 over the norms: A to B
 * −0.400, B to C −0.426, A to C −0.469; inside A 0.822, inside B 0.455. Complete
 * linkage merges at 0.178 (twice), 0.545, 1.400, then A∪B to C at max(1.426, 1.469)
 * (single linkage would take 1.426); the cut at 0.8 × 1.469 leaves exactly A, B, C. */
#define CC_N 1800
#define CC_C 6
#define CC_D 6

static const int cc_count[CC_C] = { 200, 200, 200, 300, 300, 600 };

static void
cc_data (KdfTensor **x_out, KdfTensor **y_out)
{
  const double s3 = sqrt (3.0) / 2;
  const double proto[CC_C][CC_D] = {
    { 1, 0, 0, 0.3, 0, 0 },
    { 1, 0, 0, -0.15, 0.3 * s3, 0 },
    { 1, 0, 0, -0.15, -0.3 * s3, 0 },
    { 0, 1, 0, 0, 0, 0.5 },
    { 0, 1, 0, 0, 0, -0.5 },
    { 0, 0, 1, 0, 0, 0 },
  };
  KdfTensor *x = kdf_tensor_new_2d (KDF_DTYPE_F32, CC_N, CC_D);
  KdfTensor *y = kdf_tensor_new_1d (KDF_DTYPE_I32, CC_N);
  /* classes interleaved: row i goes to the class whose quota is least filled */
  int filled[CC_C] = { 0 };
  for (int64_t i = 0; i < CC_N; i++) {
    int best = -1;
    for (int c = 0; c < CC_C; c++)
      if (filled[c] < cc_count[c] &&
          (best < 0 || filled[c] * cc_count[best] < filled[best] * cc_count[c]))
        best = c;
    filled[best]++;
    kdf_tensor_i32 (y)[i] = best;
    for (int j = 0; j < CC_D; j++)
      kdf_tensor_f32 (x)[i * CC_D + j] = (float) proto[best][j];
  }
  *x_out = x;
  *y_out = y;
}

static void
test_cc_clusters (void)
{
  GError *error = NULL;
  g_autoptr (KdfTensor) x = NULL;
  g_autoptr (KdfTensor) y = NULL;
  cc_data (&x, &y);
  int32_t cl[CC_C];
  double h[CC_C - 1];
  gboolean ok = kdf_noise_confusable_clusters (x, y, CC_C, 0.8, cl, h, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  const int32_t want[CC_C] = { 0, 0, 0, 1, 1, 2 };
  for (int c = 0; c < CC_C; c++)
    g_assert_cmpint (cl[c], ==, want[c]);
  /* the merge heights, from the cosines above */
  const double na = 2.0 / 3 + 0.09, nb = 2.0 / 3 + 0.25, nc = 2.0 / 3; /* squared norms */
  const double ab = 1 + (1.0 / 3) / sqrt (na * nb);
  const double to_c = 1 + (1.0 / 3) / sqrt (na * nc); /* A to C, above B to C */
  const double ha = 1 - (2.0 / 3 - 0.045) / na;
  const double hb = 1 - (2.0 / 3 - 0.25) / nb;
  const double want_h[CC_C - 1] = { ha, ha, hb, ab, to_c };
  for (int k = 0; k < CC_C - 1; k++)
    g_assert_cmpfloat_with_epsilon (h[k], want_h[k], 1e-5);
  /* the cut matters: below the first merge every class is alone, at 1 all are one */
  g_assert_true (kdf_noise_confusable_clusters (x, y, CC_C, 0.1, cl, NULL, &error));
  for (int c = 0; c < CC_C; c++)
    g_assert_cmpint (cl[c], ==, c);
  g_assert_true (kdf_noise_confusable_clusters (x, y, CC_C, 1.0, cl, NULL, &error));
  for (int c = 0; c < CC_C; c++)
    g_assert_cmpint (cl[c], ==, 0);
  /* between A's merges (0.178) and B's (0.545): A joined, B apart */
  g_assert_true (kdf_noise_confusable_clusters (x, y, CC_C, 0.14, cl, NULL, &error));
  const int32_t want_a[CC_C] = { 0, 0, 0, 1, 2, 3 };
  for (int c = 0; c < CC_C; c++)
    g_assert_cmpint (cl[c], ==, want_a[c]);
  /* a scaled, shifted copy of x gives the same clusters (cosines of centred rows) */
  g_autoptr (KdfTensor) x2 = kdf_tensor_copy (x);
  for (int64_t i = 0; i < CC_N * CC_D; i++)
    kdf_tensor_f32 (x2)[i] = 3 * kdf_tensor_f32 (x2)[i] + 5;
  g_assert_true (kdf_noise_confusable_clusters (x2, y, CC_C, 0.8, cl, NULL, &error));
  for (int c = 0; c < CC_C; c++)
    g_assert_cmpint (cl[c], ==, want[c]);

  /* explicit clusters by index or name, ids in the order of the lowest class */
  static const char *const names[] = { "a0", "a1", "a2", "b3", "b4", "c5", NULL };
  g_assert_true (kdf_noise_parse_clusters ("b4, 3; 2,a0 ,1", CC_C, names, cl, &error));
  g_assert_no_error (error);
  for (int c = 0; c < CC_C; c++)
    g_assert_cmpint (cl[c], ==, want[c]);
  g_assert_false (kdf_noise_parse_clusters ("0,1;1,2", CC_C, names, cl, &error));
  assert_error (&error, KDF_ERROR_PARAM, "class 1 twice", NULL);
  g_assert_false (kdf_noise_parse_clusters ("0,7", CC_C, names, cl, &error));
  assert_error (&error, KDF_ERROR_PARAM, "no class '7'", NULL);
  /* bad inputs */
  g_assert_false (kdf_noise_confusable_clusters (x, y, CC_C, 0, cl, NULL, &error));
  assert_error (&error, KDF_ERROR_PARAM, "cut 0", NULL);
  g_autoptr (KdfTensor) xs = kdf_tensor_new_2d (KDF_DTYPE_F32, 10, CC_D);
  g_assert_false (kdf_noise_confusable_clusters (xs, y, CC_C, 0.8, cl, NULL, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "f32[N,D] with N = 1800", NULL);
}

/* The defining property of cc noise: every noisy label lies in the true class's
 * cluster, ⌊r·N_c⌋ per class of a cluster of ≥ 2 (none for a class alone), the other
 * classes of the cluster in equal shares. */
static void
test_cc (void)
{
  GError *error = NULL;
  g_autoptr (KdfTensor) x = NULL;
  g_autoptr (KdfTensor) y = NULL;
  cc_data (&x, &y);
  const int32_t cluster[CC_C] = { 0, 0, 0, 1, 1, 2 };
  const double rates[] = { 0.6, 0.8, 0.37 };
  for (guint r = 0; r < G_N_ELEMENTS (rates); r++) {
    KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
    spec.kind = KDF_NOISE_CC;
    spec.rate = rates[r];
    spec.seed = 9 + r;
    KdfNoiseResult res;
    apply_ok (&spec, y, CC_C, x, &res); /* clusters computed from x */
    int64_t to[CC_C][CC_C] = { { 0 } };
    for (int64_t i = 0; i < CC_N; i++)
      to[kdf_tensor_i32 (y)[i]][kdf_tensor_i32 (res.labels)[i]]++;
    int64_t total = 0;
    for (int a = 0; a < CC_C; a++) {
      int m = 0;
      int64_t flipped = 0;
      for (int b = 0; b < CC_C; b++)
        if (b != a) {
          if (cluster[b] != cluster[a])
            g_assert_cmpint (to[a][b], ==, 0); /* never outside the cluster */
          else
            m++;
          flipped += to[a][b];
        }
      int64_t k = m ? (int64_t) floor (rates[r] * cc_count[a] + 1e-7) : 0;
      g_assert_cmpint (flipped, ==, k); /* exact count */
      for (int b = 0; b < CC_C; b++)
        if (b != a && cluster[b] == cluster[a]) {
          g_assert_cmpint (to[a][b], >=, k / m); /* equal shares */
          g_assert_cmpint (to[a][b], <=, (k + m - 1) / m);
        }
      total += flipped;
    }
    g_assert_cmpint (res.n_noisy, ==, total);
    kdf_noise_result_clear (&res);

    /* the same partition given explicitly gives the same labels, without x */
    KdfNoiseSpec given = spec;
    given.clusters = cluster;
    KdfNoiseResult res2;
    apply_ok (&spec, y, CC_C, x, &res);
    apply_ok (&given, y, CC_C, NULL, &res2);
    g_assert_cmpmem (res.labels->data, kdf_tensor_nbytes (res.labels), res2.labels->data,
                     kdf_tensor_nbytes (res2.labels));
    kdf_noise_result_clear (&res);
    kdf_noise_result_clear (&res2);
    check_reproducible (spec, y, CC_C, x);
  }

  /* another partition moves the noise with it: {0,5} and the rest alone */
  const int32_t other[CC_C] = { 0, 1, 2, 3, 4, 0 };
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_CC;
  spec.rate = 0.5;
  spec.clusters = other;
  KdfNoiseResult res;
  apply_ok (&spec, y, CC_C, NULL, &res);
  for (int64_t i = 0; i < CC_N; i++) {
    int32_t a = kdf_tensor_i32 (y)[i], b = kdf_tensor_i32 (res.labels)[i];
    if (a != b)
      g_assert_true ((a == 0 && b == 5) || (a == 5 && b == 0));
  }
  g_assert_cmpint (res.n_noisy, ==, 100 + 300);
  kdf_noise_result_clear (&res);

  /* errors: no inputs and no clusters; a cluster id out of range */
  spec.clusters = NULL;
  g_assert_false (kdf_noise_apply (&spec, y, CC_C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "cc noise", "f32[N,D]", NULL);
  const int32_t bad[CC_C] = { 0, 0, 9, 1, 1, 2 };
  spec.clusters = bad;
  g_assert_false (kdf_noise_apply (&spec, y, CC_C, NULL, NULL, &res, &error));
  assert_error (&error, KDF_ERROR_PARAM, "class 2 is in cluster 9", NULL);
  KdfNoiseKind kind;
  g_assert_true (kdf_noise_kind_from_name ("cc", &kind));
  g_assert_cmpint (kind, ==, KDF_NOISE_CC);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/noise/symmetric", test_symmetric);
  g_test_add_func ("/data/noise/symmetric-inclusive", test_symmetric_inclusive);
  g_test_add_func ("/data/noise/pairflip", test_pairflip);
  g_test_add_func ("/data/noise/asymmetric", test_asymmetric);
  g_test_add_func ("/data/noise/transition", test_transition);
  g_test_add_func ("/data/noise/instance", test_instance);
  g_test_add_func ("/data/noise/openset", test_openset);
  g_test_add_func ("/data/noise/file", test_file);
  g_test_add_func ("/data/noise/cc-clusters", test_cc_clusters);
  g_test_add_func ("/data/noise/cc", test_cc);
  g_test_add_func ("/data/noise/invalid", test_invalid);
  g_test_add_func ("/data/noise/dataset-composition", test_dataset_composition);
  return g_test_run ();
}
