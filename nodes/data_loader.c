/* data_loader: reads a dataset, keeps a stratified subset, normalises the inputs,
 * injects label noise and holds out a noisy validation split (METHODS §1
 * data_loader, §3). Readers, noise models and splits are engine/data's (data.h);
 * this file chooses their order and names the file or param behind every error.
 *
 * Order, and why:
 *  1. load (fashion-mnist | idx | npy | csv) and check the labels against n_classes;
 *  2. subset: `subset` training rows, `test_subset` test rows, stratified by the
 *     clean class — before the noise, so that the noise is an exact count ⌊rN⌋ of
 *     the rows a method sees;
 *  3. normalise (statistics of the training rows, validation included: inputs
 *     only, never labels) — before the noise, so that instance-dependent noise sees
 *     the inputs the model sees (Xia et al. 2020 work on normalised inputs);
 *  4. noise, then noise2 on the samples not yet noisy (e.g. openset then
 *     symmetric, METHODS §3's open-set 20 % + closed 20 %); `file` noise is applied
 *     before the subset since its labels are per row of the file;
 *  5. the validation split: ⌊val_fraction·N⌋ rows, noisy like the rest (Blind KD
 *     holds out 10 %).
 * Every draw comes from a seed derived from the node's seed (param `seed`, or the
 * graph seed and node name when −1), one independent stream per step, so changing
 * the subset size does not change which validation rows a given seed picks from
 * the same set.
 *
 * The node has no required inputs: it runs at tick 0 and again only when a param
 * (or the optional transition input) changes. clean_labels and noisy_mask (and
 * their validation twins) are oracle outputs: only evaluation nodes may read them. */
#include <kdflow/data.h>
#include <kdflow/kdflow-plugin.h>
#include <string.h>

static const char *const datasets[] = { "fashion-mnist", "idx", "npy", "csv", NULL };
enum { DS_FMNIST, DS_IDX, DS_NPY, DS_CSV };
static const char *const normalizations[] = { "none", "unit", "standardize",
                                              "standardize_global", NULL };
/* the order of KdfNoiseKind */
static const char *const noises[] = { "none", "symmetric", "symmetric_inclusive", "pairflip",
                                      "asymmetric", "transition", "instance", "openset", "file",
                                      NULL };

static const KdfPortSpec inputs[] = {
  { .name = "transition", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 2,
    .shape = "K,K", .flags = KDF_PORT_OPTIONAL,
    .summary = "transition noise: the C×C matrix T[true][noisy] (e.g. a Lua table)" },
  { 0 },
};

#define OUT(n, dt, rk, shp, fl, s)                                                        \
  { .name = (n), .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_##dt, .rank = (rk),         \
    .shape = (shp), .flags = (fl), .summary = (s) }

