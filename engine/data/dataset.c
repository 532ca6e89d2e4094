/* engine/data: datasets — loading, normalisation, noise, validation split, subsets. */
#include "config.h"

#include "data-private.h"

#include <math.h>
#include <string.h>

static const char *const fmnist_names[] = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot", NULL,
};

KdfDataset *
kdf_dataset_ref (KdfDataset *ds)
{
  g_return_val_if_fail (ds != NULL, NULL);
  g_atomic_int_inc (&ds->ref_count);
  return ds;
}

static void
clear_val (KdfDataset *ds)
{
  g_clear_pointer (&ds->x_val, kdf_tensor_unref);
  g_clear_pointer (&ds->labels_val, kdf_tensor_unref);
  g_clear_pointer (&ds->clean_labels_val, kdf_tensor_unref);
  g_clear_pointer (&ds->noisy_mask_val, kdf_tensor_unref);
  g_clear_pointer (&ds->open_mask_val, kdf_tensor_unref);
  g_clear_pointer (&ds->index_val, kdf_tensor_unref);
}

void
kdf_dataset_unref (KdfDataset *ds)
{
  if (ds == NULL || !g_atomic_int_dec_and_test (&ds->ref_count))
    return;
  g_free (ds->name);
  g_strfreev (ds->class_names);
  kdf_tensor_unref (ds->x);
  kdf_tensor_unref (ds->labels);
  kdf_tensor_unref (ds->clean_labels);
  kdf_tensor_unref (ds->noisy_mask);
  kdf_tensor_unref (ds->open_mask);
  kdf_tensor_unref (ds->index);
  clear_val (ds);
  kdf_tensor_unref (ds->x_test);
  kdf_tensor_unref (ds->y_test);
  g_free (ds);
}

void
kdf_dataset_set_class_names (KdfDataset *ds, const char *const *names)
{
  g_return_if_fail (ds != NULL);
  g_strfreev (ds->class_names);
  ds->class_names = NULL;
  if (names == NULL)
    return;
  ds->class_names = g_new0 (char *, ds->n_classes + 1);
  for (int c = 0; c < ds->n_classes; c++)
    ds->class_names[c] = g_strdup (names[c] ? names[c] : "");
}

int
kdf_dataset_class_from_string (const KdfDataset *ds, const char *s)
{
  g_return_val_if_fail (ds != NULL && s != NULL, -1);
  return kdf_data_resolve_class (s, ds->n_classes, (const char *const *) ds->class_names);
}

/* X (rank 2..4, any dtype) as a new contiguous N×D f32 tensor. */
static KdfTensor *
to_f32_matrix (KdfTensor *x, const char *what, GError **error)
{
  if (x->rank < 2) {
    g_autofree char *d = kdf_tensor_describe (x);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s must be [N,D], [N,H,W] or [N,C,H,W], got %s", what, d);
    return NULL;
  }
  int64_t n = x->shape[0], d = 1;
  for (int k = 1; k < x->rank; k++)
    d *= x->shape[k];
  g_autoptr (KdfTensor) c = kdf_tensor_contiguous (x);
  int64_t shape[2] = { n, d };
  if (c->dtype == KDF_DTYPE_F32) {
    if (c->rank == 2)
      return g_steal_pointer (&c);
    return kdf_tensor_reshape (c, 2, shape, error);
  }
  KdfTensor *out = kdf_tensor_try_new (KDF_DTYPE_F32, 2, shape, error);
  if (out == NULL)
    return NULL;
  float *dst = kdf_tensor_f32 (out);
  int64_t total = n * d;
  if (c->dtype == KDF_DTYPE_U8)
    for (int64_t i = 0; i < total; i++)
      dst[i] = kdf_tensor_u8 (c)[i];
  else
    for (int64_t i = 0; i < total; i++)
      dst[i] = (float) kdf_tensor_i32 (c)[i];
  return out;
}

static KdfTensor *
to_i32_labels (KdfTensor *y, const char *what, GError **error)
{
  if (y->rank != 1 || y->dtype == KDF_DTYPE_F32) {
    g_autofree char *d = kdf_tensor_describe (y);
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "%s must be i32[N] or u8[N], got %s", what,
                 d);
    return NULL;
  }
  KdfTensor *out = kdf_tensor_new_1d (KDF_DTYPE_I32, y->shape[0]);
  for (int64_t i = 0; i < y->shape[0]; i++)
    kdf_tensor_i32 (out)[i] = (int32_t) kdf_tensor_get_flat (y, i);
  return out;
}

static KdfTensor *
iota (int64_t n)
{
  KdfTensor *t = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  for (int64_t i = 0; i < n; i++)
    kdf_tensor_i32 (t)[i] = (int32_t) i;
  return t;
}

static KdfTensor *
oracle_copy (const KdfTensor *t)
{
  KdfTensor *c = kdf_tensor_copy (t);
  kdf_tensor_set_oracle (c, TRUE);
  return c;
}

/* The parts of a dataset made from tensors, to name the one a complaint is about. */
typedef enum { PART_X, PART_LABELS, PART_X_TEST, PART_Y_TEST } Part;

static int32_t
max_label (const KdfTensor *y)
{
  int32_t mx = -1;
  for (int64_t i = 0; i < y->shape[0]; i++)
    mx = MAX (mx, kdf_tensor_i32 (y)[i]);
  return mx;
}

/* The rows of the stratified subsets of SUB, from the labels alone (N_X, N_X_TEST: the
 * rows of the inputs, to check against the labels; N_X_TEST < 0 without a test split).
 * *TRAIN_IDX / *TEST_IDX (sorted row numbers, NULL when that split keeps all its rows),
 * *FY / *TY the labels as i32, *CLASSES the class count of the whole data. Leaves
 * *CLASSES at 0 (nothing planned) when the labels or shapes are malformed, so that the
 * regular checks report it; FALSE only for a subset larger than its split. */
