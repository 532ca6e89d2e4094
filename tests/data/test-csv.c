/* CSV reader: header detection, label column by name or index, quoting, CRLF, and
 * errors for ragged rows and bad cells that name the line and column. */
#include "data-test-util.h"

static char *
fixture (const char *name)
{
  return g_build_filename (g_getenv ("KDF_TEST_SRCDIR"), "data", "fixtures", name, NULL);
}

static void
test_fixture (void)
{
  g_autofree char *p = fixture ("small.csv");
  GError *error = NULL;
  g_autoptr (KdfTensor) x = NULL;
  g_autoptr (KdfTensor) y = NULL;
  g_auto (GStrv) names = NULL;
  KdfCsvOptions opts = { .label_column = "label" };
  g_assert_true (kdf_csv_read (p, &opts, &x, &y, &names, &error));
  g_assert_no_error (error);
  g_assert_cmpint (x->shape[0], ==, 3);
  g_assert_cmpint (x->shape[1], ==, 3);
  g_assert_cmpint (y->shape[0], ==, 3);
  g_assert_cmpint (kdf_tensor_i32 (y)[2], ==, 2);
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (x)[3 + 1], 3.0, 1e-6);
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (x)[6 + 2], 6.0, 1e-6);
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (x)[0], 5.1, 1e-6);
  g_assert_cmpuint (g_strv_length (names), ==, 3);
  g_assert_cmpstr (names[0], ==, "sepal length");
  g_assert_cmpstr (names[2], ==, "petal");

  /* the same column by index */
  g_clear_pointer (&x, kdf_tensor_unref);
  g_clear_pointer (&y, kdf_tensor_unref);
  opts.label_column = "2";
  g_assert_true (kdf_csv_read (p, &opts, &x, &y, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (kdf_tensor_i32 (y)[0], ==, 0);

  /* the last column holds 1.4: not a label */
  g_clear_pointer (&x, kdf_tensor_unref);
  g_clear_pointer (&y, kdf_tensor_unref);
  opts.label_column = "-1";
  g_assert_false (kdf_csv_read (p, &opts, &x, &y, NULL, &error));
  assert_error (&error, KDF_ERROR_IO, p, "line 2, column 4 ('petal')", "not a non-negative integer",
                NULL);
  g_assert_null (x);

  opts.label_column = "species";
  g_assert_false (kdf_csv_read (p, &opts, &x, &y, NULL, &error));
  assert_error (&error, KDF_ERROR_PARAM, p, "'species'", "sepal length, sepal_width, label, petal",
                NULL);

  /* no label column: every column a feature */
  opts.label_column = NULL;
  g_assert_true (kdf_csv_read (p, &opts, &x, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (x->shape[1], ==, 4);
}

static void
test_generated (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  g_autoptr (KdfTensor) x = NULL;
  g_autoptr (KdfTensor) y = NULL;
  const char *numeric = "1,0.5,-2e3\n0,1.25,7\n3,2,1e-2\n";
  g_autofree char *p = write_file (dir, "n.csv", numeric, strlen (numeric));
  KdfCsvOptions opts = { .label_column = "0" };
  g_assert_true (kdf_csv_read (p, &opts, &x, &y, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (x->shape[0], ==, 3); /* no header detected */
  g_assert_cmpint (x->shape[1], ==, 2);
  g_assert_cmpfloat (kdf_tensor_f32 (x)[1], ==, -2000);
  g_assert_cmpint (kdf_tensor_i32 (y)[2], ==, 3);
  /* forcing a header drops the first row */
  g_clear_pointer (&x, kdf_tensor_unref);
  g_clear_pointer (&y, kdf_tensor_unref);
  opts.header = KDF_CSV_HEADER_YES;
  g_assert_true (kdf_csv_read (p, &opts, &x, &y, NULL, &error));
  g_assert_cmpint (x->shape[0], ==, 2);
  g_clear_pointer (&x, kdf_tensor_unref);
  g_clear_pointer (&y, kdf_tensor_unref);

  /* a semicolon-separated file */
  const char *semi = "a;b\n1;2\n3;4\n";
  g_autofree char *ps = write_file (dir, "s.csv", semi, strlen (semi));
  KdfCsvOptions so = { .delimiter = ';', .label_column = "a" };
  g_assert_true (kdf_csv_read (ps, &so, &x, &y, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (kdf_tensor_f32 (x)[1], ==, 4);
  g_clear_pointer (&x, kdf_tensor_unref);
  g_clear_pointer (&y, kdf_tensor_unref);

  struct {
    const char *text;
    const char *label;
    int code;
    const char *n1, *n2;
  } bad[] = {
    { "a,b,c\n1,2,3\n4,5\n", "a", KDF_ERROR_IO, "line 3 has 2 columns, expected 3", "ragged" },
    { "a,b,c\n1,2,3\n4,5,6,7\n", NULL, KDF_ERROR_IO, "line 3 has 4 columns", "ragged" },
    { "a,b,c\n1,2,3\n4,x5,6\n", "a", KDF_ERROR_IO, "line 3, column 2 ('b')", "'x5' is not" },
    { "a,b,c\n1,,3\n", "a", KDF_ERROR_IO, "line 2, column 2 ('b')", "empty cell" },
    { "a,b,c\n1,nan,3\n", "a", KDF_ERROR_IO, "line 2, column 2", "finite" },
    { "a,b,c\n-1,2,3\n", "a", KDF_ERROR_IO, "line 2, column 1 ('a')", "non-negative integer" },
    { "1,2\n3,4\n", "b", KDF_ERROR_PARAM, "no label column 'b'", "c0, c1" },
    { "1,2\n3,4\n", "5", KDF_ERROR_PARAM, "no label column '5'", NULL },
    { "a,b\n1,\"2\n", "a", KDF_ERROR_IO, "line 2", "never closed" },
    { "a,b\n1,\"2\"x\n", "a", KDF_ERROR_IO, "line 2, column 2", "after a closing quote" },
    { "\n\n", NULL, KDF_ERROR_IO, "no rows", NULL },
  };
  for (guint k = 0; k < G_N_ELEMENTS (bad); k++) {
    g_autofree char *pb = write_file (dir, "bad.csv", bad[k].text, strlen (bad[k].text));
    KdfCsvOptions o = { .label_column = bad[k].label };
    g_assert_false (kdf_csv_read (pb, &o, &x, &y, NULL, &error));
    assert_error (&error, bad[k].code, pb, bad[k].n1, bad[k].n2, NULL);
    g_assert_null (x);
    g_assert_null (y);
  }
  g_autofree char *missing = g_build_filename (dir, "missing.csv", NULL);
  g_assert_false (kdf_csv_read (missing, NULL, &x, NULL, NULL, &error));
  assert_error (&error, KDF_ERROR_IO, missing, "not found", NULL);

  /* as a dataset: the last column is the label */
  const char *ds_text = "f1,f2,y\n0.5,1,0\n0.25,2,1\n1,3,2\n0,4,1\n";
  g_autofree char *pd = write_file (dir, "d.csv", ds_text, strlen (ds_text));
  g_autoptr (KdfDataset) ds = kdf_dataset_load ("csv", pd, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ds->n_classes, ==, 3);
  g_assert_cmpint (ds->x->shape[1], ==, 2);
  g_assert_null (ds->x_test);
  tmpdir_free (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/csv/fixture", test_fixture);
  g_test_add_func ("/data/csv/generated", test_generated);
  return g_test_run ();
}
