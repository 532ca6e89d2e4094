/* Node kinds for the engine's tests: sources, arithmetic, failure at a tick, oracle
 * values, feedback counters, params of every type, label bounds, warnings. Small on
 * purpose: each exercises one engine rule. */
#include <kdflow/kdflow-plugin.h>
#include <string.h>

/* ---- test_source: x = value (+ tick if per_tick), N = n ----------------------- */

typedef struct {
  int n;
  double value;
  gboolean per_tick;
} SourceParams;

static const KdfPortSpec source_out[] = {
  KDF_PORT ("x", "f32[N]", 0, "n copies of value"),
  { 0 },
};
static const KdfParamSpec source_params[] = {
  KDF_PARAM_INT (SourceParams, n, 4, 0, 100000000, "length"),
  KDF_PARAM_DOUBLE (SourceParams, value, 1, -1e30, 1e30, "fill value"),
  KDF_PARAM_BOOL (SourceParams, per_tick, FALSE, "add the tick to the value (and run every time)"),
  { 0 },
};

static gboolean
source_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const SourceParams *p = kdf_ctx_params (ctx);
  float v = (float) p->value;
  if (p->per_tick)
    v += (float) kdf_ctx_tick (ctx);
  KdfTensor *t = kdf_tensor_new_1d (KDF_DTYPE_F32, p->n);
  for (int i = 0; i < p->n; i++)
    kdf_tensor_f32 (t)[i] = v;
  kdf_ctx_set_output_tensor (ctx, "x", t);
  return TRUE;
}

static const KdfNodeClass source_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_source", .summary = "a constant vector",
  .outputs = source_out, .params = source_params, .params_size = sizeof (SourceParams),
  .run = source_run,
};

/* ---- test_add: y = a + b (shapes must agree: N) ------------------------------- */

static const KdfPortSpec add_in[] = {
  KDF_PORT ("a", "f32[N]", 0, "left"),
  KDF_PORT ("b", "f32[N]", 0, "right"),
  { 0 },
};
static const KdfPortSpec add_out[] = { KDF_PORT ("y", "f32[N]", 0, "a + b"), { 0 } };

static gboolean
add_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *a = kdf_ctx_input_tensor (ctx, "a"), *b = kdf_ctx_input_tensor (ctx, "b");
  gint64 n = kdf_ctx_shape_symbol (ctx, "N");
  KdfTensor *y = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  for (gint64 i = 0; i < n; i++)
    kdf_tensor_f32 (y)[i] = (float) (kdf_tensor_get_flat (a, i) + kdf_tensor_get_flat (b, i));
  kdf_ctx_set_output_tensor (ctx, "y", y);
  return TRUE;
}

static const KdfNodeClass add_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_add", .summary = "y = a + b",
  .inputs = add_in, .outputs = add_out, .run = add_run,
};

/* ---- test_noop: passes x through; every tick ---------------------------------- */

static const KdfPortSpec noop_in[] = {
  KDF_PORT ("x", "any", KDF_PORT_OPTIONAL | KDF_PORT_MULTI, "anything, any number of edges"),
  { 0 },
};
static const KdfPortSpec noop_out[] = { KDF_PORT ("y", "any", 0, "the first input"), { 0 } };

static gboolean
noop_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  static KdfTensor *shared; /* one immutable tensor for every no-op: cost is the engine's */
  if (g_once_init_enter (&shared))
    g_once_init_leave (&shared, kdf_tensor_new_scalar_f32 (0));
  KdfTensor *x = kdf_ctx_input_count (ctx, "x") ? kdf_ctx_input_nth (ctx, "x", 0) : shared;
  kdf_ctx_set_output_tensor (ctx, "y", kdf_tensor_ref (x));
  return TRUE;
}

static const KdfNodeClass noop_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_noop",
  .summary = "passes its first input through, every tick", .inputs = noop_in,
  .outputs = noop_out, .run = noop_run, .flags = KDF_NODE_EVERY_TICK,
};

/* ---- test_fail: fails at tick at_tick ------------------------------------------ */

typedef struct {
  int at_tick;
} FailParams;

static const KdfPortSpec fail_out[] = { KDF_PORT ("tick", "f32[]", 0, "the tick"), { 0 } };
static const KdfParamSpec fail_params[] = {
  KDF_PARAM_INT (FailParams, at_tick, 0, 0, 1000000, "the tick to fail at"), { 0 } };

