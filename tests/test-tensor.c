/* Tensors: views share storage, copies do not, make_writable copies only when it
 * must, strided copies are right, and the GEMM wrapper refuses what BLIS would
 * abort on. */
#include <kdflow/kdflow.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static KdfTensor *
iota (int rank, const int64_t *shape)
{
  KdfTensor *t = kdf_tensor_new (KDF_DTYPE_F32, rank, shape);
  for (int64_t i = 0; i < kdf_tensor_numel (t); i++)
    kdf_tensor_f32 (t)[i] = (float) i;
  return t;
}

static void
test_new (void)
{
  g_autoptr (KdfTensor) t = kdf_tensor_new (KDF_DTYPE_I32, 3, (int64_t[]){ 2, 3, 4 });
  g_assert_cmpint (kdf_tensor_numel (t), ==, 24);
  g_assert_cmpuint (kdf_tensor_nbytes (t), ==, 96);
  g_assert_cmpint (t->strides[0], ==, 12);
  g_assert_cmpint (t->strides[1], ==, 4);
  g_assert_cmpint (t->strides[2], ==, 1);
  g_assert_cmpuint ((guintptr) t->data % 64, ==, 0);
  for (int i = 0; i < 24; i++)
    g_assert_cmpint (kdf_tensor_i32 (t)[i], ==, 0);
  g_autofree char *d = kdf_tensor_describe (t);
  g_assert_cmpstr (d, ==, "i32[2,3,4]");
  g_autoptr (KdfTensor) s = kdf_tensor_new_scalar_f32 (2.5f);
  g_assert_cmpint (s->rank, ==, 0);
  g_assert_cmpint (kdf_tensor_numel (s), ==, 1);
  g_assert_cmpfloat (kdf_tensor_get_flat (s, 0), ==, 2.5);
}

static void
test_try_new_overflow (void)
{
  GError *error = NULL;
  KdfTensor *t = kdf_tensor_try_new (KDF_DTYPE_F32, 2, (int64_t[]){ (int64_t) 1 << 40, (int64_t) 1 << 40 }, &error);
  g_assert_null (t);
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&error);
  t = kdf_tensor_try_new (KDF_DTYPE_F32, 1, (int64_t[]){ -1 }, &error);
  g_assert_null (t);
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&error);
}

