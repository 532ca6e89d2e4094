/* confident_learning: label issues from out-of-sample probabilities.
 *
 * Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
 * Labels", JAIR 70 (2021), §3, as cleanlab 2.9 implements it in
 * filter.find_label_issues (single-label data). Our own code, step for step:
 *
 *  1. thresholds  t_k = mean of p[i,k] over the samples given label k (numpy's
 *                 pairwise sum / count), clipped below at 2e-6; 2 for an absent class.
 *  2. joint       sample i is confident in class j if p[i,j] ≥ t_j − 1e-6. With one
 *                 such class it is counted in C[ỹ_i][j]; with two or more, cleanlab
 *                 counts it in the argmax over *all* classes (the paper's Eq. 2 says
 *                 over the above-threshold ones: option argmax_above_threshold);
 *                 none: not counted. Then diag(C) ← max(diag(C), 1).
 *  3. calibrate   Q[i][j] = C[i][j] / Σ_j C[i][j] · n_i (n_i the given-label counts),
 *                 Q ← Q / ΣQ · N, each row rounded to integers preserving its total
 *                 (round half to even, then ±1 on the entries with the largest /
 *                 smallest rounding residue — cleanlab's round_preserving_sum).
 *  4. prune counts P = Qᵀ ([true][given]); diagonal raised to min_examples_per_class
 *                 with the excess taken evenly from the column's non-zero entries;
 *                 off-diagonals scaled by frac_noise (truncated), the column total
 *                 kept on the diagonal; optional num_to_remove_per_class.
 *  5. filter      prune_by_noise_rate: in each given class k, for each j ≠ k, flag the
 *                 P[j][k] samples with the largest margin p[i,j] − p[i,k];
 *                 prune_by_class: the m_k − P[k][k] samples with the smallest p[i,k];
 *                 both; confident_learning (the off-diagonal samples of step 2);
 *                 predicted_neq_given.
 *  6. unflag      every sample whose argmax, after adding 1e-6 to its given label's
 *                 probability, is its given label (cleanlab's _reduce_issues).
 *
 * Ties. cleanlab sorts margins with numpy's default (unstable) quicksort, so which of
 * several samples with *exactly* equal margins at the cut is taken is up to numpy;
 * we take the lower index. On the label-errors data (mnist, cifar10, 20news, imdb)
 * this never decides a flag: our flags equal a numpy port of cleanlab with either
 * sort, and the counts quoted in the data's README (15 / 284) are reproduced.
 * Every other step matches numpy's float64 arithmetic operation for operation. */
#include "config.h"

#include "detect-private.h"
#include "../cancel.h"

#include <kdflow/dist.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CL_FUZZ 1e-6            /* cleanlab FLOATING_POINT_COMPARISON */
#define CL_THRESHOLD_FLOOR 2e-6 /* cleanlab CONFIDENT_THRESHOLDS_LOWER_BOUND = 2·1e-6 */
#define CL_TINY 1e-100          /* cleanlab TINY_VALUE */

void
kdf_cl_options_init (KdfClOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  opt->filter = KDF_CL_PRUNE_BY_NOISE_RATE;
  opt->frac_noise = 1.0;
  opt->num_to_remove_per_class = NULL;
  opt->min_examples_per_class = 1;
  opt->argmax_above_threshold = FALSE;
  opt->threads = 1;
}

void
kdf_cl_result_clear (KdfClResult *result)
{
  if (result == NULL)
    return;
  g_free (result->thresholds);
  g_free (result->confident_joint);
  g_free (result->calibrated_joint);
  g_free (result->prune_counts);
  memset (result, 0, sizeof *result);
}

/* The probabilities are f32 or f64; every kernel below reads them through this, so
 * one body serves both and f64 input is used at full precision. */
typedef struct {
  const void *data;
  gboolean f64;
  int c;
} Probs;

static inline double
P (const Probs *p, int64_t i, int j)
{
  int64_t at = i * p->c + j;
  return p->f64 ? ((const double *) p->data)[at] : (double) ((const float *) p->data)[at];
}

typedef struct {
  double residue;
  int index;
} Residue;

static int
residue_compare (const void *pa, const void *pb)
{
  const Residue *a = pa, *b = pb;
  if (a->residue < b->residue)
    return -1;
  if (a->residue > b->residue)
    return 1;
  return a->index - b->index;
}

/* cleanlab's round_preserving_sum (after iteround): round half to even, then move
 * the entries with the largest (or smallest) residue by ±1 until the rounded total
 * equals the rounded float total. numpy's argsort order is emulated with ties by
 * index; the [::-1] for increments reverses that order, ties included. */
static void
round_preserving_sum (int64_t *out, const double *floats, int k)
{
  double *ints = g_new (double, k);
  Residue *res = g_new (Residue, k);
  for (int j = 0; j < k; j++)
    ints[j] = nearbyint (floats[j]);
  double orig = nearbyint (kdf_pairwise_sum (floats, k));
  double isum = nearbyint (kdf_pairwise_sum (ints, k));
  for (int guard = 0; fabs (isum - orig) > CL_FUZZ && guard < 1000000; guard++) {
    double diff = nearbyint (orig - isum);
    int inc = diff < 0.0 ? -1 : 1;
    int64_t changes = MIN ((int64_t) fabs (diff), (int64_t) k);
    for (int j = 0; j < k; j++) {
      res[j].residue = floats[j] - ints[j];
      res[j].index = j;
    }
    qsort (res, (size_t) k, sizeof *res, residue_compare);
    for (int64_t t = 0; t < changes; t++) {
      int j = inc > 0 ? res[k - 1 - t].index : res[t].index;
      ints[j] += inc;
    }
    isum = nearbyint (kdf_pairwise_sum (ints, k));
  }
  for (int j = 0; j < k; j++)
    out[j] = (int64_t) ints[j];
  g_free (res);
  g_free (ints);
}

