/* kdflow — detection and evaluation kernels.
 *
 * Plain C kernels behind the nodes otsu_threshold, loss_ranking, confident_learning,
 * evaluate, agreement, tipping_point and topk_refine. Each kernel takes raw row-major
 * pointers and sizes (output argument first where there is one main output), checks
 * its inputs and returns FALSE with a KDF_ERROR error on bad input: KDF_ERROR_VALUE
 * for bad values (NaN, a label out of range, scores outside [0,1]), KDF_ERROR_SHAPE
 * for a size that does not fit, KDF_ERROR_PARAM for bad options. Nothing here allocates a tensor unless its
 * name ends in _tensor; nothing prints, aborts or reads the environment. All results
 * are deterministic: ties are broken by index, never by a sort's whim.
 *
 * The formulas are those of design/METHODS.md; each function says where its formula
 * comes from. Shapes: N samples, C classes.
 */
#pragma once

#include <gio/gio.h>
#include <kdflow/tensor.h>

G_BEGIN_DECLS

/* ==== otsu_threshold ====================================================== */

typedef enum {
  KDF_OTSU_CRITERION_OTSU = 0,  /* classic between-class variance (Otsu 1979) */
  KDF_OTSU_CRITERION_BLIND = 1, /* Blind KD's variant (Kaiser et al., arXiv 2211.11355) */
} KdfOtsuCriterion;

typedef struct {
  int bins;                   /* histogram bins, ≥ 8 (1000) */
  KdfOtsuCriterion criterion; /* (KDF_OTSU_CRITERION_OTSU) */
  gboolean normalize;         /* min-max normalise the scores first (FALSE: they must lie in [0,1]) */
  /* FALSE (default): evaluate q(s) exactly as the reference code does — float64 sums
   * in numpy's pairwise order, first maximum wins. This is what reproduces the
   * METHODS test vector bit for bit (see otsu.c for why that matters).
   * TRUE: evaluate q(s) from exact integer moments in O(bins) and, when several
   * splits tie (a run of empty bins), take the middle of the tied run. */
  gboolean exact;
  gpointer reserved[4];
} KdfOtsuOptions;

/* Fills OPT with the defaults above. */
KDF_API void kdf_otsu_options_init (KdfOtsuOptions *opt);

typedef struct {
  int split;              /* s*: side 1 is bins [0, s*), side 2 is bins [s*, bins) */
  double threshold;       /* θ = split / bins, on the (normalised) score scale */
  double threshold_raw;   /* θ mapped back to the input scale (= θ without normalize) */
  double mean_lo;         /* μ_lo: mean histogram position b/bins of side 1 */
  double mean_hi;         /* μ_hi: mean histogram position b/bins of side 2 */
  double q;               /* the criterion at s* */
  double score_min, score_max; /* the normalisation used (0 and 1 without normalize) */
  int64_t group_count[4]; /* sizes of G1..G4 */
  gpointer reserved[4];
} KdfOtsuResult;

/* Otsu / Blind-KD threshold of N scores (METHODS §1 otsu_threshold).
 * Histogram: b = min(⌊bins·a⌋, bins−1), position b/bins, a the (normalised) score.
 * MASK (u8 N, nullable): 1 where a ≥ θ (evaluated as b ≥ s*, so it agrees with the
 * histogram split exactly). GROUPS (i32 N, nullable): 1 a ≥ μ_hi; 2 θ ≤ a < μ_hi;
 * 3 μ_lo ≤ a < θ; 4 a < μ_lo. Fails on NaN/inf, on scores outside [0,1] without
 * normalize, and when every split leaves a side empty (all scores in one bin). */
KDF_API gboolean kdf_otsu_threshold (const float *scores, int64_t n, const KdfOtsuOptions *opt,
                                     KdfOtsuResult *result, uint8_t *mask, int32_t *groups,
                                     GError **error);

/* Tensor form: SCORES f32 rank 1 (any strides). MASK (u8 N) and GROUPS (i32 N) are
 * new tensors (transfer full) when the pointers are non-NULL. */
KDF_API gboolean kdf_otsu_threshold_tensor (KdfTensor *scores, const KdfOtsuOptions *opt,
                                            KdfOtsuResult *result, KdfTensor **mask,
                                            KdfTensor **groups, GError **error);

/* ==== loss_ranking ======================================================== */