static gboolean
subset_plan (KdfTensor *labels, KdfTensor *y_test, int64_t n_x, int64_t n_x_test, int n_classes,
             const KdfSubsetSpec *sub, KdfTensor **train_idx, KdfTensor **test_idx,
             KdfTensor **fy_out, KdfTensor **ty_out, int *classes, GError **error)
{
  *classes = 0;
  if (labels->rank != 1 || labels->dtype == KDF_DTYPE_F32 || n_x != labels->shape[0] ||
      n_x > G_MAXINT32)
    return TRUE;
  if (y_test && (y_test->rank != 1 || y_test->dtype == KDF_DTYPE_F32 ||
                 n_x_test != y_test->shape[0]))
    return TRUE;
  g_autoptr (KdfTensor) fy = to_i32_labels (labels, "labels", NULL);
  g_autoptr (KdfTensor) ty = y_test ? to_i32_labels (y_test, "y_test", NULL) : NULL;
  if (fy == NULL || (y_test && ty == NULL))
    return TRUE;
  int c = n_classes;
  if (c <= 0)
    c = MAX (max_label (fy), ty ? max_label (ty) : -1) + 1;
  if (c <= 0 || c > 65536 || !kdf_tensor_check_labels (fy, c, "labels", NULL) ||
      (ty && !kdf_tensor_check_labels (ty, c, "y_test", NULL)))
    return TRUE;
  if (sub->train > fy->shape[0] || (sub->test > 0 && (ty == NULL || sub->test > ty->shape[0]))) {
    const gboolean train = sub->train > fy->shape[0];
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "a subset of %" G_GINT64_FORMAT " %s rows, but the %s split has only %"
                 G_GINT64_FORMAT, (gint64) (train ? sub->train : sub->test),
                 train ? "training" : "test", train ? "training" : "test",
                 (gint64) (train ? fy->shape[0] : ty ? ty->shape[0] : 0));
    return FALSE;
  }
  g_autoptr (KdfTensor) a = NULL;
  g_autoptr (KdfTensor) b = NULL;
  if (sub->train > 0 &&
      !(a = kdf_data_stratified_indices (fy, c, sub->train, sub->train_seed, error)))
    return FALSE;
  if (sub->test > 0 && !(b = kdf_data_stratified_indices (ty, c, sub->test, sub->test_seed, error)))
    return FALSE;
  *train_idx = g_steal_pointer (&a);
  *test_idx = g_steal_pointer (&b);
  *fy_out = g_steal_pointer (&fy);
  *ty_out = g_steal_pointer (&ty);
  *classes = c;
  return TRUE;
}

/* The stratified subsets of SUB taken from the raw tensors (any dtype: u8 pixels stay
 * u8 until the rows are chosen), so that a small subset of a large data set never holds
 * the whole set as f32. The rows are the ones kdf_dataset_subset would choose (the same
 * labels, class count and seeds). Leaves the outputs NULL (nothing taken) when the
 * tensors are malformed, so that the regular checks report it; FALSE only for a subset
 * larger than its split. */
static gboolean
subset_raw (KdfTensor *x, KdfTensor *labels, KdfTensor *x_test, KdfTensor *y_test, int n_classes,
            const KdfSubsetSpec *sub, KdfTensor **sx, KdfTensor **sy, KdfTensor **stx,
            KdfTensor **sty, KdfTensor **rows, KdfTensor **test_rows, int *classes, GError **error)
{
  if (x->rank < 2)
    return TRUE;
  g_autoptr (KdfTensor) a = NULL;
  g_autoptr (KdfTensor) b = NULL;
  g_autoptr (KdfTensor) fy = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  int c = 0;
  if (!subset_plan (labels, y_test, x->shape[0], x_test ? x_test->shape[0] : -1, n_classes, sub,
                    &a, &b, &fy, &ty, &c, error))
    return FALSE;
  if (c == 0)
    return TRUE;
  if (a) {
    *sx = kdf_data_take_rows (x, kdf_tensor_i32 (a), sub->train);
    *sy = kdf_data_take_rows (fy, kdf_tensor_i32 (a), sub->train);
    *rows = g_steal_pointer (&a);
  }
  if (b) {
    *stx = kdf_data_take_rows (x_test, kdf_tensor_i32 (b), sub->test);
    *sty = kdf_data_take_rows (ty, kdf_tensor_i32 (b), sub->test);
    if (test_rows)
      *test_rows = g_steal_pointer (&b);
  }
  *classes = c;
  return TRUE;
}

/* kdf_dataset_new, with *BAD set to the part an error is about; SUB (nullable): the
 * subsets to take before the inputs are converted (*TEST_ROWS, nullable: the test rows
 * the subset kept, or left NULL when it keeps them all). */
