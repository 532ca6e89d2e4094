/* .npy: round trips with Debian's numpy (every dtype, both byte orders, header
 * versions 1.0/2.0/3.0), conversions with range checks, every kind of bad file, and
 * the speed of a 1M×10 float64 read. */
#include "data-test-util.h"

#include <float.h>
#include <math.h>

/* numpy writes one file per dtype × byte order × version; the C side reads each. */
static const char *write_script =
    "import numpy as np\n"
    "from numpy.lib import format as F\n"
    "dts = ['<f4','>f4','<f8','>f8','<i4','>i4','<i8','>i8','|u1','<u2','>u2','|b1',\n"
    "       '|i1','<i2','>u4','<u8']\n"
    "for dt in dts:\n"
    "    k = np.dtype(dt).kind\n"
    "    base = np.arange(12).reshape(3, 4)\n"
    "    a = (base % 3 == 0) if k == 'b' else (base * 0.5 - 1 if k == 'f' else base * 7 + 3)\n"
    "    a = np.ascontiguousarray(a.astype(dt))\n"
    "    for v in [(1, 0), (2, 0), (3, 0)]:\n"
    "        with open('%s_v%d.npy' % (dt[1:] + ('be' if dt[0] == '>' else 'le'), v[0]), 'wb') as f:\n"
    "            F.write_array(f, a, version=v)\n"
    "np.save('scalar.npy', np.float64(2.25))\n"
    "np.save('rank4.npy', np.arange(120, dtype='<i2').reshape(2, 3, 4, 5))\n"
    "np.save('empty.npy', np.zeros((0, 3), dtype='<f4'))\n"
    "np.save('fortran.npy', np.asfortranarray(np.arange(6.0).reshape(2, 3)))\n"
    "np.save('fortran1d.npy', np.asfortranarray(np.arange(6.0)))\n"
    "np.save('object.npy', np.array([{'a': 1}, None], dtype=object), allow_pickle=True)\n"
    "np.save('complex.npy', np.zeros(3, dtype='<c16'))\n"
    "np.save('unicode.npy', np.array(['ab', 'c']))\n"
    "np.save('rank5.npy', np.zeros((1, 2, 1, 2, 1), dtype='<f4'))\n"
    "np.save('record.npy', np.zeros(2, dtype=[('a', '<i4'), ('b', '<f8')]))\n";

static double
expected_value (char kind, int i)
{
  if (kind == 'b')
    return i % 3 == 0;
  if (kind == 'f')
    return i * 0.5 - 1;
  return i * 7 + 3;
}