static void
round_preserving_row_totals (int64_t *out, const double *m, int c)
{
  for (int i = 0; i < c; i++)
    round_preserving_sum (out + (int64_t) i * c, m + (int64_t) i * c, c);
}

/* Step 1 for one class: the mean of its M self-confidences V (in index order). */
static double
class_threshold (const double *v, int64_t m)
{
  double t = m > 0 ? kdf_pairwise_sum (v, m) / (double) m : 2.0;
  return t < CL_THRESHOLD_FLOOR ? CL_THRESHOLD_FLOOR : t;
}

/* Step 2 for the rows FROM..TO: counts into RES's joint and totals, OFF_DIAGONAL[i]
 * for each of those rows. */
static void
joint_rows (KdfClResult *res, uint8_t *off_diagonal, const Probs *p, const int32_t *labels,
            int64_t from, int64_t to, int c, gboolean above_only)
{
  double *cut = g_new (double, c);
  for (int k = 0; k < c; k++)
    cut[k] = res->thresholds[k] - CL_FUZZ;
  int64_t *cj = res->confident_joint;
  for (int64_t i = from; i < to; i++) {
    int count = 0, first = -1, best = -1, best_above = -1;
    double best_v = 0, best_above_v = 0;
    for (int j = 0; j < c; j++) {
      double v = P (p, i, j);
      if (best < 0 || v > best_v) {
        best = j;
        best_v = v;
      }
      if (v >= cut[j]) {
        count++;
        if (first < 0)
          first = j;
        if (best_above < 0 || v > best_above_v) {
          best_above = j;
          best_above_v = v;
        }
      }
    }
    off_diagonal[i] = 0;
    if (count == 0)
      continue;
    int guess = count == 1 ? first : (above_only ? best_above : best);
    cj[(int64_t) labels[i] * c + guess]++;
    res->n_confident++;
    if (guess != labels[i]) {
      off_diagonal[i] = 1;
      res->n_off_diagonal++;
    }
  }
  g_free (cut);
}

static void
joint_clip_diagonal (int64_t *cj, int c)
{
  for (int k = 0; k < c; k++)
    if (cj[(int64_t) k * c + k] < 1)
      cj[(int64_t) k * c + k] = 1;
}

/* Steps 1–2. */
static void
confident_joint (KdfClResult *res, int64_t *given_count, uint8_t *off_diagonal,
                 const Probs *p, const int32_t *labels, int64_t n, int c,
                 gboolean above_only)
{
  /* Thresholds: the class's self-confidences gathered in index order (numpy's
   * pred_probs[:, k][labels == k]) and summed pairwise. */
  int64_t *start = g_new0 (int64_t, c + 1);
  for (int64_t i = 0; i < n; i++)
    given_count[labels[i]]++;
  for (int k = 0; k < c; k++)
    start[k + 1] = start[k] + given_count[k];
  double *gathered = g_new (double, n);
  int64_t *fill = g_memdup2 (start, (gsize) c * sizeof *start);
  for (int64_t i = 0; i < n; i++)
    gathered[fill[labels[i]]++] = P (p, i, labels[i]);
  for (int k = 0; k < c; k++)
    res->thresholds[k] = class_threshold (gathered + start[k], given_count[k]);
  g_free (fill);
  g_free (gathered);
  g_free (start);

  joint_rows (res, off_diagonal, p, labels, 0, n, c, above_only);
  joint_clip_diagonal (res->confident_joint, c);
}

/* Step 3 (count.calibrate_confident_joint). */
static void
calibrate (int64_t *out, const int64_t *cj, const int64_t *given_count, int c)
{
  int64_t cc = (int64_t) c * c;
  double *q = g_new (double, cc);
  double total = 0;
  for (int i = 0; i < c; i++) {
    int64_t row = 0;
    for (int j = 0; j < c; j++)
      row += cj[(int64_t) i * c + j];
    double denom = MAX ((double) row, CL_TINY);
    for (int j = 0; j < c; j++)
      q[(int64_t) i * c + j] = (double) cj[(int64_t) i * c + j] / denom * (double) given_count[i];
    total += (double) given_count[i];
  }
  double s = MAX (kdf_pairwise_sum (q, cc), CL_TINY);
  for (int64_t e = 0; e < cc; e++)
    q[e] = q[e] / s * total;
  round_preserving_row_totals (out, q, c);
  g_free (q);
}

/* Step 4 (filter._keep_at_least_n_per_class, _reduce_prune_counts and the
 * num_to_remove_per_class branch of find_label_issues). OUT = prune counts
 * [true][given] from the calibrated joint CAL [given][true]. */