typedef enum {
  KDF_RANK_SCOPE_GLOBAL = 0,    /* keep the fraction over all N */
  KDF_RANK_SCOPE_PER_CLASS = 1, /* keep the fraction inside each given class (ours) */
  KDF_RANK_SCOPE_BATCH = 2,     /* keep it inside consecutive blocks of B (AML-KD) */
} KdfRankScope;

typedef struct {
  double keep;            /* fraction kept as clean, in [0,1] (1.0) */
  KdfRankScope scope;     /* (GLOBAL) */
  const int32_t *labels;  /* PER_CLASS: the given labels (N), in [0, n_classes) */
  int n_classes;          /* PER_CLASS */
  int64_t batch;          /* BATCH: block size B ≥ 1 (128); the last block may be short */
  gpointer reserved[4];
} KdfRankOptions;

KDF_API void kdf_rank_options_init (KdfRankOptions *opt);

/* Small-loss selection (Co-teaching, Han et al. 2018; AML-KD per mini-batch).
 * In each group (all N, one class, or one block) of m samples the ⌊keep·m⌋ samples
 * with the smallest loss are clean (the 1e-9 guard keeps 0.29·100 at 29). RANK (i32 N,
 * nullable) is the 0-based position of the sample in its group by ascending loss;
 * ties go to the lower index. CLEAN (u8 N, nullable). Fails on NaN losses. */
KDF_API gboolean kdf_loss_rank (const float *loss, int64_t n, const KdfRankOptions *opt,
                                uint8_t *clean, int32_t *rank, int64_t *n_clean, GError **error);

/* Threshold form: clean ⇔ loss < THRESHOLD (so a threshold found on losses — the
 * noisy side is the upper side — drives the mask); RANK as above for OPT's scope
 * (OPT may be NULL: global). */
KDF_API gboolean kdf_loss_rank_threshold (const float *loss, int64_t n, double threshold,
                                          const KdfRankOptions *opt, uint8_t *clean, int32_t *rank,
                                          int64_t *n_clean, GError **error);

/* keep = "otsu": min-max normalise the losses, find the Otsu threshold (OTSU may be
 * NULL: defaults with normalize), clean ⇔ below it. RESULT (nullable) gets the Otsu
 * result, threshold_raw being in loss units. */
KDF_API gboolean kdf_loss_rank_otsu (const float *loss, int64_t n, const KdfOtsuOptions *otsu,
                                     const KdfRankOptions *opt, uint8_t *clean, int32_t *rank,
                                     int64_t *n_clean, KdfOtsuResult *result, GError **error);

/* Per-sample cross entropy from logits: LOSS[i] = logsumexp(z_i) − z_i[y_i]
 * (N×C logits with row stride LDZ ≥ C, labels in [0,C)). Computed in double. */
KDF_API gboolean kdf_sample_cross_entropy (float *loss, const float *logits, int64_t n, int c,
                                           int64_t ldz, const int32_t *labels, GError **error);

/* Co-teaching's schedule (Han et al. 2018): keep(t) = 1 − τ·min(t/T_k, 1).
 * T_K ≤ 0 means the full drop from the start. */
KDF_API double kdf_coteaching_keep (int64_t t, double tau, int64_t t_k);

/* Tensor forms. LOSS f32 rank 1; LOGITS f32 N×C, LABELS i32 N. Outputs are new
 * tensors (transfer full), CLEAN u8 N and RANK i32 N. */
KDF_API gboolean kdf_loss_rank_tensor (KdfTensor *loss, const KdfRankOptions *opt, KdfTensor **clean,
                                       KdfTensor **rank, GError **error);
KDF_API KdfTensor *kdf_sample_cross_entropy_tensor (KdfTensor *logits, KdfTensor *labels,
                                                    GError **error);

/* ==== confident_learning ================================================== */

typedef enum {
  KDF_CL_PRUNE_BY_NOISE_RATE = 0, /* cleanlab's default */
  KDF_CL_PRUNE_BY_CLASS = 1,
  KDF_CL_BOTH = 2,
  KDF_CL_CONFIDENT_LEARNING = 3,  /* the off-diagonals of the confident joint */
  KDF_CL_PREDICTED_NEQ_GIVEN = 4,
} KdfClFilter;

typedef enum {
  KDF_CL_RANK_SELF_CONFIDENCE = 0,   /* p[i, ỹ_i] */
  KDF_CL_RANK_NORMALIZED_MARGIN = 1, /* (p[i, ỹ_i] − max_{k≠ỹ_i} p[i,k] + 1) / 2 */
} KdfClRank;