static const KdfPortSpec outputs[] = {
  OUT ("x", F32, 2, "N,D", 0, "training inputs, one row per sample"),
  OUT ("labels", I32, 1, "N", 0, "training labels as a method sees them (noisy)"),
  OUT ("clean_labels", I32, 1, "N", KDF_PORT_ORACLE, "true training labels"),
  OUT ("noisy_mask", U8, 1, "N", KDF_PORT_ORACLE, "1 = the label (or, open-set, the input) is wrong"),
  OUT ("index", I32, 1, "N", 0, "each training row's row in the source file"),
  OUT ("x_val", F32, 2, "V,D", 0, "validation inputs (0 rows without a split)"),
  OUT ("labels_val", I32, 1, "V", 0, "validation labels, noisy like training"),
  OUT ("clean_labels_val", I32, 1, "V", KDF_PORT_ORACLE, "true validation labels"),
  OUT ("noisy_mask_val", U8, 1, "V", KDF_PORT_ORACLE, "validation noise mask"),
  OUT ("x_test", F32, 2, "M,D", 0, "test inputs (0 rows if the source has none)"),
  OUT ("y_test", I32, 1, "M", 0, "test labels (clean)"),
  OUT ("num_classes", F32, 0, NULL, 0, "C, the number of classes (a scalar)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM ("dataset", "fashion-mnist", datasets, "the source format"),
  KDF_PARAM_STRING ("path", "",
                    "fashion-mnist/idx: directory of the four IDX files (fashion-mnist: "
                    "default " KDF_FASHION_MNIST_DIR "); npy: directory with x.npy, "
                    "labels.npy [, x_test.npy, y_test.npy]; csv: the training file"),
  KDF_PARAM_STRING ("test_path", "", "csv: a test file with the same columns"),
  KDF_PARAM_STRING ("label_column", "-1", "csv: the label column, a header name or index"),
  KDF_PARAM_INT ("n_classes", 0, 0, 65536, "C (0 = 1 + the largest label)"),
  KDF_PARAM_INT ("subset", 0, 0, G_MAXINT32, "keep this many training rows, stratified (0 = all)"),
  KDF_PARAM_INT ("test_subset", 0, 0, G_MAXINT32, "keep this many test rows, stratified (0 = all)"),
  KDF_PARAM_ENUM ("normalize", "unit", normalizations,
                  "inputs: none, unit ([0,1]), standardize (per feature), standardize_global"),
  KDF_PARAM_ENUM ("noise", "none", noises, "the label-noise model"),
  KDF_PARAM_DOUBLE ("rate", 0.0, 0, 0, "noise rate r in [0, 1): ⌊rN⌋ samples (exact count)"),
  KDF_PARAM_STRING ("class_map", "",
                    "asymmetric: 'from:to,...' by class index or name (default: Fashion-MNIST's "
                    "T-shirt→Shirt, Pullover→Coat, Sandal→Sneaker, Shirt→T-shirt, Coat→Pullover)"),
  KDF_PARAM_STRING ("transition_file", "", "transition: a .npy C×C matrix (or the input)"),
  KDF_PARAM_DOUBLE ("instance_std", 0.1, 1e-6, 10, "instance: std of the per-sample flip rate"),
  KDF_PARAM_STRING ("heldout", "", "openset: held-out classes, '8,9' or names"),
  KDF_PARAM_STRING ("labels_file", "", "file: a .npy of N noisy labels, one per source row"),
  KDF_PARAM_ENUM ("noise2", "none", noises, "a second model on the samples not yet noisy"),
  KDF_PARAM_DOUBLE ("rate2", 0.0, 0, 0, "its rate"),
  KDF_PARAM_DOUBLE ("val_fraction", 0.1, 0.0, 0.99, "noisy validation split (0 = none)"),
  KDF_PARAM_INT ("seed", -1, -1, 9007199254740992.0,
                 "noise/split/subset seed (−1: from the graph seed and node name)"),
  { 0 },
};

typedef struct {
  guint64 seed; /* the seed of the first run: later reruns draw the same */
} LoaderState;

static gboolean
loader_init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  LoaderState *s = g_new0 (LoaderState, 1);
  s->seed = kdf_ctx_seed (ctx);
  *state = s;
  return TRUE;
}