static KdfDataset *
dataset_new (const char *name, KdfTensor *x, KdfTensor *labels, KdfTensor *x_test,
             KdfTensor *y_test, int n_classes, const KdfSubsetSpec *sub, KdfTensor *taken,
             KdfTensor **test_rows, Part *bad, GError **error)
{
  g_autoptr (KdfTensor) sx = NULL;
  g_autoptr (KdfTensor) sy = NULL;
  g_autoptr (KdfTensor) stx = NULL;
  g_autoptr (KdfTensor) sty = NULL;
  g_autoptr (KdfTensor) rows = taken ? kdf_tensor_ref (taken) : NULL;
  if (sub && (sub->train > 0 || sub->test > 0)) {
    *bad = PART_LABELS;
    int c = n_classes;
    if (!subset_raw (x, labels, x_test, y_test, n_classes, sub, &sx, &sy, &stx, &sty, &rows,
                     test_rows, &c, error))
      return NULL;
    if (sx) {
      x = sx;
      labels = sy;
    }
    if (stx) {
      x_test = stx;
      y_test = sty;
    }
    n_classes = c; /* the class count of the whole data, not of the subset */
  }
  *bad = PART_X;
  g_autoptr (KdfTensor) fx = to_f32_matrix (x, "x", error);
  if (fx == NULL)
    return NULL;
  *bad = PART_LABELS;
  g_autoptr (KdfTensor) fy = to_i32_labels (labels, "labels", error);
  if (fy == NULL)
    return NULL;
  *bad = PART_X;
  if (fy->shape[0] != fx->shape[0]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "x has %" G_GINT64_FORMAT " rows but labels has %" G_GINT64_FORMAT,
                 (gint64) fx->shape[0], (gint64) fy->shape[0]);
    return NULL;
  }
  if (fx->shape[0] > G_MAXINT32) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "more than 2^31 samples");
    return NULL;
  }
  g_autoptr (KdfTensor) tx = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  if (x_test) {
    *bad = PART_X_TEST;
    if (!(tx = to_f32_matrix (x_test, "x_test", error)))
      return NULL;
    *bad = PART_Y_TEST;
    if (!(ty = to_i32_labels (y_test, "y_test", error)))
      return NULL;
    *bad = PART_X_TEST;
    if (tx->shape[0] != ty->shape[0] || tx->shape[1] != fx->shape[1]) {
      g_autofree char *a = kdf_tensor_describe (tx);
      g_autofree char *b = kdf_tensor_describe (ty);
      g_autofree char *c = kdf_tensor_describe (fx);
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "the test split (x_test %s, y_test %s) does not match x %s", a, b, c);
      return NULL;
    }
  }
  /* the test split may hold a class the training split lacks; C covers both */
  if (n_classes <= 0) {
    /* C from the data: a corrupt label (2^31 - 1) must not make C×C tables */
    int32_t ml = max_label (fy), mt = ty ? max_label (ty) : -1;
    if (MAX (ml, mt) >= 65536) {
      *bad = ml >= mt ? PART_LABELS : PART_Y_TEST;
      g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                   "the largest label is %d: more than 65536 classes (set n_classes if the "
                   "labels are right)",
                   MAX (ml, mt));
      return NULL;
    }
    n_classes = MAX (ml, mt) + 1;
  }
  *bad = PART_LABELS;
  if (n_classes <= 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "the dataset has no labels");
    return NULL;
  }
  if (!kdf_tensor_check_labels (fy, n_classes, "labels", error))
    return NULL;
  *bad = PART_Y_TEST;
  if (ty && !kdf_tensor_check_labels (ty, n_classes, "y_test", error))
    return NULL;

  KdfDataset *ds = g_new0 (KdfDataset, 1);
  ds->ref_count = 1;
  ds->name = g_strdup (name ? name : "dataset");
  ds->n_classes = n_classes;
  if (x->rank == 3) {
    ds->image_shape[0] = 1;
    ds->image_shape[1] = x->shape[1];
    ds->image_shape[2] = x->shape[2];
  } else if (x->rank == 4) {
    for (int k = 0; k < 3; k++)
      ds->image_shape[k] = x->shape[k + 1];
  }
  if (x->dtype == KDF_DTYPE_U8) {
    ds->input_range[0] = 0;
    ds->input_range[1] = 255;
  }
  ds->x = g_steal_pointer (&fx);
  ds->clean_labels = oracle_copy (fy);
  ds->labels = g_steal_pointer (&fy);
  ds->noisy_mask = kdf_tensor_new_1d (KDF_DTYPE_U8, ds->x->shape[0]);
  kdf_tensor_set_oracle (ds->noisy_mask, TRUE);
  ds->open_mask = kdf_tensor_new_1d (KDF_DTYPE_U8, ds->x->shape[0]);
  kdf_tensor_set_oracle (ds->open_mask, TRUE);
  ds->index = rows ? g_steal_pointer (&rows) : iota (ds->x->shape[0]);
  ds->x_test = g_steal_pointer (&tx);
  ds->y_test = g_steal_pointer (&ty);
  return ds;
}

KdfDataset *
kdf_dataset_new (const char *name, KdfTensor *x, KdfTensor *labels, KdfTensor *x_test,
                 KdfTensor *y_test, int n_classes, GError **error)
{
  g_return_val_if_fail (x != NULL && labels != NULL, NULL);
  g_return_val_if_fail ((x_test == NULL) == (y_test == NULL), NULL);
  Part bad;
  return dataset_new (name, x, labels, x_test, y_test, n_classes, NULL, NULL, NULL, &bad, error);
}

/* ---- loading ------------------------------------------------------------------- */

static const char *const idx_files[4] = {
  "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

/* DIR/BASE.gz if it exists, else DIR/BASE (which may not exist either). */
static char *
idx_path (const char *dir, const char *base)
{
  g_autofree char *gz = g_strdup_printf ("%s/%s.gz", dir, base);
  if (g_file_test (gz, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&gz);
  char *plain = g_strdup_printf ("%s/%s", dir, base);
  if (g_file_test (plain, G_FILE_TEST_EXISTS))
    return plain;
  g_free (plain);
  return g_steal_pointer (&gz);
}

KdfDataset *
kdf_dataset_load_idx_dir (const char *name, const char *dir, GError **error)
{
  return kdf_dataset_load_idx_dir_subset (name, dir, NULL, error);
}

/* The subsets of SUB streamed out of the image files (kdf_idx_read_rows): the labels
 * are read whole (small), the rows chosen from them, and only those rows of the images
 * kept. NULL with *HANDLED FALSE when the files do not fit a plan (shapes or labels
 * malformed): the caller then reads them whole, and its checks report the fault. */
static KdfDataset *
idx_dir_streamed (const char *name, char *const *paths, KdfTensor *labels, KdfTensor *y_test,
                  const KdfSubsetSpec *sub, gboolean *handled, GError **error)
{
  *handled = FALSE;
  int rank[2];
  int64_t shape[2][KDF_MAX_RANK];
  for (int k = 0; k < 2; k++)
    if (!kdf_idx_read_shape (paths[2 * k], &rank[k], shape[k], NULL))
      return NULL;
  if (rank[0] < 2 || rank[1] < 2)
    return NULL;
  g_autoptr (KdfTensor) a = NULL;
  g_autoptr (KdfTensor) b = NULL;
  g_autoptr (KdfTensor) fy = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  int c = 0;
  if (!subset_plan (labels, y_test, shape[0][0], shape[1][0], 0, sub, &a, &b, &fy, &ty, &c,
                    error)) {
    *handled = TRUE;
    return NULL;
  }
  if (c == 0)
    return NULL;
  *handled = TRUE;
  g_autoptr (KdfTensor) x = a ? kdf_idx_read_rows (paths[0], kdf_tensor_i32 (a), sub->train,
                                                   error)
                              : kdf_idx_read (paths[0], error);
  if (x == NULL)
    return NULL;
  g_autoptr (KdfTensor) tx = b ? kdf_idx_read_rows (paths[2], kdf_tensor_i32 (b), sub->test,
                                                    error)
                               : kdf_idx_read (paths[2], error);
  if (tx == NULL)
    return NULL;
  g_autoptr (KdfTensor) sy = a ? kdf_data_take_rows (fy, kdf_tensor_i32 (a), sub->train)
                               : kdf_tensor_ref (fy);
  g_autoptr (KdfTensor) sty = b ? kdf_data_take_rows (ty, kdf_tensor_i32 (b), sub->test)
                                : kdf_tensor_ref (ty);
  Part bad;
  return dataset_new (name, x, sy, tx, sty, c, NULL, a, NULL, &bad, error);
}

KdfDataset *
kdf_dataset_load_idx_dir_subset (const char *name, const char *dir, const KdfSubsetSpec *sub,
                                 GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  KdfTensor *t[4] = { NULL };
  char *paths[4] = { NULL };
  KdfDataset *ds = NULL;
  for (int k = 0; k < 4; k++)
    paths[k] = idx_path (dir, idx_files[k]);
  if (sub && (sub->train > 0 || sub->test > 0)) {
    /* the labels first: they choose the rows, then only those rows of the images are read */
    for (int k = 1; k < 4; k += 2)
      if (!(t[k] = kdf_idx_read (paths[k], error)))
        goto out;
    gboolean handled;
    ds = idx_dir_streamed (name ? name : "idx", paths, t[1], t[3], sub, &handled, error);
    if (ds || handled)
      goto out;
  }
  for (int k = 0; k < 4; k++)
    if (t[k] == NULL && !(t[k] = kdf_idx_read (paths[k], error)))
      goto out;
  for (int k = 0; k < 4; k += 2) {
    if (t[k]->shape[0] != t[k + 1]->shape[0] || t[k + 1]->rank != 1) {
      g_autofree char *a = kdf_tensor_describe (t[k]);
      g_autofree char *b = kdf_tensor_describe (t[k + 1]);
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s holds %s but %s holds %s: the images and labels disagree", paths[k], a,
                   paths[k + 1], b);
      goto out;
    }
  }
  /* C = 1 + the largest label of training and test */
  Part bad;
  ds = dataset_new (name ? name : "idx", t[0], t[1], t[2], t[3], 0, sub, NULL, NULL, &bad, error);
out:
  for (int k = 0; k < 4; k++) {
    kdf_tensor_unref (t[k]);
    g_free (paths[k]);
  }
  return ds;
}

KdfDataset *
kdf_dataset_load_fashion_mnist (const char *dir, GError **error)
{
  return kdf_dataset_load_fashion_mnist_subset (dir, NULL, error);
}

KdfDataset *
kdf_dataset_load_fashion_mnist_subset (const char *dir, const KdfSubsetSpec *sub, GError **error)
{
  if (dir == NULL)
    dir = KDF_FASHION_MNIST_DIR;
  for (int k = 0; k < 4; k++) {
    g_autofree char *p = idx_path (dir, idx_files[k]);
    if (!g_file_test (p, G_FILE_TEST_EXISTS)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: file not found; Fashion-MNIST is provided by Debian's "
                   "dataset-fashion-mnist package (apt install dataset-fashion-mnist), "
                   "which installs it in " KDF_FASHION_MNIST_DIR,
                   p);
      return NULL;
    }
  }
  KdfDataset *ds = kdf_dataset_load_idx_dir_subset ("fashion-mnist", dir, sub, error);
  if (ds == NULL)
    return NULL;
  if (ds->n_classes != 10) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: the labels have %d classes, Fashion-MNIST has 10", dir, ds->n_classes);
    kdf_dataset_unref (ds);
    return NULL;
  }
  kdf_dataset_set_class_names (ds, fmnist_names);
  return ds;
}