typedef struct {
  KdfClFilter filter;               /* (PRUNE_BY_NOISE_RATE) */
  double frac_noise;                /* in (0,1] (1.0) */
  const int64_t *num_to_remove_per_class; /* C entries, or NULL (NULL) */
  int64_t min_examples_per_class;   /* (1) */
  /* FALSE (default, cleanlab): a sample above threshold in 2+ classes is counted in
   * the argmax over all C classes. TRUE: over the above-threshold classes only, as
   * Eq. 2 of Northcutt et al. (JAIR 2021) writes it. */
  gboolean argmax_above_threshold;
  /* Threads for the per-class pruning (≥ 1; 1). The flags do not depend on it:
   * each class writes only its own rows. */
  int threads;
  gpointer reserved[4];
} KdfClOptions;

KDF_API void kdf_cl_options_init (KdfClOptions *opt);

typedef struct {
  int c;
  double *thresholds;        /* C: mean self-confidence per given class, clipped ≥ 2e-6 (2 if absent) */
  int64_t *confident_joint;  /* C×C [given][true], diagonal clipped ≥ 1, before calibration */
  int64_t *calibrated_joint; /* C×C [given][true]: rows sum to the given-label counts */
  int64_t *prune_counts;     /* C×C [true][given]: how many to remove per off-diagonal cell */
  int64_t n_confident;       /* samples above threshold in ≥ 1 class */
  int64_t n_off_diagonal;    /* of those, counted off the diagonal */
  int64_t n_flagged;         /* rows flagged in the returned mask */
  gpointer reserved[4];
} KdfClResult;

/* Frees the arrays of RESULT and zeroes it (safe on a zeroed or cleared result). */
KDF_API void kdf_cl_result_clear (KdfClResult *result);

/* Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), following cleanlab 2.9's
 * filter.find_label_issues for single-label data step by step: per-class thresholds,
 * the confident joint, its calibration to the given-label counts, the prune counts,
 * the chosen filter, and finally no row whose given label is (within 1e-6) the
 * argmax. PROBS N×C row-major, LABELS in [0,C). ISSUES (u8 N): 1 = label issue.
 * RESULT (nullable) receives the matrices (clear it with kdf_cl_result_clear).
 * With f64 input the flagged rows are those cleanlab flags (see cl.c for the single
 * place the two can differ: exact ties in the margins). */
KDF_API gboolean kdf_confident_learning_f64 (uint8_t *issues, const double *probs,
                                             const int32_t *labels, int64_t n, int c,
                                             const KdfClOptions *opt, KdfClResult *result,
                                             GError **error);
KDF_API gboolean kdf_confident_learning_f32 (uint8_t *issues, const float *probs,
                                             const int32_t *labels, int64_t n, int c,
                                             const KdfClOptions *opt, KdfClResult *result,
                                             GError **error);

/* The flagged rows ordered by label quality, worst first (cleanlab's
 * order_label_issues; ties by index). ORDER must hold n_flagged entries; returns the
 * count written in *N_ORDER. */
KDF_API gboolean kdf_cl_order_issues_f64 (int64_t *order, int64_t *n_order, const uint8_t *issues,
                                          const double *probs, const int32_t *labels, int64_t n,
                                          int c, KdfClRank rank_by, GError **error);
KDF_API gboolean kdf_cl_order_issues_f32 (int64_t *order, int64_t *n_order, const uint8_t *issues,
                                          const float *probs, const int32_t *labels, int64_t n,
                                          int c, KdfClRank rank_by, GError **error);

/* Tensor form: PROBS f32 N×C, LABELS i32 N; ISSUES becomes a new u8 N tensor. */
KDF_API gboolean kdf_confident_learning_tensor (KdfTensor *probs, KdfTensor *labels,
                                                const KdfClOptions *opt, KdfTensor **issues,
                                                KdfClResult *result, GError **error);

/* ==== evaluate ============================================================ */

/* CONFUSION (C×C, [true][predicted], nullable), PER_CLASS (C, accuracy on the samples
 * of each true class, NaN for an absent class; nullable), *ACCURACY (nullable). */
KDF_API gboolean kdf_eval_confusion (int64_t *confusion, double *per_class, double *accuracy,
                                     const int32_t *pred, const int32_t *truth, int64_t n, int c,
                                     GError **error);

/* PRED[i] = argmax_c P[i,c] (first maximum). */
KDF_API gboolean kdf_probs_argmax (int32_t *pred, const float *probs, int64_t n, int c,
                                   GError **error);

