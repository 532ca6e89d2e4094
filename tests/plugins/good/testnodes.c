/* Node kinds for the engine's tests: sources, arithmetic, failure at a tick, oracle
 * values, feedback counters. Small on purpose: each exercises one engine rule. */
#include <kdflow/kdflow-plugin.h>
#include <string.h>

/* ---- test_source: x = value (+ tick if per_tick), N = n ----------------------- */

static const KdfPortSpec source_out[] = { KDF_PORT_TENSOR ("x", F32, 1, "N"), { 0 } };
static const KdfParamSpec source_params[] = {
  KDF_PARAM_INT ("n", 4, 0, 100000000, "length"),
  KDF_PARAM_DOUBLE ("value", 1, -1e30, 1e30, "fill value"),
  KDF_PARAM_BOOL ("per_tick", FALSE, "add the tick to the value (and run every time)"),
  { 0 },
};

static gboolean
source_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  gint64 n = kdf_ctx_param_int (ctx, "n");
  float v = (float) kdf_ctx_param_double (ctx, "value");
  if (kdf_ctx_param_bool (ctx, "per_tick"))
    v += (float) kdf_ctx_tick (ctx);
  KdfTensor *t = kdf_tensor_new_1d (KDF_DTYPE_F32, n);
  for (gint64 i = 0; i < n; i++)
    kdf_tensor_f32 (t)[i] = v;
  kdf_ctx_set_output_tensor (ctx, "x", t);
  return TRUE;
}

static const KdfNodeClass source_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_source", .summary = "a constant vector",
  .outputs = source_out, .params = source_params, .run = source_run,
};

/* ---- test_add: y = a + b (shapes must agree: N) ------------------------------- */

static const KdfPortSpec add_in[] = { KDF_PORT_TENSOR ("a", F32, 1, "N"),
                                      KDF_PORT_TENSOR ("b", F32, 1, "N"), { 0 } };
static const KdfPortSpec add_out[] = { KDF_PORT_TENSOR ("y", F32, 1, "N"), { 0 } };

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
  { .name = "x", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1,
    .flags = KDF_PORT_OPTIONAL | KDF_PORT_MULTI },
  { 0 },
};
static const KdfPortSpec noop_out[] = {
  { .name = "y", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1 }, { 0 } };

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

static const KdfPortSpec fail_out[] = { KDF_PORT_TENSOR ("tick", F32, 0, NULL), { 0 } };
static const KdfParamSpec fail_params[] = {
  KDF_PARAM_INT ("at_tick", 0, 0, 1000000, "the tick to fail at"), { 0 } };

static gboolean
fail_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  guint tick = kdf_ctx_tick (ctx);
  kdf_ctx_metric (ctx, "tick", tick);
  if (tick == (guint) kdf_ctx_param_int (ctx, "at_tick")) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_NODE, "failing on purpose at tick %u", tick);
    return FALSE;
  }
  kdf_ctx_set_output_tensor (ctx, "tick", kdf_tensor_new_scalar_f32 ((float) tick));
  return TRUE;
}

static const KdfNodeClass fail_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_fail", .summary = "fails at a given tick",
  .outputs = fail_out, .params = fail_params, .run = fail_run, .flags = KDF_NODE_EVERY_TICK,
};

/* ---- test_counter: out = prev + step (prev through a delay edge) --------------- */

static const KdfPortSpec counter_in[] = {
  { .name = "prev", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_F32, .rank = 0,
    .flags = KDF_PORT_OPTIONAL },
  { 0 } };
static const KdfPortSpec counter_out[] = { KDF_PORT_TENSOR ("out", F32, 0, NULL), { 0 } };
static const KdfParamSpec counter_params[] = {
  KDF_PARAM_DOUBLE ("step", 1, -1e9, 1e9, "added each run"), { 0 } };

static gboolean
counter_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *prev = kdf_ctx_input_tensor (ctx, "prev");
  float v = prev ? kdf_tensor_f32 (prev)[0] : 0;
  kdf_ctx_set_output_tensor (ctx, "out",
                             kdf_tensor_new_scalar_f32 (v + (float) kdf_ctx_param_double (ctx, "step")));
  return TRUE;
}