static void
prune_counts (int64_t *out, const int64_t *cal, const int64_t *given_count, int c,
              const KdfClOptions *opt)
{
  int64_t cc = (int64_t) c * c;
  double *m = g_new (double, cc), *r = g_new (double, cc);
#define PCM(a, b) ((double) cal[(int64_t) (b) * c + (a)]) /* Qᵀ */
  for (int b = 0; b < c; b++) {
    double diag = PCM (b, b);
    double raised = MAX (diag, (double) opt->min_examples_per_class);
    int nonzero = 0;
    for (int a = 0; a < c; a++)
      nonzero += PCM (a, b) != 0;
    double per = (raised - diag) / MAX (nonzero - 1.0, 1.0);
    for (int a = 0; a < c; a++) {
      double v = PCM (a, b) - per;
      m[(int64_t) a * c + b] = a == b ? raised : (v < 0 ? 0 : v);
    }
  }
#undef PCM
  /* frac_noise: off-diagonals scaled, the removed mass (a column sum, accumulated
   * row by row as numpy's axis-0 sum does) returned to the diagonal, then trunc. */
  for (int b = 0; b < c; b++) {
    double moved = 0;
    for (int a = 0; a < c; a++) {
      double scaled = a == b ? m[(int64_t) a * c + b] : m[(int64_t) a * c + b] * opt->frac_noise;
      moved += m[(int64_t) a * c + b] - scaled;
      r[(int64_t) a * c + b] = scaled;
    }
    r[(int64_t) b * c + b] = m[(int64_t) b * c + b] + moved;
  }
  for (int64_t e = 0; e < cc; e++)
    r[e] = trunc (r[e]);
  round_preserving_row_totals (out, r, c);

  if (opt->num_to_remove_per_class) {
    /* cleanlab: psy = pcm / pcm.sum(axis=1) — numpy broadcasts the row sums along
     * the last axis, so entry [a][b] is divided by the sum of row b. Kept as is;
     * a zero denominator gives 0 where numpy would give inf/NaN. */
    const int64_t *remove = opt->num_to_remove_per_class;
    double *rowsum = g_new0 (double, (guint) c), *noise = g_new0 (double, (guint) c);
    for (int a = 0; a < c; a++)
      for (int b = 0; b < c; b++)
        rowsum[a] += (double) out[(int64_t) a * c + b];
    for (int a = 0; a < c; a++)
      for (int b = 0; b < c; b++)
        m[(int64_t) a * c + b] = rowsum[b] != 0 ? (double) out[(int64_t) a * c + b] / rowsum[b] : 0;
    for (int a = 0; a < c; a++)
      noise[a] = kdf_pairwise_sum (m + (int64_t) a * c, c) - m[(int64_t) a * c + a];
    for (int a = 0; a < c; a++)
      for (int b = 0; b < c; b++) {
        double v = a == b ? (double) (given_count[a] - remove[a])
                          : (noise[a] != 0 ? m[(int64_t) a * c + b] * (double) remove[a] / noise[a] : 0);
        r[(int64_t) a * c + b] = v;
      }
    round_preserving_row_totals (out, r, c);
    g_free (rowsum);
    g_free (noise);
  }
  g_free (m);
  g_free (r);
}

/* Flags (through ROWS) the TAKE entries of KEY[0..m) that come first in the order
 * key descending, then index ascending. Buffered selection: an entry is buffered
 * only if it beats the current cut-off (the last of the best TAKE seen so far);
 * when the buffer (2·TAKE + 64) fills, a linear-time selection trims it back to TAKE
 * and raises the cut-off. Almost every entry costs one comparison when TAKE ≪ m
 * (the usual case: a noise-rate count against a class). BUF holds ≥ 2·TAKE + 64. */
static inline gboolean
item_before (double ka, int64_t ta, double kb, int64_t tb)
{
  return ka > kb || (ka == kb && ta < tb);
}

/* The entries of the TAKE best in BUF[0..count) (indices into KEY), count returned. */
static int64_t
select_entries (const double *key, int64_t m, int64_t take, KdfKeyIndex *buf)
{
  if (take >= m) {
    for (int64_t t = 0; t < m; t++) {
      buf[t].key = key[t];
      buf[t].index = t;
    }
    return m;
  }
  const int64_t cap = 2 * take + 64;
  int64_t size = 0;
  gboolean have_cut = FALSE;
  KdfKeyIndex cut = { 0 };
  for (int64_t t = 0; t < m; t++) {
    if (have_cut && !item_before (key[t], t, cut.key, cut.index))
      continue;
    buf[size].key = key[t];
    buf[size].index = t;
    if (++size == cap) {
      kdf_select_top (buf, size, take);
      size = take;
      cut = buf[0];
      for (int64_t e = 1; e < take; e++)
        if (item_before (cut.key, cut.index, buf[e].key, buf[e].index))
          cut = buf[e];
      have_cut = TRUE;
    }
  }
  kdf_select_top (buf, size, take);
  return MIN (size, take);
}

static void
select_top (uint8_t *flag, const int64_t *rows, const double *key, int64_t m, int64_t take,
            KdfKeyIndex *buf)
{
  if (take >= m) {
    for (int64_t t = 0; t < m; t++)
      flag[rows[t]] = 1;
    return;
  }
  const int64_t got = select_entries (key, m, take, buf);
  for (int64_t e = 0; e < got; e++)
    flag[rows[buf[e].index]] = 1;
}

/* Step 5 for one given class K whose members (in index order) are ROWS[0..m).
 * COLS (C×m), KEY (m) and BUF (2m + 64) are scratch. */
static void
prune_class (uint8_t *by_rate, uint8_t *by_class, const Probs *p, const int64_t *rows,
             int64_t m, int k, int c, const int64_t *pcm, int64_t min_examples,
             double *cols, double *key, KdfKeyIndex *buf)
{
  /* cleanlab returns no flags for a class with ≤ min_examples_per_class samples,
   * and drops a per-class mask of length 1 when it scatters the masks back. */
  if (m <= min_examples || m <= 1)
    return;
  /* The class's rows, one column per class, so that each margin is a contiguous
   * difference of two columns. */
  for (int64_t t = 0; t < m; t++)
    for (int j = 0; j < c; j++)
      cols[(int64_t) j * m + t] = P (p, rows[t], j);
  const double *ck = cols + (int64_t) k * m;
  if (by_rate) {
    for (int j = 0; j < c; j++) {
      int64_t take = pcm[(int64_t) j * c + k];
      if (j == k || take <= 0)
        continue;
      const double *cj = cols + (int64_t) j * m;
      for (int64_t t = 0; t < m; t++)
        key[t] = cj[t] - ck[t];
      select_top (by_rate, rows, key, m, take, buf);
    }
  }
  if (by_class) {
    int64_t take = m - pcm[(int64_t) k * c + k];
    if (take >= 1) {
      for (int64_t t = 0; t < m; t++)
        key[t] = -ck[t]; /* the smallest p first = the largest −p */
      select_top (by_class, rows, key, m, take, buf);
    }
  }
}

typedef struct {
  uint8_t *by_rate, *by_class;
  const Probs *p;
  const int64_t *rows, *start, *count, *pcm;
  int c;
  int64_t min_examples;
  int stride;
  GCancellable *cancellable; /* the calling node's: checked between classes */
} PruneJob;