typedef struct {
  int64_t tp, fp, fn, tn;
  double precision; /* tp / (tp+fp), 0 when nothing is flagged */
  double recall;    /* tp / (tp+fn), 0 when nothing is noisy */
  double f1;        /* 2PR/(P+R), 0 when P+R = 0 */
  gpointer reserved[2];
} KdfDetectionMetrics;

/* A predicted-noisy mask against the true noisy mask (u8, non-zero = noisy). */
KDF_API void kdf_eval_detection (KdfDetectionMetrics *out, const uint8_t *flagged,
                                 const uint8_t *truth, int64_t n);

/* AUROC of SCORE (higher = more likely noisy) against TRUTH by the Mann–Whitney
 * statistic with tied scores given their average rank, O(N log N). *AUROC is NaN when
 * TRUTH has only one class. Fails on NaN scores. */
KDF_API gboolean kdf_eval_auroc (double *auroc, const float *score, const uint8_t *truth,
                                 int64_t n, GError **error);

/* Refined-label accuracy: the fraction of REFINED equal to CLEAN, overall and, when
 * NOISY (u8 N) is given, on the noisy and on the clean samples (NaN if none). */
KDF_API gboolean kdf_eval_refined_accuracy (double *overall, double *on_noisy, double *on_clean,
                                            const int32_t *refined, const int32_t *clean,
                                            const uint8_t *noisy, int64_t n, GError **error);

/* ==== agreement, tipping_point, topk_refine (Blind KD, SD/PLL) ============= */

/* Blind KD: p_A = normalise(p^T ⊙ p^S) row-wise; SCORE[i] = p_A[i, ỹ_i].
 * AGREE (N×C, nullable) receives p_A. A row whose product is all zero gets the
 * uniform 1/C (the authors divide by zero). Fails on NaN. */
KDF_API gboolean kdf_agreement (float *score, float *agree, const float *p_teacher,
                                const float *p_student, const int32_t *labels, int64_t n, int c,
                                GError **error);

/* m_e = mean_i max_c P[i,c], the quantity tipping_point tracks. */
KDF_API gboolean kdf_mean_max_prob (double *m, const float *probs, int64_t n, int c, GError **error);

/* Blind KD's tipping epoch: the first i (2 ≤ i ≤ n−3) with m_i strictly greater than
 * m_{i−2}, m_{i−1}, m_{i+1}, m_{i+2}; none (*EPOCH = −1) with fewer than 6 ticks. */
KDF_API gboolean kdf_tipping_point (int64_t *epoch, const double *history, int64_t n,
                                    GError **error);

/* PLL candidate sets: the teacher's top-K classes per row (ties to the lower class).
 * SOFT (N×C f32, nullable): 1/K on the candidates, 0 elsewhere. MASK (N×C u8,
 * nullable): 1 on the candidates. TOP (N×K i32, nullable): the candidates, best first. */
KDF_API gboolean kdf_topk_refine (float *soft, uint8_t *mask, int32_t *top, const float *probs,
                                  int64_t n, int c, int k, GError **error);

/* ==== uncertainty_split (MODUL) ============================================ */

/* Per-sample evidential loss (METHODS §1 uncertainty_split): e = relu(z) + 1,
 * S = Σ_c e_c, ℓ = Σ_c (y_c − e_c/S)² + Σ_c e_c (S − e_c) / (S² (S + 1)), y the one-hot
 * given label. LOSS: N f32. Fails on non-finite logits or labels outside [0, C). */
KDF_API gboolean kdf_evidential_loss (float *loss, const float *logits, const int32_t *labels,
                                      int64_t n, int c, GError **error);

typedef struct {
  int components;  /* K, 1..256 (20) */
  int max_iter;    /* EM iterations at most, ≥ 1 (100) */
  double tol;      /* stop when the mean log-likelihood changes by less (1e-3; 0: never) */
  double reg_var;  /* added to every component's variance at each M-step (5e-4) */
  /* nullable, K values each: the starting parameters (weights need not sum to 1).
   * Default: equal weights, means at the (k + ½)/K quantiles of the data, and every
   * variance the data's variance / K² (+ reg_var). */
  const double *init_weights, *init_means, *init_vars;
  gpointer reserved[4];
} KdfGmm1dOptions;

KDF_API void kdf_gmm1d_options_init (KdfGmm1dOptions *opt);

typedef struct {
  int iterations;        /* EM iterations run (E-step + M-step each) */
  gboolean converged;    /* the change fell below tol */
  double log_likelihood; /* mean log-likelihood per sample at the last E-step */
  gpointer reserved[4];
} KdfGmm1dResult;