static void
test_from_numpy (void)
{
  if (!have_numpy ()) {
    g_test_skip ("Debian's python3-numpy (/usr/bin/python3) is not available");
    return;
  }
  char *dir = tmpdir_new ();
  run_python (dir, write_script);
  GError *error = NULL;
  const char *dts[] = { "f4", "f8", "i4", "i8", "u1", "u2", "b1", "i1", "i2", "u4", "u8" };
  int n_files = 0;
  for (guint d = 0; d < G_N_ELEMENTS (dts); d++)
    for (int be = 0; be < 2; be++)
      for (int v = 1; v <= 3; v++) {
        g_autofree char *name = g_strdup_printf ("%s%s_v%d.npy", dts[d], be ? "be" : "le", v);
        g_autofree char *path = g_build_filename (dir, name, NULL);
        if (!g_file_test (path, G_FILE_TEST_EXISTS))
          continue; /* that byte order was not written for this dtype */
        n_files++;
        char kind = dts[d][0];
        KdfNpyHeader h;
        g_assert_true (kdf_npy_read_header (path, &h, &error));
        g_assert_no_error (error);
        g_assert_cmpint (h.version_major, ==, v);
        g_assert_cmpint (h.kind, ==, kind);
        g_assert_cmpint (h.rank, ==, 2);
        g_assert_cmpint (h.big_endian, ==, be && h.itemsize > 1);
        KdfDType targets[] = { KDF_DTYPE_ANY, KDF_DTYPE_F32, KDF_DTYPE_I32, KDF_DTYPE_U8 };
        for (guint t = 0; t < G_N_ELEMENTS (targets); t++) {
          /* floats -1..4.5 are neither integers nor all ≥ 0 */
          if (kind == 'f' && targets[t] != KDF_DTYPE_F32 && targets[t] != KDF_DTYPE_ANY)
            continue;
          gboolean fits_u8 = kind == 'b' || 11 * 7 + 3 <= 255;
          if (targets[t] == KDF_DTYPE_U8 && !fits_u8)
            continue;
          g_autoptr (KdfTensor) x = kdf_npy_read (path, targets[t], &error);
          if (error)
            g_error ("%s → %s: %s", name, kdf_dtype_name (targets[t]), error->message);
          g_assert_cmpint (x->rank, ==, 2);
          g_assert_cmpint (x->shape[0], ==, 3);
          g_assert_cmpint (x->shape[1], ==, 4);
          if (targets[t] == KDF_DTYPE_ANY)
            g_assert_cmpint (x->dtype, ==,
                             kind == 'f' ? KDF_DTYPE_F32
                             : (kind == 'b' || !strcmp (dts[d], "u1")) ? KDF_DTYPE_U8
                                                                        : KDF_DTYPE_I32);
          for (int i = 0; i < 12; i++)
            g_assert_cmpfloat (kdf_tensor_get_flat (x, i), ==, expected_value (kind, i));
        }
      }
  /* the 16 dtype-and-byte-order combinations of the script × 3 header versions */
  g_assert_cmpint (n_files, ==, 16 * 3);

  struct {
    const char *file;
    int code;
    const char *needle;
  } bad[] = {
    { "fortran.npy", KDF_ERROR_IO, "ascontiguousarray" },
    { "object.npy", KDF_ERROR_IO, "pickled" },
    { "complex.npy", KDF_ERROR_IO, "unsupported dtype '<c16'" },
    { "unicode.npy", KDF_ERROR_IO, "unsupported dtype" },
    { "record.npy", KDF_ERROR_IO, "structured" },
    { "rank5.npy", KDF_ERROR_SHAPE, "rank 5" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (bad); k++) {
    g_autofree char *path = g_build_filename (dir, bad[k].file, NULL);
    g_assert_null (kdf_npy_read (path, KDF_DTYPE_F32, &error));
    assert_error (&error, bad[k].code, path, bad[k].needle, NULL);
  }
  g_autofree char *f1 = g_build_filename (dir, "fortran1d.npy", NULL);
  g_autoptr (KdfTensor) f1t = kdf_npy_read (f1, KDF_DTYPE_F32, &error);
  g_assert_no_error (error); /* one dimension: Fortran and C order coincide */
  g_assert_cmpfloat (kdf_tensor_f32 (f1t)[5], ==, 5);

  g_autofree char *sc = g_build_filename (dir, "scalar.npy", NULL);
  g_autoptr (KdfTensor) s = kdf_npy_read (sc, KDF_DTYPE_ANY, &error);
  g_assert_no_error (error);
  g_assert_cmpint (s->rank, ==, 0);
  g_assert_cmpfloat (kdf_tensor_f32 (s)[0], ==, 2.25);
  g_autofree char *r4 = g_build_filename (dir, "rank4.npy", NULL);
  g_autoptr (KdfTensor) t4 = kdf_npy_read (r4, KDF_DTYPE_ANY, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t4->rank, ==, 4);
  g_assert_cmpint (t4->shape[3], ==, 5);
  g_assert_cmpint (kdf_tensor_i32 (t4)[119], ==, 119);
  g_autofree char *em = g_build_filename (dir, "empty.npy", NULL);
  g_autoptr (KdfTensor) te = kdf_npy_read (em, KDF_DTYPE_F32, &error);
  g_assert_no_error (error);
  g_assert_cmpint (te->shape[0], ==, 0);
  g_assert_cmpint (te->shape[1], ==, 3);
  tmpdir_free (dir);
}

static void
test_to_numpy (void)
{
  if (!have_numpy ()) {
    g_test_skip ("Debian's python3-numpy (/usr/bin/python3) is not available");
    return;
  }
  char *dir = tmpdir_new ();
  GError *error = NULL;
  g_autoptr (KdfTensor) f = kdf_tensor_new_2d (KDF_DTYPE_F32, 3, 5);
  g_autoptr (KdfTensor) i = kdf_tensor_new_1d (KDF_DTYPE_I32, 7);
  int64_t s3[3] = { 2, 2, 3 };
  g_autoptr (KdfTensor) u = kdf_tensor_new (KDF_DTYPE_U8, 3, s3);
  for (int k = 0; k < 15; k++)
    kdf_tensor_f32 (f)[k] = k * 0.25f - 1.0f;
  for (int k = 0; k < 7; k++)
    kdf_tensor_i32 (i)[k] = (k - 3) * 1000003;
  for (int k = 0; k < 12; k++)
    kdf_tensor_u8 (u)[k] = (guint8) (k * 21);
  /* a non-contiguous view: columns 1..3 of the transpose */
  g_autoptr (KdfTensor) tr = kdf_tensor_transpose (f, 0, 1);
  g_autoptr (KdfTensor) view = kdf_tensor_slice (tr, 0, 1, 3);
  int64_t sh1[1] = { 4 };
  double f8[4] = { 1e300, -0.1, 0, 3.5 };
  int64_t i8[4] = { G_MININT64, -1, 0, G_MAXINT64 };
  guint16 u2[4] = { 0, 1, 65535, 256 };
  guint8 b1[4] = { 1, 0, 0, 1 };
  struct {
    const char *name;
    gboolean ok;
  } files[] = { { "f.npy" }, { "i.npy" }, { "u.npy" }, { "view.npy" }, { "f8.npy" },
                { "f8be.npy" }, { "i8.npy" }, { "i8be.npy" }, { "u2.npy" }, { "b1.npy" } };
  char *p[G_N_ELEMENTS (files)];
  for (guint k = 0; k < G_N_ELEMENTS (files); k++)
    p[k] = g_build_filename (dir, files[k].name, NULL);
  g_assert_true (kdf_npy_write (p[0], f, &error));
  g_assert_true (kdf_npy_write (p[1], i, &error));
  g_assert_true (kdf_npy_write (p[2], u, &error));
  g_assert_true (kdf_npy_write (p[3], view, &error));
  g_assert_true (kdf_npy_write_raw (p[4], "<f8", 1, sh1, f8, &error));
  g_assert_true (kdf_npy_write_raw (p[5], ">f8", 1, sh1, f8, &error));
  g_assert_true (kdf_npy_write_raw (p[6], "<i8", 1, sh1, i8, &error));
  g_assert_true (kdf_npy_write_raw (p[7], ">i8", 1, sh1, i8, &error));
  g_assert_true (kdf_npy_write_raw (p[8], "<u2", 1, sh1, u2, &error));
  g_assert_true (kdf_npy_write_raw (p[9], "|b1", 1, sh1, b1, &error));
  g_assert_no_error (error);
  run_python (dir,
              "import numpy as np\n"
              "def chk(name, want):\n"
              "    a = np.load(name)\n"
              "    assert a.dtype == want.dtype, (name, a.dtype, want.dtype)\n"
              "    assert a.shape == want.shape, (name, a.shape, want.shape)\n"
              "    assert np.array_equal(a, want), (name, a, want)\n"
              "    assert open(name, 'rb').read(6) == b'\\x93NUMPY'\n"
              "    hl = int.from_bytes(open(name, 'rb').read(10)[8:10], 'little')\n"
              "    assert (10 + hl) % 64 == 0, name\n"
              "f = (np.arange(15, dtype='<f4') * 0.25 - 1).reshape(3, 5)\n"
              "chk('f.npy', f)\n"
              "chk('i.npy', (np.arange(7, dtype='<i4') - 3) * 1000003)\n"
              "chk('u.npy', (np.arange(12) * 21).astype('|u1').reshape(2, 2, 3))\n"
              "chk('view.npy', np.ascontiguousarray(f.T[1:4]))\n"
              "f8 = np.array([1e300, -0.1, 0, 3.5])\n"
              "chk('f8.npy', f8.astype('<f8'))\n"
              "chk('f8be.npy', f8.astype('>f8'))\n"
              "i8 = np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max])\n"
              "chk('i8.npy', i8.astype('<i8'))\n"
              "chk('i8be.npy', i8.astype('>i8'))\n"
              "chk('u2.npy', np.array([0, 1, 65535, 256], dtype='<u2'))\n"
              "chk('b1.npy', np.array([True, False, False, True]))\n");
  for (guint k = 0; k < G_N_ELEMENTS (files); k++)
    g_free (p[k]);
  tmpdir_free (dir);
}

static void
test_round_trip_and_conversions (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  g_autofree char *p = g_build_filename (dir, "a.npy", NULL);
  int64_t sh[2] = { 2, 3 };
  for (int dt = 0; dt < 3; dt++) {
    g_autoptr (KdfTensor) t = kdf_tensor_new ((KdfDType) dt, 2, sh);
    for (int k = 0; k < 6; k++) {
      int64_t idx[2] = { k / 3, k % 3 };
      double v = k * 11;
      if (dt == KDF_DTYPE_F32)
        kdf_tensor_f32 (t)[k] = (float) (v + 0.5);
      else if (dt == KDF_DTYPE_I32)
        kdf_tensor_i32 (t)[k] = (int32_t) (v - 20);
      else
        kdf_tensor_u8 (t)[k] = (guint8) v;
      (void) idx;
    }
    g_assert_true (kdf_npy_write (p, t, &error));
    g_autoptr (KdfTensor) back = kdf_npy_read (p, KDF_DTYPE_ANY, &error);
    g_assert_no_error (error);
    g_assert_cmpint (back->dtype, ==, dt);
    g_assert_true (kdf_tensor_same_shape (t, back));
    g_assert_cmpmem (t->data, kdf_tensor_nbytes (t), back->data, kdf_tensor_nbytes (back));
  }

  int64_t one[1] = { 3 };
  struct {
    const char *descr;
    const void *data;
    KdfDType to;
    const char *needle; /* NULL: must succeed */
    double want[3];
  } cases[] = {
    { "<f8", (double[]) { 1.5, -2, 1e30 }, KDF_DTYPE_F32, NULL, { 1.5, -2, (float) 1e30 } },
    { "<f8", (double[]) { 1, 2, 1e300 }, KDF_DTYPE_F32, "outside the f32 range" },
    { "<f8", (double[]) { 1, 2.5, 3 }, KDF_DTYPE_I32, "element 1 (row-major) is 2.5, not an integer" },
    { "<f8", (double[]) { 1, NAN, 3 }, KDF_DTYPE_I32, "not a number" },
    { "<f4", (float[]) { 0, 255, 256 }, KDF_DTYPE_U8, "element 2" },
    { "<f8", (double[]) { 7, -3, 2147483647 }, KDF_DTYPE_I32, NULL, { 7, -3, 2147483647 } },
    { "<i8", (int64_t[]) { 5, 2147483647, -2147483648LL }, KDF_DTYPE_I32, NULL,
      { 5, 2147483647, -2147483648.0 } },
    { "<i8", (int64_t[]) { 5, 2147483648LL, 0 }, KDF_DTYPE_I32, "out of the i32 range" },
    { ">i8", (int64_t[]) { 0, 0, -2147483649LL }, KDF_DTYPE_I32, "element 2" },
    { "<i4", (int32_t[]) { 0, -1, 3 }, KDF_DTYPE_U8, "out of the u8 range" },
    { "<u8", (guint64[]) { 0, G_MAXUINT64, 3 }, KDF_DTYPE_I32, "out of the i32 range" },
    { "<u2", (guint16[]) { 0, 65535, 3 }, KDF_DTYPE_I32, NULL, { 0, 65535, 3 } },
    { "<u2", (guint16[]) { 0, 256, 3 }, KDF_DTYPE_U8, "out of the u8 range" },
    { "|b1", (guint8[]) { 1, 0, 1 }, KDF_DTYPE_F32, NULL, { 1, 0, 1 } },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    g_assert_true (kdf_npy_write_raw (p, cases[k].descr, 1, one, cases[k].data, &error));
    g_assert_no_error (error);
    g_autoptr (KdfTensor) t = kdf_npy_read (p, cases[k].to, &error);
    if (cases[k].needle) {
      g_assert_null (t);
      assert_error (&error, KDF_ERROR_IO, p, cases[k].needle, NULL);
    } else {
      g_assert_no_error (error);
      for (int i = 0; i < 3; i++)
        g_assert_cmpfloat (kdf_tensor_get_flat (t, i), ==, cases[k].want[i]);
    }
  }
  g_assert_false (kdf_npy_write_raw (p, "<c8", 1, one, one, &error));
  assert_error (&error, KDF_ERROR_IO, "unsupported dtype", NULL);
  tmpdir_free (dir);
}

/* A .npy file with a hand-written header DICT and NDATA bytes of data. */
static char *
npy_with_header (const char *dir, const char *name, int major, const char *dict, gsize ndata)
{
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "\x93NUMPY", 6);
  guint8 ver[2] = { (guint8) major, 0 };
  g_byte_array_append (b, ver, 2);
  guint32 hl = (guint32) strlen (dict);
  guint8 len[4] = { hl & 0xff, (hl >> 8) & 0xff, (hl >> 16) & 0xff, hl >> 24 };
  g_byte_array_append (b, len, major == 1 ? 2 : 4);
  g_byte_array_append (b, (const guint8 *) dict, hl);
  for (gsize i = 0; i < ndata; i++) {
    guint8 z = (guint8) i;
    g_byte_array_append (b, &z, 1);
  }
  char *p = write_file (dir, name, b->data, b->len);
  g_byte_array_unref (b);
  return p;
}