typedef struct {
  PruneJob *job;
  int first;
} PruneTask;

/* Classes first, first + stride, …: each writes only the flags of its own rows, so
 * the result is the same for any number of workers. */
static gpointer
prune_worker (gpointer data)
{
  PruneTask *task = data;
  const PruneJob *j = task->job;
  int64_t largest = 1;
  for (int k = task->first; k < j->c; k += j->stride)
    largest = MAX (largest, j->count[k]);
  double *cols = g_new (double, largest * j->c), *key = g_new (double, largest);
  KdfKeyIndex *buf = g_new (KdfKeyIndex, 2 * largest + 64);
  for (int k = task->first; k < j->c; k += j->stride) {
    if (j->cancellable && g_cancellable_is_cancelled (j->cancellable))
      break;
    prune_class (j->by_rate, j->by_class, j->p, j->rows + j->start[k], j->count[k], k, j->c,
                 j->pcm, j->min_examples, cols, key, buf);
  }
  g_free (cols);
  g_free (key);
  g_free (buf);
  return NULL;
}

/* Step 6 for the rows FROM..TO; returns how many stay flagged. */
static int64_t
unflag_rows (uint8_t *issues, const Probs *p, const int32_t *labels, int64_t from, int64_t to,
             int c)
{
  int64_t flagged = 0;
  for (int64_t i = from; i < to; i++) {
    if (!issues[i])
      continue;
    int y = labels[i], best = 0;
    double best_v = y == 0 ? P (p, i, 0) + CL_FUZZ : P (p, i, 0);
    for (int j = 1; j < c; j++) {
      double v = j == y ? P (p, i, j) + CL_FUZZ : P (p, i, j);
      if (v > best_v) {
        best = j;
        best_v = v;
      }
    }
    if (best == y)
      issues[i] = 0;
    else
      flagged++;
  }
  return flagged;
}

static gboolean
cl_check_params (int64_t n, int c, const KdfClOptions *opt, GError **error)
{
  if (!kdf_check_size (n, c, "confident_learning", error))
    return FALSE;
  if (c < 2 || c > 65536) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "confident_learning: expected 2 ≤ C ≤ 65536 classes, found %d", c);
    return FALSE;
  }
  if (!(opt->frac_noise > 0.0 && opt->frac_noise <= 1.0) || opt->min_examples_per_class < 0 ||
      opt->threads < 1 ||
      (int) opt->filter < KDF_CL_PRUNE_BY_NOISE_RATE || opt->filter > KDF_CL_PREDICTED_NEQ_GIVEN) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "confident_learning: expected 0 < frac_noise ≤ 1, min_examples_per_class ≥ 0, "
                 "threads ≥ 1 and a known filter, found %g, %" G_GINT64_FORMAT ", %d, %d",
                 opt->frac_noise, opt->min_examples_per_class, opt->threads, (int) opt->filter);
    return FALSE;
  }
  if (opt->num_to_remove_per_class)
    for (int k = 0; k < c; k++)
      if (opt->num_to_remove_per_class[k] < 0) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                     "confident_learning: num_to_remove_per_class[%d] is negative", k);
        return FALSE;
      }
  return TRUE;
}

/* The labels and probabilities of the rows FROM..TO. */
static gboolean
cl_check_rows (const Probs *p, const int32_t *labels, int64_t from, int64_t to, int c,
               GError **error)
{
  const int64_t at = from * c, m = to - from;
  gboolean ok = kdf_check_labels (labels + from, m, c, "confident_learning: labels", error) &&
                (p->f64 ? kdf_check_finite_f64 ((const double *) p->data + at, m * c,
                                                "confident_learning: probabilities", error)
                        : kdf_check_finite_f32 ((const float *) p->data + at, m * c,
                                                "confident_learning: probabilities", error));
  if (!ok && from > 0)
    g_prefix_error (error, "rows from %" G_GINT64_FORMAT ": ", (gint64) from);
  return ok;
}

