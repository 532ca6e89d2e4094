/* evaluate: the numbers a run is judged by (METHODS §1 evaluate, §3), written as
 * metrics (metrics.jsonl each tick, summary.json at the end), as per-sample .npy
 * files in the run directory, and as scalar outputs for a script to print.
 *
 * Each group of inputs is optional and evaluated when connected:
 *  - classification: `predictions` (or `logits`/probabilities, argmax taken) against
 *    `labels` → accuracy, per-class accuracy, confusion [true][predicted];
 *  - detection: `flagged` (1 = predicted noisy; or `kept`, 1 = predicted clean)
 *    and/or `score` (higher = more likely noisy; or `clean_score`, higher = cleaner)
 *    against `truth`, the oracle noise mask → precision, recall, F1 (scikit-learn's
 *    zero_division = 0), AUROC (Mann–Whitney, ties at their average rank);
 *  - refined labels: `refined` against `clean_labels` → accuracy, and on the noisy
 *    and the clean samples separately when `truth` has the same length;
 *  - human review: param `review`, a <set>_mturk.json of cleanlab/label-errors
 *    (Northcutt, Athalye & Mueller, NeurIPS 2021 D&B): how many confirmed errors
 *    (mturk.given < 3) the flagged mask catches, and its precision against them.
 * Kernels in engine/detect/metrics.c and review.c.
 *
 * A group whose inputs are not all there is skipped, not an error: through a delay
 * edge a mask has no value at tick 0 while the truth already has one. Contradictory
 * inputs (flagged and kept, score and clean_score, predictions and logits) are errors.
 * The node runs every tick so that every line of metrics.jsonl carries its
 * numbers; files are rewritten only when an input changed. Outputs computed from
 * an oracle input are themselves marked oracle, so a method cannot read the answer
 * through an evaluator. */
#include <kdflow/data.h>
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <math.h>

typedef struct {
  int n_classes;
  const char *review;
  gboolean save;
} Params;

static const KdfPortSpec inputs[] = {
  KDF_PORT ("predictions", "i32[M]", KDF_PORT_OPTIONAL, "predicted classes"),
  KDF_PORT ("logits", "f32[M,C]", KDF_PORT_OPTIONAL,
            "logits or probabilities (the argmax is the prediction)"),
  KDF_PORT ("labels", "i32[M] < C", KDF_PORT_OPTIONAL,
            "true classes for accuracy (y_test, or clean labels)"),
  KDF_PORT ("flagged", "u8[N]", KDF_PORT_OPTIONAL, "1 = predicted noisy"),
  KDF_PORT ("kept", "u8[N]", KDF_PORT_OPTIONAL, "1 = predicted clean (flagged = 1 − kept)"),
  KDF_PORT ("score", "f32[N]", KDF_PORT_OPTIONAL, "higher = more likely noisy (for AUROC)"),
  KDF_PORT ("clean_score", "f32[N]", KDF_PORT_OPTIONAL,
            "higher = more likely clean (AUROC of its negative)"),
  KDF_PORT ("truth", "u8[N]", KDF_PORT_OPTIONAL, "the true noise mask (oracle)"),
  KDF_PORT ("refined", "i32[R]", KDF_PORT_OPTIONAL, "refined labels"),
  KDF_PORT ("clean_labels", "i32[R]", KDF_PORT_OPTIONAL,
            "the true labels the refined ones are judged by (oracle)"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("accuracy", "f32[]", 0, "classification accuracy"),
  KDF_PORT ("per_class", "f32[*]", 0, "accuracy on each true class (NaN if absent)"),
  KDF_PORT ("confusion", "i32[*,*]", 0, "[true][predicted] counts, C×C"),
  KDF_PORT ("n_flagged", "f32[]", 0, "rows flagged"),
  KDF_PORT ("flagged_index", "i32[*]", 0, "the flagged rows, ascending"),
  KDF_PORT ("precision", "f32[]", 0, "detection precision against truth"),
  KDF_PORT ("recall", "f32[]", 0, "detection recall against truth"),
  KDF_PORT ("f1", "f32[]", 0, "detection F1"),
  KDF_PORT ("auroc", "f32[]", 0, "AUROC of the score against truth (NaN if one class)"),
  KDF_PORT ("refined_accuracy", "f32[]", 0, "fraction of refined labels equal to the clean ones"),
  KDF_PORT ("caught", "f32[]", 0, "review: confirmed errors among the flagged rows"),
  KDF_PORT ("confirmed", "f32[]", 0, "review: confirmed errors that map to rows"),
  KDF_PORT ("review_precision", "f32[]", 0, "review: caught / flagged"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, n_classes, 0, 0, 65536,
                 "C (0 = logits columns, else 1 + the largest label)"),
  KDF_PARAM_STRING (Params, review, "", "a <set>_mturk.json file of human-confirmed label errors"),
  KDF_PARAM_BOOL (Params, save, TRUE, "write per-sample .npy files into the run directory"),
  { 0 },
};

typedef struct {
  KdfLabelReview *review; /* parsed once; the path it came from: */
  char *review_path;
} EvalState;

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  *state = g_new0 (EvalState, 1);
  return TRUE;
}

