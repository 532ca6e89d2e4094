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

typedef enum { SOURCE_FMNIST, SOURCE_IDX, SOURCE_NPY, SOURCE_CSV } Source;

typedef struct {
  Source dataset;
  const char *path;
  const char *test_path;
  const char *label_column;
  int n_classes;
  int subset;
  int test_subset;
  KdfNormalize normalize;
  KdfNoiseKind noise;
  double rate;
  const char *class_map;
  const char *transition_file;
  double instance_std;
  const char *heldout;
  KdfOpenInput open_input;
  const char *labels_file;
  const char *clusters;
  double cluster_cut;
  KdfNoiseKind noise2;
  double rate2;
  double val_fraction;
  int64_t seed;
  gboolean keep_u8;
} Params;

static const KdfChoice sources[] = {
  { "fashion-mnist", SOURCE_FMNIST },
  { "idx", SOURCE_IDX },
  { "npy", SOURCE_NPY },
  { "csv", SOURCE_CSV },
  { 0 },
};
static const KdfChoice normalizations[] = {
  { "none", KDF_NORMALIZE_NONE },
  { "unit", KDF_NORMALIZE_UNIT },
  { "standardize", KDF_NORMALIZE_STANDARDIZE },
  { "standardize_global", KDF_NORMALIZE_STANDARDIZE_GLOBAL },
  { 0 },
};
static const KdfChoice noises[] = {
  { "none", KDF_NOISE_NONE },
  { "symmetric", KDF_NOISE_SYMMETRIC },
  { "symmetric_inclusive", KDF_NOISE_SYMMETRIC_INCLUSIVE },
  { "pairflip", KDF_NOISE_PAIRFLIP },
  { "asymmetric", KDF_NOISE_ASYMMETRIC },
  { "transition", KDF_NOISE_TRANSITION },
  { "instance", KDF_NOISE_INSTANCE },
  { "openset", KDF_NOISE_OPENSET },
  { "file", KDF_NOISE_FILE },
  { "cc", KDF_NOISE_CC },
  { 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("transition", "f32[K,K]", KDF_PORT_OPTIONAL,
            "transition noise: the C×C matrix T[true][noisy] (e.g. a Lua table)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("x", "f32[N,D]", 0,
            "training inputs, one row per sample (keep_u8: kept on disk, for the nodes that "
            "read by rows)"),
  KDF_PORT ("labels", "i32[N]", 0, "training labels as a method sees them (noisy)"),
  KDF_PORT ("clean_labels", "i32[N]", KDF_PORT_ORACLE, "true training labels"),
  KDF_PORT ("noisy_mask", "u8[N]", KDF_PORT_ORACLE,
            "1 = the label (or, open-set, the input) is wrong"),
  KDF_PORT ("index", "i32[N]", 0, "each training row's row in the source file"),
  KDF_PORT ("x_val", "f32[V,D]", 0, "validation inputs (0 rows without a split)"),
  KDF_PORT ("labels_val", "i32[V]", 0, "validation labels, noisy like training"),
  KDF_PORT ("clean_labels_val", "i32[V]", KDF_PORT_ORACLE, "true validation labels"),
  KDF_PORT ("noisy_mask_val", "u8[V]", KDF_PORT_ORACLE, "validation noise mask"),
  KDF_PORT ("open_mask", "u8[N]", KDF_PORT_ORACLE,
            "1 = open-set row: its input belongs to no class of the label space"),
  KDF_PORT ("open_mask_val", "u8[V]", KDF_PORT_ORACLE, "validation open-set mask"),
  KDF_PORT ("x_test", "f32[M,D]", KDF_PORT_TEST,
            "test inputs (0 rows if the source has none; evaluation only)"),
  KDF_PORT ("y_test", "i32[M]", KDF_PORT_TEST, "test labels (clean; evaluation only)"),
  KDF_PORT ("num_classes", "f32[]", 0, "C, the number of classes (a scalar)"),
  KDF_PORT ("class_clusters", "i32[C]", 0,
            "cc noise: each class's confusable cluster (ids from 0 in the order of each "
            "cluster's lowest class); other models: every class alone (0..C−1)"),
  { 0 },
};

static const KdfChoice open_inputs[] = {
  { "heldout", KDF_OPEN_HELDOUT }, { "permuted", KDF_OPEN_PERMUTED }, { 0 } };

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM (Params, dataset, "fashion-mnist", sources, "the source format"),
  KDF_PARAM_STRING (Params, path, "",
                    "fashion-mnist/idx: directory of the four IDX files (fashion-mnist: "
                    "default " KDF_FASHION_MNIST_DIR "); npy: directory with x.npy, "
                    "labels.npy [, x_test.npy, y_test.npy]; csv: the training file"),
  KDF_PARAM_STRING (Params, test_path, "", "csv: a test file with the same columns"),
  KDF_PARAM_STRING (Params, label_column, "-1", "csv: the label column, a header name or index"),
  KDF_PARAM_INT (Params, n_classes, 0, 0, 65536, "C (0 = 1 + the largest label)"),
  KDF_PARAM_INT (Params, subset, 0, 0, G_MAXINT32,
                 "keep this many training rows, stratified (0 = all)"),
  KDF_PARAM_INT (Params, test_subset, 0, 0, G_MAXINT32,
                 "keep this many test rows, stratified (0 = all)"),
  KDF_PARAM_ENUM (Params, normalize, "unit", normalizations,
                  "inputs: none, unit ([0,1]), standardize (per feature), standardize_global"),
  KDF_PARAM_ENUM (Params, noise, "none", noises, "the label-noise model"),
  KDF_PARAM_DOUBLE (Params, rate, 0.0, 0, 0, "noise rate r in [0, 1): ⌊rN⌋ samples (exact count)"),
  KDF_PARAM_STRING (Params, class_map, "",
                    "asymmetric: 'from:to,...' by class index or name (default: Fashion-MNIST's "
                    "T-shirt→Shirt, Pullover→Coat, Sandal→Sneaker, Shirt→T-shirt, Coat→Pullover)"),
  KDF_PARAM_STRING (Params, transition_file, "", "transition: a .npy C×C matrix (or the input)"),
  KDF_PARAM_DOUBLE (Params, instance_std, 0.1, 1e-6, 10,
                    "instance: std of the per-sample flip rate"),
  KDF_PARAM_STRING (Params, heldout, "", "openset: held-out classes, '8,9' or names"),
  KDF_PARAM_ENUM (Params, open_input, "heldout", open_inputs,
                  "openset: the inputs put in — heldout (the held-out classes' samples) or "
                  "permuted (in-set samples, features shuffled by one fixed permutation)"),
  KDF_PARAM_STRING (Params, labels_file, "",
                    "file: a .npy of N noisy labels, one per source row"),
  KDF_PARAM_STRING (Params, clusters, "",
                    "cc: the clusters, '0,2,4,6;5,7,9' (';' between clusters, classes by index "
                    "or name, a class not named is alone); default: complete-linkage clusters "
                    "of the normalised training inputs (Jeong & Chung 2024)"),
  KDF_PARAM_DOUBLE (Params, cluster_cut, 0.8, 1e-6, 1,
                    "cc: cut the dendrogram at this fraction of its largest merge height"),
  KDF_PARAM_ENUM (Params, noise2, "none", noises, "a second model on the samples not yet noisy"),
  KDF_PARAM_DOUBLE (Params, rate2, 0.0, 0, 0, "its rate"),
  KDF_PARAM_DOUBLE (Params, val_fraction, 0.1, 0.0, 0.99, "noisy validation split (0 = none)"),
  KDF_PARAM_INT (Params, seed, -1, -1, 9007199254740992.0,
                 "noise/split/subset seed (−1: from the graph seed and node name)"),
  KDF_PARAM_BOOL (Params, keep_u8, FALSE,
                  "npy with a u8 x.npy: keep the inputs on disk, read as u8 a mini-batch at a "
                  "time and normalised then (x, x_val, x_test are row indexes into the files; "
                  "for data larger than memory). Only nodes that read by rows take them "
                  "(student_update, teacher_forward); the others, and the noise models that "
                  "read inputs (instance, openset, cc without 'clusters'), fail naming this "
                  "param"),
  { 0 },
};