static gboolean
confident_learning (uint8_t *issues, const Probs *p, const int32_t *labels, int64_t n, int c,
                    const KdfClOptions *opt, KdfClResult *result, GError **error)
{
  KdfClOptions defaults;
  if (opt == NULL) {
    kdf_cl_options_init (&defaults);
    opt = &defaults;
  }
  if (!cl_check_params (n, c, opt, error))
    return FALSE;
  if (!kdf_check_labels (labels, n, c, "confident_learning: labels", error))
    return FALSE;
  if (p->f64 ? !kdf_check_finite_f64 (p->data, n * c, "confident_learning: probabilities", error)
             : !kdf_check_finite_f32 (p->data, n * c, "confident_learning: probabilities", error))
    return FALSE;

  int64_t cc = (int64_t) c * c;
  KdfClResult res = { 0 };
  res.c = c;
  res.thresholds = g_new0 (double, c);
  res.confident_joint = g_new0 (int64_t, cc);
  res.calibrated_joint = g_new0 (int64_t, cc);
  res.prune_counts = g_new0 (int64_t, cc);
  int64_t *given_count = g_new0 (int64_t, c);

  uint8_t *off_diagonal = g_new (uint8_t, n);
  confident_joint (&res, given_count, off_diagonal, p, labels, n, c,
                   opt->argmax_above_threshold);
  calibrate (res.calibrated_joint, res.confident_joint, given_count, c);
  prune_counts (res.prune_counts, res.calibrated_joint, given_count, c, opt);
  /* a node's cancellation (Ctrl-C) stops a long call between its passes over the rows
   * and between classes */
  gboolean ok = kdf_cancel_check ("confident_learning", error);

  memset (issues, 0, (size_t) n);
  if (ok)
  switch (opt->filter) {
  case KDF_CL_PRUNE_BY_NOISE_RATE:
  case KDF_CL_PRUNE_BY_CLASS:
  case KDF_CL_BOTH: {
    gboolean rate = opt->filter != KDF_CL_PRUNE_BY_CLASS;
    gboolean klass = opt->filter != KDF_CL_PRUNE_BY_NOISE_RATE;
    uint8_t *by_class = klass ? g_new0 (uint8_t, n) : NULL;
    int64_t *start = g_new0 (int64_t, c + 1), *rows = g_new (int64_t, n);
    for (int k = 0; k < c; k++)
      start[k + 1] = start[k] + given_count[k];
    int64_t *fill = g_memdup2 (start, (gsize) c * sizeof *start);
    for (int64_t i = 0; i < n; i++)
      rows[fill[labels[i]]++] = i;
    PruneJob job = { .by_rate = rate ? issues : NULL, .by_class = by_class, .p = p,
                     .rows = rows, .start = start, .count = given_count, .c = c,
                     .pcm = res.prune_counts, .min_examples = opt->min_examples_per_class,
                     .stride = MAX (opt->threads, 1),
                     .cancellable = kdf_sched_current_cancellable () };
    int workers = (int) MIN ((int64_t) MIN (job.stride, 64), (int64_t) c);
    job.stride = workers;
    GThread *threads[64];
    PruneTask tasks[64];
    for (int w = 0; w < workers; w++) {
      tasks[w].job = &job;
      tasks[w].first = w;
    }
    for (int w = 1; w < workers; w++)
      threads[w] = g_thread_new ("kdf-cl-prune", prune_worker, &tasks[w]);
    prune_worker (&tasks[0]);
    for (int w = 1; w < workers; w++)
      g_thread_join (threads[w]);
    ok = kdf_cancel_check ("confident_learning", error);
    if (opt->filter == KDF_CL_PRUNE_BY_CLASS)
      memcpy (issues, by_class, (size_t) n);
    else if (opt->filter == KDF_CL_BOTH)
      for (int64_t i = 0; i < n; i++)
        issues[i] = issues[i] && by_class[i];
    g_free (fill);
    g_free (rows);
    g_free (start);
    g_free (by_class);
    break;
  }
  case KDF_CL_CONFIDENT_LEARNING:
    memcpy (issues, off_diagonal, (size_t) n);
    break;
  case KDF_CL_PREDICTED_NEQ_GIVEN:
    for (int64_t i = 0; i < n; i++) {
      int best = 0;
      for (int j = 1; j < c; j++)
        if (P (p, i, j) > P (p, i, best))
          best = j;
      issues[i] = best != labels[i];
    }
    break;
  }
  g_free (off_diagonal);
  if (!ok) {
    g_free (given_count);
    kdf_cl_result_clear (&res);
    return FALSE;
  }

  /* Step 6: no issue where the given label is, within 1e-6, the prediction. */
  res.n_flagged = unflag_rows (issues, p, labels, 0, n, c);
  g_free (given_count);
  if (result)
    *result = res;
  else
    kdf_cl_result_clear (&res);
  return TRUE;
}

gboolean
kdf_confident_learning_f64 (uint8_t *issues, const double *probs, const int32_t *labels,
                            int64_t n, int c, const KdfClOptions *opt, KdfClResult *result,
                            GError **error)
{
  g_return_val_if_fail (issues != NULL && probs != NULL && labels != NULL, FALSE);
  Probs p = { probs, TRUE, c };
  return confident_learning (issues, &p, labels, n, c, opt, result, error);
}

gboolean
kdf_confident_learning_f32 (uint8_t *issues, const float *probs, const int32_t *labels,
                            int64_t n, int c, const KdfClOptions *opt, KdfClResult *result,
                            GError **error)
{
  g_return_val_if_fail (issues != NULL && probs != NULL && labels != NULL, FALSE);
  Probs p = { probs, FALSE, c };
  return confident_learning (issues, &p, labels, n, c, opt, result, error);
}

static int
key_index_compare (const void *pa, const void *pb)
{
  const KdfKeyIndex *a = pa, *b = pb;
  if (a->key != b->key)
    return a->key > b->key ? -1 : 1;
  return a->index < b->index ? -1 : (a->index > b->index);
}

/* cleanlab's label quality of row I (given label Y). */
static double
quality (const Probs *p, int64_t i, int y, int c, KdfClRank rank_by)
{
  double self = P (p, i, y), score = self;
  if (rank_by == KDF_CL_RANK_NORMALIZED_MARGIN) {
    double other = -INFINITY;
    for (int j = 0; j < c; j++)
      if (j != y)
        other = MAX (other, P (p, i, j));
    score = (self - other + 1.0) / 2.0;
  }
  return score;
}

/* cleanlab rank.order_label_issues: the flagged rows sorted by their label quality
 * score, ascending (worst first); ties by index. SHARDED: each rank keys its own block's
 * flagged rows and the (key, row) pairs are gathered, then sorted by the same total
 * order as one process sorts them. */
static gboolean
order_issues (int64_t *order, int64_t *n_order, const uint8_t *issues, const Probs *p,
              const int32_t *labels, int64_t n, int c, KdfClRank rank_by, gboolean sharded,
              GError **error)
{
  if (!kdf_check_size (n, c, "confident_learning", error))
    return FALSE;
  if (rank_by != KDF_CL_RANK_SELF_CONFIDENCE && rank_by != KDF_CL_RANK_NORMALIZED_MARGIN) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "confident_learning: unknown rank_by %d",
                 (int) rank_by);
    return FALSE;
  }
  int64_t from = 0, to = n;
  if (sharded)
    kdf_dist_shard (n, &from, &to);
  gboolean ok = kdf_check_labels (labels + from, to - from, c, "confident_learning: labels", error);
  if (sharded)
    ok = kdf_dist_agree (ok, "confident_learning", error);
  if (!ok)
    return FALSE;
  GArray *mine = g_array_new (FALSE, FALSE, sizeof (KdfKeyIndex));
  for (int64_t i = from; i < to; i++) {
    if (!issues[i])
      continue;
    /* ascending score = descending key */
    KdfKeyIndex v = { -quality (p, i, labels[i], c, rank_by), i };
    g_array_append_val (mine, v);
  }
  KdfKeyIndex *v;
  int64_t m = mine->len;
  if (sharded) {
    int64_t bytes = 0;
    v = kdf_dist_allgatherv (mine->data, (int64_t) mine->len * sizeof (KdfKeyIndex), &bytes,
                             NULL, error);
    g_array_free (mine, TRUE);
    if (v == NULL)
      return FALSE;
    m = bytes / (int64_t) sizeof *v;
  } else {
    v = (KdfKeyIndex *) (void *) g_array_free (mine, FALSE); /* NULL when empty */
  }
  if (m > 1)
    qsort (v, (size_t) m, sizeof *v, key_index_compare);
  for (int64_t a = 0; a < m; a++)
    order[a] = v[a].index;
  *n_order = m;
  g_free (v);
  return TRUE;
}

