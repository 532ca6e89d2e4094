/* kdflow — data: readers (IDX, .npy, CSV), label-noise models, splits, checks.
 *
 * This is the library behind the data_loader and npy_source nodes. A tour:
 *
 *   g_autoptr (KdfDataset) ds = kdf_dataset_load_fashion_mnist (NULL, &error);
 *   kdf_dataset_normalize (ds, KDF_NORMALIZE_UNIT, &error);       // x in [0,1]
 *   KdfNoiseSpec spec = KDF_NOISE_SPEC_INIT;                        // then set fields
 *   spec.kind = KDF_NOISE_SYMMETRIC; spec.rate = 0.4; spec.seed = 7;
 *   kdf_dataset_add_noise (ds, &spec, &error);                      // labels now noisy
 *   kdf_dataset_split_validation (ds, 0.1, 7, &error);              // a noisy 10 % split
 *   // ds->x, ds->labels, ds->clean_labels (oracle), ds->noisy_mask (oracle),
 *   // ds->x_val, ds->labels_val, ..., ds->x_test, ds->y_test
 *
 *   g_autoptr (KdfTensor) t = kdf_npy_read ("scores.npy", KDF_DTYPE_F32, &error);
 *
 * Errors (all in the KDF_ERROR domain), by code:
 *   KDF_ERROR_IO     a file is missing, unreadable, truncated, corrupt or malformed; or
 *                    holds something kdflow cannot represent (a dtype, Fortran order).
 *                    The message starts with the file's path.
 *   KDF_ERROR_PARAM  a setting the caller chose is invalid: a noise rate outside [0,1),
 *                    a class map naming a class that does not exist, a transition
 *                    matrix of the wrong shape or whose rows do not sum to 1, a split
 *                    fraction outside (0,1), an unknown CSV column.
 *   KDF_ERROR_SHAPE  a tensor's shape disagrees with what is needed: x and labels of
 *                    different lengths, a dtype or rank that does not fit, a file's
 *                    array of rank above KDF_MAX_RANK.
 *   KDF_ERROR_VALUE  a tensor's contents are bad: labels outside [0,C), a probability
 *                    matrix with NaN, Inf or negative entries (or a row summing to 0),
 *                    non-finite inputs to normalise.
 *
 * Threads. Nothing here keeps global state; every function may run on any thread
 * on distinct datasets (a KdfDataset itself is not locked).
 *
 * Randomness. Every seeded function draws from one GRand (GLib's Mersenne Twister
 * MT19937) made by kdf_data_rand_new (seed) = g_rand_new_with_seed_array ({seed &
 * 0xffffffff, seed >> 32}, 2), in the order each function documents, so the same seed
 * gives the same picks and counts on every platform. Normal deviates use Box–Muller on
 * two g_rand_double draws (both outputs used, in order: r·cos θ then r·sin θ).
 * "Choose k of n uniformly" is a partial Fisher–Yates shuffle of the candidate index
 * list (ascending): for i in 0..k−1, j = g_rand_int_range (i, n), swap a[i], a[j]; the
 * k picks are a[0..k−1] in that order, and per-pick draws follow in the same order.
 */
#pragma once

#include <kdflow/base.h>
#include <kdflow/tensor.h>

G_BEGIN_DECLS

/* ---- randomness -------------------------------------------------------------- */

/* The GRand every seeded function here uses (see above). transfer full. */
KDF_API GRand *kdf_data_rand_new (guint64 seed);

/* ---- IDX (MNIST-style) files -------------------------------------------------- */

/* Reads an IDX file, gzip-compressed (detected by its magic, not its name) or plain.
 * Element types: unsigned byte → u8; signed byte, short, int → i32; float, double →
 * f32. Rank 1..4. The data must fill the file exactly. transfer full; NULL with a
 * KDF_ERROR_IO error naming the file on any problem. */
KDF_API KdfTensor *kdf_idx_read (const char *path, GError **error);

/* The rows ROWS (N_ROWS of them, strictly increasing, in [0, rows of the file)) of an
 * IDX file as kdf_idx_read would give them, streamed: the payload is decompressed in
 * blocks of about 1 MB and only those rows are kept, so a small subset of a large file
 * never holds the file in memory. The whole file is still read, so that truncation,
 * trailing data and a bad gzip CRC fail as in kdf_idx_read. transfer full. */