/* A number computed from inputs with FLAGS (ground truth, the test split) carries them:
 * a script may read it, nothing that learns or selects may take it. */
static KdfTensor *
scalar (double v, guint flags)
{
  return kdf_tensor_with_flags (kdf_tensor_new_scalar_f32 ((float) v), flags);
}

static guint
provenance (const KdfTensor *t)
{
  return t ? t->flags & KDF_TENSOR_PROVENANCE : 0;
}

/* Writes T as RUN_DIR/<node>.<WHAT>.npy (when there is a run directory and param
 * save is set). */
static gboolean
save (KdfNodeCtx *ctx, const char *what, const KdfTensor *t, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  if (!p->save)
    return TRUE;
  g_autofree char *suffix = g_strdup_printf ("%s.npy", what);
  g_autofree char *path = kdf_ctx_node_file (ctx, suffix);
  return path == NULL || kdf_npy_write (path, t, error);
}

/* C: the param, the logits' columns, or 1 + the largest label or prediction — at most
 * 65536 (the param's range) so that the C×C confusion stays within reach; 0 with
 * ERROR otherwise. */
static int
infer_classes (KdfNodeCtx *ctx, const int32_t *a, const int32_t *b, int64_t n, KdfTensor *logits,
               GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  if (p->n_classes > 0)
    return p->n_classes;
  if (logits)
    return (int) logits->shape[1];
  int32_t mx = 0;
  for (int64_t i = 0; i < n; i++)
    mx = MAX (mx, MAX (a[i], b[i]));
  if (mx >= 65536) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "a label or prediction is %d: C = 1 + the largest would exceed 65536; set param "
                 "'n_classes' if the labels are right",
                 mx);
    return 0;
  }
  return mx + 1;
}