typedef struct {
  guint64 seed; /* the seed of the first run: later reruns draw the same */
} LoaderState;

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
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

static KdfDataset *
load_csv (const Params *p, GError **error)
{
  KdfCsvOptions opts = { .header = KDF_CSV_HEADER_AUTO, .label_column = p->label_column };
  g_autoptr (KdfTensor) x = NULL;
  g_autoptr (KdfTensor) y = NULL;
  g_autoptr (KdfTensor) tx = NULL;
  g_autoptr (KdfTensor) ty = NULL;
  if (!kdf_csv_read (p->path, &opts, &x, &y, NULL, error))
    return NULL;
  if (*p->test_path && !kdf_csv_read (p->test_path, &opts, &tx, &ty, NULL, error))
    return NULL;
  if (y == NULL || (tx && ty == NULL)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "%s: no label column (param 'label_column')",
                 y == NULL ? p->path : p->test_path);
    return NULL;
  }
  if (tx && tx->shape[1] != x->shape[1]) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: %" G_GINT64_FORMAT " feature columns, but %s has %" G_GINT64_FORMAT,
                 p->test_path, (gint64) tx->shape[1], p->path, (gint64) x->shape[1]);
    return NULL;
  }
  KdfDataset *ds = kdf_dataset_new (p->path, x, y, tx, ty, p->n_classes, error);
  if (ds == NULL)
    g_prefix_error (error, "%s: ",
                    g_str_has_prefix ((*error)->message, "y_test") ? p->test_path : p->path);
  return ds;
}