KDF_API KdfTensor *kdf_idx_read_rows (const char *path, const int32_t *rows, int64_t n_rows,
                                      GError **error);

/* ---- .npy files ------------------------------------------------------------- */

#define KDF_NPY_MAX_RANK 32

/* What a .npy header says. */
typedef struct {
  int version_major, version_minor; /* 1.0, 2.0 or 3.0 */
  char descr[16];                   /* as written, e.g. "<f8" */
  char kind;                        /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool */
  int itemsize;                     /* bytes: 1, 2, 4 or 8 */
  gboolean big_endian;
  int rank;                         /* 0 for a scalar */
  int64_t shape[KDF_NPY_MAX_RANK];
  guint64 data_offset;              /* bytes from the start of the file */
  guint64 numel;
} KdfNpyHeader;

/* Reads and checks the header only (magic, version, dict, dtype, C order, shape
 * against the file size). FALSE with a KDF_ERROR_IO error naming the file. */
KDF_API gboolean kdf_npy_read_header (const char *path, KdfNpyHeader *out, GError **error);

/* Reads a C-order .npy of dtype <f4 <f8 <i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1 (either byte
 * order) and rank ≤ KDF_MAX_RANK into a new contiguous tensor of DTYPE, converting
 * with checks: floats → f32 keep precision as far as f32 can (finite f64 beyond the f32
 * range is an error); anything → i32 or u8 must be integral and in range (an error
 * names the first offending element); bool is 0/1. DTYPE = KDF_DTYPE_ANY picks the
 * natural one: floats → f32, bool and u1 → u8, other integers → i32. transfer full. */
KDF_API KdfTensor *kdf_npy_read (const char *path, KdfDType dtype, GError **error);

/* The rows ROWS (N_ROWS, strictly increasing, in [0, shape[0])) of a .npy as
 * kdf_npy_read would give them, read by seeking to each run of consecutive rows: the
 * rest of the file is never read, so a small subset of a large array costs its rows
 * only. A file that shrank since its header was checked fails ("truncated"). */
KDF_API KdfTensor *kdf_npy_read_rows (const char *path, KdfDType dtype, const int32_t *rows,
                                      int64_t n_rows, GError **error);

/* Writes T (any strides) as a version 1.0 little-endian C-order .npy: f32 → <f4,
 * i32 → <i4, u8 → |u1. The file is replaced atomically. */
KDF_API gboolean kdf_npy_write (const char *path, const KdfTensor *t, GError **error);

/* Writes native-order, row-major DATA of any dtype kdf_npy_read accepts (DESCR such as
 * "<f8" or "<i8"; data is converted to the byte order DESCR names) — for interop with
 * tools that want float64 or int64. */
KDF_API gboolean kdf_npy_write_raw (const char *path, const char *descr, int rank,
                                    const int64_t *shape, const void *data, GError **error);

/* ---- CSV ---------------------------------------------------------------------- */

typedef enum {
  KDF_CSV_HEADER_AUTO = 0, /* a header if any cell of the first row is not a number */
  KDF_CSV_HEADER_YES = 1,
  KDF_CSV_HEADER_NO = 2,
} KdfCsvHeader;

typedef struct {
  KdfCsvHeader header;
  /* The label column: a header name, or a 0-based index ("-1" is the last column);
   * NULL for none (every column is a feature). */
  const char *label_column;
  char delimiter; /* 0 means ',' */
  gpointer reserved[4];
} KdfCsvOptions;

/* Reads a numeric CSV (double-quoted cells allowed, blank lines skipped). Every
 * column except the label column becomes a feature: *X is N×D f32, *LABELS (if a label
 * column is given) N i32 and must hold integers ≥ 0. *FEATURE_NAMES (may be NULL) gets
 * the D header names, or "c0", "c1", ... without a header (transfer full). A ragged
 * row or a non-numeric or non-finite cell is a KDF_ERROR_IO error naming the file, the
 * line and the column. */