static gboolean
classification (KdfNodeCtx *ctx, gboolean write, GError **error)
{
  KdfTensor *pred_in = kdf_ctx_input_tensor (ctx, "predictions");
  KdfTensor *logits_in = kdf_ctx_input_tensor (ctx, "logits");
  KdfTensor *labels_in = kdf_ctx_input_tensor (ctx, "labels");
  if (pred_in && logits_in) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT,
                 "inputs 'predictions' and 'logits' are both connected; give one");
    return FALSE;
  }
  if (!labels_in || (!pred_in && !logits_in))
    return TRUE; /* not (yet) both there */
  const guint oracle = provenance (labels_in) | provenance (pred_in) | provenance (logits_in);
  g_autoptr (KdfTensor) labels = kdf_tensor_contiguous (labels_in);
  int64_t m = labels->shape[0];
  g_autoptr (KdfTensor) pred = NULL;
  g_autoptr (KdfTensor) logits = NULL;
  if (pred_in) {
    pred = kdf_tensor_contiguous (pred_in);
  } else {
    logits = kdf_tensor_contiguous (logits_in);
    pred = kdf_tensor_new_1d (KDF_DTYPE_I32, m);
    if (m > 0 && !kdf_probs_argmax (kdf_tensor_i32 (pred), kdf_tensor_f32 (logits), m,
                                    (int) logits->shape[1], error)) {
      g_prefix_error (error, "input 'logits': ");
      return FALSE;
    }
  }
  if (m == 0)
    return TRUE; /* nothing to judge (a dataset without a test split) */
  int c = infer_classes (ctx, kdf_tensor_i32 (pred), kdf_tensor_i32 (labels), m, logits, error);
  if (c <= 0)
    return FALSE;
  if (!kdf_memory_check_elements ((guint64) c * (guint64) c, 3 * sizeof (int64_t),
                                  "the confusion matrix", error))
    return FALSE;
  g_autofree int64_t *conf = g_new0 (int64_t, (gsize) c * c);
  g_autofree double *per = g_new0 (double, c);
  double acc = 0;
  if (!kdf_eval_confusion (conf, per, &acc, kdf_tensor_i32 (pred), kdf_tensor_i32 (labels), m, c,
                           error))
    return FALSE;
  kdf_ctx_metric (ctx, "accuracy", acc);
  KdfTensor *tper = kdf_tensor_new_1d (KDF_DTYPE_F32, c);
  KdfTensor *tconf = kdf_tensor_new_2d (KDF_DTYPE_I32, c, c);
  for (int k = 0; k < c; k++) {
    char key[32];
    g_snprintf (key, sizeof key, "class_accuracy.%d", k);
    kdf_ctx_metric (ctx, key, per[k]);
    kdf_tensor_f32 (tper)[k] = (float) per[k];
  }
  for (int64_t a = 0; a < (int64_t) c * c; a++)
    kdf_tensor_i32 (tconf)[a] = (int32_t) MIN (conf[a], G_MAXINT32);
  tper = kdf_tensor_with_flags (tper, oracle);
  tconf = kdf_tensor_with_flags (tconf, oracle);
  gboolean ok = !write || (save (ctx, "predictions", pred, error) &&
                           save (ctx, "confusion", tconf, error));
  kdf_ctx_set_output_tensor (ctx, "accuracy", scalar (acc, oracle));
  kdf_ctx_set_output_tensor (ctx, "per_class", tper);
  kdf_ctx_set_output_tensor (ctx, "confusion", tconf);
  return ok;
}

static gboolean
load_review (KdfNodeCtx *ctx, EvalState *s, GError **error)
{
  const char *path = ((const Params *) kdf_ctx_params (ctx))->review;
  if (*path == '\0') {
    g_clear_pointer (&s->review, kdf_label_review_free);
    return TRUE;
  }
  if (s->review && g_strcmp0 (s->review_path, path) == 0)
    return TRUE;
  g_clear_pointer (&s->review, kdf_label_review_free);
  g_free (s->review_path);
  s->review_path = g_strdup (path);
  s->review = kdf_label_review_load (path, error);
  if (s->review == NULL) {
    g_prefix_error (error, "param 'review': ");
    return FALSE;
  }
  return TRUE;
}