/* IDX sources infer C from their labels: a smaller n_classes is a label error. */
static gboolean
check_idx_classes (const Params *p, KdfDataset *ds, GError **error)
{
  int c = p->n_classes;
  if (c <= 0 || ds->n_classes <= c) {
    ds->n_classes = MAX (ds->n_classes, c);
    return TRUE;
  }
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
               *p->path ? p->path : KDF_FASHION_MNIST_DIR, file, (gint64) MAX (bad, 0),
               bad >= 0 ? kdf_tensor_i32 (y)[bad] : ds->n_classes - 1, c, c);
  return FALSE;
}

/* What a node that needs the inputs in memory is told when keep_u8 kept them on disk. */
#define KEEP_U8_HINT "set data_loader param 'keep_u8' = false to hold them in memory as f32"

/* SUB (nullable): subsets taken while loading (kdf_dataset_load_*_subset) */
static KdfDataset *
load (const Params *p, const KdfSubsetSpec *sub, GError **error)
{
  if (p->keep_u8 && p->dataset != SOURCE_NPY) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'keep_u8' needs dataset 'npy' (a u8 x.npy, read by rows); dataset '%s' "
                 "is read whole", p->dataset == SOURCE_CSV ? "csv"
                                  : p->dataset == SOURCE_IDX ? "idx" : "fashion-mnist");
    return NULL;
  }
  if (p->dataset != SOURCE_FMNIST && !*p->path) {
    const char *name = "?";
    for (int k = 0; sources[k].name; k++)
      if (sources[k].value == (int) p->dataset)
        name = sources[k].name;
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "dataset '%s' needs param 'path'", name);
    return NULL;
  }
  KdfDataset *ds = NULL;
  switch (p->dataset) {
  case SOURCE_FMNIST:
    ds = kdf_dataset_load_fashion_mnist_subset (*p->path ? p->path : NULL, sub, error);
    break;
  case SOURCE_IDX:
    if (!g_file_test (p->path, G_FILE_TEST_IS_DIR)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: not a directory (dataset idx reads train-images-idx3-ubyte, "
                   "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, "
                   "each optionally .gz, from param 'path')", p->path);
      return NULL;
    }
    ds = kdf_dataset_load_idx_dir_subset (p->path, p->path, sub, error);
    break;
  case SOURCE_NPY:
    if (p->keep_u8)
      return kdf_dataset_load_npy_dir_on_disk (p->path, p->n_classes, sub, KEEP_U8_HINT, error);
    return kdf_dataset_load_npy_dir_subset (p->path, p->n_classes, sub, error);
  case SOURCE_CSV:
    return load_csv (p, error);
  }
  if (ds && !check_idx_classes (p, ds, error))
    g_clear_pointer (&ds, kdf_dataset_unref);
  return ds;
}

/* Fills SPEC for noise model KIND at RATE; ARENA keeps what SPEC points to. */
typedef struct {
  int32_t *map;
  int32_t *heldout;
  KdfTensor *transition;
  int32_t *clusters; /* cc: owned by the caller of add_noise */
} NoiseArena;

static void
arena_clear (NoiseArena *a)
{
  g_clear_pointer (&a->map, g_free);
  g_clear_pointer (&a->heldout, g_free);
  g_clear_pointer (&a->transition, kdf_tensor_unref);
  a->clusters = NULL;
}