KDF_API gboolean kdf_csv_read (const char *path, const KdfCsvOptions *opts, KdfTensor **x,
                               KdfTensor **labels, char ***feature_names, GError **error);

/* ---- datasets ------------------------------------------------------------------ */

/* A labelled dataset: a training split (which noise, validation split and subsets
 * act on), an optional validation split and an optional clean test split. The fields
 * are public for reading; change them through the functions below. All tensors are
 * contiguous; x tensors are N×D f32 (images flattened, C×H×W in image_shape). */
typedef struct _KdfDataset KdfDataset;
struct _KdfDataset {
  gint ref_count;
  char *name;
  int n_classes;
  char **class_names;       /* n_classes names, NULL-terminated; or NULL */
  int64_t image_shape[3];   /* C, H, W of one input, or all 0 */
  double input_range[2];    /* known raw input range (0, 255 for u8 pixels), or 0, 0 */

  /* training split: the rows a method trains on */
  KdfTensor *x;             /* N×D f32 */
  KdfTensor *labels;        /* N i32: the labels a method sees (noisy after add_noise) */
  KdfTensor *clean_labels;  /* N i32, oracle */
  KdfTensor *noisy_mask;    /* N u8, oracle: 1 = label differs from clean, or input
                             * replaced (open-set) */
  KdfTensor *index;         /* N i32: each row's row in the file it came from */

  /* validation split (NULL until kdf_dataset_split_validation): noisy like training */
  KdfTensor *x_val, *labels_val, *clean_labels_val, *noisy_mask_val, *index_val;

  /* test split, clean (NULL if the source has none) */
  KdfTensor *x_test;        /* M×D f32 */
  KdfTensor *y_test;        /* M i32 */

  /* open-set noise's rows (N u8 / V u8, oracle): 1 = the input belongs to no class of
   * the label space (a subset of noisy_mask); all 0 without open-set noise */
  KdfTensor *open_mask;
  KdfTensor *open_mask_val; /* NULL until kdf_dataset_split_validation */
  gpointer reserved[2];
};

/* A dataset from tensors. X is N×… (f32, i32 or u8; rank 2 kept, rank 3 N×H×W and rank
 * 4 N×C×H×W flattened with image_shape set), LABELS N (i32, u8). X_TEST/Y_TEST may be
 * NULL (both or neither). N_CLASSES ≤ 0 means 1 + the largest label of training and
 * test. Labels start clean (clean_labels = labels, noisy_mask = 0). References are
 * taken or copies made; the caller keeps its own. transfer full. */
KDF_API KdfDataset *kdf_dataset_new (const char *name, KdfTensor *x, KdfTensor *labels,
                                     KdfTensor *x_test, KdfTensor *y_test, int n_classes,
                                     GError **error);
KDF_API KdfDataset *kdf_dataset_ref (KdfDataset *ds);
KDF_API void kdf_dataset_unref (KdfDataset *ds);
/* Copies NAMES (N_CLASSES strings) as the class names. */
KDF_API void kdf_dataset_set_class_names (KdfDataset *ds, const char *const *names);

/* Index of a class by name (case-insensitive) or decimal number, or -1. */
KDF_API int kdf_dataset_class_from_string (const KdfDataset *ds, const char *s);

/* The standard four IDX files of DIR ({train,t10k}-{images-idx3,labels-idx1}-ubyte,
 * each with or without .gz). x is f32 holding the raw pixel values 0..255. */
KDF_API KdfDataset *kdf_dataset_load_idx_dir (const char *name, const char *dir, GError **error);

#define KDF_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/* Fashion-MNIST from DIR (NULL: KDF_FASHION_MNIST_DIR, provided by Debian's
 * dataset-fashion-mnist package): 60 000 + 10 000 images 1×28×28, 10 named classes. */
KDF_API KdfDataset *kdf_dataset_load_fashion_mnist (const char *dir, GError **error);

/* DIR/x.npy (N×…, any dtype, as kdf_dataset_new takes it) and DIR/labels.npy (N
 * integers), and optionally the test split DIR/x_test.npy and DIR/y_test.npy (both or
 * neither). N_CLASSES as for kdf_dataset_new (≤ 0: inferred). Every error starts with
 * the path of the file it is about: a missing file, a reader's complaint, labels that
 * are not one-dimensional or lie outside [0, N_CLASSES), splits that disagree. */