KdfDataset *
kdf_dataset_load_npy_dir (const char *dir, int n_classes, GError **error)
{
  return kdf_dataset_load_npy_dir_subset (dir, n_classes, NULL, error);
}

/* The files of an npy data set directory, named by Part. */
typedef struct {
  char *file[4];
  gboolean has_test;
} NpyDir;

static void
npy_dir_clear (NpyDir *d)
{
  for (int k = 0; k < 4; k++)
    g_clear_pointer (&d->file[k], g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (NpyDir, npy_dir_clear)

/* The paths of DIR's files; an error when x.npy or labels.npy is missing, or one of
 * x_test.npy and y_test.npy without the other. */
static gboolean
npy_dir_find (const char *dir, NpyDir *d, GError **error)
{
  static const char *const names[] = { [PART_X] = "x.npy", [PART_LABELS] = "labels.npy",
                                       [PART_X_TEST] = "x_test.npy", [PART_Y_TEST] = "y_test.npy" };
  for (int k = 0; k < 4; k++)
    d->file[k] = g_build_filename (dir, names[k], NULL);
  for (int k = PART_X; k <= PART_LABELS; k++)
    if (!g_file_test (d->file[k], G_FILE_TEST_EXISTS)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: file not found (dataset npy reads x.npy and labels.npy, and "
                   "optionally x_test.npy and y_test.npy, from one directory)", d->file[k]);
      return FALSE;
    }
  d->has_test = g_file_test (d->file[PART_X_TEST], G_FILE_TEST_EXISTS);
  if (d->has_test != g_file_test (d->file[PART_Y_TEST], G_FILE_TEST_EXISTS)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: file not found (x_test.npy and y_test.npy "
                 "come together)", d->file[d->has_test ? PART_Y_TEST : PART_X_TEST]);
    return FALSE;
  }
  return TRUE;
}

/* The labels (and the test labels when there are test files), one-dimensional i32. */
static gboolean
npy_dir_labels (const NpyDir *d, KdfTensor **y, KdfTensor **ty, GError **error)
{
  if (!(*y = kdf_npy_read (d->file[PART_LABELS], KDF_DTYPE_I32, error)))
    return FALSE;
  if (d->has_test && !(*ty = kdf_npy_read (d->file[PART_Y_TEST], KDF_DTYPE_I32, error)))
    return FALSE;
  const gboolean train_bad = (*y)->rank != 1;
  if (train_bad || (*ty && (*ty)->rank != 1)) {
    g_autofree char *desc = kdf_tensor_describe (train_bad ? *y : *ty);
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: labels must be one-dimensional, the file "
                 "holds %s", d->file[train_bad ? PART_LABELS : PART_Y_TEST], desc);
    return FALSE;
  }
  return TRUE;
}

/* dataset_new's error prefixed with the file it is about (a subset's error is about no
 * one file). */
static void
npy_dir_blame (const NpyDir *d, Part bad, GError **error)
{
  if (!g_str_has_prefix ((*error)->message, "a subset of "))
    g_prefix_error (error, "%s: ", d->file[bad]);
}

/* The subsets of SUB read out of x.npy and x_test.npy row by row (kdf_npy_read_rows),
 * the labels Y and TY already read whole. NULL with *HANDLED FALSE when the files do
 * not fit a plan (shapes or labels malformed): the caller reads them whole and its
 * checks report the fault. */
static KdfDataset *
npy_dir_streamed (const char *dir, const NpyDir *d, KdfTensor *y, KdfTensor *ty,
                  int n_classes, const KdfSubsetSpec *sub, gboolean *handled, GError **error)
{
  const char *px = d->file[PART_X], *ptx = d->file[PART_X_TEST];
  *handled = FALSE;
  KdfNpyHeader hx, htx;
  if (!kdf_npy_read_header (px, &hx, NULL) || hx.rank < 2 || hx.rank > KDF_MAX_RANK)
    return NULL;
  if (ty && (!kdf_npy_read_header (ptx, &htx, NULL) || htx.rank < 2 || htx.rank > KDF_MAX_RANK))
    return NULL;
  g_autoptr (KdfTensor) a = NULL;
  g_autoptr (KdfTensor) b = NULL;
  g_autoptr (KdfTensor) fy = NULL;
  g_autoptr (KdfTensor) fty = NULL;
  int c = 0;
  if (!subset_plan (y, ty, hx.shape[0], ty ? htx.shape[0] : -1, n_classes, sub, &a, &b, &fy, &fty,
                    &c, error)) {
    *handled = TRUE;
    return NULL;
  }
  if (c == 0)
    return NULL;
  *handled = TRUE;
  g_autoptr (KdfTensor) x = a ? kdf_npy_read_rows (px, KDF_DTYPE_ANY, kdf_tensor_i32 (a),
                                                   sub->train, error)
                              : kdf_npy_read (px, KDF_DTYPE_ANY, error);
  if (x == NULL)
    return NULL;
  g_autoptr (KdfTensor) tx = NULL;
  if (ty && !(tx = b ? kdf_npy_read_rows (ptx, KDF_DTYPE_ANY, kdf_tensor_i32 (b), sub->test, error)
                     : kdf_npy_read (ptx, KDF_DTYPE_ANY, error)))
    return NULL;
  g_autoptr (KdfTensor) sy = a ? kdf_data_take_rows (fy, kdf_tensor_i32 (a), sub->train)
                               : kdf_tensor_ref (fy);
  g_autoptr (KdfTensor) sty = !ty ? NULL
                              : b ? kdf_data_take_rows (fty, kdf_tensor_i32 (b), sub->test)
                                  : kdf_tensor_ref (fty);
  Part bad;
  KdfDataset *ds = dataset_new (dir, x, sy, tx, sty, c, NULL, a, NULL, &bad, error);
  if (ds == NULL)
    npy_dir_blame (d, bad, error);
  return ds;
}

KdfDataset *
kdf_dataset_load_npy_dir_subset (const char *dir, int n_classes, const KdfSubsetSpec *sub,
                                 GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_auto (NpyDir) d = { 0 };
  if (!npy_dir_find (dir, &d, error))
    return NULL;
  /* the labels first: with a subset they choose the rows, and only those rows of the
   * inputs are read (kdf_npy_read_rows) */
  g_autoptr (KdfTensor) y = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  if (!npy_dir_labels (&d, &y, &ty, error))
    return NULL;
  if (sub && (sub->train > 0 || sub->test > 0)) {
    gboolean handled;
    KdfDataset *ds = npy_dir_streamed (dir, &d, y, ty, n_classes, sub, &handled, error);
    if (ds || handled)
      return ds;
  }
  g_autoptr (KdfTensor) x = kdf_npy_read (d.file[PART_X], KDF_DTYPE_ANY, error);
  if (x == NULL)
    return NULL;
  g_autoptr (KdfTensor) tx = NULL;
  if (d.has_test && !(tx = kdf_npy_read (d.file[PART_X_TEST], KDF_DTYPE_ANY, error)))
    return NULL;
  Part bad;
  KdfDataset *ds = dataset_new (dir, x, y, tx, ty, n_classes, sub, NULL, NULL, &bad, error);
  if (ds == NULL)
    npy_dir_blame (&d, bad, error);
  return ds;
}

/* The npy layout of kdf_dataset_load_npy_dir_subset with the inputs kept on disk. */
static gboolean
u8_rows_header (const char *path, KdfNpyHeader *h, int64_t *row_size, GError **error)
{
  if (!kdf_npy_read_header (path, h, error))
    return FALSE;
  if (h->kind != 'u' || h->itemsize != 1 || h->rank < 2 || h->rank > KDF_MAX_RANK) {
    GString *shape = g_string_new (NULL);
    for (int k = 0; k < h->rank; k++)
      g_string_append_printf (shape, "%s%" G_GINT64_FORMAT, k ? "," : "", (gint64) h->shape[k]);
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: holds '%s' [%s]; inputs kept on disk must be u8 ('|u1') rows, [N,D], "
                 "[N,H,W] or [N,C,H,W]", path, h->descr, shape->str);
    g_string_free (shape, TRUE);
    return FALSE;
  }
  int64_t d = 1;
  for (int k = 1; k < h->rank; k++) {
    if (h->shape[k] <= 0 || d > G_MAXINT32 / h->shape[k]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: a row of %" G_GINT64_FORMAT
                   " values cannot be read by rows", path, (gint64) h->shape[k]);
      return FALSE;
    }
    d *= h->shape[k];
  }
  *row_size = d;
  return TRUE;
}