static gboolean
fail_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const FailParams *p = kdf_ctx_params (ctx);
  guint tick = kdf_ctx_tick (ctx);
  kdf_ctx_metric (ctx, "tick", tick);
  if (tick == (guint) p->at_tick) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_NODE, "failing on purpose at tick %u", tick);
    return FALSE;
  }
  kdf_ctx_set_output_tensor (ctx, "tick", kdf_tensor_new_scalar_f32 ((float) tick));
  return TRUE;
}

static const KdfNodeClass fail_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_fail", .summary = "fails at a given tick",
  .outputs = fail_out, .params = fail_params, .params_size = sizeof (FailParams),
  .run = fail_run, .flags = KDF_NODE_EVERY_TICK,
};

/* ---- test_counter: out = prev + step (prev through a delay edge) --------------- */

typedef struct {
  double step;
} CounterParams;

static const KdfPortSpec counter_in[] = {
  KDF_PORT ("prev", "f32[]", KDF_PORT_OPTIONAL, "the previous count (0 if absent)"),
  { 0 },
};
static const KdfPortSpec counter_out[] = { KDF_PORT ("out", "f32[]", 0, "prev + step"), { 0 } };
static const KdfParamSpec counter_params[] = {
  KDF_PARAM_DOUBLE (CounterParams, step, 1, -1e9, 1e9, "added each run"), { 0 } };

static gboolean
counter_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const CounterParams *p = kdf_ctx_params (ctx);
  KdfTensor *prev = kdf_ctx_input_tensor (ctx, "prev");
  float v = prev ? kdf_tensor_f32 (prev)[0] : 0;
  kdf_ctx_set_output_tensor (ctx, "out", kdf_tensor_new_scalar_f32 (v + (float) p->step));
  return TRUE;
}

static const KdfNodeClass counter_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_counter",
  .summary = "prev + step; runs when prev or step changes", .inputs = counter_in,
  .outputs = counter_out, .params = counter_params, .params_size = sizeof (CounterParams),
  .run = counter_run,
};

/* ---- test_oracle: a mask flagged as ground truth ------------------------------- */

static const KdfPortSpec oracle_out[] = {
  KDF_PORT ("truth", "u8[N]", KDF_PORT_ORACLE, "the true mask"),
  KDF_PORT ("mask", "u8[N]", 0, "a guess"),
  { 0 },
};

static gboolean
oracle_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *t = kdf_tensor_new_1d (KDF_DTYPE_U8, 4), *m = kdf_tensor_new_1d (KDF_DTYPE_U8, 4);
  for (int i = 0; i < 4; i++) {
    kdf_tensor_u8 (t)[i] = (uint8_t) (i & 1);
    kdf_tensor_u8 (m)[i] = (uint8_t) (i < 2);
  }
  kdf_tensor_set_oracle (t, TRUE);
  kdf_ctx_set_output_tensor (ctx, "truth", t);
  kdf_ctx_set_output_tensor (ctx, "mask", m);
  return TRUE;
}

static const KdfNodeClass oracle_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_oracle",
  .summary = "a ground-truth mask and a guess", .outputs = oracle_out, .run = oracle_run,
};

/* ---- test_mask_user: a method node taking a u8 mask ----------------------------- */

static const KdfPortSpec mask_in[] = { KDF_PORT ("mask", "u8[N]", 0, "a mask"), { 0 } };
static const KdfPortSpec mask_out[] = { KDF_PORT ("count", "f32[]", 0, "its ones"), { 0 } };

static gboolean
mask_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *m = kdf_ctx_input_tensor (ctx, "mask");
  float c = 0;
  for (int64_t i = 0; i < kdf_tensor_numel (m); i++)
    c += (float) kdf_tensor_get_flat (m, i);
  kdf_ctx_set_output_tensor (ctx, "count", kdf_tensor_new_scalar_f32 (c));
  return TRUE;
}

static const KdfNodeClass mask_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_mask_user",
  .summary = "counts a mask (a method node)", .inputs = mask_in, .outputs = mask_out,
  .run = mask_run,
};

/* ---- test_eval: an evaluation node -------------------------------------------- */