KDF_API KdfDataset *kdf_dataset_load_npy_dir (const char *dir, int n_classes, GError **error);

/* Stratified subsets taken while a data set is loaded, before its inputs become f32 (u8
 * pixels stay u8 until the rows are chosen): a 1 000-row subset of Fashion-MNIST never
 * holds the 60 000 rows as f32. The same rows as kdf_dataset_subset with the same seeds
 * on the whole set (the class count is the whole set's); `index` names each row's row in
 * the source. 0 = no subset of that split. A subset larger than its split is
 * KDF_ERROR_PARAM. */
typedef struct {
  int64_t train;
  guint64 train_seed;
  int64_t test;
  guint64 test_seed;
  gpointer reserved[2];
} KdfSubsetSpec;

KDF_API KdfDataset *kdf_dataset_load_idx_dir_subset (const char *name, const char *dir,
                                                     const KdfSubsetSpec *sub, GError **error);
KDF_API KdfDataset *kdf_dataset_load_fashion_mnist_subset (const char *dir,
                                                           const KdfSubsetSpec *sub,
                                                           GError **error);
KDF_API KdfDataset *kdf_dataset_load_npy_dir_subset (const char *dir, int n_classes,
                                                     const KdfSubsetSpec *sub, GError **error);

/* The npy layout of kdf_dataset_load_npy_dir_subset with a u8 x.npy (and x_test.npy)
 * kept on disk (tensor.h, "tensors kept on disk"): ds->x and ds->x_test are on-disk
 * tensors — the file rows the subset keeps, each byte read as (float) v until
 * kdf_dataset_normalize changes the tables — and only the labels are read. The rows,
 * labels, subsets, checks and errors are those of the dense loader; the functions
 * below take on-disk inputs too (a validation split or a subset is an index into the
 * same rows), except the noise models that read the inputs (instance, openset, cc
 * without given clusters), which fail naming HINT (nullable). */
KDF_API KdfDataset *kdf_dataset_load_npy_dir_on_disk (const char *dir, int n_classes,
                                                      const KdfSubsetSpec *sub, const char *hint,
                                                      GError **error);

/* By name: "fashion-mnist" (PATH = directory or NULL), "idx" (PATH = directory),
 * "npy" (PATH = directory, read by kdf_dataset_load_npy_dir with C inferred), "csv"
 * (PATH = file, header auto-detected, last column the label, no test split). */
KDF_API KdfDataset *kdf_dataset_load (const char *name, const char *path, GError **error);

/* ---- preprocessing -------------------------------------------------------------- */

typedef enum {
  KDF_NORMALIZE_NONE = 0,
  /* x ← (x − lo)/(hi − lo), lo/hi = input_range if known, else the training split's
   * min and max; the same map is applied to validation and test. */
  KDF_NORMALIZE_UNIT = 1,
  /* UNIT, then per feature (x − mean)/std with the training split's statistics
   * (a feature with std < 1e-8 is only centred). */
  KDF_NORMALIZE_STANDARDIZE = 2,
  /* UNIT, then one mean and std over all training inputs (the usual image form). */
  KDF_NORMALIZE_STANDARDIZE_GLOBAL = 3,
} KdfNormalize;

KDF_API gboolean kdf_dataset_normalize (KdfDataset *ds, KdfNormalize mode, GError **error);

/* ---- label noise ------------------------------------------------------------------ */

typedef enum {
  KDF_NOISE_NONE = 0,
  KDF_NOISE_SYMMETRIC,           /* ⌊rN⌋ picks, each to a different class, uniform */
  KDF_NOISE_SYMMETRIC_INCLUSIVE, /* ⌊rN⌋ picks, each to a class uniform over all C */
  KDF_NOISE_PAIRFLIP,            /* ⌊rN⌋ picks, y → (y+1) mod C */
  KDF_NOISE_ASYMMETRIC,          /* class map; ⌊r·N_c⌋ picks in each mapped class c */
  KDF_NOISE_TRANSITION,          /* ỹ ~ Categorical(T[y,:]) for every sample */
  KDF_NOISE_INSTANCE,            /* Xia et al. 2020 instance-dependent */
  KDF_NOISE_OPENSET,             /* inputs replaced by held-out-class inputs */
  KDF_NOISE_FILE,                /* labels from a .npy */
  KDF_NOISE_CC,                  /* confusable clusters: ⌊r·N_c⌋ picks per class, each to
                                  * another class of its cluster, targets balanced */
} KdfNoiseKind;