static gboolean
detection (KdfNodeCtx *ctx, EvalState *s, gboolean write, GError **error)
{
  KdfTensor *flagged_in = kdf_ctx_input_tensor (ctx, "flagged");
  KdfTensor *kept_in = kdf_ctx_input_tensor (ctx, "kept");
  KdfTensor *score_in = kdf_ctx_input_tensor (ctx, "score");
  KdfTensor *cscore_in = kdf_ctx_input_tensor (ctx, "clean_score");
  KdfTensor *truth_in = kdf_ctx_input_tensor (ctx, "truth");
  if (flagged_in && kept_in) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT, "inputs 'flagged' and 'kept' are both "
                 "connected; give one");
    return FALSE;
  }
  if (score_in && cscore_in) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PORT, "inputs 'score' and 'clean_score' are both "
                 "connected; give one");
    return FALSE;
  }
  if (!load_review (ctx, s, error))
    return FALSE;
  KdfTensor *mask_in = flagged_in ? flagged_in : kept_in;
  KdfTensor *sc_in = score_in ? score_in : cscore_in;
  g_autoptr (KdfTensor) truth = truth_in ? kdf_tensor_contiguous (truth_in) : NULL;
  const guint oracle = provenance (truth);
  gboolean ok = TRUE;

  if (mask_in) {
    int64_t n = mask_in->shape[0];
    g_autoptr (KdfTensor) flagged = kdf_tensor_new_1d (KDF_DTYPE_U8, n);
    uint8_t *pf = kdf_tensor_u8 (flagged);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
      gboolean on = kdf_tensor_u8 (mask_in)[i * mask_in->strides[0]] != 0;
      pf[i] = flagged_in ? on : !on;
      k += pf[i];
    }
    KdfTensor *index = kdf_tensor_new_1d (KDF_DTYPE_I32, k);
    for (int64_t i = 0, w = 0; i < n; i++)
      if (pf[i])
        kdf_tensor_i32 (index)[w++] = (int32_t) i;
    kdf_ctx_metric (ctx, "flagged", (double) k);
    kdf_ctx_set_output_tensor (ctx, "n_flagged", scalar ((double) k, FALSE));
    if (write)
      ok = ok && save (ctx, "flagged", flagged, error) && save (ctx, "flagged_index", index, error);
    kdf_ctx_set_output_tensor (ctx, "flagged_index", index);
    if (truth && n > 0) {
      KdfDetectionMetrics d;
      kdf_eval_detection (&d, pf, kdf_tensor_u8 (truth), n);
      kdf_ctx_metric (ctx, "precision", d.precision);
      kdf_ctx_metric (ctx, "recall", d.recall);
      kdf_ctx_metric (ctx, "f1", d.f1);
      kdf_ctx_metric (ctx, "true_positives", (double) d.tp);
      kdf_ctx_metric (ctx, "noisy", (double) (d.tp + d.fn));
      kdf_ctx_set_output_tensor (ctx, "precision", scalar (d.precision, oracle));
      kdf_ctx_set_output_tensor (ctx, "recall", scalar (d.recall, oracle));
      kdf_ctx_set_output_tensor (ctx, "f1", scalar (d.f1, oracle));
    }
    if (s->review && ok) {
      KdfReviewScore r;
      if (!kdf_label_review_score (&r, s->review, pf, n, error)) {
        g_prefix_error (error, "param 'review' (%s): ", s->review_path);
        return FALSE;
      }
      double mapped = (double) (s->review->n_confirmed - s->review->n_unmapped);
      kdf_ctx_metric (ctx, "review_caught", (double) r.caught);
      kdf_ctx_metric (ctx, "review_confirmed", mapped);
      kdf_ctx_metric (ctx, "review_unmapped", (double) s->review->n_unmapped);
      kdf_ctx_metric (ctx, "review_precision", r.precision);
      kdf_ctx_metric (ctx, "review_recall", r.recall);
      kdf_ctx_set_output_tensor (ctx, "caught", scalar ((double) r.caught, FALSE));
      kdf_ctx_set_output_tensor (ctx, "confirmed", scalar (mapped, FALSE));
      kdf_ctx_set_output_tensor (ctx, "review_precision", scalar (r.precision, FALSE));
      if (write) {
        KdfTensor *caught = kdf_tensor_new_1d (KDF_DTYPE_I32, r.caught);
        int64_t w = 0;
        for (guint j = 0; j < s->review->n_reviewed; j++) {
          const KdfReviewRecord *rec = &s->review->records[j];
          if (rec->confirmed && rec->row >= 0 && rec->row < n && pf[rec->row] && w < r.caught)
            kdf_tensor_i32 (caught)[w++] = (int32_t) rec->row;
        }
        ok = save (ctx, "caught_index", caught, error);
        kdf_tensor_unref (caught);
      }
    }
  }
  if (sc_in && ok) {
    int64_t n = sc_in->shape[0];
    g_autoptr (KdfTensor) score = kdf_tensor_copy (sc_in);
    kdf_tensor_set_oracle (score, FALSE);
    if (cscore_in) {
      float *p = kdf_tensor_f32 (score);
      for (int64_t i = 0; i < n; i++)
        p[i] = -p[i];
    }
    if (write)
      ok = save (ctx, "score", score, error);
    if (ok && truth && n > 0) {
      double auroc = NAN;
      if (!kdf_eval_auroc (&auroc, kdf_tensor_f32 (score), kdf_tensor_u8 (truth), n, error)) {
        g_prefix_error (error, "input '%s': ", score_in ? "score" : "clean_score");
        return FALSE;
      }
      kdf_ctx_metric (ctx, "auroc", auroc);
      kdf_ctx_set_output_tensor (ctx, "auroc", scalar (auroc, oracle));
    }
  }
  return ok;
}