/* A one-dimensional Gaussian mixture fitted to X (N values) by EM, in float64, in
 * the order of scikit-learn's GaussianMixture (E-step, M-step, then the convergence
 * test on the E-step's mean log-likelihood; n_k gets 10·DBL_EPSILON; weights n_k/N).
 * WEIGHTS, MEANS, VARS: K values each (outputs). */
KDF_API gboolean kdf_gmm1d_fit (double *weights, double *means, double *vars, const float *x,
                                int64_t n, const KdfGmm1dOptions *opt, KdfGmm1dResult *result,
                                GError **error);

typedef enum {
  KDF_SPLIT_CLEAN = 0,
  KDF_SPLIT_OPEN = 1,   /* open-set: the input belongs to no class */
  KDF_SPLIT_CLOSED = 2, /* closed-set: a wrong class */
} KdfSplitGroup;

typedef enum {
  /* METHODS' rule: components of the K-component mixture sent to a group by fixed
   * bounds on their means (clean_below, closed_from) */
  KDF_SPLIT_BOUNDS_FIXED = 0,
  /* bounds the data chooses, two signals: clean vs noisy by a two-component mixture on
   * the normalised loss (the higher-mean component is noisy); then open-set vs
   * closed-set by a two-component mixture on OPEN_SCORE fitted over the noisy rows
   * (the higher-mean component is open-set). docs/design.md says why. */
  KDF_SPLIT_BOUNDS_FITTED = 1,
} KdfSplitBounds;

typedef struct {
  KdfGmm1dOptions gmm;
  double clean_below; /* components with mean < this are "clean" (0.3) */
  double closed_from; /* components with mean ≥ this are "closed-set"; between: open (0.9) */
  int bounds;         /* KdfSplitBounds (FIXED) */
  /* FITTED only, N values, required there: how unlike any class each row looks to the
   * network (e.g. 1 − its largest softmax probability); higher = more likely open-set.
   * FITTED uses gmm's max_iter, tol and reg_var; its mixtures have two components. */
  const float *open_score;
  gpointer reserved[2];
} KdfUncertaintyOptions;

KDF_API void kdf_uncertainty_options_init (KdfUncertaintyOptions *opt);

typedef struct {
  int64_t count[3];     /* samples per group (clean, open, closed) */
  int components[3];    /* mixture components per group */
  double loss_min, loss_max; /* the min-max normalisation used */
  KdfGmm1dResult gmm;
  gpointer reserved[4];
} KdfUncertaintyResult;

/* MODUL's three-way split of per-sample losses (METHODS §1 uncertainty_split):
 * min-max normalise the losses (all equal: every sample clean, no mixture fitted),
 * fit the 1-D mixture, map each component to a group by its mean, and put each
 * sample in the group with the largest summed posterior (ties to the lower group).
 * With bounds FITTED: posteriors (1 − q, q·o, q·(1 − o)), q the noisy component's
 * posterior of the row's normalised loss and o the open component's posterior of its
 * min-max normalised open score (each made monotone: 0 below the lower component's
 * mean, 1 above the higher one's), then the largest, ties to the lower group. A
 * mixture whose data are all equal, or fewer than two noisy rows, leaves q = 0 or
 * o = 0. components[] then counts the two mixtures' components (1, 1, 1).
 * GROUP: N i32 (KdfSplitGroup). POSTERIOR (N×3 f32, nullable): the summed posteriors.
 * NORMALIZED (N f32, nullable): the normalised losses. */
KDF_API gboolean kdf_uncertainty_split (int32_t *group, float *posterior, float *normalized,
                                        const float *loss, int64_t n,
                                        const KdfUncertaintyOptions *opt,
                                        KdfUncertaintyResult *result, GError **error);
/* ==== label_propagation (AML-KD, Jiang et al., TNNLS 2023; METHODS §1) ======= */

/* Exact k nearest neighbours by inner product, self excluded explicitly (a duplicate
 * of row i under another index is a neighbour like any other). The N×N similarity is
 * never formed: tiles of T×T are computed by BLIS GEMM (only the tiles on and above
 * the diagonal — S is symmetric, each off-diagonal tile feeds the lists of both its
 * row block and its column block) and scanned into a per-row top-k heap. Memory:
 * N·k·8 bytes for the lists, T²·4 for the tile, N·4 for the heap thresholds.
 * Order: similarity descending, then index ascending — a total order, so the lists
 * are the same for every tile size and thread count. */
