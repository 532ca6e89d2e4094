/* Pins the sizes and offsets of every public struct on this platform (x86_64, LP64).
 * A failure here means the ABI changed: bump KDF_ABI_MAJOR (or, for an addition in
 * reserved space, KDF_ABI_MINOR) and update the pins in the same commit. */
#include <kdflow/kdflow-plugin.h>
#include <kdflow/kdflow.h>

#define PIN_SIZE(T, n) g_assert_cmpuint (sizeof (T), ==, (n))
#define PIN_OFFSET(T, f, n) g_assert_cmpuint (G_STRUCT_OFFSET (T, f), ==, (n))

static void
test_pins (void)
{
  if (sizeof (void *) != 8) {
    g_test_skip ("the pins are for LP64 platforms");
    return;
  }
  PIN_SIZE (KdfTensor, 112);
  PIN_OFFSET (KdfTensor, ref_count, 0);
  PIN_OFFSET (KdfTensor, dtype, 4);
  PIN_OFFSET (KdfTensor, rank, 8);
  PIN_OFFSET (KdfTensor, flags, 12);
  PIN_OFFSET (KdfTensor, shape, 16);
  PIN_OFFSET (KdfTensor, strides, 48);
  PIN_OFFSET (KdfTensor, data, 80);
  PIN_OFFSET (KdfTensor, storage, 88);
  PIN_OFFSET (KdfTensor, reserved, 96);
  PIN_SIZE (KdfObject, 40);
  PIN_OFFSET (KdfObject, ref_count, 0);
  PIN_OFFSET (KdfObject, kind, 4);
  PIN_OFFSET (KdfObject, free, 8);
  PIN_OFFSET (KdfObject, describe, 16);
  PIN_OFFSET (KdfObject, reserved, 24);
  PIN_SIZE (KdfPortSpec, 64);
  PIN_OFFSET (KdfPortSpec, name, 0);
  PIN_OFFSET (KdfPortSpec, type, 8);
  PIN_OFFSET (KdfPortSpec, flags, 16);
  PIN_OFFSET (KdfPortSpec, summary, 24);
  PIN_OFFSET (KdfPortSpec, reserved, 32);
  PIN_SIZE (KdfChoice, 16);
  PIN_OFFSET (KdfChoice, name, 0);
  PIN_OFFSET (KdfChoice, value, 8);
  PIN_SIZE (KdfParamSpec, 120);
  PIN_OFFSET (KdfParamSpec, name, 0);
  PIN_OFFSET (KdfParamSpec, type, 8);
  PIN_OFFSET (KdfParamSpec, offset, 16);
  PIN_OFFSET (KdfParamSpec, size, 24);
  PIN_OFFSET (KdfParamSpec, def, 32);
  PIN_OFFSET (KdfParamSpec, min, 40);
  PIN_OFFSET (KdfParamSpec, max, 48);
  PIN_OFFSET (KdfParamSpec, def_string, 56);
  PIN_OFFSET (KdfParamSpec, choices, 64);
  PIN_OFFSET (KdfParamSpec, flags, 72);
  PIN_OFFSET (KdfParamSpec, summary, 80);
  PIN_OFFSET (KdfParamSpec, reserved, 88);
  PIN_SIZE (KdfNodeClass, 152);
  PIN_OFFSET (KdfNodeClass, struct_size, 0);
  PIN_OFFSET (KdfNodeClass, name, 8);
  PIN_OFFSET (KdfNodeClass, summary, 16);
  PIN_OFFSET (KdfNodeClass, inputs, 24);
  PIN_OFFSET (KdfNodeClass, outputs, 32);
  PIN_OFFSET (KdfNodeClass, params, 40);
  PIN_OFFSET (KdfNodeClass, params_size, 48);
  PIN_OFFSET (KdfNodeClass, init, 56);
  PIN_OFFSET (KdfNodeClass, run, 64);
  PIN_OFFSET (KdfNodeClass, finalize, 72);
  PIN_OFFSET (KdfNodeClass, flags, 80);
  PIN_OFFSET (KdfNodeClass, reserved, 88);
  PIN_SIZE (KdfPortType, 92);
  PIN_OFFSET (KdfPortType, kind, 0);
  PIN_OFFSET (KdfPortType, dtype, 4);
  PIN_OFFSET (KdfPortType, rank, 8);
  PIN_OFFSET (KdfPortType, shape, 12);
  PIN_OFFSET (KdfPortType, bound, 76);
  PIN_SIZE (KdfPluginInfo, 56);
  PIN_OFFSET (KdfPluginInfo, abi_major, 0);
  PIN_OFFSET (KdfPluginInfo, abi_minor, 4);
  PIN_OFFSET (KdfPluginInfo, name, 8);
  PIN_OFFSET (KdfPluginInfo, classes, 16);
  PIN_OFFSET (KdfPluginInfo, reserved, 24);
  PIN_SIZE (KdfEdgeOptions, 48);
  PIN_OFFSET (KdfEdgeOptions, delay, 0);
  PIN_OFFSET (KdfEdgeOptions, oracle, 4);
  PIN_OFFSET (KdfEdgeOptions, initial, 8);
  PIN_OFFSET (KdfEdgeOptions, reserved, 16);
  PIN_SIZE (KdfRunOptions, 80);
  PIN_OFFSET (KdfRunOptions, ticks, 0);
  PIN_OFFSET (KdfRunOptions, threads, 4);
  PIN_OFFSET (KdfRunOptions, run_dir, 8);
  PIN_OFFSET (KdfRunOptions, progress, 16);
  PIN_OFFSET (KdfRunOptions, user_data, 24);
  PIN_OFFSET (KdfRunOptions, warning, 32);
  PIN_OFFSET (KdfRunOptions, quiet, 40);
  PIN_OFFSET (KdfRunOptions, reserved, 48);
  PIN_SIZE (KdfForeignSpec, 96);
  PIN_OFFSET (KdfForeignSpec, library, 0);
  PIN_OFFSET (KdfForeignSpec, symbol, 8);
  PIN_OFFSET (KdfForeignSpec, signature, 16);
  PIN_OFFSET (KdfForeignSpec, inputs, 24);
  PIN_OFFSET (KdfForeignSpec, outputs, 32);
  PIN_OFFSET (KdfForeignSpec, dims, 40);
  PIN_OFFSET (KdfForeignSpec, scalars, 48);
  PIN_OFFSET (KdfForeignSpec, result, 56);
  PIN_OFFSET (KdfForeignSpec, reserved, 64);
  PIN_SIZE (KdfNodeStats, 32);
  PIN_SIZE (KdfProgress, 48);
}