KdfDataset *
kdf_dataset_load_npy_dir_on_disk (const char *dir, int n_classes, const KdfSubsetSpec *sub,
                                  const char *hint, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_auto (NpyDir) files = { 0 };
  if (!npy_dir_find (dir, &files, error))
    return NULL;
  const char *px = files.file[PART_X], *ptx = files.file[PART_X_TEST];
  const gboolean has_test = files.has_test;
  KdfNpyHeader hx, htx;
  int64_t d = 0, dt = 0;
  if (!u8_rows_header (px, &hx, &d, error) || (has_test && !u8_rows_header (ptx, &htx, &dt, error)))
    return NULL;
  if (has_test && dt != d) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "%s: rows of %" G_GINT64_FORMAT " values, but %s has rows of %" G_GINT64_FORMAT,
                 ptx, (gint64) dt, px, (gint64) d);
    return NULL;
  }
  g_autoptr (KdfTensor) y = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  if (!npy_dir_labels (&files, &y, &ty, error))
    return NULL;
  /* the files open (and their lengths checked) before any work on the labels */
  g_autoptr (KdfTensor) fx = kdf_tensor_new_on_disk (px, hx.data_offset, hx.shape[0], d, hint, error);
  if (fx == NULL)
    return NULL;
  g_autoptr (KdfTensor) ftx = NULL;
  if (has_test && !(ftx = kdf_tensor_new_on_disk (ptx, htx.data_offset, htx.shape[0], d, hint, error)))
    return NULL;
  /* the dataset's rows, subsets and checks on stand-ins with no columns (u8[N,0]): the
   * labels choose, the index says which file rows were kept */
  g_autoptr (KdfTensor) x0 = kdf_tensor_new_2d (KDF_DTYPE_U8, hx.shape[0], 0);
  g_autoptr (KdfTensor) tx0 = has_test ? kdf_tensor_new_2d (KDF_DTYPE_U8, htx.shape[0], 0) : NULL;
  g_autoptr (KdfTensor) test_rows = NULL;
  Part bad;
  KdfDataset *ds = dataset_new (dir, x0, y, tx0, ty, n_classes, sub, NULL, &test_rows, &bad, error);
  if (ds == NULL) {
    npy_dir_blame (&files, bad, error);
    return NULL;
  }
  kdf_tensor_unref (ds->x);
  ds->x = kdf_tensor_on_disk_take (fx, kdf_tensor_i32 (ds->index), ds->index->shape[0]);
  if (ds->x_test) {
    kdf_tensor_unref (ds->x_test);
    ds->x_test = test_rows ? kdf_tensor_on_disk_take (ftx, kdf_tensor_i32 (test_rows),
                                                      test_rows->shape[0])
                           : kdf_tensor_ref (ftx);
  }
  if (hx.rank == 3) {
    ds->image_shape[0] = 1;
    ds->image_shape[1] = hx.shape[1];
    ds->image_shape[2] = hx.shape[2];
  } else if (hx.rank == 4) {
    for (int k = 0; k < 3; k++)
      ds->image_shape[k] = hx.shape[k + 1];
  }
  return ds;
}

