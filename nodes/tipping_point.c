/* tipping_point — Blind KD's tipping point from generalising to overfitting (METHODS
 * §1 extra kinds; Kaiser et al., arXiv 2211.11355; kernels kdf_mean_max_prob and
 * kdf_tipping_point in engine/detect/agreement.c).
 *
 * Keeps m_e = mean_i max_c p^S_ic, one entry per new value of the student's
 * probabilities (or logits, softmax here): a student trained every tick gives one
 * entry per tick, so the history index is the tick. The tipping epoch is the first i
 * with m_i strictly greater than m_{i−2}, m_{i−1}, m_{i+1} and m_{i+2} (≥ 6 entries);
 * it is known two entries later, and from then on `reached` is 1 and `epoch` stays
 * fixed (the authors stop looking once found; their `len == 10 → 8` shortcut is gone).
 *
 * The node is change-driven on purpose: it must see every new student output once,
 * and an unchanged input (a tick where the student did not train) must not count as
 * another epoch — KDF_NODE_EVERY_TICK would append it twice.
 *
 * Optional `scores` (e.g. agreement.scores): the split after the tipping point uses
 * the scores *of the tipping epoch*, which is in the past when it is detected (the
 * authors keep every epoch's agreement for this). The node keeps the last four
 * entries' scores and outputs `scores_at`: the latest scores until the tipping point
 * is reached, then the tipping epoch's, unchanged from then on — so a downstream
 * otsu_threshold always has an input, and stops re-running once the split is fixed.
 *
 * The fallback: a student that keeps gaining confidence shows no peak, and a method
 * that waits for one never splits (seen on real data sets). With `budget` B > 0, when
 * B entries have passed without a tipping point, the last of them is taken as the
 * tipping epoch — the end of a warm-up of B epochs, whose scores are at hand — and the
 * node says so: `fallback` is 1, the metric `fallback` is 1, and a warning names the
 * budget. B = 0 waits for a peak forever. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

typedef struct {
  int budget;
} Params;

static const KdfParamSpec params[] = {
  KDF_PARAM_INT (Params, budget, 10, 0, 1000000,
                 "entries without a peak after which the last one is the tipping epoch "
                 "(a fallback, reported; 0 = wait for a peak)"),
  { 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("probs", "f32[N,C]", KDF_PORT_OPTIONAL,
            "the student's probabilities this tick (or logits)"),
  KDF_PORT ("logits", "f32[N,C]", KDF_PORT_OPTIONAL,
            "the student's logits this tick (softmax here)"),
  KDF_PORT ("scores", "f32[N]", KDF_PORT_OPTIONAL,
            "per-sample scores to keep for the tipping epoch"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("reached", "u8[]", 0, "1 from the tick the tipping point is detected on, else 0"),
  KDF_PORT ("epoch", "i32[]", 0, "the tipping epoch (an index into history), or −1"),
  KDF_PORT ("fallback", "u8[]", 0, "1 if the epoch came from the budget, not from a peak"),
  KDF_PORT ("history", "f32[*]", 0, "m_0, m_1, …: the mean max probability of each entry"),
  KDF_PORT ("mean_max", "f32[]", 0, "this entry's m"),
  KDF_PORT ("scores_at", "f32[N]", 0,
            "the scores of the tipping epoch once reached (the latest ones before)"),
  { 0 },
};

#define KEEP 4 /* entries whose scores are kept: a detection looks back at most 3 */

typedef struct {
  GArray *history;            /* double */
  GArray *ticks;              /* guint: the tick each entry was recorded at */
  int64_t epoch;              /* −1 until found */
  KdfTensor *kept[KEEP];      /* scores of entry e in slot e % KEEP (or NULL) */
  int64_t kept_entry[KEEP];
  gboolean published;         /* reached/epoch were output at least once */
  gboolean fallback;          /* the epoch is the budget's */
} State;

static gboolean
init (KdfNodeCtx *ctx, gpointer *state, GError **error)
{
  State *s = g_new0 (State, 1);
  s->history = g_array_new (FALSE, FALSE, sizeof (double));
  s->ticks = g_array_new (FALSE, FALSE, sizeof (guint));
  s->epoch = -1;
  for (int k = 0; k < KEEP; k++)
    s->kept_entry[k] = -1;
  *state = s;
  return TRUE;
}

static void
finalize (gpointer state)
{
  State *s = state;
  if (!s)
    return;
  g_array_unref (s->history);
  g_array_unref (s->ticks);
  for (int k = 0; k < KEEP; k++)
    kdf_tensor_unref (s->kept[k]);
  g_free (s);
}

