/* Datasets: construction checks, the noisy validation split, stratified subsets,
 * normalisation, loading from a directory of .npy files, and probability checks. */
#include "data-test-util.h"

#include <math.h>

/* N samples, D features: x[i,j] = i + j/10; labels i mod C (balanced when C | N),
 * or a skewed class pattern. */
static KdfDataset *
make_dataset (int64_t n, int64_t d, int n_classes, gboolean skewed, int64_t n_test)
{
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, n, d);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < d; j++)
      kdf_tensor_f32 (x)[i * d + j] = (float) (i + j / 10.0);
    /* skewed: class c gets a share proportional to c + 1 */
    int32_t c = (int32_t) (i % n_classes);
    if (skewed) {
      int64_t r = i % (n_classes * (n_classes + 1) / 2), acc = 0;
      for (c = 0; c < n_classes; c++)
        if (r < (acc += c + 1))
          break;
    }
    kdf_tensor_i32 (y)[i] = c;
  }
  g_autoptr (KdfTensor) xt = n_test ? kdf_tensor_new_2d (KDF_DTYPE_F32, n_test, d) : NULL;
  g_autoptr (KdfTensor) yt = n_test ? kdf_tensor_new_1d (KDF_DTYPE_I32, n_test) : NULL;
  for (int64_t i = 0; i < n_test; i++) {
    for (int64_t j = 0; j < d; j++)
      kdf_tensor_f32 (xt)[i * d + j] = (float) (2 * i);
    kdf_tensor_i32 (yt)[i] = (int32_t) (i % n_classes);
  }
  GError *error = NULL;
  KdfDataset *ds = kdf_dataset_new ("t", x, y, xt, yt, n_classes, &error);
  g_assert_no_error (error);
  return ds;
}