static void
test_bad_files (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  struct {
    const char *name;
    int major;
    const char *dict;
    gsize ndata;
    int code;
    const char *needle;
  } cases[] = {
    { "ok", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24, -1, NULL },
    { "ok-v3-utf8", 3, "{'descr': '<i4', 'shape': (3,), 'fortran_order': False} \n", 12, -1, NULL },
    { "fortran", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24,
      KDF_ERROR_IO, "Fortran order" },
    { "object", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n", 16,
      KDF_ERROR_IO, "pickled" },
    { "overflow", 1,
      "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n", 8,
      KDF_ERROR_IO, "overflows" },
    { "overflow-digits", 1,
      "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", 8,
      KDF_ERROR_IO, "overflows" },
    { "too-short", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", 47,
      KDF_ERROR_IO, "needs 48 bytes of data, the file has 47" },
    { "too-long", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", 49,
      KDF_ERROR_IO, "needs 48 bytes of data, the file has 49" },
    { "dtype", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }\n", 4,
      KDF_ERROR_IO, "unsupported dtype '<f2'" },
    { "datetime", 1, "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }\n", 16,
      KDF_ERROR_IO, "unsupported dtype" },
    { "missing-key", 1, "{'descr': '<f4', 'shape': (2,), }\n", 8, KDF_ERROR_IO, "required" },
    { "extra-key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8,
      KDF_ERROR_IO, "unexpected key 'x'" },
    { "not-dict", 1, "hello", 0, KDF_ERROR_IO, "malformed" },
    { "bad-shape", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }\n", 8,
      KDF_ERROR_IO, "shape" },
    { "version", 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8,
      KDF_ERROR_IO, "version 4.0" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    g_autofree char *p = npy_with_header (dir, cases[k].name, cases[k].major, cases[k].dict,
                                          cases[k].ndata);
    g_autoptr (KdfTensor) t = kdf_npy_read (p, KDF_DTYPE_ANY, &error);
    if (cases[k].code < 0) {
      g_assert_no_error (error);
      g_assert_nonnull (t);
    } else {
      g_assert_null (t);
      assert_error (&error, cases[k].code, p, cases[k].needle, NULL);
    }
  }

  /* bad magic; a file cut inside the preamble; a header length beyond the file */
  g_autofree char *magic = write_file (dir, "magic.npy", "\x93NUMPX\x01\x00\x10\x00{}", 12);
  g_assert_null (kdf_npy_read (magic, KDF_DTYPE_F32, &error));
  assert_error (&error, KDF_ERROR_IO, magic, "bad magic", NULL);
  g_autofree char *cut = write_file (dir, "cut.npy", "\x93NUMPY\x01", 7);
  g_assert_null (kdf_npy_read (cut, KDF_DTYPE_F32, &error));
  assert_error (&error, KDF_ERROR_IO, cut, "truncated .npy header", NULL);
  g_autofree char *cut2 = write_file (dir, "cut2.npy", "\x93NUMPY\x01\x00\x76\x00{'descr'", 17);
  g_assert_null (kdf_npy_read (cut2, KDF_DTYPE_F32, &error));
  assert_error (&error, KDF_ERROR_IO, cut2, "truncated .npy header", NULL);
  g_autofree char *empty = write_file (dir, "empty.npy", "", 0);
  g_assert_null (kdf_npy_read (empty, KDF_DTYPE_F32, &error));
  assert_error (&error, KDF_ERROR_IO, empty, "bad magic", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.npy", NULL);
  g_assert_null (kdf_npy_read (missing, KDF_DTYPE_F32, &error));
  assert_error (&error, KDF_ERROR_IO, missing, "not found", NULL);
  KdfNpyHeader h;
  g_assert_false (kdf_npy_read_header (missing, &h, &error));
  assert_error (&error, KDF_ERROR_IO, missing, NULL);
  /* writing into a directory that does not exist */
  g_autofree char *nodir = g_build_filename (dir, "no", "such", "x.npy", NULL);
  g_autoptr (KdfTensor) t = kdf_tensor_new_1d (KDF_DTYPE_F32, 2);
  g_assert_false (kdf_npy_write (nodir, t, &error));
  assert_error (&error, KDF_ERROR_IO, nodir, "cannot write", NULL);
  tmpdir_free (dir);
}