/* Where open-set noise takes the inputs it puts in: */
typedef enum {
  KDF_OPEN_HELDOUT = 0, /* samples of the held-out classes (which leave the label space) */
  KDF_OPEN_PERMUTED,    /* in-set samples with their features shuffled by one fixed
                         * random permutation: same values, no class structure left */
} KdfOpenInput;

/* "symmetric", "symmetric_inclusive", "pairflip", "asymmetric", "transition",
 * "instance", "openset", "file", "cc", "none". */
KDF_API const char *kdf_noise_kind_name (KdfNoiseKind kind);
KDF_API gboolean kdf_noise_kind_from_name (const char *name, KdfNoiseKind *out);

/* What noise to inject. Start from KDF_NOISE_SPEC_INIT and set what the kind needs.
 *
 * Draw order (one GRand from SEED, see the top of this file):
 *  symmetric, symmetric_inclusive: choose ⌊rN⌋ of the eligible samples; then per pick
 *    one g_rand_int_range (0, C−1) (a class ≠ y: values ≥ y shift up by one) or
 *    g_rand_int_range (0, C).
 *  pairflip: choose ⌊rN⌋ of the eligible samples.
 *  asymmetric: for each mapped class c in ascending order, choose ⌊r·N_c⌋ of its
 *    eligible samples (N_c = all samples of class c). Classes the map leaves alone keep
 *    their labels, so the overall rate is r × the share of mapped samples.
 *  transition: per eligible sample in order, one g_rand_double u; ỹ = the first k with
 *    u < T[y,0] + … + T[y,k] (the last class with T[y,k] > 0 if rounding leaves u
 *    above the sum). RATE is ignored.
 *  instance: W (D×C, row-major) from D·C normals; then per eligible sample in order:
 *    q ~ N(r, instance_std²) redrawn until 0 < q < 1, then one g_rand_double u to
 *    sample from p = q·softmax(xᵀW) over the classes ≠ y, p_y = 1 − q. Only METHODS'
 *    single W (the original code draws one W per class). x is used as given.
 *  openset: samples of the held-out classes leave the training split; their classes
 *    leave the label space (remaining classes renumbered in order). Choose
 *    ⌊r·N_in⌋ of the N_in in-set samples, then choose as many of the held-out samples
 *    (without replacement: an error if too few); pick i gets the input of held-out
 *    pick i and keeps its label. The test split drops the held-out classes too.
 *    With open_input = KDF_OPEN_PERMUTED the held-out classes are optional: after the
 *    picks, one permutation π of the D features (Fisher–Yates), then as many source
 *    rows chosen from all N_in in-set samples; pick i gets source i's input with its
 *    features permuted by π (x'_j = x_π(j)) and keeps its label.
 *  file: no draws.
 *  cc (confusable clusters, Jeong & Chung 2024; METHODS §2 sd_pll): the clusters are
 *    CLUSTERS, or kdf_noise_confusable_clusters (x, labels, cluster_cut) (no draws).
 *    For each class c in ascending order whose cluster has m + 1 ≥ 2 classes: choose
 *    ⌊r·N_c⌋ of its eligible samples (N_c = all samples of class c), then one
 *    g_rand_int_range (0, m) = o; pick p (in the order chosen) gets the ((o + p) mod m)-th
 *    other class of the cluster (ascending). So T[c,c] = 1 − r and each other class of
 *    the cluster gets r/m of class c (⌊k/m⌋ or ⌈k/m⌉ samples of the k picks): the exact
 *    form of the paper's T_cc = 1 − η, T_cc' = η/(|cluster| − 1), 0 elsewhere. Classes
 *    alone in their cluster keep their labels (the overall rate is r × the share of
 *    samples in clusters of ≥ 2 classes).
 *
 * "Eligible": samples not already noisy, so a second call (open-set, then symmetric)
 * adds disjoint noise; counts are still ⌊r·N⌋ of all N samples. */