static void
test_new_checks (void)
{
  GError *error = NULL;
  g_autoptr (KdfTensor) x = kdf_tensor_new_2d (KDF_DTYPE_F32, 4, 2);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, 4);
  g_autoptr (KdfTensor) y3 = kdf_tensor_new_1d (KDF_DTYPE_I32, 3);
  g_assert_null (kdf_dataset_new ("t", x, y3, NULL, NULL, 2, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "4 rows", "3", NULL);
  kdf_tensor_i32 (y)[2] = 5;
  g_assert_null (kdf_dataset_new ("t", x, y, NULL, NULL, 3, &error));
  assert_error (&error, KDF_ERROR_VALUE, "labels row 2 is 5", NULL);
  g_autoptr (KdfDataset) ok = kdf_dataset_new ("t", x, y, NULL, NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ok->n_classes, ==, 6); /* 1 + the largest label */
  g_autoptr (KdfTensor) x1 = kdf_tensor_new_1d (KDF_DTYPE_F32, 4);
  g_assert_null (kdf_dataset_new ("t", x1, y, NULL, NULL, 0, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "f32[4]", NULL);
  /* u8 images N×C×H×W become N×D f32 with the image shape kept */
  int64_t s4[4] = { 4, 3, 2, 2 };
  g_autoptr (KdfTensor) img = kdf_tensor_new (KDF_DTYPE_U8, 4, s4);
  kdf_tensor_u8 (img)[13] = 200;
  g_autoptr (KdfDataset) ids = kdf_dataset_new ("img", img, y, NULL, NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ids->x->shape[1], ==, 12);
  g_assert_cmpint (ids->image_shape[0], ==, 3);
  g_assert_cmpint (ids->image_shape[2], ==, 2);
  g_assert_cmpfloat (kdf_tensor_f32 (ids->x)[13], ==, 200);
  g_assert_cmpfloat (ids->input_range[1], ==, 255);
  g_assert_cmpint (kdf_dataset_class_from_string (ids, "5"), ==, 5);
  g_assert_cmpint (kdf_dataset_class_from_string (ids, "6"), ==, -1);
}

static void
test_validation_split (void)
{
  GError *error = NULL;
  g_autoptr (KdfDataset) ds = make_dataset (1000, 3, 10, FALSE, 0);
  KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;
  spec.kind = KDF_NOISE_SYMMETRIC;
  spec.rate = 0.4;
  spec.seed = 8;
  g_assert_true (kdf_dataset_add_noise (ds, &spec, &error));
  g_assert_true (kdf_dataset_split_validation (ds, 0.1, 99, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ds->x_val->shape[0], ==, 100);
  g_assert_cmpint (ds->x->shape[0], ==, 900);
  g_assert_cmpint (ds->labels_val->shape[0], ==, 100);
  g_assert_true (kdf_tensor_is_oracle (ds->noisy_mask_val));
  g_assert_true (kdf_tensor_is_oracle (ds->clean_labels_val));
  g_assert_false (kdf_tensor_is_oracle (ds->labels_val));
  /* a partition of the original rows, each split ascending, rows travel together */
  g_autofree guint8 *seen = g_new0 (guint8, 1000);
  int64_t val_noisy = 0, total_noisy = 0;
  struct {
    KdfTensor *x, *y, *clean, *mask, *idx;
  } parts[2] = { { ds->x, ds->labels, ds->clean_labels, ds->noisy_mask, ds->index },
                 { ds->x_val, ds->labels_val, ds->clean_labels_val, ds->noisy_mask_val,
                   ds->index_val } };
  for (int s = 0; s < 2; s++) {
    int64_t n = parts[s].idx->shape[0];
    for (int64_t r = 0; r < n; r++) {
      int32_t i = kdf_tensor_i32 (parts[s].idx)[r];
      g_assert_false (seen[i]);
      seen[i] = 1;
      if (r)
        g_assert_cmpint (i, >, kdf_tensor_i32 (parts[s].idx)[r - 1]);
      g_assert_cmpfloat (kdf_tensor_f32 (parts[s].x)[r * 3], ==, (float) i);
      g_assert_cmpint (kdf_tensor_i32 (parts[s].clean)[r], ==, i % 10);
      gboolean m = kdf_tensor_u8 (parts[s].mask)[r];
      g_assert_cmpint (m, ==, kdf_tensor_i32 (parts[s].y)[r] != i % 10);
      total_noisy += m;
      if (s == 1)
        val_noisy += m;
    }
  }
  g_assert_cmpint (total_noisy, ==, 400);
  /* the validation split is noisy: 40 ± 4.9 of its 100 labels; 5σ */
  g_assert_cmpint (val_noisy, >, 15);
  g_assert_cmpint (val_noisy, <, 65);

  /* reproducible by seed */
  g_autoptr (KdfDataset) again = make_dataset (1000, 3, 10, FALSE, 0);
  g_assert_true (kdf_dataset_add_noise (again, &spec, &error));
  g_assert_true (kdf_dataset_split_validation (again, 0.1, 99, &error));
  g_assert_cmpmem (again->index_val->data, 400, ds->index_val->data, 400);
  g_assert_cmpmem (again->labels_val->data, 400, ds->labels_val->data, 400);
  g_autoptr (KdfDataset) other = make_dataset (1000, 3, 10, FALSE, 0);
  g_assert_true (kdf_dataset_split_validation (other, 0.1, 100, &error));
  g_assert_true (memcmp (other->index_val->data, ds->index_val->data, 400) != 0);

  g_assert_false (kdf_dataset_split_validation (ds, 0.1, 1, &error));
  assert_error (&error, KDF_ERROR_PARAM, "already", NULL);
  g_autoptr (KdfDataset) fresh = make_dataset (10, 1, 2, FALSE, 0);
  g_assert_false (kdf_dataset_split_validation (fresh, 1.0, 1, &error));
  assert_error (&error, KDF_ERROR_PARAM, "outside (0, 1)", NULL);
  g_assert_false (kdf_dataset_split_validation (fresh, 0, 1, &error));
  assert_error (&error, KDF_ERROR_PARAM, "outside (0, 1)", NULL);
}

static void
test_stratified (void)
{
  GError *error = NULL;
  /* skewed classes over 4: shares 1:2:3:4 of 1000 → 100, 200, 300, 400 */
  g_autoptr (KdfDataset) ds = make_dataset (1000, 2, 4, TRUE, 50);
  int64_t counts[4] = { 0 };
  for (int64_t i = 0; i < 1000; i++)
    counts[kdf_tensor_i32 (ds->labels)[i]]++;
  g_assert_cmpint (counts[0], ==, 100);
  g_assert_cmpint (counts[3], ==, 400);
  /* 37 picks: exact shares 3.7, 7.4, 11.1, 14.8 → 3, 7, 11, 14 (=35) plus the two
   * largest remainders (class 3: .8, class 0: .7) → 4, 7, 11, 15 */
  g_autoptr (KdfTensor) idx = kdf_data_stratified_indices (ds->labels, 4, 37, 5, &error);
  g_assert_no_error (error);
  int64_t per[4] = { 0 };
  for (int64_t r = 0; r < 37; r++) {
    per[kdf_tensor_i32 (ds->labels)[kdf_tensor_i32 (idx)[r]]]++;
    if (r)
      g_assert_cmpint (kdf_tensor_i32 (idx)[r], >, kdf_tensor_i32 (idx)[r - 1]);
  }
  g_assert_cmpint (per[0], ==, 4);
  g_assert_cmpint (per[1], ==, 7);
  g_assert_cmpint (per[2], ==, 11);
  g_assert_cmpint (per[3], ==, 15);
  g_autoptr (KdfTensor) idx2 = kdf_data_stratified_indices (ds->labels, 4, 37, 5, &error);
  g_assert_cmpmem (idx->data, 37 * 4, idx2->data, 37 * 4);
  g_autoptr (KdfTensor) idx3 = kdf_data_stratified_indices (ds->labels, 4, 37, 6, &error);
  g_assert_true (memcmp (idx->data, idx3->data, 37 * 4) != 0);

  /* on the dataset (by clean class, rows travel together), train and test */
  g_assert_true (kdf_dataset_subset (ds, KDF_SPLIT_TRAIN, 500, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ds->x->shape[0], ==, 500);
  memset (per, 0, sizeof per);
  for (int64_t r = 0; r < 500; r++) {
    int32_t i = kdf_tensor_i32 (ds->index)[r];
    per[kdf_tensor_i32 (ds->clean_labels)[r]]++;
    g_assert_cmpfloat (kdf_tensor_f32 (ds->x)[2 * r], ==, (float) i);
  }
  g_assert_cmpint (per[0], ==, 50);
  g_assert_cmpint (per[3], ==, 200);
  g_assert_true (kdf_dataset_subset (ds, KDF_SPLIT_TEST, 20, 1, &error));
  g_assert_cmpint (ds->x_test->shape[0], ==, 20);
  g_assert_cmpint (ds->y_test->shape[0], ==, 20);
  g_assert_false (kdf_dataset_subset (ds, KDF_SPLIT_TRAIN, 501, 1, &error));
  assert_error (&error, KDF_ERROR_PARAM, "501", NULL);
}

static void
test_normalize (void)
{
  GError *error = NULL;
  g_autoptr (KdfDataset) ds = make_dataset (101, 3, 2, FALSE, 5);
  /* x in [0, 100.2]; no known range, so the training min and max are used */
  g_assert_true (kdf_dataset_normalize (ds, KDF_NORMALIZE_UNIT, &error));
  g_assert_no_error (error);
  const float *x = kdf_tensor_f32 (ds->x);
  g_assert_cmpfloat_with_epsilon (x[0], 0, 1e-7);
  g_assert_cmpfloat_with_epsilon (x[100 * 3 + 2], 1, 1e-6);
  g_assert_cmpfloat_with_epsilon (x[50 * 3], 50 / 100.2, 1e-6);
  /* the test split uses the training map (2i for test row i) */
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (ds->x_test)[4 * 3], 8 / 100.2, 1e-6);

  g_autoptr (KdfDataset) st = make_dataset (101, 3, 2, FALSE, 5);
  g_assert_true (kdf_dataset_split_validation (st, 0.2, 4, &error));
  g_assert_true (kdf_dataset_normalize (st, KDF_NORMALIZE_STANDARDIZE, &error));
  g_assert_no_error (error);
  int64_t n = st->x->shape[0];
  for (int j = 0; j < 3; j++) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++)
      m += kdf_tensor_f32 (st->x)[i * 3 + j];
    m /= n;
    for (int64_t i = 0; i < n; i++)
      v += pow (kdf_tensor_f32 (st->x)[i * 3 + j] - m, 2);
    g_assert_cmpfloat (fabs (m), <, 1e-5);
    g_assert_cmpfloat (fabs (sqrt (v / n) - 1), <, 1e-4);
  }
  /* validation and test rows are mapped with the same statistics: a val row and a
   * train row with the same raw value would agree; check the map is monotone */
  g_assert_cmpfloat (kdf_tensor_f32 (st->x_test)[0], <, kdf_tensor_f32 (st->x_test)[3]);

  g_autoptr (KdfDataset) gl = make_dataset (101, 3, 2, FALSE, 0);
  g_assert_true (kdf_dataset_normalize (gl, KDF_NORMALIZE_STANDARDIZE_GLOBAL, &error));
  double m = 0, v = 0;
  for (int64_t i = 0; i < 303; i++)
    m += kdf_tensor_f32 (gl->x)[i];
  m /= 303;
  for (int64_t i = 0; i < 303; i++)
    v += pow (kdf_tensor_f32 (gl->x)[i] - m, 2);
  g_assert_cmpfloat (fabs (m), <, 1e-5);
  g_assert_cmpfloat (fabs (sqrt (v / 303) - 1), <, 1e-4);

  /* a constant feature is only centred, never divided by zero */
  g_autoptr (KdfTensor) xc = kdf_tensor_new_2d (KDF_DTYPE_F32, 4, 2);
  g_autoptr (KdfTensor) yc = kdf_tensor_new_1d (KDF_DTYPE_I32, 4);
  for (int i = 0; i < 4; i++) {
    kdf_tensor_f32 (xc)[2 * i] = 3;
    kdf_tensor_f32 (xc)[2 * i + 1] = (float) i;
  }
  g_autoptr (KdfDataset) cds = kdf_dataset_new ("c", xc, yc, NULL, NULL, 1, &error);
  g_assert_true (kdf_dataset_normalize (cds, KDF_NORMALIZE_STANDARDIZE, &error));
  for (int i = 0; i < 8; i++)
    g_assert_true (isfinite (kdf_tensor_f32 (cds->x)[i]));
  g_assert_cmpfloat (kdf_tensor_f32 (cds->x)[0], ==, 0);
  /* the caller's tensor was not written (the dataset copies before it writes) */
  g_assert_cmpfloat (kdf_tensor_f32 (xc)[0], ==, 3);
}