static void
test_speed (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  g_autofree char *p = g_build_filename (dir, "big.npy", NULL);
  int64_t sh[2] = { 1000000, 10 };
  g_autofree double *data = g_new (double, 10000000);
  for (int64_t i = 0; i < 10000000; i++)
    data[i] = (double) (i % 1000) * 0.125;
  g_assert_true (kdf_npy_write_raw (p, "<f8", 2, sh, data, &error));
  g_assert_no_error (error);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (KdfTensor) t = kdf_npy_read (p, KDF_DTYPE_F32, &error);
  double secs = (g_get_monotonic_time () - t0) / 1e6;
  g_assert_no_error (error);
  g_test_message ("1M×10 float64 → f32 read in %.3f s", secs);
  g_assert_cmpfloat (secs, <, 5.0); /* ~0.1 s when read in bulk; sanitizers are slower */
  g_assert_cmpint (t->shape[0], ==, 1000000);
  g_assert_cmpfloat (kdf_tensor_f32 (t)[9999999], ==, 999 * 0.125);
  g_assert_cmpfloat (kdf_tensor_f32 (t)[1234567], ==, 567 * 0.125);
  tmpdir_free (dir);
}

/* kdf_npy_read_rows gives the rows kdf_npy_read + take_rows gives: u8 over more than one
 * 8 MB block (all rows: one run split in blocks; every third row; a few), big-endian
 * f8 → f32, i8 → i32; bad row lists and damaged files fail naming the file. */