typedef struct {
  KdfNoiseKind kind;
  double rate;              /* r in [0, 1) */
  guint64 seed;
  /* asymmetric: C entries, map[c] = target class or −1 (not flipped); NULL = the
   * Fashion-MNIST default (T-shirt→Shirt, Pullover→Coat, Sandal→Sneaker,
   * Shirt→T-shirt, Coat→Pullover), only valid for 10 classes */
  const int32_t *class_map;
  const KdfTensor *transition; /* transition: C×C f32, rows summing to 1 */
  double instance_std;         /* instance: std of q (0 means 0.1) */
  const int32_t *heldout;      /* openset: held-out class ids */
  int n_heldout;
  const char *file;            /* file: a .npy of N integer labels */
  /* cc: C entries, the cluster id of each class (classes with the same id form a
   * cluster); NULL = kdf_noise_confusable_clusters of x and the labels */
  const int32_t *clusters;
  double cluster_cut;          /* cc: the cut as a fraction of the largest merge (0 = 0.8) */
  KdfOpenInput open_input;     /* openset: where the replacement inputs come from */
  gpointer reserved[1];
} KdfNoiseSpec;

#define KDF_NOISE_SPEC_INIT { .kind = KDF_NOISE_NONE, .rate = 0.0, .seed = 0 }

/* The outcome of kdf_noise_apply. */
typedef struct {
  KdfTensor *labels;       /* N' i32 noisy labels */
  KdfTensor *noisy_mask;   /* N' u8 */
  int64_t n_noisy;         /* number of ones in noisy_mask */
  /* openset only (else NULL / the input's C): */
  KdfTensor *x;            /* N'×D inputs, replaced rows included */
  KdfTensor *clean_labels; /* N' i32, renumbered */
  KdfTensor *kept_index;   /* N' i32: row of the input dataset each row's label is from */
  KdfTensor *input_index;  /* N' i32: row of the input dataset each row's input is from */
  int32_t *class_remap;    /* C entries: old class → new, −1 if held out (g_free) */
  int n_classes;           /* C' */
} KdfNoiseResult;

KDF_API void kdf_noise_result_clear (KdfNoiseResult *res);

/* Parses a class map "src:dst,src:dst" (also "src->dst"; classes by index or by a
 * name in NAMES, case-insensitive) into MAP_OUT (N_CLASSES entries, −1 = unmapped). */
KDF_API gboolean kdf_noise_parse_class_map (const char *spec, int n_classes,
                                            const char *const *names, int32_t *map_out,
                                            GError **error);
/* Parses a class list "8,9" or "Bag,Ankle boot" into a new array (g_free). */
KDF_API int32_t *kdf_noise_parse_class_list (const char *spec, int n_classes,
                                             const char *const *names, int *n_out,
                                             GError **error);
/* Parses a partition into clusters, "0,2,4,6; Sandal,Sneaker,Ankle boot" (';' between
 * clusters, classes by index or name), into CLUSTERS_OUT (N_CLASSES entries: the
 * cluster id of each class, ids in the order of each cluster's lowest class; a class
 * not named is a cluster of its own). A class named twice is an error. */
KDF_API gboolean kdf_noise_parse_clusters (const char *spec, int n_classes,
                                           const char *const *names, int32_t *clusters_out,
                                           GError **error);
/* The confusable clusters of Jeong & Chung (2024): M_ab = the mean cosine similarity
 * between the mean-centred rows of X (N×D f32; centred by the mean of all rows) of
 * class a and those of class b (LABELS, N i32 in [0, N_CLASSES)) = ū_a · ū_b with ū_c
 * the mean of class c's unit-length centred rows (a zero row counts as zero);
 * complete-linkage clustering of the distances 1 − M_ab (a ≠ b), merging the closest
 * pair first (ties: the pair with the lowest class indices), cut at CUT × the largest
 * merge height (flat clusters whose complete-linkage distance ≤ that height). Writes
 * the cluster id of each class to CLUSTERS_OUT (N_CLASSES entries, ids in the order of
 * each cluster's lowest class) and, if HEIGHTS_OUT is not NULL, the N_CLASSES − 1
 * merge heights in merge order. No random draws. */
