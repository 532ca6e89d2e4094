/* agreement — Blind KD's agreement of teacher and student (METHODS §1 extra kinds;
 * Kaiser et al., arXiv 2211.11355; kernel kdf_agreement in engine/detect/agreement.c):
 *
 *   p_A = normalise(p^T ⊙ p^S) row-wise,  score a_i = p_A[i, ỹ_i],  prediction argmax p_A.
 *
 * Each network comes as probabilities or as logits (softmax at T = 1, as the authors
 * compute p from the training pass). An all-zero product row gets the uniform 1/C
 * (the authors divide by zero). Without labels there are no scores (a test set). */
#include <kdflow/detect.h>
#include <kdflow/dist.h>
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

static const KdfPortSpec inputs[] = {
  KDF_PORT ("teacher_probs", "f32[N,C]", KDF_PORT_OPTIONAL,
            "the teacher's probabilities (or teacher_logits)"),
  KDF_PORT ("teacher_logits", "f32[N,C]", KDF_PORT_OPTIONAL, "the teacher's logits (softmax here)"),
  KDF_PORT ("student_probs", "f32[N,C]", KDF_PORT_OPTIONAL,
            "the student's probabilities (or student_logits)"),
  KDF_PORT ("student_logits", "f32[N,C]", KDF_PORT_OPTIONAL, "the student's logits (softmax here)"),
  KDF_PORT ("labels", "i32[N] < C", KDF_PORT_OPTIONAL, "the given (noisy) labels, for scores"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("probs", "f32[N,C]", 0, "p_A, the normalised product of the two distributions"),
  KDF_PORT ("scores", "f32[N]", 0,
            "a_i = p_A[i, label_i] (high = the networks agree with the label)"),
  KDF_PORT ("predictions", "i32[N]", 0, "argmax p_A (first maximum)"),
  { 0 },
};

/* The probabilities of one network, from exactly one of its two ports (transfer full). */
static KdfTensor *
network_probs (KdfNodeCtx *ctx, const char *who, GError **error)
{
  g_autofree char *pp = g_strdup_printf ("%s_probs", who), *lp = g_strdup_printf ("%s_logits", who);
  KdfTensor *probs = kdf_ctx_input_tensor (ctx, pp);
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, lp);
  if (!!probs == !!logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "connect exactly one of '%s' and '%s' (%s)",
                 pp, lp, probs ? "both are" : "neither is");
    return NULL;
  }
  if (probs)
    return kdf_tensor_contiguous (probs);
  KdfTensor *z = kdf_tensor_contiguous (logits);
  KdfTensor *p = kdf_tensor_new_2d (KDF_DTYPE_F32, z->shape[0], z->shape[1]);
  /* only this rank's block is read below (all rows with one rank) */
  int64_t from, to;
  kdf_dist_shard (z->shape[0], &from, &to);
  kdf_softmax (kdf_tensor_f32 (p) + from * z->shape[1], kdf_tensor_f32 (z) + from * z->shape[1],
               to - from, z->shape[1], 1.0);
  kdf_tensor_unref (z);
  return p;
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  g_autoptr (KdfTensor) pt = network_probs (ctx, "teacher", error);
  if (!pt)
    return FALSE;
  g_autoptr (KdfTensor) ps = network_probs (ctx, "student", error);
  if (!ps)
    return FALSE;
  const int64_t n = pt->shape[0], c = pt->shape[1];
  if (c > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "too many classes (%" G_GINT64_FORMAT ")", (gint64) c);
    return FALSE;
  }
  KdfTensor *labels = kdf_ctx_input_tensor (ctx, "labels");
  g_autoptr (KdfTensor) y = labels ? kdf_tensor_contiguous (labels) : NULL;
  g_autoptr (KdfTensor) agree = kdf_tensor_new_2d (KDF_DTYPE_F32, n, c);
  g_autoptr (KdfTensor) scores = y ? kdf_tensor_new_1d (KDF_DTYPE_F32, n) : NULL;
  g_autoptr (KdfTensor) pred = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  /* under mpirun: each rank its block of rows, gathered (kdf_agreement_sharded) */
  if (!kdf_agreement_sharded (scores ? kdf_tensor_f32 (scores) : NULL, kdf_tensor_f32 (agree),
                              kdf_tensor_f32 (pt), kdf_tensor_f32 (ps), y ? kdf_tensor_i32 (y) : NULL,
                              n, (int) c, error))
    return FALSE;
  int64_t from, to;
  kdf_dist_shard (n, &from, &to);
  /* (a rank may have no rows when there are more ranks than rows) */
  if (!kdf_dist_agree (to == from ||
                         kdf_probs_argmax (kdf_tensor_i32 (pred) + from,
                                           kdf_tensor_f32 (agree) + from * c, to - from, (int) c,
                                           error),
                       "agreement", error) ||
      !kdf_dist_allgather_rows (kdf_tensor_i32 (pred), n, sizeof (int32_t), error))
    return FALSE;
  if (scores) {
    double sum = 0;
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++) {
      sum += kdf_tensor_f32 (scores)[i];
      same += kdf_tensor_i32 (pred)[i] == kdf_tensor_i32 (y)[i];
    }
    kdf_ctx_metric (ctx, "mean_score", n ? sum / (double) n : 0);
    kdf_ctx_metric (ctx, "label_agreement", n ? (double) same / (double) n : 0);
    kdf_ctx_set_output_tensor (ctx, "scores", g_steal_pointer (&scores));
  }
  kdf_ctx_set_output_tensor (ctx, "probs", g_steal_pointer (&agree));
  kdf_ctx_set_output_tensor (ctx, "predictions", g_steal_pointer (&pred));
  return TRUE;
}

static const KdfNodeClass agreement_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "agreement",
  .summary = "Blind KD agreement: p_A = normalise(p^T·p^S), scores p_A[i, label], argmax",
  .inputs = inputs,
  .outputs = outputs,
  .run = run,
};

KDF_PLUGIN (agreement, &agreement_class)