static void
test_read_rows (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  const int64_t n = 12000, d = 784;
  int64_t shape[2] = { n, d };
  g_autoptr (KdfTensor) x = kdf_tensor_new (KDF_DTYPE_U8, 2, shape);
  for (int64_t i = 0; i < n * d; i++)
    kdf_tensor_u8 (x)[i] = (guint8) ((i * 2654435761u) >> 13);
  g_autofree char *px = g_build_filename (dir, "x.npy", NULL);
  g_assert_true (kdf_npy_write (px, x, &error));
  g_autofree int32_t *all = g_new (int32_t, n);
  for (int64_t i = 0; i < n; i++)
    all[i] = (int32_t) i;
  g_autofree int32_t *third = g_new (int32_t, n / 3);
  for (int64_t i = 0; i < n / 3; i++)
    third[i] = (int32_t) (3 * i + 1);
  int32_t few[5] = { 0, 1, 2, 7000, 11999 };
  struct { const int32_t *rows; int64_t k; } cases[] = { { all, n }, { third, n / 3 }, { few, 5 } };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autoptr (KdfTensor) got = kdf_npy_read_rows (px, KDF_DTYPE_ANY, cases[c].rows, cases[c].k,
                                                   &error);
    g_assert_no_error (error);
    g_autoptr (KdfTensor) want = kdf_data_take_rows (x, cases[c].rows, cases[c].k);
    g_assert_cmpint (got->dtype, ==, KDF_DTYPE_U8);
    g_assert_cmpint (got->shape[0], ==, cases[c].k);
    g_assert_cmpmem (got->data, kdf_tensor_nbytes (got), want->data, kdf_tensor_nbytes (want));
  }
  /* converted types: >f8 → f32 and <i8 → i32, rank 3 */
  double dv[4 * 2 * 3];
  gint64 iv[4 * 2 * 3];
  for (int i = 0; i < 24; i++) {
    dv[i] = i * 0.25 - 3;
    iv[i] = i * 1000 - 7000;
  }
  int64_t s3[3] = { 4, 2, 3 };
  g_autofree char *pf = g_build_filename (dir, "f8.npy", NULL);
  g_autofree char *pi = g_build_filename (dir, "i8.npy", NULL);
  g_assert_true (kdf_npy_write_raw (pf, ">f8", 3, s3, dv, &error));
  g_assert_true (kdf_npy_write_raw (pi, "<i8", 3, s3, iv, &error));
  int32_t r2[2] = { 1, 3 };
  g_autoptr (KdfTensor) f = kdf_npy_read_rows (pf, KDF_DTYPE_ANY, r2, 2, &error);
  g_assert_no_error (error);
  g_autoptr (KdfTensor) iw = kdf_npy_read_rows (pi, KDF_DTYPE_ANY, r2, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (f->dtype, ==, KDF_DTYPE_F32);
  g_assert_cmpint (f->rank, ==, 3);
  g_assert_cmpint (iw->dtype, ==, KDF_DTYPE_I32);
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 6; j++) {
      g_assert_cmpfloat (kdf_tensor_f32 (f)[r * 6 + j], ==, (float) dv[r2[r] * 6 + j]);
      g_assert_cmpint (kdf_tensor_i32 (iw)[r * 6 + j], ==, iv[r2[r] * 6 + j]);
    }
  /* a value that does not fit the dtype asked for names its element */
  g_assert_null (kdf_npy_read_rows (pi, KDF_DTYPE_U8, r2, 2, &error));
  assert_error (&error, KDF_ERROR_IO, pi, "element 6", NULL);
  /* bad row lists */
  int32_t bad[3][2] = { { 5, 3 }, { 4, 4 }, { 0, (int32_t) n } };
  for (int j = 0; j < 3; j++) {
    g_assert_null (kdf_npy_read_rows (px, KDF_DTYPE_ANY, bad[j], 2, &error));
    assert_error (&error, KDF_ERROR_IO, px, "row", NULL);
  }
  /* a file cut short: the header's shape disagrees with the size */
  gchar *bytes = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (px, &bytes, &len, NULL));
  g_autofree char *cut = write_file (dir, "cut.npy", bytes, len - 100);
  g_free (bytes);
  g_assert_null (kdf_npy_read_rows (cut, KDF_DTYPE_ANY, few, 5, &error));
  assert_error (&error, KDF_ERROR_IO, cut, "truncated", NULL);
  tmpdir_free (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/npy/from-numpy", test_from_numpy);
  g_test_add_func ("/data/npy/to-numpy", test_to_numpy);
  g_test_add_func ("/data/npy/round-trip-and-conversions", test_round_trip_and_conversions);
  g_test_add_func ("/data/npy/bad-files", test_bad_files);
  g_test_add_func ("/data/npy/speed", test_speed);
  g_test_add_func ("/data/npy/read-rows", test_read_rows);
  return g_test_run ();
}