/* splitmix64: independent seeds for the steps from one node seed */
static guint64
step_seed (guint64 seed, guint64 step)
{
  guint64 z = seed + step * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Y: the i32 labels a reader returned (contiguous) */
static int32_t
max_label (const KdfTensor *y)
{
  const int32_t *p = kdf_tensor_i32 (y);
  int32_t mx = -1;
  for (int64_t i = 0; i < y->shape[0]; i++)
    mx = MAX (mx, p[i]);
  return mx;
}

/* C for a dataset made from tensors: the param, else 1 + the largest label of
 * training and test. */
static int
classes_for (KdfNodeCtx *ctx, const KdfTensor *y, const KdfTensor *ty)
{
  int c = (int) kdf_ctx_param_int (ctx, "n_classes");
  if (c > 0)
    return c;
  int32_t mx = max_label (y);
  if (ty)
    mx = MAX (mx, max_label (ty));
  return mx + 1;
}

static KdfDataset *
load_npy (KdfNodeCtx *ctx, const char *dir, GError **error)
{
  g_autofree char *px = g_build_filename (dir, "x.npy", NULL);
  g_autofree char *py = g_build_filename (dir, "labels.npy", NULL);
  g_autofree char *ptx = g_build_filename (dir, "x_test.npy", NULL);
  g_autofree char *pty = g_build_filename (dir, "y_test.npy", NULL);
  const char *need[2] = { px, py };
  for (int k = 0; k < 2; k++)
    if (!g_file_test (need[k], G_FILE_TEST_EXISTS)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: file not found (dataset npy reads x.npy and labels.npy, and "
                   "optionally x_test.npy and y_test.npy, from param 'path')", need[k]);
      return NULL;
    }
  gboolean has_test = g_file_test (ptx, G_FILE_TEST_EXISTS);
  if (has_test != g_file_test (pty, G_FILE_TEST_EXISTS)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: file not found (x_test.npy and y_test.npy "
                 "come together)", has_test ? pty : ptx);
    return NULL;
  }
  g_autoptr (KdfTensor) x = kdf_npy_read (px, KDF_DTYPE_ANY, error);
  if (x == NULL)
    return NULL;
  g_autoptr (KdfTensor) y = kdf_npy_read (py, KDF_DTYPE_I32, error);
  if (y == NULL)
    return NULL;
  g_autoptr (KdfTensor) tx = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  if (has_test && (!(tx = kdf_npy_read (ptx, KDF_DTYPE_ANY, error)) ||
                   !(ty = kdf_npy_read (pty, KDF_DTYPE_I32, error))))
    return NULL;
  if (y->rank != 1 || (ty && ty->rank != 1)) {
    g_autofree char *d = kdf_tensor_describe (y->rank != 1 ? y : ty);
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: labels must be one-dimensional, the file "
                 "holds %s", y->rank != 1 ? py : pty, d);
    return NULL;
  }
  KdfDataset *ds = kdf_dataset_new (dir, x, y, tx, ty, classes_for (ctx, y, ty), error);
  if (ds == NULL) {
    /* name the file behind the complaint */
    const char *msg = (*error)->message;
    const char *file = g_str_has_prefix (msg, "y_test") ? pty
                       : g_str_has_prefix (msg, "labels") ? py
                       : g_str_has_prefix (msg, "x_test") || g_str_has_prefix (msg, "the test")
                           ? ptx
                           : px;
    g_prefix_error (error, "%s: ", file);
  }
  return ds;
}

static KdfDataset *
load_csv (KdfNodeCtx *ctx, const char *path, GError **error)
{
  const char *test_path = kdf_ctx_param_string (ctx, "test_path");
  KdfCsvOptions opts = { .header = KDF_CSV_HEADER_AUTO,
                         .label_column = kdf_ctx_param_string (ctx, "label_column") };
  g_autoptr (KdfTensor) x = NULL;
  g_autoptr (KdfTensor) y = NULL;
  g_autoptr (KdfTensor) tx = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  if (!kdf_csv_read (path, &opts, &x, &y, NULL, error))
    return NULL;
  if (test_path && *test_path && !kdf_csv_read (test_path, &opts, &tx, &ty, NULL, error))
    return NULL;
  if (y == NULL || (tx && ty == NULL)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: no label column (param 'label_column')",
                 y == NULL ? path : test_path);
    return NULL;
  }
  if (tx && tx->shape[1] != x->shape[1]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: %" G_GINT64_FORMAT " feature columns, but %s has %" G_GINT64_FORMAT,
                 test_path, (gint64) tx->shape[1], path, (gint64) x->shape[1]);
    return NULL;
  }
  KdfDataset *ds = kdf_dataset_new (path, x, y, tx, ty, classes_for (ctx, y, ty), error);
  if (ds == NULL)
    g_prefix_error (error, "%s: ",
                    g_str_has_prefix ((*error)->message, "y_test") ? test_path : path);
  return ds;
}