static void
test_npy_dir (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  int64_t s3[3] = { 6, 2, 2 };
  g_autoptr (KdfTensor) x = kdf_tensor_new (KDF_DTYPE_U8, 3, s3);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, 6);
  for (int i = 0; i < 6; i++)
    kdf_tensor_i32 (y)[i] = i % 3;
  kdf_tensor_u8 (x)[5] = 51;
  g_autofree char *px = g_build_filename (dir, "x.npy", NULL);
  g_autofree char *py = g_build_filename (dir, "labels.npy", NULL);
  g_assert_true (kdf_npy_write (px, x, &error));
  g_assert_true (kdf_npy_write (py, y, &error));
  g_autoptr (KdfDataset) ds = kdf_dataset_load ("npy", dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ds->n_classes, ==, 3);
  g_assert_cmpint (ds->image_shape[1], ==, 2);
  g_assert_true (kdf_dataset_normalize (ds, KDF_NORMALIZE_UNIT, &error));
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (ds->x)[5], 0.2, 1e-6); /* 51/255 */
  g_assert_null (kdf_dataset_load ("mnist-ish", dir, &error));
  assert_error (&error, KDF_ERROR_PARAM, "unknown dataset", NULL);
  g_remove (py);
  g_assert_null (kdf_dataset_load ("npy", dir, &error));
  assert_error (&error, KDF_ERROR_IO, "labels.npy", NULL);
  tmpdir_free (dir);
}

