/* Pins the sizes and offsets of every public struct on this platform (x86_64, LP64).
 * A failure here means the ABI changed: bump KDF_ABI_MAJOR (or, for an addition in
 * reserved space, KDF_ABI_MINOR) and update the pins in the same commit. */
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
  PIN_OFFSET (KdfPortSpec, kind, 8);
  PIN_OFFSET (KdfPortSpec, dtype, 12);
  PIN_OFFSET (KdfPortSpec, rank, 16);
  PIN_OFFSET (KdfPortSpec, shape, 24);
  PIN_OFFSET (KdfPortSpec, flags, 32);
  PIN_OFFSET (KdfPortSpec, summary, 40);
  PIN_OFFSET (KdfPortSpec, reserved, 48);
  PIN_SIZE (KdfParamSpec, 88);
  PIN_OFFSET (KdfParamSpec, name, 0);
  PIN_OFFSET (KdfParamSpec, type, 8);
  PIN_OFFSET (KdfParamSpec, def, 16);
  PIN_OFFSET (KdfParamSpec, min, 24);
  PIN_OFFSET (KdfParamSpec, max, 32);
  PIN_OFFSET (KdfParamSpec, def_string, 40);
  PIN_OFFSET (KdfParamSpec, choices, 48);
  PIN_OFFSET (KdfParamSpec, flags, 56);
  PIN_OFFSET (KdfParamSpec, summary, 64);
  PIN_OFFSET (KdfParamSpec, reserved, 72);
  PIN_SIZE (KdfNodeClass, 144);
  PIN_OFFSET (KdfNodeClass, struct_size, 0);
  PIN_OFFSET (KdfNodeClass, name, 8);
  PIN_OFFSET (KdfNodeClass, summary, 16);
  PIN_OFFSET (KdfNodeClass, inputs, 24);
  PIN_OFFSET (KdfNodeClass, outputs, 32);
  PIN_OFFSET (KdfNodeClass, params, 40);
  PIN_OFFSET (KdfNodeClass, init, 48);
  PIN_OFFSET (KdfNodeClass, run, 56);
  PIN_OFFSET (KdfNodeClass, finalize, 64);
  PIN_OFFSET (KdfNodeClass, flags, 72);
  PIN_OFFSET (KdfNodeClass, reserved, 80);
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
  PIN_SIZE (KdfRunOptions, 64);
  PIN_OFFSET (KdfRunOptions, ticks, 0);
  PIN_OFFSET (KdfRunOptions, threads, 4);
  PIN_OFFSET (KdfRunOptions, run_dir, 8);
  PIN_OFFSET (KdfRunOptions, progress, 16);
  PIN_OFFSET (KdfRunOptions, user_data, 24);
  PIN_OFFSET (KdfRunOptions, reserved, 32);
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
  g_assert_cmpint (KDF_ABI_MAJOR, ==, 1);
  g_assert_cmpint (KDF_ABI_MINOR, ==, 0);
  /* enum values are part of the ABI */
  g_assert_cmpint (KDF_DTYPE_F32, ==, 0);
  g_assert_cmpint (KDF_DTYPE_I32, ==, 1);
  g_assert_cmpint (KDF_DTYPE_U8, ==, 2);
  g_assert_cmpint (KDF_VALUE_LOSS, ==, 2);
  g_assert_cmpint (KDF_PARAM_ENUM, ==, 4);
  g_assert_cmpint (KDF_NODE_EVALUATOR, ==, 2);
  g_assert_cmpint (KDF_PORT_ORACLE, ==, 4);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/abi/pins", test_pins);
  g_test_add_func ("/abi/numbers", test_abi_numbers);
  return g_test_run ();
}