gboolean
kdf_cl_order_issues_f64 (int64_t *order, int64_t *n_order, const uint8_t *issues,
                         const double *probs, const int32_t *labels, int64_t n, int c,
                         KdfClRank rank_by, GError **error)
{
  Probs p = { probs, TRUE, c };
  return order_issues (order, n_order, issues, &p, labels, n, c, rank_by, FALSE, error);
}

gboolean
kdf_cl_order_issues_f32 (int64_t *order, int64_t *n_order, const uint8_t *issues,
                         const float *probs, const int32_t *labels, int64_t n, int c,
                         KdfClRank rank_by, GError **error)
{
  Probs p = { probs, FALSE, c };
  return order_issues (order, n_order, issues, &p, labels, n, c, rank_by, FALSE, error);
}

/* ---- sharded forms (kdflow/dist.h) ------------------------------------------------
 * Every rank reads the rows of its block kdf_dist_shard(N) only; what needs all rows:
 *  - the given-label counts, the confident joint and its totals: integer counts,
 *    summed across ranks (exact);
 *  - the thresholds: numpy's pairwise sum of each class's self-confidences in index
 *    order is not a sum of per-rank partial sums (the pairwise tree depends on where
 *    the values sit), so each rank sends its self-confidences sorted by class (8 bytes
 *    a row) and every rank sums each class's values, concatenated in rank order =
 *    index order, exactly as one process does;
 *  - calibration and prune counts are then computed from the same integers on every
 *    rank;
 *  - the prune_by_noise_rate / prune_by_class selection: the T rows of a cell with the
 *    largest margin (ties to the lower index, a strict total order) are among the union
 *    of each rank's own T best, so each rank sends its T best of every cell (key,
 *    index) and every rank selects the T best of the union;
 *  - the flags are gathered.
 * No step depends on the rank count, so the flags, thresholds and matrices are the
 * one-process ones bit for bit. */
typedef struct {
  double key;
  int32_t index; /* the row (N < 2^31: kdf_check_size) */
  int32_t cell;  /* j·C + k for prune_by_noise_rate, C² + k for prune_by_class */
} Candidate;

/* Appends this block's best min(TAKE, m) of KEY (over ROWS[0..m)) to *OUT as CELL. */
static void
add_candidates (GArray *out, const int64_t *rows, const double *key, int64_t m, int64_t take,
                int64_t cell, KdfKeyIndex *buf)
{
  const int64_t got = select_entries (key, m, take, buf);
  for (int64_t e = 0; e < got; e++) {
    Candidate cand = { buf[e].key, (int32_t) rows[buf[e].index], (int32_t) cell };
    g_array_append_val (out, cand);
  }
}

