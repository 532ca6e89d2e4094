/* Blind KD's agreement score and tipping point (Kaiser et al., arXiv 2211.11355),
 * and the PLL top-k candidate sets (Jeong & Chung, arXiv 2402.10482). */
#include "config.h"

#include "detect-private.h"

#include <kdflow/dist.h>

#include <math.h>
#include <string.h>

/* p_A = normalise(p^T ⊙ p^S) row-wise, a_i = p_A[i, ỹ_i] (the authors' calc of
 * p_agree in train.py). An all-zero product row (disjoint supports) would be 0/0
 * there; here it becomes uniform, which scores the sample as undecided. */
static gboolean
agreement_check (const float *p_teacher, const float *p_student, const int32_t *labels,
                 gboolean scores, int64_t from, int64_t to, int c, GError **error)
{
  const int64_t m = to - from;
  gboolean ok = kdf_check_finite_f32 (p_teacher + from * c, m * c,
                                      "agreement: teacher probabilities", error) &&
                kdf_check_finite_f32 (p_student + from * c, m * c,
                                      "agreement: student probabilities", error) &&
                (!scores || kdf_check_labels (labels + from, m, c, "agreement: labels", error));
  if (!ok && from > 0)
    g_prefix_error (error, "rows from %" G_GINT64_FORMAT ": ", (gint64) from);
  return ok;
}

static void
agreement_rows (float *score, float *agree, const float *p_teacher, const float *p_student,
                const int32_t *labels, int64_t from, int64_t to, int c)
{
  for (int64_t i = from; i < to; i++) {
    const float *t = p_teacher + i * c, *s = p_student + i * c;
    double sum = 0;
    for (int j = 0; j < c; j++)
      sum += (double) t[j] * (double) s[j];
    if (agree)
      for (int j = 0; j < c; j++)
        agree[i * c + j] = sum > 0 ? (float) ((double) t[j] * s[j] / sum) : 1.0f / c;
    if (score) {
      int y = labels[i];
      score[i] = sum > 0 ? (float) ((double) t[y] * s[y] / sum) : 1.0f / c;
    }
  }
}

/* p_A = normalise(p^T ⊙ p^S) row-wise, a_i = p_A[i, ỹ_i] (the authors' calc of
 * p_agree in train.py). An all-zero product row (disjoint supports) would be 0/0
 * there; here it becomes uniform, which scores the sample as undecided. */
/* SHARDED: each rank computes its block of rows, the rows are gathered. */
static gboolean
agreement (float *score, float *agree, const float *p_teacher, const float *p_student,
           const int32_t *labels, int64_t n, int c, gboolean sharded, GError **error)
{
  g_return_val_if_fail (p_teacher != NULL && p_student != NULL, FALSE);
  if (!kdf_check_size (n, c, "agreement", error))
    return FALSE;
  if (score && labels == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "agreement: scores need the given labels");
    return FALSE;
  }
  int64_t from = 0, to = n;
  if (sharded)
    kdf_dist_shard (n, &from, &to);
  gboolean ok = agreement_check (p_teacher, p_student, labels, score != NULL, from, to, c, error);
  if (sharded)
    ok = kdf_dist_agree (ok, "agreement", error);
  if (!ok)
    return FALSE;
  agreement_rows (score, agree, p_teacher, p_student, labels, from, to, c);
  return !sharded ||
         ((!agree || kdf_dist_allgather_rows (agree, n, (int64_t) c * sizeof *agree, error)) &&
          (!score || kdf_dist_allgather_rows (score, n, sizeof *score, error)));
}

gboolean
kdf_agreement (float *score, float *agree, const float *p_teacher, const float *p_student,
               const int32_t *labels, int64_t n, int c, GError **error)
{
  return agreement (score, agree, p_teacher, p_student, labels, n, c, FALSE, error);
}

gboolean
kdf_agreement_sharded (float *score, float *agree, const float *p_teacher,
                       const float *p_student, const int32_t *labels, int64_t n, int c,
                       GError **error)
{
  return agreement (score, agree, p_teacher, p_student, labels, n, c, kdf_dist_active (), error);
}

gboolean
kdf_mean_max_prob (double *m, const float *probs, int64_t n, int c, GError **error)
{
  g_return_val_if_fail (m != NULL && probs != NULL, FALSE);
  if (!kdf_check_size (n, c, "tipping_point", error) ||
      !kdf_check_finite_f32 (probs, n * c, "tipping_point: probabilities", error))
    return FALSE;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    float best = probs[i * c];
    for (int j = 1; j < c; j++)
      best = MAX (best, probs[i * c + j]);
    sum += best;
  }
  *m = sum / (double) n;
  return TRUE;
}

/* The authors' detect_overfitting_epoch without its `len(x) == 10: return 8`
 * shortcut (a leftover that fires on any 10-tick history). */
gboolean
kdf_tipping_point (int64_t *epoch, const double *history, int64_t n, GError **error)
{
  g_return_val_if_fail (epoch != NULL, FALSE);
  *epoch = -1;
  if (n < 0 || (n > 0 && history == NULL)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "tipping_point: bad history length %"
                 G_GINT64_FORMAT, n);
    return FALSE;
  }
  if (!kdf_check_finite_f64 (history, n, "tipping_point: history", error))
    return FALSE;
  if (n < 6)
    return TRUE;
  for (int64_t i = 2; i + 2 < n; i++) {
    double v = history[i];
    if (v > history[i - 2] && v > history[i - 1] && v > history[i + 1] && v > history[i + 2]) {
      *epoch = i;
      return TRUE;
    }
  }
  return TRUE;
}

/* Top-k by repeated selection: k is tiny (2 in the paper), so k passes over the
 * row beat a sort; strict '>' keeps the lower class on ties. */
gboolean
kdf_topk_refine (float *soft, uint8_t *mask, int32_t *top, const float *probs, int64_t n,
                 int c, int k, GError **error)
{
  g_return_val_if_fail (probs != NULL, FALSE);
  if (!kdf_check_size (n, c, "topk_refine", error) ||
      !kdf_check_finite_f32 (probs, n * c, "topk_refine: probabilities", error))
    return FALSE;
  if (k < 1 || k > c) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "topk_refine: expected 1 ≤ k ≤ C = %d, found %d", c, k);
    return FALSE;
  }
  uint8_t *taken = g_new (uint8_t, c);
  for (int64_t i = 0; i < n; i++) {
    const float *row = probs + i * c;
    memset (taken, 0, (size_t) c);
    if (soft)
      memset (soft + i * c, 0, (size_t) c * sizeof *soft);
    if (mask)
      memset (mask + i * c, 0, (size_t) c);
    for (int r = 0; r < k; r++) {
      int best = -1;
      for (int j = 0; j < c; j++)
        if (!taken[j] && (best < 0 || row[j] > row[best]))
          best = j;
      taken[best] = 1;
      if (soft)
        soft[i * c + best] = 1.0f / (float) k;
      if (mask)
        mask[i * c + best] = 1;
      if (top)
        top[i * k + r] = best;
    }
  }
  g_free (taken);
  return TRUE;
}