static KdfDataset *
load (KdfNodeCtx *ctx, GError **error)
{
  const char *path = kdf_ctx_param_string (ctx, "path");
  gboolean has_path = path && *path;
  int which = kdf_ctx_param_enum (ctx, "dataset");
  if (which != DS_FMNIST && !has_path) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "dataset '%s' needs param 'path'",
                 datasets[which]);
    return NULL;
  }
  KdfDataset *ds = NULL;
  switch (which) {
  case DS_FMNIST:
    ds = kdf_dataset_load_fashion_mnist (has_path ? path : NULL, error);
    break;
  case DS_IDX:
    if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: not a directory (dataset idx reads train-images-idx3-ubyte, "
                   "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, "
                   "each optionally .gz, from param 'path')", path);
      return NULL;
    }
    ds = kdf_dataset_load_idx_dir (path, path, error);
    break;
  case DS_NPY:
    return load_npy (ctx, path, error);
  case DS_CSV:
    return load_csv (ctx, path, error);
  }
  if (ds == NULL)
    return NULL;
  /* IDX sources infer C from their labels; a smaller n_classes is a label error */
  int c = (int) kdf_ctx_param_int (ctx, "n_classes");
  if (c > 0 && ds->n_classes > c) {
    const KdfTensor *y = ds->labels;
    const char *file = "train-labels-idx1-ubyte";
    int64_t bad = -1;
    for (int64_t i = 0; i < y->shape[0] && bad < 0; i++)
      if (kdf_tensor_i32 (y)[i] >= c)
        bad = i;
    if (bad < 0 && ds->y_test) {
      y = ds->y_test;
      file = "t10k-labels-idx1-ubyte";
      for (int64_t i = 0; i < y->shape[0] && bad < 0; i++)
        if (kdf_tensor_i32 (y)[i] >= c)
          bad = i;
    }
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "%s/%s: label %" G_GINT64_FORMAT " is %d, outside [0, %d) (param n_classes = %d)",
                 has_path ? path : KDF_FASHION_MNIST_DIR, file, (gint64) MAX (bad, 0),
                 bad >= 0 ? kdf_tensor_i32 (y)[bad] : ds->n_classes - 1, c, c);
    kdf_dataset_unref (ds);
    return NULL;
  }
  if (c > ds->n_classes)
    ds->n_classes = c;
  return ds;
}

/* Fills SPEC for noise model KIND at RATE; ARENA keeps what SPEC points to. */
typedef struct {
  int32_t *map;
  int32_t *heldout;
  KdfTensor *transition;
} NoiseArena;

static void
arena_clear (NoiseArena *a)
{
  g_clear_pointer (&a->map, g_free);
  g_clear_pointer (&a->heldout, g_free);
  g_clear_pointer (&a->transition, kdf_tensor_unref);
}