static void
test_abi_numbers (void)
{
  g_assert_cmpint (KDF_ABI_MAJOR, ==, 2);
  g_assert_cmpint (KDF_ABI_MINOR, ==, 1);
  g_assert_cmpstr (kdf_node_abi (), ==, "2.1"); /* the library agrees with its header */
  /* enum values are part of the ABI */
  g_assert_cmpint (KDF_DTYPE_F32, ==, 0);
  g_assert_cmpint (KDF_DTYPE_I32, ==, 1);
  g_assert_cmpint (KDF_DTYPE_U8, ==, 2);
  g_assert_cmpint (KDF_DTYPE_ANY, ==, 255);
  g_assert_cmpint (KDF_VALUE_TENSOR, ==, 0);
  g_assert_cmpint (KDF_VALUE_MODEL, ==, 1);
  g_assert_cmpint (KDF_VALUE_LOSS, ==, 2);
  g_assert_cmpint (KDF_PARAM_INT, ==, 0);
  g_assert_cmpint (KDF_PARAM_DOUBLE, ==, 1);
  g_assert_cmpint (KDF_PARAM_BOOL, ==, 2);
  g_assert_cmpint (KDF_PARAM_STRING, ==, 3);
  g_assert_cmpint (KDF_PARAM_ENUM, ==, 4);
  g_assert_cmpint (KDF_PARAM_REQUIRED, ==, 1);
  g_assert_cmpint (KDF_NODE_EVERY_TICK, ==, 1);
  g_assert_cmpint (KDF_NODE_EVALUATOR, ==, 2);
  g_assert_cmpint (KDF_NODE_CONTROL_THREAD, ==, 4);
  g_assert_cmpint (KDF_PORT_OPTIONAL, ==, 1);
  g_assert_cmpint (KDF_PORT_MULTI, ==, 2);
  g_assert_cmpint (KDF_PORT_ORACLE, ==, 4);
  g_assert_cmpint (KDF_PORT_TEST, ==, 8);
  g_assert_cmpint (KDF_PORT_ON_DISK, ==, 16);
  g_assert_cmpint (KDF_MAX_RANK, ==, 4);
  g_assert_cmpint (KDF_ERROR_PLUGIN, ==, 1);
  g_assert_cmpint (KDF_ERROR_PORT, ==, 5);
  g_assert_cmpint (KDF_ERROR_VALUE, ==, 16);
}