typedef struct {
  int tile;                  /* T: rows and columns per GEMM tile, ≥ 1 (0 = 1024) */
  int threads;               /* BLIS threads and heap-scan workers, ≥ 1 (1) */
  GCancellable *cancellable; /* checked between tiles; nullable */
  /* called between tiles with the fraction done (nullable) */
  void (*progress) (double fraction, gpointer data);
  gpointer progress_data;
  /* under mpirun (kdflow/dist.h): each rank computes a share of the tiles and the
   * ranks' lists are merged — the same lists as one process; every rank must call
   * (label_propagation sets it when there are ranks). FALSE: the whole search here */
  gboolean shard;
  int reserved_int;
  gpointer reserved[3];
} KdfKnnOptions;

KDF_API void kdf_knn_options_init (KdfKnnOptions *opt);

/* INDEX (i32 N×k) and SIM (f32 N×k, nullable) receive, for each row of X (N×D, row
 * stride LDX ≥ D), its k most similar other rows by ⟨x_i, x_j⟩, best first. Needs
 * 1 ≤ k ≤ N−1. PEAK_BYTES (nullable) receives the most working memory held at once
 * besides INDEX and SIM. Fails on non-finite features or similarities, and with
 * KDF_ERROR_CANCELLED when OPT's cancellable fires. */
KDF_API gboolean kdf_knn_inner_product (int32_t *index, float *sim, const float *x, int64_t n,
                                        int64_t d, int64_t ldx, int k, const KdfKnnOptions *opt,
                                        gsize *peak_bytes, GError **error);

/* A sparse N×N matrix in compressed rows: row i holds columns col[row_ptr[i] ..
 * row_ptr[i+1]) in ascending order with their values. */
typedef struct {
  int64_t n;
  int64_t nnz;
  int64_t *row_ptr; /* N+1 */
  int32_t *col;     /* nnz */
  double *val;      /* nnz */
  gpointer reserved[2];
} KdfCsr;

/* Frees the arrays of M and zeroes it (safe on a zeroed or cleared matrix). */
KDF_API void kdf_csr_clear (KdfCsr *m);

/* The normalised graph of METHODS §1 label_propagation step 2 from k-NN lists
 * (INDEX i32 N×k, SIM f64 N×k): A_ij = max(s_ij, 0)^γ for j in i's list; W = A + Aᵀ;
 * diag(W) = 0; d_i = Σ_j W_ij (0 → 1); WN = D^{−1/2} W D^{−1/2}. Zero entries are not
 * stored. DEGREE (N, nullable) receives d. WN must be zeroed or cleared. */
KDF_API gboolean kdf_lp_graph (KdfCsr *wn, double *degree, const int32_t *index,
                               const double *sim, int64_t n, int k, double gamma,
                               GError **error);

typedef enum {
  KDF_LP_SOLVER_CG = 0,      /* conjugate gradient on (I − αWn) z = y, x0 = 0 */
  KDF_LP_SOLVER_ITERATE = 1, /* Zhou et al.'s iteration z ← αWn z + y from z = 0 */
} KdfLpSolver;

typedef struct {
  int iterations;   /* the most iterations any class took */
  double residual;  /* the largest ‖y − (I − αWn) z‖ / ‖y‖ over the classes with a seed */
  gpointer reserved[2];
} KdfLpSolveStats;

/* Solves (I − α WN) Z = Y for every class (Y and Z N×C row-major, f64), each class
 * a separate solve, spread over THREADS workers (the result does not depend on
 * them). CG stops at ‖r‖ ≤ TOL·‖y‖ or after ITERS iterations; ITERATE runs ITERS
 * steps. A zero column gives a zero column. Needs 0 ≤ α < 1. */
KDF_API gboolean kdf_lp_solve (double *z, const KdfCsr *wn, const double *y, int c, double alpha,
                               KdfLpSolver solver, int iters, double tol, int threads,
                               KdfLpSolveStats *stats, GError **error);

typedef struct {
  int k;              /* neighbours (20) */
  double gamma;       /* A_ij = max(s_ij, 0)^γ (3) */
  double alpha;       /* in [0, 1) (0.99) */
  gboolean normalize; /* L2-normalise the features first (TRUE) */
  KdfLpSolver solver; /* (CG) */
  int iters;          /* (20) */
  double tol;         /* CG: relative residual (1e-6) */
  double percentile;  /* p in [0, 100]: rows with confidence below the p-th percentile
                         keep their seed (0) */
  KdfKnnOptions knn;  /* tile, threads, cancellation, progress (threads also solve) */
  gpointer reserved[4];
} KdfLpOptions;