KDF_API gboolean kdf_noise_confusable_clusters (const KdfTensor *x, const KdfTensor *labels,
                                                int n_classes, double cut,
                                                int32_t *clusters_out, double *heights_out,
                                                GError **error);
/* The Fashion-MNIST default asymmetric map (10 entries, transfer none). */
KDF_API const int32_t *kdf_noise_fashion_mnist_map (void);

/* Applies SPEC to CLEAN (N i32, values in [0, N_CLASSES)). X (N×D f32) is needed by
 * instance, openset and cc without clusters. EXCLUDE (N u8, may be NULL) marks samples
 * not to touch. Fills OUT (zero it first); on error OUT is left empty. */
KDF_API gboolean kdf_noise_apply (const KdfNoiseSpec *spec, const KdfTensor *clean,
                                  int n_classes, const KdfTensor *x, const KdfTensor *exclude,
                                  KdfNoiseResult *out, GError **error);

/* Applies SPEC to DS's training split (before kdf_dataset_split_validation: an error
 * after). labels become noisy, noisy_mask ORs in the new noise, clean_labels stay;
 * open-set also replaces x, index, n_classes, class_names and filters the test split. */
KDF_API gboolean kdf_dataset_add_noise (KdfDataset *ds, const KdfNoiseSpec *spec, GError **error);

/* ---- splits and subsets ------------------------------------------------------------ */

/* Rows of T (rank ≥ 1, any dtype) at INDEX[0..N−1], as a new contiguous tensor
 * (flags kept). Indices are trusted (API misuse if out of range). transfer full. */
KDF_API KdfTensor *kdf_data_take_rows (const KdfTensor *t, const int32_t *index, int64_t n);

/* ⌊fraction·N⌋ training rows, chosen uniformly (one choose-k), move to the validation
 * split with their noisy labels, clean labels and mask; both splits keep their rows in
 * ascending original order. FRACTION in (0, 1). */
KDF_API gboolean kdf_dataset_split_validation (KdfDataset *ds, double fraction, guint64 seed,
                                               GError **error);

/* Picks N_PICK of the N samples stratified by LABELS (N i32 in [0, N_CLASSES)): class c
 * gets ⌊n_pick·N_c/N⌋, the remaining picks go one each to the classes with the largest
 * remainders (ties: lower class first); within a class, one choose-k per class in
 * ascending class order. Returns the picked indices ascending (N_PICK i32). */
KDF_API KdfTensor *kdf_data_stratified_indices (const KdfTensor *labels, int n_classes,
                                                int64_t n_pick, guint64 seed, GError **error);

typedef enum {
  KDF_SPLIT_TRAIN = 0,
  KDF_SPLIT_TEST = 1,
} KdfSplit;

/* Keeps a stratified subset of N rows of a split (training: by clean class; rows keep
 * their noisy labels, masks and indices). For a fraction f of N rows pass ⌊f·N⌋. */
KDF_API gboolean kdf_dataset_subset (KdfDataset *ds, KdfSplit split, int64_t n, guint64 seed,
                                     GError **error);

/* ---- probability checks -------------------------------------------------------------- */

/* Checks an N×C f32 matrix of probabilities (for detection nodes). Any NaN, Inf or
 * negative entry is a KDF_ERROR_VALUE error naming the first bad row and column (as
 * is a row summing to 0); anything but f32[N,C] is a KDF_ERROR_SHAPE error. Rows whose sum differs from 1 by more than TOL (≤ 0 means
 * 1e-4) are divided by their sum; *N_RENORMALIZED (may be NULL) gets their count so
 * the node can warn. Returns PROBS itself (a new reference) if nothing changed, else a
 * normalised copy. transfer full. */
KDF_API KdfTensor *kdf_probs_check (KdfTensor *probs, double tol, int64_t *n_renormalized,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfDataset, kdf_dataset_unref)

G_END_DECLS