static gboolean
refinement (KdfNodeCtx *ctx, gboolean write, GError **error)
{
  KdfTensor *refined_in = kdf_ctx_input_tensor (ctx, "refined");
  KdfTensor *clean_in = kdf_ctx_input_tensor (ctx, "clean_labels");
  if (!refined_in || !clean_in)
    return TRUE;
  g_autoptr (KdfTensor) refined = kdf_tensor_contiguous (refined_in);
  g_autoptr (KdfTensor) clean = kdf_tensor_contiguous (clean_in);
  KdfTensor *truth_in = kdf_ctx_input_tensor (ctx, "truth");
  g_autoptr (KdfTensor) truth = truth_in && truth_in->shape[0] == refined->shape[0]
                                    ? kdf_tensor_contiguous (truth_in) : NULL;
  int64_t n = refined->shape[0];
  if (write && !save (ctx, "refined", refined, error))
    return FALSE;
  if (n == 0)
    return TRUE;
  double all, on_noisy, on_clean;
  if (!kdf_eval_refined_accuracy (&all, &on_noisy, &on_clean, kdf_tensor_i32 (refined),
                                  kdf_tensor_i32 (clean), truth ? kdf_tensor_u8 (truth) : NULL, n,
                                  error))
    return FALSE;
  kdf_ctx_metric (ctx, "refined_accuracy", all);
  kdf_ctx_metric (ctx, "refined_accuracy_noisy", on_noisy);
  kdf_ctx_metric (ctx, "refined_accuracy_clean", on_clean);
  kdf_ctx_set_output_tensor (ctx, "refined_accuracy",
                             scalar (all, provenance (clean_in) | provenance (refined_in)));
  return TRUE;
}

/* Files are written on the first run and whenever an input changed. */
static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  gboolean changed = kdf_ctx_input_changed (ctx, NULL);
  return classification (ctx, changed, error) && detection (ctx, state, changed, error) &&
         refinement (ctx, changed, error);
}

static void
finalize (gpointer state)
{
  EvalState *s = state;
  if (s == NULL)
    return;
  kdf_label_review_free (s->review);
  g_free (s->review_path);
  g_free (s);
}

static const KdfNodeClass evaluate_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "evaluate",
  .summary = "accuracy, confusion, detection P/R/F1/AUROC, refined-label and review scores",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = finalize,
  .flags = KDF_NODE_EVALUATOR | KDF_NODE_EVERY_TICK,
};

KDF_PLUGIN (evaluate, &evaluate_class)
