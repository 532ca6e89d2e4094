/* label_propagation: refines labels over a k-NN graph of features (AML-KD, Jiang et al.,
 * TNNLS 2023, after Iscen et al., CVPR 2019; METHODS §1 label_propagation). Kernel in
 * engine/detect/lp.c (kdf_label_propagation):
 *   exact k-NN by inner product, self excluded, through tiled BLIS GEMM and per-row
 *   top-k heaps (never N×N); A_ij = max(s_ij, 0)^γ; W = A + Aᵀ; Wn = D^-½ W D^-½ (CSR);
 *   Y_i = w_i·onehot(seed_i) on the seed rows, columns summing to 1; (I − αWn) Z = Y by
 *   conjugate gradient per class; Z ← max(Z, 0); rows below the p-th percentile of
 *   confidence (max softmax Z_i), rows in keep_mask and rows with Z_i = 0 keep their
 *   seed, the others take argmax Z_i.
 * The k-NN uses the run's thread budget (GEMM and heap scans), the solve spreads the
 * classes over it; the result does not depend on it. Cancellation is checked between
 * tiles, progress reported per tile. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>
#include <string.h>

typedef struct {
  int k;
  double gamma;
  double alpha;
  gboolean normalize;
  KdfLpSolver solver;
  int iters;
  double tol;
  double percentile;
  int n_classes;
  int tile;
  gboolean cache;
} Params;

/* The k-NN lists of the last two feature tensors seen (AML-KD's stage 2 alternates
 * between two graphs; the frozen teacher's features repeat every tick): keyed by the
 * SHA-256 of the features' bytes with N, D, k and the normalisation. */
#define CACHE_SLOTS 2
typedef struct {
  char *digest;
  int64_t n, d;
  int k;
  gboolean normalize;
  KdfTensor *knn;
  guint64 used;
} Slot;

typedef struct {
  Slot slot[CACHE_SLOTS];
  guint64 clock;
} State;

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  *state = g_new0 (State, 1);
  return TRUE;
}

static void
finalize (gpointer state)
{
  State *st = state;
  for (int i = 0; i < CACHE_SLOTS; i++) {
    g_free (st->slot[i].digest);
    g_clear_pointer (&st->slot[i].knn, kdf_tensor_unref);
  }
  g_free (st);
}

static const KdfChoice solvers[] = {
  { "cg", KDF_LP_SOLVER_CG }, { "iterate", KDF_LP_SOLVER_ITERATE }, { 0 } };