static const KdfPortSpec eval_in[] = {
  KDF_PORT ("truth", "u8[N]", 0, "the true mask"),
  KDF_PORT ("flagged", "u8[N]", 0, "a method's mask"),
  { 0 },
};

static gboolean
eval_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *t = kdf_ctx_input_tensor (ctx, "truth"), *f = kdf_ctx_input_tensor (ctx, "flagged");
  double agree = 0;
  for (int64_t i = 0; i < kdf_tensor_numel (t); i++)
    agree += kdf_tensor_get_flat (t, i) == kdf_tensor_get_flat (f, i);
  kdf_ctx_metric (ctx, "agreement", agree / (double) kdf_tensor_numel (t));
  return TRUE;
}

static const KdfNodeClass eval_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_eval",
  .summary = "agreement of a mask with the truth", .inputs = eval_in, .run = eval_run,
  .flags = KDF_NODE_EVALUATOR,
};

/* ---- test_i32_sink, test_matrix: for dtype and rank mismatches ----------------- */

static const KdfPortSpec i32_in[] = { KDF_PORT ("labels", "i32[N]", 0, "labels"), { 0 } };
static const KdfPortSpec matrix_in[] = { KDF_PORT ("x", "f32[N,D]", 0, "a matrix"), { 0 } };

static gboolean
sink_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  return TRUE;
}

static const KdfNodeClass i32_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_i32_sink", .summary = "takes i32 labels",
  .inputs = i32_in, .run = sink_run,
};
static const KdfNodeClass matrix_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_matrix", .summary = "takes an N×D matrix",
  .inputs = matrix_in, .run = sink_run,
};

/* ---- test_params: every param type, one required -------------------------------- *
 * The enum's C values are deliberately not 0, 1: the node must see them, not an index. */

typedef enum { MODE_FAST = 7, MODE_SLOW = 42 } Mode;

typedef struct {
  int count;
  double rate;
  gboolean flag;
  Mode mode;
  const char *path;
  int big;      /* no range: any value that fits 32 bits */
  int64_t wide; /* no range: any value that fits a double exactly */
} ParamsParams;

static const KdfChoice modes[] = { { "fast", MODE_FAST }, { "slow", MODE_SLOW }, { 0 } };
static const KdfPortSpec params_out[] = {
  KDF_PORT ("v", "f32[*]", 0, "count, rate, flag, mode, strlen(path), big, wide"),
  { 0 },
};
static const KdfParamSpec params_params[] = {
  KDF_PARAM_INT (ParamsParams, count, 3, 1, 10, "an int in [1, 10]"),
  KDF_PARAM_DOUBLE (ParamsParams, rate, 0.5, 0, 1, "a rate in [0, 1]"),
  KDF_PARAM_BOOL (ParamsParams, flag, FALSE, "a switch"),
  KDF_PARAM_ENUM (ParamsParams, mode, "fast", modes, "fast or slow"),
  KDF_PARAM_REQUIRED_STRING (ParamsParams, path, "a file (required)"),
  KDF_PARAM_INT (ParamsParams, big, 0, 0, 0, "an int field without a range"),
  KDF_PARAM_INT (ParamsParams, wide, 0, 0, 0, "an int64_t field without a range"),
  { 0 },
};

static gboolean
params_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const ParamsParams *p = kdf_ctx_params (ctx);
  if (p->mode != MODE_FAST && p->mode != MODE_SLOW) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_NODE, "mode is %d, neither MODE_FAST nor MODE_SLOW",
                 (int) p->mode);
    return FALSE;
  }
  KdfTensor *v = kdf_tensor_new_1d (KDF_DTYPE_F32, 7);
  float *o = kdf_tensor_f32 (v);
  o[0] = (float) p->count;
  o[1] = (float) p->rate;
  o[2] = p->flag;
  o[3] = (float) p->mode;
  o[4] = (float) strlen (p->path);
  o[5] = (float) p->big;
  o[6] = (float) p->wide;
  kdf_ctx_set_output_tensor (ctx, "v", v);
  return TRUE;
}

static const KdfNodeClass params_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_params",
  .summary = "echoes its params (count, rate, flag, mode value, strlen(path), big, wide)",
  .outputs = params_out, .params = params_params, .params_size = sizeof (ParamsParams),
  .run = params_run,
};

/* ---- test_bad_output: declares f32[N], produces i32 (a plugin bug) ------------- */