static gboolean
prune_sharded (uint8_t *by_rate, uint8_t *by_class, const Probs *p, const int32_t *labels,
               int64_t from, int64_t to, int c, const int64_t *given_count, const int64_t *pcm,
               int64_t min_examples, GError **error)
{
  const int64_t m_all = to - from;
  int64_t *start = g_new0 (int64_t, c + 1), *rows = g_new (int64_t, MAX (m_all, 1));
  for (int64_t i = from; i < to; i++)
    start[labels[i] + 1]++;
  for (int k = 0; k < c; k++)
    start[k + 1] += start[k];
  int64_t *fill = g_memdup2 (start, (gsize) c * sizeof *start);
  for (int64_t i = from; i < to; i++)
    rows[fill[labels[i]]++] = i;
  g_free (fill);
  int64_t largest = 1;
  for (int k = 0; k < c; k++)
    largest = MAX (largest, start[k + 1] - start[k]);
  double *key = g_new (double, largest), *cols = g_new (double, largest * c);
  KdfKeyIndex *buf = g_new (KdfKeyIndex, 2 * largest + 64);
  GArray *cands = g_array_new (FALSE, FALSE, sizeof (Candidate));
  const int64_t cc = (int64_t) c * c;
  for (int k = 0; k < c; k++) {
    const int64_t m = given_count[k]; /* the class's size over all ranks */
    const int64_t *rk = rows + start[k], mk = start[k + 1] - start[k];
    if (m <= min_examples || m <= 1 || mk == 0)
      continue;
    /* the class's rows one column per class, as prune_class does: each margin is then
     * a contiguous difference of two columns (the same doubles) */
    for (int64_t t = 0; t < mk; t++)
      for (int j = 0; j < c; j++)
        cols[(int64_t) j * mk + t] = P (p, rk[t], j);
    const double *ck = cols + (int64_t) k * mk;
    if (by_rate)
      for (int j = 0; j < c; j++) {
        int64_t take = pcm[(int64_t) j * c + k];
        if (j == k || take <= 0)
          continue;
        if (take >= m) { /* the whole class, wherever its rows are */
          for (int64_t t = 0; t < mk; t++)
            by_rate[rk[t]] = 1;
          continue;
        }
        const double *cj = cols + (int64_t) j * mk;
        for (int64_t t = 0; t < mk; t++)
          key[t] = cj[t] - ck[t];
        add_candidates (cands, rk, key, mk, take, (int64_t) j * c + k, buf);
      }
    if (by_class) {
      int64_t take = m - pcm[(int64_t) k * c + k];
      if (take >= m) {
        for (int64_t t = 0; t < mk; t++)
          by_class[rk[t]] = 1;
      } else if (take >= 1) {
        for (int64_t t = 0; t < mk; t++)
          key[t] = -ck[t];
        add_candidates (cands, rk, key, mk, take, cc + k, buf);
      }
    }
  }
  g_free (key);
  g_free (cols);
  g_free (buf);
  g_free (rows);
  g_free (start);

  int64_t bytes = 0;
  Candidate *all = kdf_dist_allgatherv (cands->data, (int64_t) cands->len * sizeof (Candidate),
                                       &bytes, NULL, error);
  g_array_free (cands, TRUE);
  if (all == NULL)
    return FALSE;
  /* the union by cell (a counting sort), then the T best of each cell by the same
   * selection as one process: linear, no sort of the union */
  const int64_t n_all = bytes / (int64_t) sizeof (Candidate), cells = cc + c;
  int64_t *first = g_new0 (int64_t, cells + 1);
  for (int64_t a = 0; a < n_all; a++)
    first[all[a].cell + 1]++;
  for (int64_t e = 0; e < cells; e++)
    first[e + 1] += first[e];
  KdfKeyIndex *v = g_new (KdfKeyIndex, MAX (n_all, 1));
  int64_t *next = g_memdup2 (first, (gsize) cells * sizeof *first);
  for (int64_t a = 0; a < n_all; a++) {
    KdfKeyIndex *x = v + next[all[a].cell]++;
    x->key = all[a].key;
    x->index = all[a].index;
  }
  g_free (next);
  g_free (all);
  for (int64_t cell = 0; cell < cells; cell++) {
    const int64_t m = first[cell + 1] - first[cell];
    if (m == 0)
      continue;
    int64_t take;
    uint8_t *flag;
    if (cell >= cc) {
      const int k = (int) (cell - cc);
      take = given_count[k] - pcm[(int64_t) k * c + k];
      flag = by_class;
    } else {
      take = pcm[cell];
      flag = by_rate;
    }
    KdfKeyIndex *seg = v + first[cell];
    if (take < m)
      kdf_select_top (seg, m, take);
    for (int64_t e = 0; e < MIN (take, m); e++)
      if (seg[e].index >= from && seg[e].index < to)
        flag[seg[e].index] = 1;
  }
  g_free (v);
  g_free (first);
  return TRUE;
}

static gboolean
confident_learning_sharded (uint8_t *issues, const Probs *p, const int32_t *labels, int64_t n,
                            int c, const KdfClOptions *opt, KdfClResult *result, GError **error)
{
  KdfClOptions defaults;
  if (opt == NULL) {
    kdf_cl_options_init (&defaults);
    opt = &defaults;
  }
  if (!cl_check_params (n, c, opt, error))
    return FALSE;
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  if (!kdf_dist_agree (cl_check_rows (p, labels, from, to, c, error), "confident_learning",
                       error))
    return FALSE;
  const int size = kdf_dist_size (), me = kdf_dist_rank ();
  const int64_t cc = (int64_t) c * c;
  KdfClResult res = { 0 };
  res.c = c;
  res.thresholds = g_new0 (double, c);
  res.confident_joint = g_new0 (int64_t, cc + 2);
  res.calibrated_joint = g_new0 (int64_t, cc);
  res.prune_counts = g_new0 (int64_t, cc);
  int64_t *given_count = g_new0 (int64_t, c);
  uint8_t *by_class = NULL;
  gboolean ok = FALSE;

  /* Step 1. Rank r's class counts in row r of COUNTS; its self-confidences, by class
   * then index, in its own block of SELF. */
  int64_t *counts = g_new0 (int64_t, (int64_t) size * c);
  int64_t *mine = counts + (int64_t) me * c;
  for (int64_t i = from; i < to; i++)
    mine[labels[i]]++;
  double *self = g_new (double, MAX (n, 1));
  {
    int64_t *fill = g_new (int64_t, c);
    for (int k = 0, at = 0; k < c; at += mine[k], k++)
      fill[k] = from + at;
    for (int64_t i = from; i < to; i++)
      self[fill[labels[i]]++] = P (p, i, labels[i]);
    g_free (fill);
  }
  if (!kdf_dist_allreduce_i64 (counts, (int64_t) size * c, KDF_DIST_SUM, error) ||
      !kdf_dist_allgather_rows (self, n, sizeof *self, error)) {
    g_free (self);
    g_free (counts);
    goto out;
  }
  for (int r = 0; r < size; r++)
    for (int k = 0; k < c; k++)
      given_count[k] += counts[(int64_t) r * c + k];
  {
    double *v = g_new (double, MAX (n, 1));
    int64_t *at = g_new (int64_t, size); /* where rank r's current class starts in SELF */
    for (int r = 0; r < size; r++) {
      int64_t hi;
      kdf_dist_shard_of (n, r, &at[r], &hi);
    }
    for (int k = 0; k < c; k++) {
      int64_t m = 0;
      for (int r = 0; r < size; r++) {
        const int64_t cnt = counts[(int64_t) r * c + k];
        memcpy (v + m, self + at[r], (size_t) cnt * sizeof *v);
        m += cnt;
        at[r] += cnt;
      }
      res.thresholds[k] = class_threshold (v, m);
    }
    g_free (at);
    g_free (v);
  }
  g_free (self);
  g_free (counts);

  /* Step 2 on this block, the counts summed (with n_confident and n_off_diagonal in
   * two more entries). */
  int64_t *joint = res.confident_joint;
  memset (issues + from, 0, (size_t) (to - from));
  uint8_t *off_diagonal = g_new (uint8_t, MAX (n, 1));
  joint_rows (&res, off_diagonal, p, labels, from, to, c, opt->argmax_above_threshold);
  joint[cc] = res.n_confident;
  joint[cc + 1] = res.n_off_diagonal;
  if (!kdf_dist_allreduce_i64 (joint, cc + 2, KDF_DIST_SUM, error)) {
    g_free (off_diagonal);
    goto out;
  }
  res.n_confident = joint[cc];
  res.n_off_diagonal = joint[cc + 1];
  joint_clip_diagonal (joint, c);
  calibrate (res.calibrated_joint, res.confident_joint, given_count, c);
  prune_counts (res.prune_counts, res.calibrated_joint, given_count, c, opt);

  switch (opt->filter) {
  case KDF_CL_PRUNE_BY_NOISE_RATE:
  case KDF_CL_PRUNE_BY_CLASS:
  case KDF_CL_BOTH: {
    gboolean rate = opt->filter != KDF_CL_PRUNE_BY_CLASS;
    gboolean klass = opt->filter != KDF_CL_PRUNE_BY_NOISE_RATE;
    by_class = klass ? g_new0 (uint8_t, MAX (n, 1)) : NULL;
    if (!prune_sharded (rate ? issues : NULL, by_class, p, labels, from, to, c, given_count,
                        res.prune_counts, opt->min_examples_per_class, error)) {
      g_free (off_diagonal);
      goto out;
    }
    if (opt->filter == KDF_CL_PRUNE_BY_CLASS)
      memcpy (issues + from, by_class + from, (size_t) (to - from));
    else if (opt->filter == KDF_CL_BOTH)
      for (int64_t i = from; i < to; i++)
        issues[i] = issues[i] && by_class[i];
    break;
  }
  case KDF_CL_CONFIDENT_LEARNING:
    memcpy (issues + from, off_diagonal + from, (size_t) (to - from));
    break;
  case KDF_CL_PREDICTED_NEQ_GIVEN:
    for (int64_t i = from; i < to; i++) {
      int best = 0;
      for (int j = 1; j < c; j++)
        if (P (p, i, j) > P (p, i, best))
          best = j;
      issues[i] = best != labels[i];
    }
    break;
  }
  g_free (off_diagonal);

  /* Step 6 on this block; the flags gathered. */
  res.n_flagged = unflag_rows (issues, p, labels, from, to, c);
  ok = kdf_dist_allreduce_i64 (&res.n_flagged, 1, KDF_DIST_SUM, error) &&
       kdf_dist_allgather_rows (issues, n, 1, error);
out:
  g_free (by_class);
  g_free (given_count);
  if (ok && result)
    *result = res;
  else
    kdf_cl_result_clear (&res);
  return ok;
}