KdfDataset *
kdf_dataset_load (const char *name, const char *path, GError **error)
{
  g_return_val_if_fail (name != NULL, NULL);
  if (strcmp (name, "fashion-mnist") == 0)
    return kdf_dataset_load_fashion_mnist (path, error);
  if (path == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "dataset '%s' needs a path", name);
    return NULL;
  }
  if (strcmp (name, "idx") == 0)
    return kdf_dataset_load_idx_dir (path, path, error);
  if (strcmp (name, "npy") == 0)
    return kdf_dataset_load_npy_dir (path, 0, error);
  if (strcmp (name, "csv") == 0) {
    KdfCsvOptions opts = { .header = KDF_CSV_HEADER_AUTO, .label_column = "-1" };
    g_autoptr (KdfTensor) x = NULL;
    g_autoptr (KdfTensor) y = NULL;
    if (!kdf_csv_read (path, &opts, &x, &y, NULL, error))
      return NULL;
    return kdf_dataset_new (path, x, y, NULL, NULL, 0, error);
  }
  g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
               "unknown dataset '%s' (fashion-mnist, idx, npy or csv)", name);
  return NULL;
}

/* ---- preprocessing ------------------------------------------------------------- */

static void
affine_cols (KdfTensor **t, const double *shift, const double *scale, gboolean per_col)
{
  if (*t == NULL)
    return;
  if (kdf_tensor_is_on_disk (*t)) {
    /* the same arithmetic, on the byte → float tables */
    KdfTensor *a = kdf_tensor_on_disk_affine (*t, shift, scale, per_col);
    kdf_tensor_unref (*t);
    *t = a;
    return;
  }
  kdf_tensor_make_writable (t);
  float *p = kdf_tensor_f32 (*t);
  int64_t n = (*t)->shape[0], d = (*t)->shape[1];
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) {
      int64_t k = per_col ? j : 0;
      p[i * d + j] = (float) ((p[i * d + j] - shift[k]) * scale[k]);
    }
}

/* Rows [0, NR) of X (D floats each): Σ x into MEAN (M2 NULL), or Σ (x − mean)² into M2,
 * per column or over all (PER_COL FALSE: index 0). */
static void
accumulate (const float *x, int64_t nr, int64_t d, gboolean per_col, double *mean, double *m2)
{
  if (!m2) {
    for (int64_t i = 0; i < nr; i++)
      for (int64_t j = 0; j < d; j++)
        mean[per_col ? j : 0] += x[i * d + j];
    return;
  }
  for (int64_t i = 0; i < nr; i++)
    for (int64_t j = 0; j < d; j++) {
      double e = x[i * d + j] - mean[per_col ? j : 0];
      m2[per_col ? j : 0] += e * e;
    }
}

/* One pass of accumulate over every row of X, in row order: X itself, or a tensor kept
 * on disk read by blocks of rows (the same sums in the same order, so the statistics
 * are bit-identical to the dense path's). */
static gboolean
moments (const KdfTensor *x, gboolean per_col, double *mean, double *m2, GError **error)
{
  const int64_t n = x->shape[0], d = x->shape[1];
  if (!kdf_tensor_is_on_disk (x)) {
    accumulate (kdf_tensor_f32 (x), n, d, per_col, mean, m2);
    return TRUE;
  }
  const int64_t block = MAX (1, (4 << 20) / (MAX (d, 1) * (int64_t) sizeof (float)));
  g_autofree float *buf = g_new (float, MIN (block, MAX (n, 1)) * MAX (d, 1));
  g_autofree int32_t *rows = g_new (int32_t, MIN (block, MAX (n, 1)));
  for (int64_t b = 0; b < n; b += block) {
    const int64_t nb = MIN (block, n - b);
    for (int64_t i = 0; i < nb; i++)
      rows[i] = (int32_t) (b + i);
    if (!kdf_tensor_read_rows (x, rows, nb, buf, error))
      return FALSE;
    accumulate (buf, nb, d, per_col, mean, m2);
  }
  return TRUE;
}