static const KdfPortSpec inputs[] = {
  KDF_PORT ("features", "f32[N,D]", 0, "one row of features per sample (e.g. a feature tap)"),
  KDF_PORT ("seeds", "i32[N] < C", 0, "each sample's seed label (the given or current label)"),
  KDF_PORT ("seed_probs", "f32[N,C]", KDF_PORT_OPTIONAL,
            "soft seeds: Y_i = w_i·seed_probs_i instead of w_i·onehot(seed_i)"),
  KDF_PORT ("weights", "f32[N]", KDF_PORT_OPTIONAL, "w_i ≥ 0 per seed row (e.g. from awe)"),
  KDF_PORT ("seed_mask", "u8[N]", KDF_PORT_OPTIONAL,
            "rows that seed the propagation (default all; e.g. a clean_mask)"),
  KDF_PORT ("keep_mask", "u8[N]", KDF_PORT_OPTIONAL, "rows that keep their seed"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("labels", "i32[N]", 0, "refined labels"),
  KDF_PORT ("soft", "f32[N,C]", 0, "Z rows normalised to sum 1 (uniform for a zero row)"),
  KDF_PORT ("confidence", "f32[N]", 0, "max_c softmax(Z_i)"),
  KDF_PORT ("changed", "u8[N]", 0, "1 where the label differs from the seed"),
  KDF_PORT ("neighbors", "i32[N,*]", 0, "the k nearest other rows of each row, best first"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, k, 20, 1, 1 << 20, "neighbours per row (self excluded)"),
  KDF_PARAM_DOUBLE (Params, gamma, 3.0, 1e-6, 1e3, "A_ij = max(s_ij, 0)^γ"),
  KDF_PARAM_DOUBLE (Params, alpha, 0.99, 0.0, 0.999999, "propagation weight α in [0, 1)"),
  KDF_PARAM_BOOL (Params, normalize, TRUE, "L2-normalise the features first"),
  KDF_PARAM_ENUM (Params, solver, "cg", solvers,
                  "cg (conjugate gradient) or iterate (Z ← αWnZ + Y from 0)"),
  KDF_PARAM_INT (Params, iters, 20, 0, 1 << 20, "iterations (cg: at most)"),
  KDF_PARAM_DOUBLE (Params, tol, 1e-6, 0.0, 1.0, "cg: stop at ‖r‖ ≤ tol·‖y‖"),
  KDF_PARAM_DOUBLE (Params, percentile, 0.0, 0.0, 100.0,
                    "rows below this percentile of confidence keep their seed"),
  KDF_PARAM_INT (Params, n_classes, 0, 0, 65536,
                 "C (0 = from seed_probs, else 1 + the largest seed)"),
  KDF_PARAM_INT (Params, tile, 1024, 1, 1 << 16, "rows and columns per GEMM tile (memory T²·4)"),
  KDF_PARAM_BOOL (Params, cache, TRUE,
                  "reuse the k-NN lists when the features are bit-identical to one of the "
                  "last two calls' (SHA-256 of the bytes; memory 2·N·k·4)"),
  { 0 },
};

static void
progress (double fraction, gpointer data)
{
  /* the k-NN is most of the work */
  kdf_ctx_progress (data, 0.9 * fraction);
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  g_autoptr (KdfTensor) x = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "features"));
  g_autoptr (KdfTensor) seeds = kdf_tensor_contiguous (kdf_ctx_input_tensor (ctx, "seeds"));
  KdfTensor *sp_in = kdf_ctx_input_tensor (ctx, "seed_probs");
  KdfTensor *w_in = kdf_ctx_input_tensor (ctx, "weights");
  KdfTensor *sm_in = kdf_ctx_input_tensor (ctx, "seed_mask");
  KdfTensor *km_in = kdf_ctx_input_tensor (ctx, "keep_mask");
  g_autoptr (KdfTensor) sp = sp_in ? kdf_tensor_contiguous (sp_in) : NULL;
  g_autoptr (KdfTensor) w = w_in ? kdf_tensor_contiguous (w_in) : NULL;
  g_autoptr (KdfTensor) sm = sm_in ? kdf_tensor_contiguous (sm_in) : NULL;
  g_autoptr (KdfTensor) km = km_in ? kdf_tensor_contiguous (km_in) : NULL;
  const int64_t n = x->shape[0], d = x->shape[1];
  const int32_t *ps = kdf_tensor_i32 (seeds);

  int c = p->n_classes;
  if (sp) {
    if (c > 0 && sp->shape[1] != c) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "input 'seed_probs' has %" G_GINT64_FORMAT " columns, param 'n_classes' is %d",
                   (gint64) sp->shape[1], c);
      return FALSE;
    }
    c = (int) sp->shape[1];
  }
  if (c == 0) {
    int32_t mx = 0;
    for (int64_t i = 0; i < n; i++)
      mx = MAX (mx, ps[i]);
    c = mx + 1;
  }
  if (!kdf_ctx_check_labels (ctx, "seeds", c, error))
    return FALSE;
  if (p->k > n - 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "param 'k' is %d; with %" G_GINT64_FORMAT " rows (self excluded) it must be "
                 "at most %" G_GINT64_FORMAT, p->k, (gint64) n, (gint64) MAX (n - 1, 0));
    return FALSE;
  }

  KdfLpOptions opt;
  kdf_lp_options_init (&opt);
  opt.k = p->k;
  opt.gamma = p->gamma;
  opt.alpha = p->alpha;
  opt.normalize = p->normalize;
  opt.solver = p->solver;
  opt.iters = p->iters;
  opt.tol = p->tol;
  opt.percentile = p->percentile;
  opt.knn.tile = p->tile;
  opt.knn.threads = kdf_ctx_threads (ctx);
  opt.knn.cancellable = kdf_ctx_cancellable (ctx);
  opt.knn.shard = kdf_dist_active (); /* under mpirun: a share of the tiles per rank */
  opt.knn.progress = progress;
  opt.knn.progress_data = ctx;

  /* a cached graph for these exact features? */
  State *st = state;
  char *digest = NULL;
  Slot *hit = NULL;
  if (p->cache) {
    digest = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) kdf_tensor_f32 (x),
                                          (gsize) (n * d) * sizeof (float));
    for (int i = 0; i < CACHE_SLOTS; i++) {
      Slot *sl = &st->slot[i];
      if (sl->digest && strcmp (sl->digest, digest) == 0 && sl->n == n && sl->d == d &&
          sl->k == p->k && sl->normalize == p->normalize)
        hit = sl;
    }
  }

  KdfLpInput in = {
    .x = kdf_tensor_f32 (x), .n = n, .d = d, .c = c, .seeds = ps,
    .seed_probs = sp ? kdf_tensor_f32 (sp) : NULL,
    .weights = w ? kdf_tensor_f32 (w) : NULL,
    .seed_mask = sm ? kdf_tensor_u8 (sm) : NULL,
    .keep_mask = km ? kdf_tensor_u8 (km) : NULL,
    .knn = hit ? kdf_tensor_i32 (hit->knn) : NULL,
  };
  g_autoptr (KdfTensor) labels = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  g_autoptr (KdfTensor) soft = kdf_tensor_new_2d (KDF_DTYPE_F32, n, c);
  g_autoptr (KdfTensor) conf = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  g_autoptr (KdfTensor) nb = kdf_tensor_new_2d (KDF_DTYPE_I32, n, p->k);
  KdfLpResult res;
  if (!kdf_label_propagation (kdf_tensor_i32 (labels), kdf_tensor_f32 (soft),
                              kdf_tensor_f32 (conf), kdf_tensor_i32 (nb), &in, &opt, &res,
                              error)) {
    if (!g_error_matches (*error, KDF_ERROR, KDF_ERROR_CANCELLED))
      g_prefix_error (error, "inputs 'features', 'seeds': ");
    g_free (digest);
    return FALSE;
  }
  if (hit)
    hit->used = ++st->clock;
  else if (digest) {
    /* remember this graph in the least recently used slot */
    Slot *sl = &st->slot[0];
    for (int i = 1; i < CACHE_SLOTS; i++)
      if (st->slot[i].used < sl->used)
        sl = &st->slot[i];
    g_free (sl->digest);
    g_clear_pointer (&sl->knn, kdf_tensor_unref);
    sl->digest = g_steal_pointer (&digest);
    sl->n = n;
    sl->d = d;
    sl->k = p->k;
    sl->normalize = p->normalize;
    sl->knn = kdf_tensor_ref (nb); /* outputs are read-only: shared, not copied */
    sl->used = ++st->clock;
  }
  g_free (digest);
  kdf_ctx_metric (ctx, "knn_cached", hit ? 1.0 : 0.0);
  KdfTensor *changed = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
  const int32_t *pl = kdf_tensor_i32 (labels);
  for (int64_t i = 0; i < n; i++)
    kdf_tensor_u8 (changed)[i] = pl[i] != ps[i];
  if (res.empty_classes > 0)
    kdf_ctx_warning (ctx, "%d of %d classes have no seed: no sample can be labelled with them",
                     res.empty_classes, c);
  kdf_ctx_metric (ctx, "changed", (double) res.n_changed);
  kdf_ctx_metric (ctx, "kept", (double) res.n_kept);
  kdf_ctx_metric (ctx, "cg_iterations", (double) res.solve.iterations);
  kdf_ctx_metric (ctx, "residual", res.solve.residual);
  kdf_ctx_metric (ctx, "edges", (double) res.nnz);
  kdf_ctx_metric (ctx, "peak_mb", (double) res.peak_bytes / 1e6);
  kdf_ctx_metric (ctx, "seconds_knn", res.seconds_knn);
  kdf_ctx_metric (ctx, "seconds_solve", res.seconds_solve);
  kdf_ctx_progress (ctx, 1.0);

  kdf_ctx_set_output_tensor (ctx, "labels", g_steal_pointer (&labels));
  kdf_ctx_set_output_tensor (ctx, "soft", g_steal_pointer (&soft));
  kdf_ctx_set_output_tensor (ctx, "confidence", g_steal_pointer (&conf));
  kdf_ctx_set_output_tensor (ctx, "changed", changed);
  kdf_ctx_set_output_tensor (ctx, "neighbors", g_steal_pointer (&nb));
  return TRUE;
}

static const KdfNodeClass label_propagation_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "label_propagation",
  .summary = "refine labels by propagation over an exact k-NN graph of features (AML-KD)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = finalize,
};

KDF_PLUGIN (label_propagation, &label_propagation_class)