static gboolean
make_spec (KdfNodeCtx *ctx, KdfDataset *ds, KdfNoiseKind kind, double rate, const char *rate_name,
           guint64 seed, KdfNoiseSpec *spec, NoiseArena *arena, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfNoiseSpec init = KDF_NOISE_SPEC_INIT;
  *spec = init;
  spec->kind = kind;
  spec->rate = rate;
  spec->seed = seed;
  spec->instance_std = p->instance_std;
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
    if (*p->class_map) {
      arena->map = g_new (int32_t, ds->n_classes);
      if (!kdf_noise_parse_class_map (p->class_map, ds->n_classes, names, arena->map, error)) {
        g_prefix_error (error, "param 'class_map' = '%s': ", p->class_map);
        return FALSE;
      }
      spec->class_map = arena->map;
    }
  } else if (kind == KDF_NOISE_TRANSITION) {
    KdfTensor *in = kdf_ctx_input_tensor (ctx, "transition");
    if (in && *p->transition_file) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "transition noise: give the matrix as input 'transition' or as param "
                   "'transition_file', not both");
      return FALSE;
    }
    if (in) {
      arena->transition = kdf_tensor_contiguous (in);
    } else if (*p->transition_file) {
      arena->transition = kdf_npy_read (p->transition_file, KDF_DTYPE_F32, error);
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
    spec->open_input = p->open_input;
    if (!*p->heldout && p->open_input == KDF_OPEN_HELDOUT) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "openset noise needs param 'heldout' (the held-out classes, e.g. '8,9'), "
                   "or param 'open_input' = 'permuted'");
      return FALSE;
    }
    if (*p->heldout) {
      arena->heldout = kdf_noise_parse_class_list (p->heldout, ds->n_classes, names,
                                                   &spec->n_heldout, error);
      if (arena->heldout == NULL) {
        g_prefix_error (error, "param 'heldout' = '%s': ", p->heldout);
        return FALSE;
      }
      spec->heldout = arena->heldout;
    }
  } else if (kind == KDF_NOISE_CC) {
    spec->clusters = arena->clusters;
    spec->cluster_cut = p->cluster_cut;
  } else if (kind == KDF_NOISE_FILE) {
    if (!*p->labels_file) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "file noise needs param 'labels_file'");
      return FALSE;
    }
    spec->file = p->labels_file;
  }
  return TRUE;
}

/* cc: the clusters of param 'clusters', else of the (normalised) training inputs and
 * the labels as they are now, into CLUSTERS (C entries). */
static gboolean
cc_clusters (KdfNodeCtx *ctx, KdfDataset *ds, int32_t *clusters, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  if (*p->clusters) {
    if (!kdf_noise_parse_clusters (p->clusters, ds->n_classes,
                                   (const char *const *) ds->class_names, clusters, error)) {
      g_prefix_error (error, "param 'clusters' = '%s': ", p->clusters);
      return FALSE;
    }
    return TRUE;
  }
  if (!kdf_noise_confusable_clusters (ds->x, ds->labels, ds->n_classes, p->cluster_cut, clusters,
                                      NULL, error)) {
    g_prefix_error (error, "cc noise: ");
    return FALSE;
  }
  return TRUE;
}

/* Adds noise model KIND (param KIND_NAME) at RATE (param RATE_NAME). CLUSTERS: the
 * clusters for cc noise (C entries). */