gboolean
kdf_confident_learning_sharded_f64 (uint8_t *issues, const double *probs, const int32_t *labels,
                                    int64_t n, int c, const KdfClOptions *opt,
                                    KdfClResult *result, GError **error)
{
  g_return_val_if_fail (issues != NULL && probs != NULL && labels != NULL, FALSE);
  Probs p = { probs, TRUE, c };
  return kdf_dist_active () ? confident_learning_sharded (issues, &p, labels, n, c, opt, result, error)
                            : confident_learning (issues, &p, labels, n, c, opt, result, error);
}

gboolean
kdf_confident_learning_sharded_f32 (uint8_t *issues, const float *probs, const int32_t *labels,
                                    int64_t n, int c, const KdfClOptions *opt,
                                    KdfClResult *result, GError **error)
{
  g_return_val_if_fail (issues != NULL && probs != NULL && labels != NULL, FALSE);
  Probs p = { probs, FALSE, c };
  return kdf_dist_active () ? confident_learning_sharded (issues, &p, labels, n, c, opt, result, error)
                            : confident_learning (issues, &p, labels, n, c, opt, result, error);
}

gboolean
kdf_cl_order_issues_sharded_f64 (int64_t *order, int64_t *n_order, const uint8_t *issues,
                                 const double *probs, const int32_t *labels, int64_t n, int c,
                                 KdfClRank rank_by, GError **error)
{
  Probs p = { probs, TRUE, c };
  return order_issues (order, n_order, issues, &p, labels, n, c, rank_by, kdf_dist_active (), error);
}

gboolean
kdf_cl_order_issues_sharded_f32 (int64_t *order, int64_t *n_order, const uint8_t *issues,
                                 const float *probs, const int32_t *labels, int64_t n, int c,
                                 KdfClRank rank_by, GError **error)
{
  Probs p = { probs, FALSE, c };
  return order_issues (order, n_order, issues, &p, labels, n, c, rank_by, kdf_dist_active (), error);
}

gboolean
kdf_confident_learning_tensor (KdfTensor *probs, KdfTensor *labels, const KdfClOptions *opt,
                               KdfTensor **issues, KdfClResult *result, GError **error)
{
  g_return_val_if_fail (issues != NULL, FALSE);
  g_autoptr (KdfTensor) p = kdf_detect_contiguous (probs, KDF_DTYPE_F32, 2,
                                                   "confident_learning: probabilities", error);
  if (p == NULL)
    return FALSE;
  g_autoptr (KdfTensor) y = kdf_detect_contiguous (labels, KDF_DTYPE_I32, 1,
                                                   "confident_learning: labels", error);
  if (y == NULL)
    return FALSE;
  if (y->shape[0] != p->shape[0] || p->shape[1] > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "confident_learning: %" G_GINT64_FORMAT " probability rows but %" G_GINT64_FORMAT
                 " labels", p->shape[0], y->shape[0]);
    return FALSE;
  }
  g_autoptr (KdfTensor) out = kdf_tensor_new_1d (KDF_DTYPE_U8, p->shape[0]);
  if (!kdf_confident_learning_f32 (kdf_tensor_u8 (out), kdf_tensor_f32 (p), kdf_tensor_i32 (y),
                                   p->shape[0], (int) p->shape[1], opt, result, error))
    return FALSE;
  *issues = g_steal_pointer (&out);
  return TRUE;
}
