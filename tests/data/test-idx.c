/* IDX reader: real Fashion-MNIST (skipped if Debian's dataset-fashion-mnist is not
 * installed), synthetic files of every element type, and every kind of bad file. */
#include "data-test-util.h"

#include <math.h>

static gboolean
have_fmnist (void)
{
  if (g_file_test (KDF_FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz", G_FILE_TEST_EXISTS))
    return TRUE;
  g_test_skip ("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)");
  return FALSE;
}

static void
test_fmnist_files (void)
{
  if (!have_fmnist ())
    return;
  GError *error = NULL;
  g_autoptr (KdfTensor) y = kdf_idx_read (KDF_FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz", &error);
  g_assert_no_error (error);
  g_assert_cmpint (y->dtype, ==, KDF_DTYPE_U8);
  g_assert_cmpint (y->rank, ==, 1);
  g_assert_cmpint (y->shape[0], ==, 60000);
  static const guint8 first[10] = { 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 };
  for (int i = 0; i < 10; i++)
    g_assert_cmpint (kdf_tensor_u8 (y)[i], ==, first[i]);

  g_autoptr (KdfTensor) x = kdf_idx_read (KDF_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz", &error);
  g_assert_no_error (error);
  g_assert_cmpint (x->rank, ==, 3);
  g_assert_cmpint (x->shape[0], ==, 10000);
  g_assert_cmpint (x->shape[1], ==, 28);
  g_assert_cmpint (x->shape[2], ==, 28);
  guint64 sum = 0;
  for (int64_t i = 0; i < kdf_tensor_numel (x); i++)
    sum += kdf_tensor_u8 (x)[i];
  g_assert_cmpuint (sum, ==, 573469082); /* numpy on the same file */
}

static void
test_fmnist_dataset (void)
{
  if (!have_fmnist ())
    return;
  GError *error = NULL;
  /* how fast it loads is measured in bench/data, not asserted here */
  g_autoptr (KdfDataset) ds = kdf_dataset_load_fashion_mnist (NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ds->x->shape[0], ==, 60000);
  g_assert_cmpint (ds->x->shape[1], ==, 784);
  g_assert_cmpint (ds->x->dtype, ==, KDF_DTYPE_F32);
  g_assert_cmpint (ds->x_test->shape[0], ==, 10000);
  g_assert_cmpint (ds->y_test->shape[0], ==, 10000);
  g_assert_cmpint (ds->n_classes, ==, 10);
  g_assert_cmpstr (ds->class_names[0], ==, "T-shirt/top");
  g_assert_cmpstr (ds->class_names[9], ==, "Ankle boot");
  g_assert_cmpint (ds->image_shape[0], ==, 1);
  g_assert_cmpint (ds->image_shape[1], ==, 28);
  g_assert_cmpint (ds->image_shape[2], ==, 28);
  g_assert_cmpint (kdf_tensor_i32 (ds->labels)[0], ==, 9);
  g_assert_cmpint (kdf_tensor_i32 (ds->y_test)[0], ==, 9);
  g_assert_cmpint (kdf_tensor_i32 (ds->y_test)[4], ==, 6);
  g_assert_true (kdf_tensor_is_oracle (ds->clean_labels));
  g_assert_true (kdf_tensor_is_oracle (ds->noisy_mask));
  g_assert_false (kdf_tensor_is_oracle (ds->labels));
  /* image 0, row 14, columns 12..14 hold 237 226 217; the first nonzero pixels are
   * 96, 99, 100 with values 1, 13, 73 (numpy on the same file) */
  const float *x0 = kdf_tensor_f32 (ds->x);
  g_assert_cmpfloat (x0[14 * 28 + 12], ==, 237);
  g_assert_cmpfloat (x0[14 * 28 + 14], ==, 217);
  g_assert_cmpfloat (x0[96], ==, 1);
  g_assert_cmpfloat (x0[100], ==, 73);
  double s = 0;
  for (int j = 0; j < 784; j++)
    s += x0[j];
  g_assert_cmpfloat (s, ==, 76247);

  g_assert_true (kdf_dataset_normalize (ds, KDF_NORMALIZE_UNIT, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (kdf_tensor_f32 (ds->x)[14 * 28 + 12], 237 / 255.0, 1e-6);
}

static void
test_fmnist_missing (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  KdfDataset *ds = kdf_dataset_load_fashion_mnist (dir, &error);
  g_assert_null (ds);
  assert_error (&error, KDF_ERROR_IO, dir, "train-images-idx3-ubyte", "dataset-fashion-mnist",
                NULL);
  ds = kdf_dataset_load ("fashion-mnist", dir, &error);
  g_assert_null (ds);
  assert_error (&error, KDF_ERROR_IO, "dataset-fashion-mnist", NULL);
  tmpdir_free (dir);
}

/* An IDX image: header for TYPE and DIMS, then PAYLOAD. */
static GByteArray *
idx_bytes (guint8 type, int rank, const guint32 *dims, const void *payload, gsize len)
{
  GByteArray *b = g_byte_array_new ();
  guint8 head[4] = { 0, 0, type, (guint8) rank };
  g_byte_array_append (b, head, 4);
  for (int d = 0; d < rank; d++) {
    guint32 be = GUINT32_TO_BE (dims[d]);
    g_byte_array_append (b, (guint8 *) &be, 4);
  }
  g_byte_array_append (b, payload, len);
  return b;
}

static void
test_synthetic (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;

  guint8 px[24];
  for (int i = 0; i < 24; i++)
    px[i] = (guint8) (i * 10);
  guint32 dims[3] = { 2, 3, 4 };
  GByteArray *b = idx_bytes (0x08, 3, dims, px, 24);
  g_autofree char *plain = write_file (dir, "u8", b->data, b->len);
  GBytes *gz = gzip_bytes (b->data, b->len);
  g_autofree char *gzp = write_file (dir, "u8.gz", g_bytes_get_data (gz, NULL), g_bytes_get_size (gz));
  /* gzip is detected by magic, not by name */
  g_autofree char *gz_noext =
      write_file (dir, "u8-compressed", g_bytes_get_data (gz, NULL), g_bytes_get_size (gz));
  const char *paths[] = { plain, gzp, gz_noext };
  for (int k = 0; k < 3; k++) {
    g_autoptr (KdfTensor) t = kdf_idx_read (paths[k], &error);
    g_assert_no_error (error);
    g_assert_cmpint (t->dtype, ==, KDF_DTYPE_U8);
    g_assert_cmpint (t->rank, ==, 3);
    g_assert_cmpint (t->shape[2], ==, 4);
    for (int i = 0; i < 24; i++)
      g_assert_cmpint (kdf_tensor_u8 (t)[i], ==, i * 10);
  }
  g_bytes_unref (gz);
  g_byte_array_unref (b);

  /* big-endian int, short, signed byte, float, double */
  guint8 i32be[8] = { 0xff, 0xff, 0xff, 0xfe, 0x00, 0x01, 0x00, 0x00 }; /* -2, 65536 */
  guint8 i16be[4] = { 0x80, 0x00, 0x12, 0x34 };                        /* -32768, 4660 */
  guint8 i8[2] = { 0xff, 0x7f };                                       /* -1, 127 */
  guint8 f32be[4] = { 0x40, 0x49, 0x0f, 0xdb };                        /* 3.14159274 */
  guint8 f64be[8] = { 0xc0, 0x04, 0, 0, 0, 0, 0, 0 };                  /* -2.5 */
  struct {
    guint8 type;
    guint32 n;
    const guint8 *data;
    gsize len;
    double v0, v1;
  } cases[] = {
    { 0x0C, 2, i32be, 8, -2, 65536 },
    { 0x0B, 2, i16be, 4, -32768, 4660 },
    { 0x09, 2, i8, 2, -1, 127 },
    { 0x0D, 1, f32be, 4, 3.14159274101257, 0 },
    { 0x0E, 1, f64be, 8, -2.5, 0 },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    GByteArray *c = idx_bytes (cases[k].type, 1, &cases[k].n, cases[k].data, cases[k].len);
    g_autofree char *p = write_file (dir, "typed", c->data, c->len);
    g_autoptr (KdfTensor) t = kdf_idx_read (p, &error);
    g_assert_no_error (error);
    g_assert_cmpint (t->shape[0], ==, cases[k].n);
    g_assert_cmpfloat_with_epsilon (kdf_tensor_get_flat (t, 0), cases[k].v0, 1e-6);
    if (cases[k].n > 1)
      g_assert_cmpfloat (kdf_tensor_get_flat (t, 1), ==, cases[k].v1);
    g_byte_array_unref (c);
  }
  tmpdir_free (dir);
}

static void
test_bad_files (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  /* random pixels, so the compressed stream is long enough to damage in the middle */
  guint8 px[600];
  GRand *r = g_rand_new_with_seed (5);
  for (int i = 0; i < 600; i++)
    px[i] = (guint8) g_rand_int_range (r, 0, 256);
  g_rand_free (r);
  guint32 dims[3] = { 6, 10, 10 };

  /* missing */
  g_autofree char *missing = g_build_filename (dir, "nope.gz", NULL);
  g_assert_null (kdf_idx_read (missing, &error));
  assert_error (&error, KDF_ERROR_IO, missing, "not found", NULL);

  /* wrong magic */
  GByteArray *b = idx_bytes (0x08, 3, dims, px, 600);
  b->data[0] = 0x12;
  g_autofree char *magic = write_file (dir, "magic", b->data, b->len);
  g_assert_null (kdf_idx_read (magic, &error));
  assert_error (&error, KDF_ERROR_IO, magic, "magic", NULL);
  b->data[0] = 0;
  b->data[2] = 0x42; /* unknown element type */
  g_autofree char *type = write_file (dir, "type", b->data, b->len);
  g_assert_null (kdf_idx_read (type, &error));
  assert_error (&error, KDF_ERROR_IO, type, "magic", NULL);
  b->data[2] = 0x08;

  /* dimensions disagree with the size: too little data, then too much */
  g_autofree char *shortp = write_file (dir, "short", b->data, b->len - 1);
  g_assert_null (kdf_idx_read (shortp, &error));
  assert_error (&error, KDF_ERROR_IO, shortp, "file size", NULL);
  GByteArray *longer = g_byte_array_new ();
  g_byte_array_append (longer, b->data, b->len);
  g_byte_array_append (longer, px, 3);
  g_autofree char *longp = write_file (dir, "long", longer->data, longer->len);
  g_assert_null (kdf_idx_read (longp, &error));
  assert_error (&error, KDF_ERROR_IO, longp, "file size", NULL);
  /* a header cut short */
  g_autofree char *hdr = write_file (dir, "hdr", b->data, 9);
  g_assert_null (kdf_idx_read (hdr, &error));
  assert_error (&error, KDF_ERROR_IO, hdr, "truncated", NULL);

  /* the same inside gzip: payload short, payload long */
  GBytes *gz_short = gzip_bytes (b->data, b->len - 50);
  g_autofree char *gshortp = write_file (dir, "short.gz", g_bytes_get_data (gz_short, NULL),
                                         g_bytes_get_size (gz_short));
  g_assert_null (kdf_idx_read (gshortp, &error));
  assert_error (&error, KDF_ERROR_IO, gshortp, "truncated", NULL);
  GBytes *gz_long = gzip_bytes (longer->data, longer->len);
  g_autofree char *glongp = write_file (dir, "long.gz", g_bytes_get_data (gz_long, NULL),
                                        g_bytes_get_size (gz_long));
  g_assert_null (kdf_idx_read (glongp, &error));
  assert_error (&error, KDF_ERROR_IO, glongp, "file size", NULL);

  /* a truncated gzip stream (the compressed bytes cut in half) */
  GBytes *gz = gzip_bytes (b->data, b->len);
  gsize gzlen = 0;
  const guint8 *gzdata = g_bytes_get_data (gz, &gzlen);
  g_autofree char *cut = write_file (dir, "cut.gz", gzdata, gzlen / 2);
  g_assert_null (kdf_idx_read (cut, &error));
  assert_error (&error, KDF_ERROR_IO, cut, NULL);
  /* only the 8-byte trailer (CRC, size) missing: all data decompresses */
  g_autofree char *notrailer = write_file (dir, "notrailer.gz", gzdata, gzlen - 8);
  g_assert_null (kdf_idx_read (notrailer, &error));
  assert_error (&error, KDF_ERROR_IO, notrailer, "gzip", NULL);
  /* corrupt deflate data */
  g_autofree guint8 *bad = g_memdup2 (gzdata, gzlen);
  for (gsize i = gzlen / 2; i < gzlen - 8; i += 3)
    bad[i] ^= 0x5a;
  g_autofree char *corrupt = write_file (dir, "corrupt.gz", bad, gzlen);
  g_assert_null (kdf_idx_read (corrupt, &error));
  assert_error (&error, KDF_ERROR_IO, corrupt, "gzip", NULL);
  /* a wrong CRC only */
  g_autofree guint8 *crc = g_memdup2 (gzdata, gzlen);
  crc[gzlen - 8] ^= 0xff;
  g_autofree char *crcp = write_file (dir, "crc.gz", crc, gzlen);
  g_assert_null (kdf_idx_read (crcp, &error));
  assert_error (&error, KDF_ERROR_IO, crcp, "gzip", NULL);

  /* a whole dataset directory where one file is broken names that file */
  const char *names[] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
  guint32 ldim = 6;
  guint8 lab[6] = { 0, 1, 2, 1, 0, 3 };
  GByteArray *l = idx_bytes (0x08, 1, &ldim, lab, 6);
  g_free (write_file (dir, names[0], b->data, b->len));
  g_free (write_file (dir, names[1], l->data, l->len));
  g_free (write_file (dir, names[2], b->data, b->len));
  g_free (write_file (dir, names[3], l->data, l->len - 1));
  g_assert_null (kdf_dataset_load_idx_dir ("t", dir, &error));
  assert_error (&error, KDF_ERROR_IO, names[3], NULL);
  g_free (write_file (dir, names[3], l->data, l->len));
  g_autoptr (KdfDataset) ds = kdf_dataset_load_idx_dir ("t", dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ds->n_classes, ==, 4);
  g_assert_cmpint (ds->x->shape[1], ==, 100);
  g_assert_cmpfloat (kdf_tensor_f32 (ds->x)[101], ==, px[101]);

  g_byte_array_unref (l);
  g_bytes_unref (gz);
  g_bytes_unref (gz_short);
  g_bytes_unref (gz_long);
  g_byte_array_unref (longer);
  g_byte_array_unref (b);
  tmpdir_free (dir);
}

/* N random rows of ROW bytes, as an IDX payload (a pattern gzip cannot squeeze away) */
static guint8 *
random_payload (gsize len, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  guint8 *p = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    p[i] = (guint8) g_rand_int_range (r, 0, 256);
  g_rand_free (r);
  return p;
}

static void
assert_same_tensor (const KdfTensor *a, const KdfTensor *b)
{
  g_assert_cmpint (a->dtype, ==, b->dtype);
  g_assert_cmpint (a->rank, ==, b->rank);
  for (int k = 0; k < a->rank; k++)
    g_assert_cmpint (a->shape[k], ==, b->shape[k]);
  g_assert_cmpmem (a->data, kdf_tensor_nbytes (a), b->data, kdf_tensor_nbytes (b));
}

/* kdf_idx_read_rows gives the rows kdf_idx_read + take_rows gives, for files of several
 * ~1 MB blocks (rows on both sides of a block edge), plain and gzip, u8 and short; and
 * every bad file or bad row list fails with the file named, as kdf_idx_read does. */
static void
test_rows_streamed (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  struct {
    guint8 type;
    guint32 dims[3];
    gsize esize;
  } files[] = { { 0x08, { 1800, 30, 50 }, 1 }, { 0x0B, { 1500, 20, 40 }, 2 } };
  for (guint f = 0; f < G_N_ELEMENTS (files); f++) {
    const guint32 n = files[f].dims[0];
    const gsize len = (gsize) n * files[f].dims[1] * files[f].dims[2] * files[f].esize;
    g_autofree guint8 *px = random_payload (len, 7 + f);
    GByteArray *b = idx_bytes (files[f].type, 3, files[f].dims, px, len);
    GBytes *gz = gzip_bytes (b->data, b->len);
    g_autofree char *plain = write_file (dir, "rows", b->data, b->len);
    g_autofree char *gzp = write_file (dir, "rows.gz", g_bytes_get_data (gz, NULL),
                                       g_bytes_get_size (gz));
    /* every 7th row, the first and the last, and the rows around the block edges */
    g_autofree int32_t *rows = g_new (int32_t, n);
    int64_t k = 0;
    for (guint32 i = 0; i < n; i++)
      if (i % 7 == 0 || i == n - 1 || (i % 699) < 2 || (i % 873) < 2 || (i % 1048) < 2)
        rows[k++] = (int32_t) i;
    const char *paths[] = { plain, gzp };
    for (int p = 0; p < 2; p++) {
      g_autoptr (KdfTensor) whole = kdf_idx_read (paths[p], &error);
      g_assert_no_error (error);
      g_autoptr (KdfTensor) want = kdf_data_take_rows (whole, rows, k);
      g_autoptr (KdfTensor) got = kdf_idx_read_rows (paths[p], rows, k, &error);
      g_assert_no_error (error);
      assert_same_tensor (want, got);
      /* no rows: an empty tensor of the file's row shape */
      g_autoptr (KdfTensor) none = kdf_idx_read_rows (paths[p], NULL, 0, &error);
      g_assert_no_error (error);
      g_assert_cmpint (none->shape[0], ==, 0);
      g_assert_cmpint (none->shape[2], ==, files[f].dims[2]);
      /* rows out of order, repeated or outside the file */
      int32_t bad[3][2] = { { 5, 3 }, { 4, 4 }, { 0, (int32_t) n } };
      for (int j = 0; j < 3; j++) {
        g_assert_null (kdf_idx_read_rows (paths[p], bad[j], 2, &error));
        assert_error (&error, KDF_ERROR_IO, paths[p], "row", NULL);
      }
    }
    /* truncated (plain: the size check; gzip: the stream ends early), trailing data,
     * a bad CRC: the streamed read still reads to the end and fails */
    g_autofree char *shortp = write_file (dir, "short", b->data, b->len - 1);
    g_assert_null (kdf_idx_read_rows (shortp, rows, k, &error));
    assert_error (&error, KDF_ERROR_IO, shortp, "file size", NULL);
    GBytes *gz_short = gzip_bytes (b->data, b->len - 100);
    g_autofree char *gzshort = write_file (dir, "short.gz", g_bytes_get_data (gz_short, NULL),
                                          g_bytes_get_size (gz_short));
    g_assert_null (kdf_idx_read_rows (gzshort, rows, 3, &error));
    assert_error (&error, KDF_ERROR_IO, gzshort, "truncated", NULL);
    GByteArray *longer = g_byte_array_new ();
    g_byte_array_append (longer, b->data, b->len);
    g_byte_array_append (longer, px, 3);
    GBytes *gz_long = gzip_bytes (longer->data, longer->len);
    g_autofree char *gzlong = write_file (dir, "long.gz", g_bytes_get_data (gz_long, NULL),
                                         g_bytes_get_size (gz_long));
    g_assert_null (kdf_idx_read_rows (gzlong, rows, 3, &error));
    assert_error (&error, KDF_ERROR_IO, gzlong, "file size", NULL);
    gsize gzlen = 0;
    g_autofree guint8 *crc = g_memdup2 (g_bytes_get_data (gz, &gzlen), g_bytes_get_size (gz));
    crc[gzlen - 8] ^= 0xff;
    g_autofree char *crcp = write_file (dir, "crc.gz", crc, gzlen);
    g_assert_null (kdf_idx_read_rows (crcp, rows, 3, &error));
    assert_error (&error, KDF_ERROR_IO, crcp, "gzip", NULL);
    g_autofree char *cut = write_file (dir, "cut.gz", g_bytes_get_data (gz, NULL), gzlen / 2);
    g_assert_null (kdf_idx_read_rows (cut, rows, k, &error));
    assert_error (&error, KDF_ERROR_IO, cut, NULL);
    g_bytes_unref (gz_long);
    g_byte_array_unref (longer);
    g_bytes_unref (gz_short);
    g_bytes_unref (gz);
    g_byte_array_unref (b);
  }
  tmpdir_free (dir);
}

/* A data set's subsets streamed out of its IDX files (kdf_dataset_load_idx_dir_subset)
 * equal the subsets of the whole set: inputs, labels, index, test split; and a broken
 * image file is named as when the set is read whole. */
static void
test_dir_subset_streamed (void)
{
  char *dir = tmpdir_new ();
  GError *error = NULL;
  const char *names[] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" };
  guint32 dims[2][3] = { { 1500, 28, 28 }, { 400, 28, 28 } };
  GBytes *img[2];
  for (int s = 0; s < 2; s++) {
    const guint32 n = dims[s][0];
    g_autofree guint8 *px = random_payload ((gsize) n * 784, 11 + s);
    g_autofree guint8 *lab = g_malloc (n);
    for (guint32 i = 0; i < n; i++)
      lab[i] = (guint8) ((i * 7) % 11 == 0 ? 9 : (i * 5 + s) % 10); /* unequal classes */
    GByteArray *b = idx_bytes (0x08, 3, dims[s], px, (gsize) n * 784);
    GByteArray *l = idx_bytes (0x08, 1, &n, lab, n);
    img[s] = gzip_bytes (b->data, b->len);
    GBytes *gl = gzip_bytes (l->data, l->len);
    g_free (write_file (dir, names[2 * s], g_bytes_get_data (img[s], NULL),
                        g_bytes_get_size (img[s])));
    g_free (write_file (dir, names[2 * s + 1], g_bytes_get_data (gl, NULL),
                        g_bytes_get_size (gl)));
    g_bytes_unref (gl);
    g_byte_array_unref (l);
    g_byte_array_unref (b);
  }
  KdfSubsetSpec subs[] = { { .train = 333, .train_seed = 5, .test = 77, .test_seed = 6 },
                           { .train = 100, .train_seed = 9 },
                           { .test = 50, .test_seed = 1 } };
  for (guint k = 0; k < G_N_ELEMENTS (subs); k++) {
    g_autoptr (KdfDataset) whole = kdf_dataset_load_idx_dir ("t", dir, &error);
    g_assert_no_error (error);
    if (subs[k].train)
      g_assert_true (kdf_dataset_subset (whole, KDF_SPLIT_TRAIN, subs[k].train,
                                         subs[k].train_seed, &error));
    if (subs[k].test)
      g_assert_true (kdf_dataset_subset (whole, KDF_SPLIT_TEST, subs[k].test, subs[k].test_seed,
                                         &error));
    g_assert_no_error (error);
    g_autoptr (KdfDataset) early = kdf_dataset_load_idx_dir_subset ("t", dir, &subs[k], &error);
    g_assert_no_error (error);
    g_assert_cmpint (early->n_classes, ==, whole->n_classes);
    g_assert_cmpint (early->image_shape[2], ==, 28);
    g_assert_cmpfloat (early->input_range[1], ==, 255);
    assert_same_tensor (whole->x, early->x);
    assert_same_tensor (whole->labels, early->labels);
    assert_same_tensor (whole->clean_labels, early->clean_labels);
    assert_same_tensor (whole->index, early->index);
    assert_same_tensor (whole->x_test, early->x_test);
    assert_same_tensor (whole->y_test, early->y_test);
  }
  /* a subset larger than its split */
  KdfSubsetSpec big = { .train = 1501 };
  g_assert_null (kdf_dataset_load_idx_dir_subset ("t", dir, &big, &error));
  assert_error (&error, KDF_ERROR_PARAM, "a subset of 1501 training rows", NULL);
  /* the training images cut short: named, with or without a subset */
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (img[0], &len);
  g_autofree char *p0 = write_file (dir, names[0], data, len - 8);
  g_assert_null (kdf_dataset_load_idx_dir_subset ("t", dir, &subs[0], &error));
  assert_error (&error, KDF_ERROR_IO, p0, "gzip", NULL);
  g_free (write_file (dir, names[0], data, len));
  /* images and labels of different lengths: the same complaint as a whole read */
  guint32 wrong[3] = { 1499, 28, 28 };
  g_autofree guint8 *px = random_payload (1499 * 784, 3);
  GByteArray *b = idx_bytes (0x08, 3, wrong, px, 1499 * 784);
  GBytes *gw = gzip_bytes (b->data, b->len);
  g_free (write_file (dir, names[0], g_bytes_get_data (gw, NULL), g_bytes_get_size (gw)));
  g_assert_null (kdf_dataset_load_idx_dir_subset ("t", dir, &subs[0], &error));
  assert_error (&error, KDF_ERROR_IO, p0, "disagree", NULL);
  g_bytes_unref (gw);
  g_byte_array_unref (b);
  g_bytes_unref (img[0]);
  g_bytes_unref (img[1]);
  tmpdir_free (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/idx/fashion-mnist-files", test_fmnist_files);
  g_test_add_func ("/data/idx/fashion-mnist-dataset", test_fmnist_dataset);
  g_test_add_func ("/data/idx/fashion-mnist-missing", test_fmnist_missing);
  g_test_add_func ("/data/idx/synthetic", test_synthetic);
  g_test_add_func ("/data/idx/bad-files", test_bad_files);
  g_test_add_func ("/data/idx/rows-streamed", test_rows_streamed);
  g_test_add_func ("/data/idx/dir-subset-streamed", test_dir_subset_streamed);
  return g_test_run ();
}