KDF_API void kdf_lp_options_init (KdfLpOptions *opt);

/* What label propagation works on: N rows of D features and the seeds. */
typedef struct {
  const float *x;            /* N×D row-major features */
  int64_t n, d;
  int c;                     /* classes, ≥ 1 */
  const int32_t *seeds;      /* N labels in [0, C): each row's seed (required) */
  const float *seed_probs;   /* N×C ≥ 0, nullable: Y_i = w_i·seed_probs_i instead of
                                w_i·onehot(seed_i) */
  const float *weights;      /* N ≥ 0, nullable (all 1): w_i, e.g. from AWE */
  const uint8_t *seed_mask;  /* N, nullable (all): rows that contribute to Y */
  const uint8_t *keep_mask;  /* N, nullable (none): rows that keep their seed */
  const int32_t *knn;        /* N×k, nullable: the k nearest other rows of each row, best
                                first, from an earlier call on the same features with the
                                same k and normalisation (its `neighbors`): the k-NN search
                                is skipped, the graph's weights are recomputed from x */
  gpointer reserved[3];
} KdfLpInput;

typedef struct {
  int64_t nnz;             /* stored entries of Wn */
  KdfLpSolveStats solve;
  double conf_threshold;   /* the p-th percentile of the confidences (linear, as numpy) */
  int64_t n_kept;          /* rows that kept their seed (percentile, keep_mask, or a
                              row of Z all zero) */
  int64_t n_changed;       /* rows whose label differs from their seed */
  int empty_classes;       /* classes with no seed mass (a zero column of Y) */
  gsize peak_bytes;        /* most working memory held at once, outputs excluded */
  double seconds_knn, seconds_graph, seconds_solve;
  gpointer reserved[4];
} KdfLpResult;

/* Label propagation (METHODS §1 label_propagation; Iscen et al., CVPR 2019, as
 * AML-KD uses it, with its defects fixed):
 *  1. (normalize) x_i ← x_i/‖x_i‖ (a zero row stays zero); exact k-NN by inner
 *     product, self excluded (kdf_knn_inner_product);
 *  2. Wn as kdf_lp_graph, the similarities of the chosen neighbours computed again in
 *     double from the features (the f32 GEMM picks the neighbours; the weights do
 *     not carry its rounding);
 *  3. Y_i = w_i·onehot(seed_i) (or w_i·seed_probs_i) for the rows of seed_mask, 0
 *     elsewhere; each column divided by its sum; a column without mass stays zero;
 *  4. (I − αWn) Z = Y per class (kdf_lp_solve);
 *  5. Z ← max(Z, 0); SOFT_i = Z_i/Σ_c Z_ic (uniform 1/C for a zero row);
 *     CONFIDENCE_i = max_c softmax(Z_i); a row keeps its seed if its confidence is
 *     below the p-th percentile, if it is in keep_mask, or if Z_i is all zero;
 *     the others take argmax_c Z_ic (first maximum).
 * LABELS (i32 N) required; SOFT (f32 N×C), CONFIDENCE (f32 N), NEIGHBORS (i32 N×k)
 * nullable. RESULT nullable. */
KDF_API gboolean kdf_label_propagation (int32_t *labels, float *soft, float *confidence,
                                        int32_t *neighbors, const KdfLpInput *in,
                                        const KdfLpOptions *opt, KdfLpResult *result,
                                        GError **error);

/* The working memory kdf_label_propagation holds at most for these sizes (what
 * KdfLpResult.peak_bytes reports can only be lower): a bound computed from the
 * same allocations, so that the memory at a size too large to test can be checked. */
KDF_API gsize kdf_lp_workspace_bytes (int64_t n, int64_t d, int c, const KdfLpOptions *opt);

/* ==== sharded forms: detection across MPI ranks (kdflow/dist.h) ============ */

/* The same arguments and results as the plain kernels above, for `mpirun -np P`: each
 * rank reads only the rows of its block kdf_dist_shard(N) of every per-row input (the
 * arrays still hold N rows; the others are never read), the statistics that need every
 * row are reduced across the ranks, and every rank's outputs (all N rows, the
 * thresholds, counts and result structs) equal what the plain kernel computes in one
 * process — bit for bit, ties included (docs/design.md, "Distributed detection", says
 * how). Every rank must call them in the same order with the same N and options. Bad
 * input in any rank's block fails the call on every rank (the rank that found it has the
 * message; see kdf_dist_agree). With one rank they are the plain kernels. */