static const KdfPortSpec bad_out[] = { KDF_PORT ("y", "f32[N]", 0, "claims f32"), { 0 } };

static gboolean
bad_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  kdf_ctx_set_output_tensor (ctx, "y", kdf_tensor_new_1d (KDF_DTYPE_I32, 3));
  return TRUE;
}

static const KdfNodeClass bad_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_bad_output",
  .summary = "produces the wrong dtype", .outputs = bad_out, .run = bad_run,
};

/* ---- test_budget: outputs its thread budget; sleeps to overlap with siblings ---- */

typedef struct {
  int sleep_ms;
} BudgetParams;

static const KdfPortSpec budget_in[] = {
  KDF_PORT ("x", "any", KDF_PORT_OPTIONAL, "anything (for ordering)"),
  { 0 },
};
static const KdfPortSpec budget_out[] = {
  KDF_PORT ("threads", "f32[]", 0, "the BLIS thread budget of the run"),
  { 0 },
};
static const KdfParamSpec budget_params[] = {
  KDF_PARAM_INT (BudgetParams, sleep_ms, 0, 0, 100000, "sleep this long"), { 0 } };

static gboolean
budget_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const BudgetParams *p = kdf_ctx_params (ctx);
  for (int i = 0; i < p->sleep_ms; i++) {
    if (g_cancellable_set_error_if_cancelled (kdf_ctx_cancellable (ctx), error))
      return FALSE;
    g_usleep (1000);
  }
  kdf_ctx_set_output_tensor (ctx, "threads", kdf_tensor_new_scalar_f32 ((float) kdf_ctx_threads (ctx)));
  return TRUE;
}

static const KdfNodeClass budget_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_budget",
  .summary = "reports its BLIS thread budget", .inputs = budget_in, .outputs = budget_out,
  .params = budget_params, .params_size = sizeof (BudgetParams), .run = budget_run,
};

/* ---- test_labels: label inputs bounded by the engine ("< C", "< 3") ------------ *
 * Two types are spelled loosely on purpose: describe and Lua print them canonically. */

static const KdfPortSpec labels_in[] = {
  KDF_PORT ("probs", "f32[N, C]", 0, "binds N and C"),
  KDF_PORT ("labels", "i32[N] < C", 0, "labels in [0, C)"),
  KDF_PORT ("small", "i32[N]<3", KDF_PORT_OPTIONAL, "labels in [0, 3)"),
  { 0 },
};
static const KdfPortSpec labels_out[] = {
  KDF_PORT ("sum", "f32[]", 0, "the sum of the labels"),
  { 0 },
};

static gboolean
labels_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *y = kdf_ctx_input_tensor (ctx, "labels");
  double s = 0;
  for (int64_t i = 0; i < kdf_tensor_numel (y); i++)
    s += kdf_tensor_get_flat (y, i);
  kdf_ctx_set_output_tensor (ctx, "sum", kdf_tensor_new_scalar_f32 ((float) s));
  return TRUE;
}

static const KdfNodeClass labels_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_labels",
  .summary = "sums labels the engine checked against C", .inputs = labels_in,
  .outputs = labels_out, .run = labels_run,
};

/* ---- test_warn: kdf_ctx_warning, `count` times per run ------------------------- */

typedef struct {
  const char *message;
  int count;
} WarnParams;

static const KdfParamSpec warn_params[] = {
  KDF_PARAM_STRING (WarnParams, message, "something to know", "what to say"),
  KDF_PARAM_INT (WarnParams, count, 1, 0, 100, "how many warnings per run"),
  { 0 },
};

static gboolean
warn_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const WarnParams *p = kdf_ctx_params (ctx);
  for (int i = 0; i < p->count; i++)
    kdf_ctx_warning (ctx, "%s (%d)", p->message, i + 1);
  return TRUE;
}

static const KdfNodeClass warn_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_warn",
  .summary = "warns (and does not fail)", .params = warn_params,
  .params_size = sizeof (WarnParams), .run = warn_run, .flags = KDF_NODE_EVERY_TICK,
};

KDF_PLUGIN (testnodes, &source_class, &add_class, &noop_class, &fail_class, &counter_class,
            &oracle_class, &mask_class, &eval_class, &i32_class, &matrix_class, &params_class,
            &bad_class, &budget_class, &labels_class, &warn_class)
