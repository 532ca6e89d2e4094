/* evaluate: classification accuracy and confusion, detection precision / recall /
 * F1 / AUROC against the oracle noise mask, refined-label accuracy (METHODS §1
 * evaluate, §3). */
#include "config.h"

#include "detect-private.h"

#include <math.h>
#include <string.h>

gboolean
kdf_eval_confusion (int64_t *confusion, double *per_class, double *accuracy,
                    const int32_t *pred, const int32_t *truth, int64_t n, int c, GError **error)
{
  g_return_val_if_fail (pred != NULL && truth != NULL, FALSE);
  if (!kdf_check_size (n, c, "evaluate", error) ||
      !kdf_check_labels (pred, n, c, "evaluate: predictions", error) ||
      !kdf_check_labels (truth, n, c, "evaluate: labels", error))
    return FALSE;
  int64_t *conf = confusion ? confusion : g_new (int64_t, (int64_t) c * c);
  memset (conf, 0, (size_t) c * (size_t) c * sizeof *conf);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i++) {
    conf[(int64_t) truth[i] * c + pred[i]]++;
    correct += pred[i] == truth[i];
  }
  if (per_class)
    for (int k = 0; k < c; k++) {
      int64_t row = 0;
      for (int j = 0; j < c; j++)
        row += conf[(int64_t) k * c + j];
      per_class[k] = row ? (double) conf[(int64_t) k * c + k] / (double) row : NAN;
    }
  if (accuracy)
    *accuracy = (double) correct / (double) n;
  if (conf != confusion)
    g_free (conf);
  return TRUE;
}

gboolean
kdf_probs_argmax (int32_t *pred, const float *probs, int64_t n, int c, GError **error)
{
  g_return_val_if_fail (pred != NULL && probs != NULL, FALSE);
  if (!kdf_check_size (n, c, "argmax", error) ||
      !kdf_check_finite_f32 (probs, n * c, "argmax: probabilities", error))
    return FALSE;
  for (int64_t i = 0; i < n; i++) {
    const float *row = probs + i * c;
    int best = 0;
    for (int j = 1; j < c; j++)
      if (row[j] > row[best])
        best = j;
    pred[i] = best;
  }
  return TRUE;
}

void
kdf_eval_detection (KdfDetectionMetrics *out, const uint8_t *flagged, const uint8_t *truth,
                    int64_t n)
{
  g_return_if_fail (out != NULL);
  memset (out, 0, sizeof *out);
  for (int64_t i = 0; i < n; i++) {
    gboolean f = flagged[i] != 0, t = truth[i] != 0;
    if (f && t)
      out->tp++;
    else if (f)
      out->fp++;
    else if (t)
      out->fn++;
    else
      out->tn++;
  }
  /* Zero where undefined, as scikit-learn's zero_division default does. */
  out->precision = out->tp + out->fp ? (double) out->tp / (double) (out->tp + out->fp) : 0.0;
  out->recall = out->tp + out->fn ? (double) out->tp / (double) (out->tp + out->fn) : 0.0;
  double pr = out->precision + out->recall;
  out->f1 = pr > 0 ? 2.0 * out->precision * out->recall / pr : 0.0;
}

/* AUROC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋) with R₊ the sum of the positives' ranks in
 * ascending score order, tied scores sharing their average rank (Mann & Whitney
 * 1947; Hanley & McNeil 1982). One stable radix sort: O(N). */
gboolean
kdf_eval_auroc (double *auroc, const float *score, const uint8_t *truth, int64_t n,
                GError **error)
{
  g_return_val_if_fail (auroc != NULL && score != NULL && truth != NULL, FALSE);
  if (!kdf_check_size (n, 1, "auroc", error) ||
      !kdf_check_finite_f32 (score, n, "auroc: scores", error))
    return FALSE;
  int64_t pos = 0;
  for (int64_t i = 0; i < n; i++)
    pos += truth[i] != 0;
  int64_t neg = n - pos;
  if (pos == 0 || neg == 0) {
    *auroc = NAN;
    return TRUE;
  }
  int32_t *order = g_new (int32_t, n);
  kdf_argsort_f32 (order, score, n);
  /* Ranks are 1-based; a tie run [a, b) gets (a+1 + b)/2. Sums in double are exact
   * below 2^53, i.e. for any N this API accepts. */
  double rank_sum = 0;
  for (int64_t a = 0; a < n;) {
    int64_t b = a + 1;
    while (b < n && score[order[b]] == score[order[a]])
      b++;
    double avg = (double) (a + 1 + b) / 2.0;
    for (int64_t t = a; t < b; t++)
      if (truth[order[t]])
        rank_sum += avg;
    a = b;
  }
  g_free (order);
  *auroc = (rank_sum - (double) pos * ((double) pos + 1) / 2.0) / ((double) pos * (double) neg);
  return TRUE;
}

gboolean
kdf_eval_refined_accuracy (double *overall, double *on_noisy, double *on_clean,
                           const int32_t *refined, const int32_t *clean, const uint8_t *noisy,
                           int64_t n, GError **error)
{
  g_return_val_if_fail (refined != NULL && clean != NULL, FALSE);
  if (!kdf_check_size (n, 1, "refined_accuracy", error))
    return FALSE;
  int64_t hit = 0, n_noisy = 0, hit_noisy = 0;
  for (int64_t i = 0; i < n; i++) {
    gboolean ok = refined[i] == clean[i];
    hit += ok;
    if (noisy && noisy[i]) {
      n_noisy++;
      hit_noisy += ok;
    }
  }
  if (overall)
    *overall = (double) hit / (double) n;
  if (on_noisy)
    *on_noisy = noisy && n_noisy ? (double) hit_noisy / (double) n_noisy : NAN;
  if (on_clean)
    *on_clean = noisy && n - n_noisy ? (double) (hit - hit_noisy) / (double) (n - n_noisy) : NAN;
  return TRUE;
}