KDF_API gboolean kdf_otsu_threshold_sharded (const float *scores, int64_t n,
                                             const KdfOtsuOptions *opt, KdfOtsuResult *result,
                                             uint8_t *mask, int32_t *groups, GError **error);
KDF_API gboolean kdf_loss_rank_sharded (const float *loss, int64_t n, const KdfRankOptions *opt,
                                        uint8_t *clean, int32_t *rank, int64_t *n_clean,
                                        GError **error);
KDF_API gboolean kdf_loss_rank_threshold_sharded (const float *loss, int64_t n, double threshold,
                                                  const KdfRankOptions *opt, uint8_t *clean,
                                                  int32_t *rank, int64_t *n_clean,
                                                  GError **error);
KDF_API gboolean kdf_loss_rank_otsu_sharded (const float *loss, int64_t n,
                                             const KdfOtsuOptions *otsu, const KdfRankOptions *opt,
                                             uint8_t *clean, int32_t *rank, int64_t *n_clean,
                                             KdfOtsuResult *result, GError **error);
KDF_API gboolean kdf_confident_learning_sharded_f64 (uint8_t *issues, const double *probs,
                                                     const int32_t *labels, int64_t n, int c,
                                                     const KdfClOptions *opt,
                                                     KdfClResult *result, GError **error);
KDF_API gboolean kdf_confident_learning_sharded_f32 (uint8_t *issues, const float *probs,
                                                     const int32_t *labels, int64_t n, int c,
                                                     const KdfClOptions *opt,
                                                     KdfClResult *result, GError **error);
/* ISSUES must be whole on every rank (as the sharded confident learning leaves it). */
KDF_API gboolean kdf_cl_order_issues_sharded_f64 (int64_t *order, int64_t *n_order,
                                                  const uint8_t *issues, const double *probs,
                                                  const int32_t *labels, int64_t n, int c,
                                                  KdfClRank rank_by, GError **error);
KDF_API gboolean kdf_cl_order_issues_sharded_f32 (int64_t *order, int64_t *n_order,
                                                  const uint8_t *issues, const float *probs,
                                                  const int32_t *labels, int64_t n, int c,
                                                  KdfClRank rank_by, GError **error);
KDF_API gboolean kdf_agreement_sharded (float *score, float *agree, const float *p_teacher,
                                        const float *p_student, const int32_t *labels,
                                        int64_t n, int c, GError **error);

/* ==== human-confirmed label errors (label-errors mturk files) ============== */

typedef struct {
  char *id;          /* the record's id as text ("247", "test/neg/10003_3") */
  int64_t row;       /* row index when the id is an integer, else −1 */
  int given_votes;   /* mturk.given: workers (of 5) who chose the given label */
  gboolean confirmed; /* given_votes < 3: a confirmed label error */
} KdfReviewRecord;

typedef struct {
  guint n_reviewed;   /* records in the file */
  guint n_confirmed;  /* of those, confirmed errors */
  guint n_unmapped;   /* confirmed errors whose id is not a row index */
  KdfReviewRecord *records;
  gpointer reserved[2];
} KdfLabelReview;

/* Parses a <set>_mturk.json file (Northcutt, Athalye & Mueller, NeurIPS 2021 D&B).
 * transfer full: free with kdf_label_review_free. NULL with a KDF_ERROR_IO error. */
KDF_API KdfLabelReview *kdf_label_review_load (const char *path, GError **error);
KDF_API void kdf_label_review_free (KdfLabelReview *review);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfLabelReview, kdf_label_review_free)

typedef struct {
  int64_t flagged;    /* rows set in the mask */
  int64_t caught;     /* confirmed errors among them */
  double precision;   /* caught / flagged against the confirmed list (0 if none flagged) */
  double recall;      /* caught / confirmed (mapped confirmed only; NaN if none) */
  gpointer reserved[2];
} KdfReviewScore;

/* Scores a flagged mask (u8 N) against the confirmed errors of REVIEW. Fails when a
 * confirmed row is ≥ N. Unmapped records (non-integer ids) are skipped. */
KDF_API gboolean kdf_label_review_score (KdfReviewScore *out, const KdfLabelReview *review,
                                         const uint8_t *flagged, int64_t n, GError **error);

G_END_DECLS