/* Subsets taken while loading (u8 inputs subset before they become f32) are the rows
 * kdf_dataset_subset takes after loading: x, labels, index and the test split equal. */
static void
test_subset_at_load (void)
{
  GError *error = NULL;
  char *dir = tmpdir_new ();
  const int64_t n = 300, m = 90;
  int64_t sx[3] = { n, 3, 4 }, stx[3] = { m, 3, 4 };
  g_autoptr (KdfTensor) x = kdf_tensor_new (KDF_DTYPE_U8, 3, sx);
  g_autoptr (KdfTensor) tx = kdf_tensor_new (KDF_DTYPE_U8, 3, stx);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  g_autoptr (KdfTensor) ty = kdf_tensor_new_1d (KDF_DTYPE_I32, m);
  for (int64_t i = 0; i < n; i++) {
    kdf_tensor_i32 (y)[i] = (int32_t) ((i * 7) % 5 == 0 ? 4 : (i % 4)); /* unequal classes */
    for (int j = 0; j < 12; j++)
      kdf_tensor_u8 (x)[i * 12 + j] = (guint8) ((i * 13 + j * 5) % 256);
  }
  for (int64_t i = 0; i < m; i++) {
    kdf_tensor_i32 (ty)[i] = (int32_t) (i % 5);
    for (int j = 0; j < 12; j++)
      kdf_tensor_u8 (tx)[i * 12 + j] = (guint8) ((i * 11 + j) % 256);
  }
  const char *names[4] = { "x.npy", "labels.npy", "x_test.npy", "y_test.npy" };
  KdfTensor *parts[4] = { x, y, tx, ty };
  for (int k = 0; k < 4; k++) {
    g_autofree char *p = g_build_filename (dir, names[k], NULL);
    g_assert_true (kdf_npy_write (p, parts[k], &error));
  }
  g_autoptr (KdfDataset) whole = kdf_dataset_load_npy_dir (dir, 0, &error);
  g_assert_no_error (error);
  g_assert_true (kdf_dataset_subset (whole, KDF_SPLIT_TRAIN, 77, 42, &error));
  g_assert_true (kdf_dataset_subset (whole, KDF_SPLIT_TEST, 25, 43, &error));
  KdfSubsetSpec sub = { .train = 77, .train_seed = 42, .test = 25, .test_seed = 43 };
  g_autoptr (KdfDataset) early = kdf_dataset_load_npy_dir_subset (dir, 0, &sub, &error);
  g_assert_no_error (error);
  g_assert_cmpint (early->n_classes, ==, whole->n_classes);
  g_assert_cmpint (early->image_shape[1], ==, 3);
  const KdfTensor *a[] = { whole->x, whole->labels, whole->clean_labels, whole->index,
                           whole->x_test, whole->y_test };
  const KdfTensor *b[] = { early->x, early->labels, early->clean_labels, early->index,
                           early->x_test, early->y_test };
  for (gsize k = 0; k < G_N_ELEMENTS (a); k++) {
    g_assert_cmpint (a[k]->dtype, ==, b[k]->dtype);
    g_assert_cmpint (a[k]->shape[0], ==, b[k]->shape[0]);
    g_assert_cmpmem (a[k]->data, kdf_tensor_nbytes (a[k]), b[k]->data, kdf_tensor_nbytes (b[k]));
  }
  g_assert_true (kdf_tensor_is_oracle (early->clean_labels));
  /* the index names source rows: not 0..76 */
  g_assert_cmpint (kdf_tensor_i32 (early->index)[76], >, 76);
  /* x.npy cut short: the subset path names the file, as a whole read does */
  {
    g_autofree char *p = g_build_filename (dir, "x.npy", NULL);
    gchar *bytes = NULL;
    gsize len = 0;
    g_assert_true (g_file_get_contents (p, &bytes, &len, NULL));
    g_assert_true (g_file_set_contents (p, bytes, (gssize) len - 5, NULL));
    g_assert_null (kdf_dataset_load_npy_dir_subset (dir, 0, &sub, &error));
    assert_error (&error, KDF_ERROR_IO, p, "truncated", NULL);
    g_assert_true (g_file_set_contents (p, bytes, (gssize) len, NULL));
    g_free (bytes);
  }
  /* f32 inputs: the same rows read row by row as subset after a whole read */
  {
    g_autoptr (KdfTensor) xf = kdf_tensor_new (KDF_DTYPE_F32, 3, sx);
    for (int64_t i = 0; i < n * 12; i++)
      kdf_tensor_f32 (xf)[i] = (float) (i % 97) * 0.5f - 3;
    g_autofree char *p = g_build_filename (dir, "x.npy", NULL);
    g_assert_true (kdf_npy_write (p, xf, &error));
    g_autoptr (KdfDataset) wf = kdf_dataset_load_npy_dir (dir, 0, &error);
    g_assert_no_error (error);
    g_assert_true (kdf_dataset_subset (wf, KDF_SPLIT_TRAIN, 77, 42, &error));
    g_autoptr (KdfDataset) ef = kdf_dataset_load_npy_dir_subset (dir, 0, &sub, &error);
    g_assert_no_error (error);
    g_assert_cmpmem (wf->x->data, kdf_tensor_nbytes (wf->x), ef->x->data, kdf_tensor_nbytes (ef->x));
    g_assert_cmpmem (wf->index->data, kdf_tensor_nbytes (wf->index), ef->index->data,
                     kdf_tensor_nbytes (ef->index));
    g_assert_true (kdf_npy_write (p, x, &error));
  }
  /* a subset larger than its split */
  KdfSubsetSpec big = { .train = n + 1 };
  g_assert_null (kdf_dataset_load_npy_dir_subset (dir, 0, &big, &error));
  assert_error (&error, KDF_ERROR_PARAM, "a subset of 301 training rows", NULL);
  KdfSubsetSpec bigt = { .test = m + 1 };
  g_assert_null (kdf_dataset_load_npy_dir_subset (dir, 0, &bigt, &error));
  assert_error (&error, KDF_ERROR_PARAM, "the test split has only 90", NULL);
  for (int k = 0; k < 4; k++) {
    g_autofree char *p = g_build_filename (dir, names[k], NULL);
    g_remove (p);
  }
  tmpdir_free (dir);
}