static KdfTensor *
scalar (KdfDType dtype, double v)
{
  KdfTensor *t = kdf_tensor_new (dtype, 0, NULL);
  if (dtype == KDF_DTYPE_U8)
    kdf_tensor_u8 (t)[0] = (uint8_t) v;
  else
    kdf_tensor_i32 (t)[0] = (int32_t) v;
  return t;
}

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *pr = kdf_ctx_params (ctx);
  State *s = state;
  KdfTensor *probs = kdf_ctx_input_tensor (ctx, "probs");
  KdfTensor *logits = kdf_ctx_input_tensor (ctx, "logits");
  KdfTensor *scores = kdf_ctx_input_tensor (ctx, "scores");
  if (!!probs == !!logits) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "connect exactly one of 'probs' and 'logits' (%s)",
                 probs ? "both are" : "neither is");
    return FALSE;
  }
  const char *port = probs ? "probs" : "logits";
  const gboolean fresh = kdf_ctx_input_changed (ctx, port) || s->history->len == 0;
  if (fresh) {
    g_autoptr (KdfTensor) p = kdf_tensor_contiguous (probs ? probs : logits);
    const int64_t n = p->shape[0], c = p->shape[1];
    if (logits) {
      KdfTensor *sm = kdf_tensor_new_2d (KDF_DTYPE_F32, n, c);
      kdf_softmax (kdf_tensor_f32 (sm), kdf_tensor_f32 (p), n, c, 1.0);
      kdf_tensor_unref (p);
      p = sm;
    }
    if (c > G_MAXINT) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "input '%s': too many classes", port);
      return FALSE;
    }
    double m;
    if (!kdf_mean_max_prob (&m, kdf_tensor_f32 (p), n, (int) c, error)) {
      g_prefix_error (error, "input '%s': ", port);
      return FALSE;
    }
    const int64_t entry = s->history->len;
    const guint tick = kdf_ctx_tick (ctx);
    g_array_append_val (s->history, m);
    g_array_append_val (s->ticks, tick);
    if (scores) {
      const int slot = (int) (entry % KEEP);
      kdf_tensor_unref (s->kept[slot]);
      s->kept[slot] = kdf_tensor_ref (scores);
      s->kept_entry[slot] = entry;
    }
    kdf_ctx_metric (ctx, "mean_max", m);
    kdf_ctx_set_output_tensor (ctx, "mean_max", kdf_tensor_new_scalar_f32 ((float) m));
    KdfTensor *h = kdf_tensor_new_1d (KDF_DTYPE_F32, s->history->len);
    for (guint e = 0; e < s->history->len; e++)
      kdf_tensor_f32 (h)[e] = (float) g_array_index (s->history, double, e);
    kdf_ctx_set_output_tensor (ctx, "history", h);
  }

  gboolean flipped = FALSE;
  if (s->epoch < 0) {
    int64_t epoch;
    if (!kdf_tipping_point (&epoch, (const double *) (void *) s->history->data,
                            s->history->len, error))
      return FALSE;
    const int64_t n = s->history->len;
    if (epoch < 0 && pr->budget > 0 && n >= pr->budget) {
      epoch = n - 1;
      s->fallback = TRUE;
      kdf_ctx_warning (ctx, "no tipping point (a peak of the mean max probability) in %d "
                            "entries: the split uses entry %" G_GINT64_FORMAT
                            ", the last of the budget (param 'budget')",
                       pr->budget, (gint64) epoch);
    }
    if (epoch >= 0) {
      const int slot = (int) (epoch % KEEP);
      if (scores && s->kept_entry[slot] != epoch) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "input 'scores': the tipping epoch is %" G_GINT64_FORMAT
                     ", but no scores arrived with it",
                     (gint64) epoch);
        return FALSE;
      }
      s->epoch = epoch;
      flipped = TRUE;
    }
  }
  if (!s->published || flipped) {
    kdf_ctx_set_output_tensor (ctx, "reached", scalar (KDF_DTYPE_U8, s->epoch >= 0));
    kdf_ctx_set_output_tensor (ctx, "epoch", scalar (KDF_DTYPE_I32, (double) s->epoch));
    kdf_ctx_set_output_tensor (ctx, "fallback", scalar (KDF_DTYPE_U8, s->fallback));
    s->published = TRUE;
  }
  if (s->epoch >= 0) {
    kdf_ctx_metric (ctx, "fallback", s->fallback);
    kdf_ctx_metric (ctx, "epoch", (double) s->epoch);
    kdf_ctx_metric (ctx, "epoch_tick", (double) g_array_index (s->ticks, guint, s->epoch));
  }
  if (scores) {
    if (flipped)
      kdf_ctx_set_output_tensor (ctx, "scores_at", kdf_tensor_ref (s->kept[s->epoch % KEEP]));
    else if (s->epoch < 0 && fresh)
      kdf_ctx_set_output_tensor (ctx, "scores_at", kdf_tensor_ref (scores));
  }
  return TRUE;
}

static const KdfNodeClass tipping_point_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "tipping_point",
  .summary = "Blind KD tipping point: first local peak of the student's mean max probability",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .init = init,
  .run = run,
  .finalize = finalize,
};

KDF_PLUGIN (tipping_point, &tipping_point_class)