static void
test_views (void)
{
  g_autoptr (KdfTensor) t = iota (2, (int64_t[]){ 3, 4 });
  g_autoptr (KdfTensor) row = kdf_tensor_slice (t, 0, 1, 2); /* rows 1..2 */
  g_assert_true (row->storage == t->storage);
  g_assert_cmpfloat (kdf_tensor_get (row, (int64_t[]){ 0, 0 }), ==, 4);
  g_autoptr (KdfTensor) col = kdf_tensor_slice (t, 1, 2, 1); /* column 2 */
  g_assert_false (kdf_tensor_is_contiguous (col));
  g_autoptr (KdfTensor) cc = kdf_tensor_contiguous (col);
  g_assert_true (kdf_tensor_is_contiguous (cc));
  g_assert_cmpfloat (kdf_tensor_f32 (cc)[0], ==, 2);
  g_assert_cmpfloat (kdf_tensor_f32 (cc)[1], ==, 6);
  g_assert_cmpfloat (kdf_tensor_f32 (cc)[2], ==, 10);
  g_autoptr (KdfTensor) tt = kdf_tensor_transpose (t, 0, 1);
  g_autoptr (KdfTensor) tc = kdf_tensor_copy (tt);
  /* tc is 4×3 with tc[i][j] = t[j][i] */
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++)
      g_assert_cmpfloat (kdf_tensor_f32 (tc)[i * 3 + j], ==, j * 4 + i);
  /* a 3-d strided copy: transpose the outer two dims of 2×3×2 */
  g_autoptr (KdfTensor) c3 = iota (3, (int64_t[]){ 2, 3, 2 });
  g_autoptr (KdfTensor) t3 = kdf_tensor_transpose (c3, 0, 1);
  g_autoptr (KdfTensor) k3 = kdf_tensor_copy (t3);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 2; c++)
        g_assert_cmpfloat (kdf_tensor_f32 (k3)[(a * 2 + b) * 2 + c], ==, (b * 3 + a) * 2 + c);
  GError *error = NULL;
  g_assert_null (kdf_tensor_reshape (tt, 1, (int64_t[]){ 12 }, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&error);
  g_autoptr (KdfTensor) flat = kdf_tensor_reshape (t, 1, (int64_t[]){ 12 }, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (kdf_tensor_f32 (flat)[11], ==, 11);
}

static void
test_make_writable (void)
{
  KdfTensor *t = iota (1, (int64_t[]){ 4 });
  KdfTensor *orig = t;
  kdf_tensor_make_writable (&t); /* only reference: no copy */
  g_assert_true (t == orig);
  KdfTensor *other = kdf_tensor_ref (t);
  kdf_tensor_make_writable (&t); /* shared: copy */
  g_assert_true (t != other);
  kdf_tensor_f32 (t)[0] = 42;
  g_assert_cmpfloat (kdf_tensor_f32 (other)[0], ==, 0);
  kdf_tensor_unref (other);
  /* a view alone still shares storage with its (released) base? base gone → writable */
  KdfTensor *view = kdf_tensor_slice (t, 0, 1, 2);
  KdfTensor *base = t;
  kdf_tensor_make_writable (&view); /* base alive: storage shared → copy */
  g_assert_true (view->storage != base->storage);
  kdf_tensor_unref (view);
  kdf_tensor_unref (base);
}

static void
test_oracle_flag (void)
{
  g_autoptr (KdfTensor) t = kdf_tensor_new_1d (KDF_DTYPE_U8, 3);
  g_assert_false (kdf_tensor_is_oracle (t));
  kdf_tensor_set_oracle (t, TRUE);
  g_assert_true (kdf_tensor_is_oracle (t));
  g_autoptr (KdfTensor) c = kdf_tensor_copy (t);
  g_assert_true (kdf_tensor_is_oracle (c)); /* a copy of the truth is still the truth */
}

static void
test_gemm (void)
{
  /* A 2×3, B 3×2: C = A·B; and with transposes through strides */
  float a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 7, 8, 9, 10, 11, 12 };
  g_autoptr (KdfTensor) A = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]){ 2, 3 }, a);
  g_autoptr (KdfTensor) B = kdf_tensor_new_from_data (KDF_DTYPE_F32, 2, (int64_t[]){ 3, 2 }, b);
  g_autoptr (KdfTensor) C = kdf_tensor_new_2d (KDF_DTYPE_F32, 2, 2);
  GError *error = NULL;
  g_assert_true (kdf_tensor_gemm (C, 1, A, KDF_NO_TRANS, B, KDF_NO_TRANS, 0, 1, &error));
  float want[] = { 58, 64, 139, 154 };
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (kdf_tensor_f32 (C)[i], ==, want[i]);
  /* Cᵀ = Bᵀ·Aᵀ from the same storage */
  g_autoptr (KdfTensor) Ct = kdf_tensor_new_2d (KDF_DTYPE_F32, 2, 2);
  g_assert_true (kdf_tensor_gemm (Ct, 1, B, KDF_TRANS, A, KDF_TRANS, 0, 2, &error));
  g_assert_cmpfloat (kdf_tensor_f32 (Ct)[1], ==, 139);
  /* a transposed view as input */
  g_autoptr (KdfTensor) At = kdf_tensor_transpose (A, 0, 1);
  g_autoptr (KdfTensor) C2 = kdf_tensor_new_2d (KDF_DTYPE_F32, 2, 2);
  g_assert_true (kdf_tensor_gemm (C2, 1, At, KDF_TRANS, B, KDF_NO_TRANS, 0, 1, &error));
  g_assert_cmpfloat (kdf_tensor_f32 (C2)[3], ==, 154);
  /* bad shapes are refused, not passed to BLIS */
  g_assert_false (kdf_tensor_gemm (C, 1, A, KDF_NO_TRANS, A, KDF_NO_TRANS, 0, 1, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_assert_nonnull (strstr (error->message, "op(A) is 2x3"));
  g_clear_error (&error);
  g_autoptr (KdfTensor) I = kdf_tensor_new_2d (KDF_DTYPE_I32, 2, 2);
  g_assert_false (kdf_tensor_gemm (I, 1, A, KDF_NO_TRANS, B, KDF_NO_TRANS, 0, 1, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&error);
  g_assert_false (kdf_tensor_gemm (A, 1, A, KDF_NO_TRANS, B, KDF_NO_TRANS, 0, 1, &error));
  g_clear_error (&error);
}

/* The one label check every node and the engine's "i32[N] < C" ports use. */
static void
test_check_labels (void)
{
  GError *error = NULL;
  g_autoptr (KdfTensor) y = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 4 },
                                                      (int32_t[]){ 0, 2, 1, 2 });
  g_assert_true (kdf_tensor_check_labels (y, 3, "input 'labels'", &error));
  g_assert_no_error (error);
  g_assert_false (kdf_tensor_check_labels (y, 2, "input 'labels'", &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_VALUE);
  g_assert_cmpstr (error->message, ==, "input 'labels' row 1 is 2, outside [0, 2)");
  g_clear_error (&error);
  g_autoptr (KdfTensor) neg = kdf_tensor_new_from_data (KDF_DTYPE_I32, 1, (int64_t[]){ 2 },
                                                        (int32_t[]){ 0, -3 });
  g_assert_false (kdf_tensor_check_labels (neg, 10, "labels.npy", &error));
  g_assert_cmpstr (error->message, ==, "labels.npy row 1 is -3, outside [0, 10)");
  g_clear_error (&error);
  /* a strided rank-1 view (column 0 of a 3×2 matrix: 0, 1, 5): rows counted in the
   * view. The API has no such view, so the test narrows its own column view. */
  g_autoptr (KdfTensor) m = kdf_tensor_new_from_data (KDF_DTYPE_I32, 2, (int64_t[]){ 3, 2 },
                                                      (int32_t[]){ 0, 9, 1, 9, 5, 9 });
  g_autoptr (KdfTensor) col = kdf_tensor_slice (m, 1, 0, 1); /* 3×1, strides 2, 1 */
  col->rank = 1;
  g_assert_cmpint (col->strides[0], ==, 2);
  g_assert_true (kdf_tensor_check_labels (col, 6, "input 'y'", &error));
  g_assert_false (kdf_tensor_check_labels (col, 5, "input 'y'", &error));
  g_assert_cmpstr (error->message, ==, "input 'y' row 2 is 5, outside [0, 5)");
  g_clear_error (&error);
  /* not labels at all */
  g_autoptr (KdfTensor) f = kdf_tensor_new_1d (KDF_DTYPE_F32, 3);
  g_assert_false (kdf_tensor_check_labels (f, 3, "input 'labels'", &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_assert_cmpstr (error->message, ==, "input 'labels' must be i32[N] class labels, got f32[3]");
  g_clear_error (&error);
}


/* A file of 6 rows × 4 bytes (value 10·row + column) after a 5-byte prefix. */
static char *
write_rows (const char *name, int add)
{
  char *path = g_build_filename (g_get_tmp_dir (), name, NULL);
  guint8 buf[5 + 24] = { 'h', 'e', 'a', 'd', '!' };
  for (int r = 0; r < 6; r++)
    for (int j = 0; j < 4; j++)
      buf[5 + r * 4 + j] = (guint8) (10 * r + j + add);
  g_assert_true (g_file_set_contents (path, (const char *) buf, sizeof buf, NULL));
  return path;
}

static void
test_on_disk (void)
{
  g_autofree char *path = write_rows ("kdf-test-on-disk.bin", 0);
  GError *error = NULL;
  const gint64 before = (gint64) kdf_memory_in_use ();
  g_autoptr (KdfTensor) t = kdf_tensor_new_on_disk (path, 5, 6, 4, "the hint", &error);
  g_assert_no_error (error);
  g_assert_true (kdf_tensor_is_on_disk (t));
  g_assert_cmpint (t->dtype, ==, KDF_DTYPE_F32);
  g_assert_cmpint (t->shape[0], ==, 6);
  g_assert_cmpint (t->shape[1], ==, 4);
  g_assert_null (t->data);
  g_assert_cmpstr (kdf_tensor_on_disk_hint (t), ==, "the hint");
  g_assert_cmpstr (kdf_tensor_on_disk_path (t), ==, path);
  /* memory: the index and one table, never the rows */
  g_assert_cmpint ((gint64) kdf_memory_in_use () - before, <=, 6 * 4 + 256 * 4);
  /* rows in any order, a run of consecutive ones read together */
  const int32_t rows[5] = { 5, 0, 1, 2, 4 };
  float out[5 * 4];
  g_assert_true (kdf_tensor_read_rows (t, rows, 5, out, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++)
      g_assert_cmpfloat (out[i * 4 + j], ==, 10 * rows[i] + j);
  const int32_t bad[1] = { 6 };
  g_assert_false (kdf_tensor_read_rows (t, bad, 1, out, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&error);
  /* take composes the index; nothing is read */
  g_autoptr (KdfTensor) a = kdf_tensor_on_disk_take (t, (const int32_t[]){ 4, 2 }, 2);
  g_autoptr (KdfTensor) b = kdf_tensor_on_disk_take (a, (const int32_t[]){ 1 }, 1);
  g_assert_cmpint (b->shape[0], ==, 1);
  g_assert_cmpint (kdf_tensor_on_disk_index (b)[0], ==, 2);
  g_assert_cmpfloat (kdf_tensor_get (b, (const int64_t[]){ 0, 3 }), ==, 23);
  /* the tables: the dense path's arithmetic, (float) ((x − shift) · scale) */
  const double shift[4] = { 1, 2, 3, 4 }, scale[4] = { 0.5, 0.25, 1.0 / 3, 2 };
  g_autoptr (KdfTensor) u = kdf_tensor_on_disk_affine (a, shift, scale, FALSE);
  g_autoptr (KdfTensor) c = kdf_tensor_on_disk_affine (u, shift, scale, TRUE);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      float x = (float) (10 * (i ? 2 : 4) + j);
      float x1 = (float) ((x - shift[0]) * scale[0]);
      float x2 = (float) ((x1 - shift[j]) * scale[j]);
      g_assert_cmpfloat (kdf_tensor_get (u, (const int64_t[]){ i, j }), ==, x1);
      g_assert_cmpfloat (kdf_tensor_get (c, (const int64_t[]){ i, j }), ==, x2);
    }
  /* a copy (and kdf_tensor_contiguous) is the dense tensor */
  g_autoptr (KdfTensor) d = kdf_tensor_copy (c);
  g_autoptr (KdfTensor) d2 = kdf_tensor_contiguous (c);
  g_assert_false (kdf_tensor_is_on_disk (d));
  g_assert_false (kdf_tensor_is_on_disk (d2));
  for (int k = 0; k < 8; k++) {
    g_assert_cmpfloat (kdf_tensor_f32 (d)[k], ==, kdf_tensor_get_flat (c, k));
    g_assert_cmpfloat (kdf_tensor_f32 (d2)[k], ==, kdf_tensor_f32 (d)[k]);
  }
  /* views of it are refused */
  g_assert_null (kdf_tensor_reshape (c, 1, (const int64_t[]){ 8 }, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_SHAPE);
  g_clear_error (&error);

  /* a file shorter than the rows, a missing file */
  g_assert_null (kdf_tensor_new_on_disk (path, 5, 7, 4, NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "truncated"));
  g_clear_error (&error);
  g_assert_null (kdf_tensor_new_on_disk ("/nonexistent/x.npy", 0, 1, 1, NULL, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_IO);
  g_clear_error (&error);

  /* truncated while in use: a read error naming the file (a map would raise SIGBUS);
   * the rows still there read */
  g_assert_cmpint (truncate (path, 5 + 4 * 2), ==, 0);
  g_assert_false (kdf_tensor_read_rows (t, (const int32_t[]){ 1, 2, 3 }, 3, out, &error));
  g_assert_error (error, KDF_ERROR, KDF_ERROR_IO);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "truncated while in use"));
  g_clear_error (&error);
  g_assert_true (kdf_tensor_read_rows (t, (const int32_t[]){ 1 }, 1, out, &error));
  g_assert_cmpfloat (out[0], ==, 10);

  /* replaced by a rename: the descriptor keeps reading the file it opened */
  g_autofree char *p2 = write_rows ("kdf-test-on-disk-2.bin", 0);
  g_autoptr (KdfTensor) t2 = kdf_tensor_new_on_disk (p2, 5, 6, 4, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *p3 = write_rows ("kdf-test-on-disk-3.bin", 100);
  g_assert_cmpint (g_rename (p3, p2), ==, 0);
  g_assert_cmpfloat (kdf_tensor_get (t2, (const int64_t[]){ 5, 1 }), ==, 51);
  g_unlink (p2);
  g_unlink (path);
}

/* The memory an on-disk tensor counts (its index and its tables) is given back when the
 * last tensor on it goes. */
static void
test_on_disk_accounting (void)
{
  g_autofree char *path = write_rows ("kdf-test-on-disk-acct.bin", 0);
  const guint64 before = kdf_memory_in_use ();
  KdfTensor *t = kdf_tensor_new_on_disk (path, 5, 6, 4, NULL, NULL);
  const double shift[4] = { 0 }, scale[4] = { 1, 1, 1, 1 };
  KdfTensor *a = kdf_tensor_on_disk_affine (t, shift, scale, TRUE);
  KdfTensor *b = kdf_tensor_on_disk_take (a, (const int32_t[]){ 1, 2 }, 2);
  g_assert_cmpuint (kdf_memory_in_use (), >, before + 4 * 256 * sizeof (float));
  kdf_tensor_unref (t);
  kdf_tensor_unref (a);
  g_assert_cmpuint (kdf_memory_in_use (), >, before);
  kdf_tensor_unref (b);
  g_assert_cmpuint (kdf_memory_in_use (), ==, before);
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tensor/new", test_new);
  g_test_add_func ("/tensor/overflow", test_try_new_overflow);
  g_test_add_func ("/tensor/views", test_views);
  g_test_add_func ("/tensor/make-writable", test_make_writable);
  g_test_add_func ("/tensor/oracle", test_oracle_flag);
  g_test_add_func ("/tensor/gemm", test_gemm);
  g_test_add_func ("/tensor/check-labels", test_check_labels);
  g_test_add_func ("/tensor/on-disk", test_on_disk);
  g_test_add_func ("/tensor/on-disk-accounting", test_on_disk_accounting);
  int rc = g_test_run ();
  kdf_shutdown ();
  return rc;
}