gboolean
kdf_dataset_normalize (KdfDataset *ds, KdfNormalize mode, GError **error)
{
  g_return_val_if_fail (ds != NULL, FALSE);
  if (mode == KDF_NORMALIZE_NONE)
    return TRUE;
  if (mode < KDF_NORMALIZE_NONE || mode > KDF_NORMALIZE_STANDARDIZE_GLOBAL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "unknown normalisation %d", mode);
    return FALSE;
  }
  int64_t n = ds->x->shape[0], d = ds->x->shape[1];
  const float *x = kdf_tensor_f32 (ds->x);
  double lo = ds->input_range[0], hi = ds->input_range[1];
  if (!(hi > lo) && kdf_tensor_is_on_disk (ds->x)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "inputs kept on disk need a known input range (u8: 0 to 255)");
    return FALSE;
  }
  if (!(hi > lo)) {
    lo = INFINITY;
    hi = -INFINITY;
    for (int64_t i = 0; i < n * d; i++) {
      if (!isfinite (x[i])) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "x[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] is not finite",
                     (gint64) (i / d), (gint64) (i % d));
        return FALSE;
      }
      lo = MIN (lo, x[i]);
      hi = MAX (hi, x[i]);
    }
    if (n * d == 0)
      lo = hi = 0;
  }
  double shift = lo, scale = hi > lo ? 1.0 / (hi - lo) : 1.0;
  if (!(lo == 0 && hi == 1)) {
    affine_cols (&ds->x, &shift, &scale, FALSE);
    affine_cols (&ds->x_val, &shift, &scale, FALSE);
    affine_cols (&ds->x_test, &shift, &scale, FALSE);
  }
  ds->input_range[0] = 0;
  ds->input_range[1] = 1;
  if (mode == KDF_NORMALIZE_UNIT)
    return TRUE;

  gboolean per_col = mode == KDF_NORMALIZE_STANDARDIZE;
  int64_t k = per_col ? d : 1;
  g_autofree double *mean = g_new0 (double, MAX (k, 1));
  g_autofree double *inv = g_new0 (double, MAX (k, 1));
  g_autofree double *m2 = g_new0 (double, MAX (k, 1));
  if (!moments (ds->x, per_col, mean, NULL, error))
    return FALSE;
  double count = per_col ? (double) n : (double) n * d;
  for (int64_t j = 0; j < k; j++)
    mean[j] /= MAX (count, 1);
  if (!moments (ds->x, per_col, mean, m2, error))
    return FALSE;
  for (int64_t j = 0; j < k; j++) {
    double sd = sqrt (m2[j] / MAX (count, 1));
    inv[j] = sd < 1e-8 ? 1.0 : 1.0 / sd; /* a constant feature is only centred */
  }
  affine_cols (&ds->x, mean, inv, per_col);
  affine_cols (&ds->x_val, mean, inv, per_col);
  affine_cols (&ds->x_test, mean, inv, per_col);
  ds->input_range[0] = ds->input_range[1] = 0;
  return TRUE;
}

/* ---- rows, splits, subsets ---------------------------------------------------------- */

KdfTensor *
kdf_data_take_rows (const KdfTensor *t, const int32_t *index, int64_t n)
{
  g_return_val_if_fail (t != NULL && t->rank >= 1, NULL);
  g_return_val_if_fail (n == 0 || index != NULL, NULL);
  if (kdf_tensor_is_on_disk (t))
    return kdf_tensor_on_disk_take (t, index, n); /* an index into the same file rows */
  g_autoptr (KdfTensor) c = kdf_tensor_is_contiguous (t) ? kdf_tensor_ref ((KdfTensor *) t)
                                                         : kdf_tensor_copy (t);
  int64_t shape[KDF_MAX_RANK];
  memcpy (shape, c->shape, sizeof shape);
  shape[0] = n;
  KdfTensor *out = kdf_tensor_new (c->dtype, c->rank, shape);
  gsize row = kdf_tensor_nbytes (c) / (c->shape[0] ? (gsize) c->shape[0] : 1);
  for (int64_t i = 0; i < n; i++) {
    g_return_val_if_fail (index[i] >= 0 && index[i] < c->shape[0], out);
    memcpy ((guint8 *) out->data + i * row, (const guint8 *) c->data + (gsize) index[i] * row,
            row);
  }
  kdf_tensor_set_oracle (out, kdf_tensor_is_oracle (t));
  return out;
}

static void
take_in_place (KdfTensor **t, const int32_t *index, int64_t n)
{
  if (*t == NULL)
    return;
  KdfTensor *r = kdf_data_take_rows (*t, index, n);
  kdf_tensor_unref (*t);
  *t = r;
}

static void
take_train (KdfDataset *ds, const int32_t *index, int64_t n)
{
  take_in_place (&ds->x, index, n);
  take_in_place (&ds->labels, index, n);
  take_in_place (&ds->clean_labels, index, n);
  take_in_place (&ds->noisy_mask, index, n);
  take_in_place (&ds->open_mask, index, n);
  take_in_place (&ds->index, index, n);
}

static int
cmp_i32 (gconstpointer a, gconstpointer b)
{
  int32_t x = *(const int32_t *) a, y = *(const int32_t *) b;
  return (x > y) - (x < y);
}

gboolean
kdf_dataset_split_validation (KdfDataset *ds, double fraction, guint64 seed, GError **error)
{
  g_return_val_if_fail (ds != NULL, FALSE);
  if (!(fraction > 0 && fraction < 1)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "validation fraction %g is outside (0, 1)", fraction);
    return FALSE;
  }
  if (ds->x_val) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "the dataset already has a validation split");
    return FALSE;
  }
  int64_t n = ds->x->shape[0];
  int64_t k = kdf_data_rate_count (fraction, n);
  g_autofree int32_t *a = g_new (int32_t, MAX (n, 1));
  for (int64_t i = 0; i < n; i++)
    a[i] = (int32_t) i;
  g_autoptr (GRand) rand = kdf_data_rand_new (seed);
  kdf_data_choose (rand, a, n, k);
  qsort (a, k, sizeof *a, cmp_i32);
  qsort (a + k, n - k, sizeof *a, cmp_i32);
  ds->x_val = kdf_data_take_rows (ds->x, a, k);
  ds->labels_val = kdf_data_take_rows (ds->labels, a, k);
  ds->clean_labels_val = kdf_data_take_rows (ds->clean_labels, a, k);
  ds->noisy_mask_val = kdf_data_take_rows (ds->noisy_mask, a, k);
  ds->open_mask_val = kdf_data_take_rows (ds->open_mask, a, k);
  ds->index_val = kdf_data_take_rows (ds->index, a, k);
  take_train (ds, a + k, n - k);
  return TRUE;
}

typedef struct {
  int c;
  guint64 rem;
} Remainder;

static int
cmp_rem (gconstpointer pa, gconstpointer pb)
{
  const Remainder *a = pa, *b = pb;
  if (a->rem != b->rem)
    return a->rem > b->rem ? -1 : 1;
  return (a->c > b->c) - (a->c < b->c);
}