static const KdfNodeClass counter_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_counter",
  .summary = "prev + step; runs when prev or step changes", .inputs = counter_in,
  .outputs = counter_out, .params = counter_params, .run = counter_run,
};

/* ---- test_oracle: a mask flagged as ground truth ------------------------------- */

static const KdfPortSpec oracle_out[] = {
  { .name = "truth", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_U8, .rank = 1, .shape = "N",
    .flags = KDF_PORT_ORACLE },
  { .name = "mask", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_U8, .rank = 1, .shape = "N" },
  { 0 } };

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

static const KdfPortSpec mask_in[] = { KDF_PORT_TENSOR ("mask", U8, 1, "N"), { 0 } };
static const KdfPortSpec mask_out[] = { KDF_PORT_TENSOR ("count", F32, 0, NULL), { 0 } };

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

static const KdfPortSpec eval_in[] = { KDF_PORT_TENSOR ("truth", U8, 1, "N"),
                                       KDF_PORT_TENSOR ("flagged", U8, 1, "N"), { 0 } };

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

static const KdfPortSpec i32_in[] = { KDF_PORT_TENSOR ("labels", I32, 1, "N"), { 0 } };
static const KdfPortSpec matrix_in[] = { KDF_PORT_TENSOR ("x", F32, 2, "N,D"), { 0 } };

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

/* ---- test_params: every param type, one required -------------------------------- */

static const char *const modes[] = { "fast", "slow", NULL };
static const KdfPortSpec params_out[] = { KDF_PORT_TENSOR ("v", F32, 1, NULL), { 0 } };
static const KdfParamSpec params_params[] = {
  KDF_PARAM_INT ("count", 3, 1, 10, "an int in [1, 10]"),
  KDF_PARAM_DOUBLE ("rate", 0.5, 0, 1, "a rate in [0, 1]"),
  KDF_PARAM_BOOL ("flag", FALSE, "a switch"),
  KDF_PARAM_ENUM ("mode", "fast", modes, "fast or slow"),
  { .name = "path", .type = KDF_PARAM_STRING, .flags = KDF_PARAM_REQUIRED,
    .summary = "a file (required)" },
  { 0 },
};

static gboolean
params_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  KdfTensor *v = kdf_tensor_new_1d (KDF_DTYPE_F32, 5);
  float *p = kdf_tensor_f32 (v);
  p[0] = (float) kdf_ctx_param_int (ctx, "count");
  p[1] = (float) kdf_ctx_param_double (ctx, "rate");
  p[2] = kdf_ctx_param_bool (ctx, "flag");
  p[3] = (float) kdf_ctx_param_enum (ctx, "mode");
  p[4] = (float) strlen (kdf_ctx_param_string (ctx, "path"));
  kdf_ctx_set_output_tensor (ctx, "v", v);
  return TRUE;
}

static const KdfNodeClass params_class = {
  .struct_size = sizeof (KdfNodeClass), .name = "test_params",
  .summary = "echoes its params (count, rate, flag, mode index, strlen(path))",
  .outputs = params_out, .params = params_params, .run = params_run,
};

/* ---- test_bad_output: declares f32[N], produces i32 (a plugin bug) ------------- */

static const KdfPortSpec bad_out[] = { KDF_PORT_TENSOR ("y", F32, 1, "N"), { 0 } };

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

static const KdfPortSpec budget_in[] = {
  { .name = "x", .kind = KDF_VALUE_TENSOR, .dtype = KDF_DTYPE_ANY, .rank = -1,
    .flags = KDF_PORT_OPTIONAL },
  { 0 } };
static const KdfPortSpec budget_out[] = { KDF_PORT_TENSOR ("threads", F32, 0, NULL), { 0 } };
static const KdfParamSpec budget_params[] = {
  KDF_PARAM_INT ("sleep_ms", 0, 0, 100000, "sleep this long"), { 0 } };

static gboolean
budget_run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  gint64 ms = kdf_ctx_param_int (ctx, "sleep_ms");
  for (gint64 i = 0; i < ms; i++) {
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
  .params = budget_params, .run = budget_run,
};

KDF_PLUGIN (testnodes, &source_class, &add_class, &noop_class, &fail_class, &counter_class,
            &oracle_class, &mask_class, &eval_class, &i32_class, &matrix_class, &params_class,
            &bad_class, &budget_class)