static gboolean
add_noise (KdfNodeCtx *ctx, KdfDataset *ds, KdfNoiseKind kind, const char *kind_name, double rate,
           const char *rate_name, guint64 seed, int32_t *clusters, GError **error)
{
  if (kind == KDF_NOISE_NONE)
    return TRUE;
  KdfNoiseSpec spec;
  NoiseArena arena = { 0 };
  if (kind == KDF_NOISE_CC) {
    if (!cc_clusters (ctx, ds, clusters, error))
      return FALSE;
    arena.clusters = clusters;
  }
  gboolean ok = make_spec (ctx, ds, kind, rate, rate_name, seed, &spec, &arena, error) &&
                kdf_dataset_add_noise (ds, &spec, error);
  if (!ok && !g_str_has_prefix ((*error)->message, "param '"))
    g_prefix_error (error, "param '%s' = '%s': ", kind_name, kdf_noise_kind_name (kind));
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
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  LoaderState *s = state;
  guint64 seed = p->seed >= 0 ? (guint64) p->seed : s->seed;

  gboolean file_noise = p->noise == KDF_NOISE_FILE;
  /* subsets of a file data set are taken as it loads, before its inputs become f32 (a
   * small subset never holds the whole set in memory as f32); the same rows as
   * subsetting after loading. Not with file noise (its labels are per source row, applied
   * first) nor with an IDX n_classes (checked on the whole set first). */
  KdfSubsetSpec sub = { .train = p->subset, .train_seed = step_seed (seed, 1),
                        .test = p->test_subset, .test_seed = step_seed (seed, 2) };
  const gboolean early = (p->subset > 0 || p->test_subset > 0) && !file_noise &&
                         p->dataset != SOURCE_CSV &&
                         (p->dataset == SOURCE_NPY || p->n_classes <= 0);
  g_autoptr (KdfDataset) ds = load (p, early ? &sub : NULL, error);
  if (ds == NULL) {
    if (early && g_str_has_prefix ((*error)->message, "a subset of "))
      g_prefix_error (error, "param '%s' = %d: ",
                      strstr ((*error)->message, " test rows") ? "test_subset" : "subset",
                      strstr ((*error)->message, " test rows") ? p->test_subset : p->subset);
    return FALSE;
  }
  kdf_ctx_progress (ctx, 0.5);

  if (file_noise &&
      !add_noise (ctx, ds, p->noise, "noise", p->rate, "rate", step_seed (seed, 3), NULL, error))
    return FALSE;
  if (p->subset > 0 && !early) {
    if (p->subset > ds->x->shape[0]) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "param 'subset' = %d but the training split has only %" G_GINT64_FORMAT
                   " rows", p->subset, (gint64) ds->x->shape[0]);
      return FALSE;
    }
    if (!kdf_dataset_subset (ds, KDF_SPLIT_TRAIN, p->subset, step_seed (seed, 1), error))
      return FALSE;
  }
  if (p->test_subset > 0 && !early) {
    gint64 have = ds->y_test ? ds->y_test->shape[0] : 0;
    if (p->test_subset > have) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "param 'test_subset' = %d but the test split has only %" G_GINT64_FORMAT
                   " rows", p->test_subset, have);
      return FALSE;
    }
    if (!kdf_dataset_subset (ds, KDF_SPLIT_TEST, p->test_subset, step_seed (seed, 2), error))
      return FALSE;
  }
  if (!kdf_dataset_normalize (ds, p->normalize, error)) {
    g_prefix_error (error, "param 'normalize': ");
    return FALSE;
  }
  /* every class alone unless cc noise finds (or is given) clusters */
  g_autofree int32_t *clusters = g_new (int32_t, MAX (ds->n_classes, 1));
  for (int c = 0; c < ds->n_classes; c++)
    clusters[c] = c;
  if ((!file_noise && !add_noise (ctx, ds, p->noise, "noise", p->rate, "rate",
                                  step_seed (seed, 3), clusters, error)) ||
      !add_noise (ctx, ds, p->noise2, "noise2", p->rate2, "rate2", step_seed (seed, 4), clusters,
                  error))
    return FALSE;
  if (p->val_fraction > 0 &&
      !kdf_dataset_split_validation (ds, p->val_fraction, step_seed (seed, 5), error))
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
  kdf_ctx_set_output_tensor (ctx, "open_mask", kdf_tensor_ref (ds->open_mask));
  kdf_ctx_set_output_tensor (ctx, "open_mask_val",
                             or_empty (ds->open_mask_val, KDF_DTYPE_U8, 1, 0, TRUE));
  /* the test split is marked: nothing that learns may read it, nor a script its values */
  kdf_ctx_set_output_tensor (ctx, "x_test", kdf_tensor_with_flags (
      or_empty (ds->x_test, KDF_DTYPE_F32, 2, d, FALSE), KDF_TENSOR_TEST));
  kdf_ctx_set_output_tensor (ctx, "y_test", kdf_tensor_with_flags (
      or_empty (ds->y_test, KDF_DTYPE_I32, 1, 0, FALSE), KDF_TENSOR_TEST));
  kdf_ctx_set_output_tensor (ctx, "num_classes", kdf_tensor_new_scalar_f32 ((float) ds->n_classes));
  KdfTensor *cl = kdf_tensor_new_1d (KDF_DTYPE_I32, ds->n_classes);
  memcpy (kdf_tensor_i32 (cl), clusters, sizeof (int32_t) * ds->n_classes);
  kdf_ctx_set_output_tensor (ctx, "class_clusters", cl);
  return TRUE;
}

static const KdfNodeClass data_loader_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "data_loader",
  .summary = "reads a dataset, injects seeded label noise, splits off a noisy validation set",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = g_free,
};

KDF_PLUGIN (data_loader, &data_loader_class)