KdfTensor *
kdf_data_stratified_indices (const KdfTensor *labels, int n_classes, int64_t n_pick,
                             guint64 seed, GError **error)
{
  g_return_val_if_fail (labels != NULL && n_classes > 0, NULL);
  if (!kdf_tensor_check_labels (labels, n_classes, "labels", error))
    return NULL;
  int64_t n = labels->shape[0];
  if (n_pick < 0 || n_pick > n) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "a subset of %" G_GINT64_FORMAT " from %" G_GINT64_FORMAT " samples",
                 (gint64) n_pick, (gint64) n);
    return NULL;
  }
  g_autoptr (KdfTensor) y = kdf_tensor_contiguous ((KdfTensor *) labels);
  const int32_t *py = kdf_tensor_i32 (y);
  g_autofree int64_t *count = g_new0 (int64_t, n_classes);
  g_autofree int64_t *take = g_new0 (int64_t, n_classes);
  g_autofree Remainder *rem = g_new0 (Remainder, n_classes);
  for (int64_t i = 0; i < n; i++)
    count[py[i]]++;
  int64_t given = 0;
  for (int c = 0; c < n_classes; c++) {
    guint64 prod = (guint64) n_pick * (guint64) count[c];
    take[c] = n ? (int64_t) (prod / (guint64) n) : 0;
    rem[c] = (Remainder) { c, n ? prod % (guint64) n : 0 };
    given += take[c];
  }
  qsort (rem, n_classes, sizeof *rem, cmp_rem);
  for (int r = 0; given < n_pick && r < n_classes; r++, given++)
    take[rem[r].c]++;

  KdfTensor *out = kdf_tensor_new_1d (KDF_DTYPE_I32, n_pick);
  int32_t *po = kdf_tensor_i32 (out);
  g_autofree int32_t *cand = g_new (int32_t, MAX (n, 1));
  g_autoptr (GRand) rand = kdf_data_rand_new (seed);
  int64_t w = 0;
  for (int c = 0; c < n_classes; c++) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
      if (py[i] == c)
        cand[m++] = (int32_t) i;
    kdf_data_choose (rand, cand, m, take[c]);
    memcpy (po + w, cand, take[c] * sizeof (int32_t));
    w += take[c];
  }
  qsort (po, n_pick, sizeof *po, cmp_i32);
  return out;
}

gboolean
kdf_dataset_subset (KdfDataset *ds, KdfSplit split, int64_t n, guint64 seed, GError **error)
{
  g_return_val_if_fail (ds != NULL, FALSE);
  if (split == KDF_SPLIT_TEST && ds->y_test == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "the dataset has no test split");
    return FALSE;
  }
  KdfTensor *y = split == KDF_SPLIT_TRAIN ? ds->clean_labels : ds->y_test;
  g_autoptr (KdfTensor) idx = kdf_data_stratified_indices (y, ds->n_classes, n, seed, error);
  if (idx == NULL)
    return FALSE;
  if (split == KDF_SPLIT_TRAIN) {
    take_train (ds, kdf_tensor_i32 (idx), n);
  } else {
    take_in_place (&ds->x_test, kdf_tensor_i32 (idx), n);
    take_in_place (&ds->y_test, kdf_tensor_i32 (idx), n);
  }
  return TRUE;
}

/* ---- noise ------------------------------------------------------------------------ */

gboolean
kdf_dataset_add_noise (KdfDataset *ds, const KdfNoiseSpec *spec, GError **error)
{
  g_return_val_if_fail (ds != NULL && spec != NULL, FALSE);
  if (ds->x_val) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "noise must be added before the validation split is made");
    return FALSE;
  }
  int64_t n = ds->labels->shape[0], already = 0;
  for (int64_t i = 0; i < n; i++)
    already += kdf_tensor_u8 (ds->noisy_mask)[i];
  if (spec->kind == KDF_NOISE_OPENSET && already) {
    /* a flipped label could name a class that is about to leave the label space */
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "open-set noise must be added before any other noise");
    return FALSE;
  }
  KdfNoiseResult res;
  if (!kdf_noise_apply (spec, ds->labels, ds->n_classes, ds->x, ds->noisy_mask, &res, error))
    return FALSE;
  if (spec->kind != KDF_NOISE_OPENSET) {
    kdf_tensor_unref (ds->labels);
    ds->labels = g_steal_pointer (&res.labels);
    kdf_tensor_make_writable (&ds->noisy_mask);
    for (int64_t i = 0; i < n; i++)
      kdf_tensor_u8 (ds->noisy_mask)[i] |= kdf_tensor_u8 (res.noisy_mask)[i];
    kdf_noise_result_clear (&res);
    return TRUE;
  }

  const int32_t *kept = kdf_tensor_i32 (res.kept_index);
  int64_t n2 = res.kept_index->shape[0];
  take_in_place (&ds->index, kept, n2);
  take_in_place (&ds->clean_labels, kept, n2);
  kdf_tensor_make_writable (&ds->clean_labels);
  for (int64_t i = 0; i < n2; i++) {
    int32_t *v = kdf_tensor_i32 (ds->clean_labels) + i;
    *v = res.class_remap[*v];
  }
  kdf_tensor_unref (ds->x);
  ds->x = g_steal_pointer (&res.x);
  kdf_tensor_unref (ds->labels);
  ds->labels = g_steal_pointer (&res.labels);
  kdf_tensor_unref (ds->noisy_mask);
  ds->noisy_mask = g_steal_pointer (&res.noisy_mask);
  kdf_tensor_set_oracle (ds->noisy_mask, TRUE);
  kdf_tensor_unref (ds->open_mask);
  ds->open_mask = kdf_tensor_copy (ds->noisy_mask);
  kdf_tensor_set_oracle (ds->open_mask, TRUE);

  if (ds->class_names) {
    char **names = g_new0 (char *, res.n_classes + 1);
    for (int c = 0; c < ds->n_classes; c++)
      if (res.class_remap[c] >= 0)
        names[res.class_remap[c]] = g_strdup (ds->class_names[c]);
    g_strfreev (ds->class_names);
    ds->class_names = names;
  }
  if (ds->y_test) {
    int64_t m = ds->y_test->shape[0], w = 0;
    g_autofree int32_t *keep = g_new (int32_t, MAX (m, 1));
    for (int64_t i = 0; i < m; i++)
      if (res.class_remap[kdf_tensor_i32 (ds->y_test)[i]] >= 0)
        keep[w++] = (int32_t) i;
    take_in_place (&ds->x_test, keep, w);
    take_in_place (&ds->y_test, keep, w);
    for (int64_t i = 0; i < w; i++) {
      int32_t *v = kdf_tensor_i32 (ds->y_test) + i;
      *v = res.class_remap[*v];
    }
  }
  ds->n_classes = res.n_classes;
  kdf_noise_result_clear (&res);
  return TRUE;
}