static void
test_probs (void)
{
  GError *error = NULL;
  const float good[6] = { 0.2f, 0.3f, 0.5f, 1, 0, 0 };
  int64_t sh[2] = { 2, 3 };
  g_autoptr (KdfTensor) p = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, sh, good);
  int64_t fixed = -1;
  g_autoptr (KdfTensor) q = kdf_probs_check (p, 0, &fixed, &error);
  g_assert_no_error (error);
  g_assert_true (q == p); /* nothing to change: the same tensor */
  g_assert_cmpint (fixed, ==, 0);

  const float off[9] = { 2, 1, 1, 0.2f, 0.3f, 0.5f, 0, 0, 0.5f };
  int64_t sh3[2] = { 3, 3 };
  g_autoptr (KdfTensor) po = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, sh3, off);
  g_autoptr (KdfTensor) qo = kdf_probs_check (po, 0, &fixed, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fixed, ==, 2);
  g_assert_true (qo != po);
  g_assert_cmpfloat (kdf_tensor_f32 (qo)[0], ==, 0.5f);
  g_assert_cmpfloat (kdf_tensor_f32 (qo)[4], ==, 0.3f);
  g_assert_cmpfloat (kdf_tensor_f32 (qo)[8], ==, 1.0f);
  g_assert_cmpfloat (kdf_tensor_f32 (po)[0], ==, 2); /* input untouched */

  const float bad[4][6] = {
    { 0.5f, 0.5f, 0, 0.1f, NAN, 0.9f },
    { 0.5f, 0.5f, 0, 0.1f, INFINITY, 0.9f },
    { 0.5f, 0.5f, 0, 1.1f, -0.1f, 0 },
    { 0.5f, 0.5f, 0, 0, 0, 0 },
  };
  const char *needles[4] = { "row 1 has NaN in column 1", "row 1 has an infinite", "row 1 has a negative",
                             "row 1 sums to 0" };
  for (int k = 0; k < 4; k++) {
    g_autoptr (KdfTensor) pb = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, sh, bad[k]);
    g_assert_null (kdf_probs_check (pb, 0, &fixed, &error));
    assert_error (&error, KDF_ERROR_VALUE, needles[k], NULL);
  }
  g_autoptr (KdfTensor) v = kdf_tensor_new_1d (KDF_DTYPE_F32, 3);
  g_assert_null (kdf_probs_check (v, 0, NULL, &error));
  assert_error (&error, KDF_ERROR_SHAPE, "f32[N,C]", NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/dataset/new-checks", test_new_checks);
  g_test_add_func ("/data/dataset/validation-split", test_validation_split);
  g_test_add_func ("/data/dataset/stratified", test_stratified);
  g_test_add_func ("/data/dataset/normalize", test_normalize);
  g_test_add_func ("/data/dataset/npy-dir", test_npy_dir);
  g_test_add_func ("/data/dataset/probs", test_probs);
  g_test_add_func ("/data/dataset/subset-at-load", test_subset_at_load);
  return g_test_run ();
}