static gboolean
make_spec (KdfNodeCtx *ctx, KdfDataset *ds, KdfNoiseKind kind, double rate, const char *rate_name,
           guint64 seed, KdfNoiseSpec *spec, NoiseArena *arena, GError **error)
{
  KdfNoiseSpec init = KDF_NOISE_SPEC_INIT;
  *spec = init;
  spec->kind = kind;
  spec->rate = rate;
  spec->seed = seed;
  spec->instance_std = kdf_ctx_param_double (ctx, "instance_std");
  gboolean uses_rate = kind != KDF_NOISE_NONE && kind != KDF_NOISE_TRANSITION &&
                       kind != KDF_NOISE_FILE;
  if (uses_rate && !(rate >= 0 && rate < 1)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param '%s' = %g: a %s noise rate must lie in [0, 1)", rate_name, rate,
                 kdf_noise_kind_name (kind));
    return FALSE;
  }
  const char *const *names = (const char *const *) ds->class_names;
  if (kind == KDF_NOISE_ASYMMETRIC) {
    const char *map = kdf_ctx_param_string (ctx, "class_map");
    if (map && *map) {
      arena->map = g_new (int32_t, ds->n_classes);
      if (!kdf_noise_parse_class_map (map, ds->n_classes, names, arena->map, error)) {
        g_prefix_error (error, "param 'class_map' = '%s': ", map);
        return FALSE;
      }
      spec->class_map = arena->map;
    }
  } else if (kind == KDF_NOISE_TRANSITION) {
    KdfTensor *in = kdf_ctx_input_tensor (ctx, "transition");
    const char *file = kdf_ctx_param_string (ctx, "transition_file");
    if (in && file && *file) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "transition noise: give the matrix as input 'transition' or as param "
                   "'transition_file', not both");
      return FALSE;
    }
    if (in) {
      arena->transition = kdf_tensor_contiguous (in);
    } else if (file && *file) {
      arena->transition = kdf_npy_read (file, KDF_DTYPE_F32, error);
      if (arena->transition == NULL)
        return FALSE;
    } else {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "transition noise needs the C×C matrix: input 'transition' or param "
                   "'transition_file'");
      return FALSE;
    }
    spec->transition = arena->transition;
  } else if (kind == KDF_NOISE_OPENSET) {
    const char *list = kdf_ctx_param_string (ctx, "heldout");
    if (!list || !*list) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "openset noise needs param 'heldout' (the held-out classes, e.g. '8,9')");
      return FALSE;
    }
    arena->heldout = kdf_noise_parse_class_list (list, ds->n_classes, names, &spec->n_heldout,
                                                 error);
    if (arena->heldout == NULL) {
      g_prefix_error (error, "param 'heldout' = '%s': ", list);
      return FALSE;
    }
    spec->heldout = arena->heldout;
  } else if (kind == KDF_NOISE_FILE) {
    spec->file = kdf_ctx_param_string (ctx, "labels_file");
    if (!spec->file || !*spec->file) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "file noise needs param 'labels_file'");
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
add_noise (KdfNodeCtx *ctx, KdfDataset *ds, const char *kind_param, const char *rate_param,
           guint64 seed, GError **error)
{
  KdfNoiseKind kind = (KdfNoiseKind) kdf_ctx_param_enum (ctx, kind_param);
  if (kind == KDF_NOISE_NONE)
    return TRUE;
  KdfNoiseSpec spec;
  NoiseArena arena = { 0 };
  gboolean ok = make_spec (ctx, ds, kind, kdf_ctx_param_double (ctx, rate_param), rate_param,
                           seed, &spec, &arena, error) &&
                kdf_dataset_add_noise (ds, &spec, error);
  if (!ok && !g_str_has_prefix ((*error)->message, "param '"))
    g_prefix_error (error, "param '%s' = '%s': ", kind_param, kdf_noise_kind_name (kind));
  arena_clear (&arena);
  return ok;
}

static KdfTensor *
or_empty (KdfTensor *t, KdfDType dtype, int rank, int64_t d, gboolean oracle)
{
  if (t)
    return kdf_tensor_ref (t);
  int64_t shape[2] = { 0, d };
  KdfTensor *e = kdf_tensor_new (dtype, rank, shape);
  kdf_tensor_set_oracle (e, oracle);
  return e;
}