/* The KDF_PARAM_* macros: the param is named after the field, and offset and size are
 * the field's, for every field type they accept. */
typedef enum { SHADE_DARK = 7, SHADE_LIGHT = 42 } Shade;
typedef struct {
  char pad;
  int count;
  int64_t wide;
  double rate;
  gboolean flag;
  const char *path;
  Shade shade;
  const char *needed;
  int needed_int;
} MacroParams;

static const KdfChoice shades[] = { { "dark", SHADE_DARK }, { "light", SHADE_LIGHT }, { 0 } };
static const KdfParamSpec macro_params[] = {
  KDF_PARAM_INT (MacroParams, count, 3, 1, 10, "c"),
  KDF_PARAM_INT (MacroParams, wide, 0, 0, 0, "w"),
  KDF_PARAM_DOUBLE (MacroParams, rate, 0.5, 0, 1, "r"),
  KDF_PARAM_BOOL (MacroParams, flag, TRUE, "f"),
  KDF_PARAM_STRING (MacroParams, path, "x.npy", "p"),
  KDF_PARAM_ENUM (MacroParams, shade, "light", shades, "s"),
  KDF_PARAM_REQUIRED_STRING (MacroParams, needed, "n"),
  KDF_PARAM_REQUIRED_INT (MacroParams, needed_int, 0, 5, "ni"),
  { 0 },
};

#define PIN_FIELD(I, F, TYPE)                                                             \
  G_STMT_START                                                                          \
  {                                                                                     \
    g_assert_cmpstr (macro_params[I].name, ==, #F);                                     \
    g_assert_cmpint (macro_params[I].type, ==, TYPE);                                   \
    g_assert_cmpuint (macro_params[I].offset, ==, G_STRUCT_OFFSET (MacroParams, F));     \
    g_assert_cmpuint (macro_params[I].size, ==, sizeof (((MacroParams *) 0)->F));        \
  }                                                                                     \
  G_STMT_END

static void
test_param_macros (void)
{
  PIN_FIELD (0, count, KDF_PARAM_INT);
  PIN_FIELD (1, wide, KDF_PARAM_INT);
  PIN_FIELD (2, rate, KDF_PARAM_DOUBLE);
  PIN_FIELD (3, flag, KDF_PARAM_BOOL);
  PIN_FIELD (4, path, KDF_PARAM_STRING);
  PIN_FIELD (5, shade, KDF_PARAM_ENUM);
  PIN_FIELD (6, needed, KDF_PARAM_STRING);
  PIN_FIELD (7, needed_int, KDF_PARAM_INT);
  g_assert_cmpuint (macro_params[0].size, ==, 4);
  g_assert_cmpuint (macro_params[1].size, ==, 8);
  g_assert_cmpfloat (macro_params[0].def, ==, 3);
  g_assert_cmpfloat (macro_params[0].min, ==, 1);
  g_assert_cmpfloat (macro_params[0].max, ==, 10);
  g_assert_cmpfloat (macro_params[3].def, ==, 1);
  g_assert_cmpstr (macro_params[4].def_string, ==, "x.npy");
  g_assert_cmpstr (macro_params[5].def_string, ==, "light");
  g_assert_true (macro_params[5].choices == shades);
  g_assert_cmpuint (macro_params[5].flags, ==, 0);
  g_assert_cmpuint (macro_params[6].flags, ==, KDF_PARAM_REQUIRED);
  g_assert_cmpuint (macro_params[7].flags, ==, KDF_PARAM_REQUIRED);
  g_assert_cmpfloat (macro_params[7].max, ==, 5);
  g_assert_cmpstr (macro_params[0].summary, ==, "c");
  g_assert_null (macro_params[8].name);

  static const KdfPortSpec port = KDF_PORT ("labels", "i32[N] < C", KDF_PORT_OPTIONAL, "y");
  g_assert_cmpstr (port.name, ==, "labels");
  g_assert_cmpstr (port.type, ==, "i32[N] < C");
  g_assert_cmpuint (port.flags, ==, KDF_PORT_OPTIONAL);
  g_assert_cmpstr (port.summary, ==, "y");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/abi/pins", test_pins);
  g_test_add_func ("/abi/numbers", test_abi_numbers);
  g_test_add_func ("/abi/param-macros", test_param_macros);
  return g_test_run ();
}