static gboolean
loader_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  LoaderState *s = state;
  gint64 seed_param = kdf_ctx_param_int (ctx, "seed");
  guint64 seed = seed_param >= 0 ? (guint64) seed_param : s->seed;

  g_autoptr (KdfDataset) ds = load (ctx, error);
  if (ds == NULL)
    return FALSE;
  kdf_ctx_progress (ctx, 0.5);

  gboolean file_noise = kdf_ctx_param_enum (ctx, "noise") == KDF_NOISE_FILE;
  if (file_noise && !add_noise (ctx, ds, "noise", "rate", step_seed (seed, 3), error))
    return FALSE;
  gint64 subset = kdf_ctx_param_int (ctx, "subset");
  if (subset > 0) {
    if (subset > ds->x->shape[0]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "param 'subset' = %" G_GINT64_FORMAT " but the training split has only %"
                   G_GINT64_FORMAT " rows", subset, (gint64) ds->x->shape[0]);
      return FALSE;
    }
    if (!kdf_dataset_subset (ds, KDF_SPLIT_TRAIN, subset, step_seed (seed, 1), error))
      return FALSE;
  }
  gint64 test_subset = kdf_ctx_param_int (ctx, "test_subset");
  if (test_subset > 0) {
    gint64 have = ds->y_test ? ds->y_test->shape[0] : 0;
    if (test_subset > have) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "param 'test_subset' = %" G_GINT64_FORMAT " but the test split has only %"
                   G_GINT64_FORMAT " rows", test_subset, have);
      return FALSE;
    }
    if (!kdf_dataset_subset (ds, KDF_SPLIT_TEST, test_subset, step_seed (seed, 2), error))
      return FALSE;
  }
  if (!kdf_dataset_normalize (ds, (KdfNormalize) kdf_ctx_param_enum (ctx, "normalize"), error)) {
    g_prefix_error (error, "param 'normalize': ");
    return FALSE;
  }
  if ((!file_noise && !add_noise (ctx, ds, "noise", "rate", step_seed (seed, 3), error)) ||
      !add_noise (ctx, ds, "noise2", "rate2", step_seed (seed, 4), error))
    return FALSE;
  double val = kdf_ctx_param_double (ctx, "val_fraction");
  if (val > 0 && !kdf_dataset_split_validation (ds, val, step_seed (seed, 5), error))
    return FALSE;

  int64_t n = ds->x->shape[0], d = ds->x->shape[1], noisy = 0;
  for (int64_t i = 0; i < n; i++)
    noisy += kdf_tensor_u8 (ds->noisy_mask)[i] != 0;
  int64_t n_val = ds->x_val ? ds->x_val->shape[0] : 0;
  int64_t n_test = ds->x_test ? ds->x_test->shape[0] : 0;
  kdf_ctx_metric (ctx, "n_train", (double) n);
  kdf_ctx_metric (ctx, "n_val", (double) n_val);
  kdf_ctx_metric (ctx, "n_test", (double) n_test);
  kdf_ctx_metric (ctx, "n_noisy", (double) noisy);
  kdf_ctx_metric (ctx, "noise_rate", n ? (double) noisy / (double) n : 0.0);
  kdf_ctx_metric (ctx, "n_classes", ds->n_classes);

  kdf_ctx_set_output_tensor (ctx, "x", kdf_tensor_ref (ds->x));
  kdf_ctx_set_output_tensor (ctx, "labels", kdf_tensor_ref (ds->labels));
  kdf_ctx_set_output_tensor (ctx, "clean_labels", kdf_tensor_ref (ds->clean_labels));
  kdf_ctx_set_output_tensor (ctx, "noisy_mask", kdf_tensor_ref (ds->noisy_mask));
  kdf_ctx_set_output_tensor (ctx, "index", kdf_tensor_ref (ds->index));
  kdf_ctx_set_output_tensor (ctx, "x_val", or_empty (ds->x_val, KDF_DTYPE_F32, 2, d, FALSE));
  kdf_ctx_set_output_tensor (ctx, "labels_val", or_empty (ds->labels_val, KDF_DTYPE_I32, 1, 0, FALSE));
  kdf_ctx_set_output_tensor (ctx, "clean_labels_val",
                             or_empty (ds->clean_labels_val, KDF_DTYPE_I32, 1, 0, TRUE));
  kdf_ctx_set_output_tensor (ctx, "noisy_mask_val",
                             or_empty (ds->noisy_mask_val, KDF_DTYPE_U8, 1, 0, TRUE));
  kdf_ctx_set_output_tensor (ctx, "x_test", or_empty (ds->x_test, KDF_DTYPE_F32, 2, d, FALSE));
  kdf_ctx_set_output_tensor (ctx, "y_test", or_empty (ds->y_test, KDF_DTYPE_I32, 1, 0, FALSE));
  kdf_ctx_set_output_tensor (ctx, "num_classes", kdf_tensor_new_scalar_f32 ((float) ds->n_classes));
  return TRUE;
}

static const KdfNodeClass data_loader_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "data_loader",
  .summary = "reads a dataset, injects seeded label noise, splits off a noisy validation set",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .init = loader_init,
  .run = loader_run,
  .finalize = g_free,
  .flags = 0,
};

KDF_PLUGIN (data_loader, &data_loader_class)
