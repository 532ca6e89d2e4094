/* Bad input through a graph, from the outside: each case builds a broken file in a
 * temp dir, runs `kdflow run` on a small script (tests/nodes/bad/) and expects exit
 * status 2 with a message naming the file (or param) and what is wrong — never a
 * crash, a sanitizer report or a leak (under the sanitizer build LeakSanitizer
 * changes the exit status, which fails the case). The normalisation warning case
 * expects success and the warning (in summary.json: --quiet silences stderr). */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <kdflow/data.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>

static const char *kdflow;
static const char *srcdir;
static char *tmp; /* fixtures, removed at the end */

/* ---- fixtures ------------------------------------------------------------------ */

/* REL under the fixture dir (an absolute path is taken as it is) */
static char *
fixture_path (const char *rel)
{
  return g_path_is_absolute (rel) ? g_strdup (rel) : g_build_filename (tmp, rel, NULL);
}

static void
put (const char *rel, const void *data, gsize len)
{
  g_autofree char *p = fixture_path (rel);
  g_autofree char *dir = g_path_get_dirname (p);
  g_mkdir_with_parents (dir, 0755);
  GError *error = NULL;
  g_file_set_contents (p, data, (gssize) len, &error);
  g_assert_no_error (error);
}

static void
put_text (const char *rel, const char *text)
{
  put (rel, text, strlen (text));
}

static GBytes *
gzip_bytes (const void *data, gsize len)
{
  g_autoptr (GZlibCompressor) comp = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
  g_autoptr (GOutputStream) mem = g_memory_output_stream_new_resizable ();
  g_autoptr (GOutputStream) out = g_converter_output_stream_new (mem, G_CONVERTER (comp));
  GError *error = NULL;
  g_output_stream_write_all (out, data, len, NULL, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_close (out, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
}

/* An IDX file: u8 elements, big-endian dims; N_DATA elements i mod MOD follow. */
static GByteArray *
idx_bytes (guint32 magic, int rank, const guint32 *dims, gsize n_data, int mod)
{
  GByteArray *b = g_byte_array_new ();
  guint32 m = GUINT32_TO_BE (magic);
  g_byte_array_append (b, (guint8 *) &m, 4);
  for (int k = 0; k < rank; k++) {
    guint32 d = GUINT32_TO_BE (dims[k]);
    g_byte_array_append (b, (guint8 *) &d, 4);
  }
  for (gsize i = 0; i < n_data; i++) {
    guint8 v = (guint8) (i % (gsize) mod);
    g_byte_array_append (b, &v, 1);
  }
  return b;
}

/* The four files of an IDX dataset in DIR: N training and N/3 test images of 2×2,
 * labels i mod C. TRAIN_IMAGES replaces the training images (GZ: as a .gz file). */
static void
idx_dataset (const char *dir, guint32 n, int c, const GByteArray *train_images, gboolean gz)
{
  guint32 di[3] = { n, 2, 2 }, dl[1] = { n }, ti[3] = { n / 3, 2, 2 }, tl[1] = { n / 3 };
  g_autoptr (GByteArray) img = idx_bytes (0x803, 3, di, 4 * n, 256);
  g_autoptr (GByteArray) lab = idx_bytes (0x801, 1, dl, n, c);
  g_autoptr (GByteArray) timg = idx_bytes (0x803, 3, ti, 4 * (n / 3), 256);
  g_autoptr (GByteArray) tlab = idx_bytes (0x801, 1, tl, n / 3, c);
  const GByteArray *use = train_images ? train_images : img;
  g_autofree char *p1 = g_strdup_printf ("%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
  g_autofree char *p2 = g_strdup_printf ("%s/train-labels-idx1-ubyte", dir);
  g_autofree char *p3 = g_strdup_printf ("%s/t10k-images-idx3-ubyte", dir);
  g_autofree char *p4 = g_strdup_printf ("%s/t10k-labels-idx1-ubyte", dir);
  put (p1, use->data, use->len);
  put (p2, lab->data, lab->len);
  put (p3, timg->data, timg->len);
  put (p4, tlab->data, tlab->len);
}

/* A .npy file with header dict DICT (version 1.0) and LEN data bytes. */
static GByteArray *
npy_bytes (const char *dict, const void *data, gsize len)
{
  gsize dl = strlen (dict);
  gsize total = 10 + dl + 1;
  gsize pad = (64 - total % 64) % 64;
  guint16 hlen = GUINT16_TO_LE ((guint16) (dl + pad + 1));
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "\x93NUMPY\x01\x00", 8);
  g_byte_array_append (b, (guint8 *) &hlen, 2);
  g_byte_array_append (b, (const guint8 *) dict, dl);
  for (gsize i = 0; i < pad; i++)
    g_byte_array_append (b, (const guint8 *) " ", 1);
  g_byte_array_append (b, (const guint8 *) "\n", 1);
  g_byte_array_append (b, data, len);
  return b;
}

static void
put_npy (const char *rel, const char *dict, const void *data, gsize len)
{
  g_autoptr (GByteArray) b = npy_bytes (dict, data, len);
  put (rel, b->data, b->len);
}

static void
put_tensor (const char *rel, KdfDType dtype, int rank, const int64_t *shape, const void *data)
{
  g_autoptr (KdfTensor) t = kdf_tensor_new_from_data (dtype, rank, shape, data);
  g_autofree char *p = fixture_path (rel);
  g_autofree char *dir = g_path_get_dirname (p);
  g_mkdir_with_parents (dir, 0755);
  GError *error = NULL;
  g_assert_true (kdf_npy_write (p, t, &error));
  g_assert_no_error (error);
}

static void
make_fixtures (void)
{
  GError *error = NULL;
  tmp = g_dir_make_tmp ("kdf-bad-XXXXXX", &error);
  g_assert_no_error (error);

  /* IDX: a good set, then one broken training-images file per case */
  g_autofree char *good = fixture_path ("idx-good");
  idx_dataset (good, 9, 3, NULL, FALSE);
  /* ten classes: loads as Fashion-MNIST, with its class names */
  g_autofree char *ten = fixture_path ("idx-ten");
  idx_dataset (ten, 30, 10, NULL, FALSE);
  guint32 di[3] = { 9, 2, 2 };
  g_autoptr (GByteArray) img = idx_bytes (0x803, 3, di, 36, 256);
  g_autoptr (GBytes) gz = gzip_bytes (img->data, img->len);
  gsize gzlen;
  const guint8 *gzdata = g_bytes_get_data (gz, &gzlen);
  g_autoptr (GByteArray) cut = g_byte_array_new ();
  g_byte_array_append (cut, gzdata, gzlen / 2);
  g_autofree char *d1 = fixture_path ("idx-gz-truncated");
  idx_dataset (d1, 9, 3, cut, TRUE);
  g_autoptr (GByteArray) corrupt = g_byte_array_new ();
  g_byte_array_append (corrupt, gzdata, gzlen);
  for (gsize i = 12; i < gzlen - 8; i++) /* the deflate stream, not the header/trailer */
    corrupt->data[i] ^= 0x5a;
  g_autofree char *d2 = fixture_path ("idx-gz-corrupt");
  idx_dataset (d2, 9, 3, corrupt, TRUE);
  g_autoptr (GByteArray) magic = idx_bytes (0x12345678, 3, di, 36, 256);
  g_autofree char *d3 = fixture_path ("idx-magic");
  idx_dataset (d3, 9, 3, magic, FALSE);
  g_autoptr (GByteArray) short_data = idx_bytes (0x803, 3, di, 32, 256); /* 9 images, 8 there */
  g_autofree char *d4 = fixture_path ("idx-size");
  idx_dataset (d4, 9, 3, short_data, FALSE);
  g_autofree char *empty = fixture_path ("empty");
  g_mkdir_with_parents (empty, 0755);

  /* .npy files for npy_source */
  const float f6[6] = { 0.2f, 0.8f, 0.5f, 0.5f, 1, 0 };
  put_npy ("npy/good.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f6,
           sizeof f6);
  g_autoptr (GByteArray) good_npy =
      npy_bytes ("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f6, sizeof f6);
  g_autoptr (GByteArray) bad_magic = g_byte_array_new ();
  g_byte_array_append (bad_magic, good_npy->data, good_npy->len);
  memcpy (bad_magic->data + 1, "NUMPZ", 5);
  put ("npy/magic.npy", bad_magic->data, bad_magic->len);
  put ("npy/header.npy", good_npy->data, 40); /* the header says 118 bytes follow */
  put_npy ("npy/fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", f6,
           sizeof f6);
  const guint8 pickle[16] = { 0x80, 0x02, 0x63 };
  put_npy ("npy/object.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", pickle,
           sizeof pickle);
  put_npy ("npy/overflow.npy",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }",
           f6, sizeof f6);
  put_npy ("npy/size.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }", f6,
           sizeof f6);
  /* probabilities: rows summing to 2 (normalised with a warning), a NaN */
  const float twice[6] = { 0.4f, 0.6f, 1, 1, 2, 0 }; /* rows 1 and 2 sum to 2 */
  int64_t s32[2] = { 3, 2 };
  put_tensor ("probs/twice.npy", KDF_DTYPE_F32, 2, s32, twice);
  const float nan_p[6] = { 0.5f, 0.5f, NAN, 0.5f, 1, 0 };
  put_tensor ("probs/nan.npy", KDF_DTYPE_F32, 2, s32, nan_p);
  const float p43[12] = { .8f, .1f, .1f, .1f, .8f, .1f, .1f, .1f, .8f, .3f, .3f, .4f };
  int64_t s43[2] = { 4, 3 };
  put_tensor ("probs/p43.npy", KDF_DTYPE_F32, 2, s43, p43);
  const int32_t y4[4] = { 0, 1, 2, 3 };
  int64_t s4[1] = { 4 };
  put_tensor ("probs/y4.npy", KDF_DTYPE_I32, 1, s4, y4);

  /* an npy dataset whose labels do not fit n_classes = 5 */
  const float x6[12] = { 0 };
  int64_t sx[2] = { 6, 2 }, sy[1] = { 6 };
  const int32_t y6[6] = { 0, 1, 2, 3, 4, 7 };
  put_tensor ("npyset/x.npy", KDF_DTYPE_F32, 2, sx, x6);
  put_tensor ("npyset/labels.npy", KDF_DTYPE_I32, 1, sy, y6);

  /* CSV */
  put_text ("csv/good.csv", "a,b,label\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,2\n0.7,0.8,3\n"
                            "0.2,0.1,0\n0.4,0.3,1\n0.6,0.5,2\n0.8,0.7,3\n");
  /* label files and transition matrices for the 8-row CSV */
  const int32_t noisy8[8] = { 1, 1, 2, 3, 0, 1, 2, 3 };
  int64_t s8[1] = { 8 }, s7[1] = { 7 }, s44[2] = { 4, 4 };
  put_tensor ("csv/noisy.npy", KDF_DTYPE_I32, 1, s8, noisy8);
  put_tensor ("csv/short.npy", KDF_DTYPE_I32, 1, s7, noisy8);
  const float ident[16] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
  const float half[16] = { 0.5f, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
  put_tensor ("csv/T.npy", KDF_DTYPE_F32, 2, s44, ident);
  put_tensor ("csv/T-bad.npy", KDF_DTYPE_F32, 2, s44, half);
  put_text ("csv/ragged.csv", "a,b,label\n0.1,0.2,0\n0.3,0.4\n");
  put_text ("csv/text.csv", "a,b,label\n0.1,0.2,0\n0.3,abc,1\n");
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    GDir *d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *p = g_build_filename (path, name, NULL);
      remove_tree (p);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (path);
  } else {
    g_remove (path);
  }
}

/* ---- running kdflow -------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *script;   /* in tests/nodes/bad/ */
  const char *sets[6];  /* --set values; '@' is replaced by the fixture dir */
  int status;
  const char *needles[5]; /* '@' replaced too */
} Case;

static char *
expand (const char *s)
{
  g_auto (GStrv) parts = g_strsplit (s, "@", -1);
  return g_strjoinv (tmp, parts);
}

static void
run_case (gconstpointer data)
{
  const Case *c = data;
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, g_strdup (kdflow));
  g_ptr_array_add (argv, g_strdup ("run"));
  g_ptr_array_add (argv, g_build_filename (srcdir, "nodes", "bad", c->script, NULL));
  g_ptr_array_add (argv, g_strdup ("--quiet"));
  g_ptr_array_add (argv, g_strdup ("--threads"));
  g_ptr_array_add (argv, g_strdup ("1"));
  g_ptr_array_add (argv, g_strdup ("--out"));
  g_ptr_array_add (argv, g_build_filename (tmp, "runs", c->name, NULL));
  for (int k = 0; k < 6 && c->sets[k]; k++) {
    g_ptr_array_add (argv, g_strdup ("--set"));
    g_ptr_array_add (argv, expand (c->sets[k]));
  }
  g_ptr_array_add (argv, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int wait_status = 0;
  GError *error = NULL;
  if (!g_spawn_sync (tmp, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                     &wait_status, &error))
    g_error ("cannot run %s: %s", kdflow, error->message);
  int status = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
  if (g_getenv ("KDF_TEST_SHOW"))
    g_printerr ("%s: %s", c->name, err);
  if (status != c->status)
    g_error ("%s: expected exit status %d, got %d\nstdout:\n%s\nstderr:\n%s", c->name, c->status,
             status, out, err);
  /* warnings are silent under --quiet: they are read from the run's summary.json */
  g_autofree char *summary_path = g_build_filename (tmp, "runs", c->name, "summary.json", NULL);
  g_autofree char *summary = NULL;
  if (!g_file_get_contents (summary_path, &summary, NULL, NULL))
    summary = g_strdup ("");
  for (int k = 0; k < 5 && c->needles[k]; k++) {
    g_autofree char *needle = expand (c->needles[k]);
    if (!strstr (err, needle) && !strstr (out, needle) && !strstr (summary, needle))
      g_error ("%s: expected \"%s\" in the output or summary.json\nstdout:\n%s\nstderr:\n%s\n"
               "summary.json:\n%s",
               c->name, needle, out, err, summary);
  }
  g_assert_null (strstr (err, "AddressSanitizer"));
  g_assert_null (strstr (err, "LeakSanitizer"));
  g_assert_null (strstr (err, "runtime error:"));
  g_assert_null (strstr (err, "CRITICAL"));
  g_ptr_array_free (argv, TRUE);
}

#define LOADER "loader.lua"
#define NPY "npy.lua"

static const Case cases[] = {
  /* sanity: the good fixtures load */
  { "idx-good", LOADER, { "dataset=idx", "path=@/idx-good" }, 0, { "loaded", "f32[9,4]" } },
  { "csv-good", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=symmetric", "rate=0.5" },
    0, { "loaded", "f32[8,2]" } },
  { "npy-good", NPY, { "path=@/npy/good.npy" }, 0, { "rows\t3" } },
  { "npy-set-good", LOADER, { "dataset=npy", "path=@/npyset" }, 0, { "loaded", "f32[6,2]" } },
  { "file-noise", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=file",
                            "labels_file=@/csv/noisy.npy" }, 0, { "loaded", "\t13.0" } },
  { "transition-file", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=transition",
                                 "transition_file=@/csv/T.npy" }, 0, { "loaded", "\t12.0" } },

  /* missing dataset files, and which package provides them */
  { "fmnist-missing", LOADER, { "dataset=fashion-mnist", "path=@/empty" }, 2,
    { "@/empty/train-images-idx3-ubyte.gz: file not found", "dataset-fashion-mnist package" } },
  { "idx-missing", LOADER, { "dataset=idx", "path=@/nothing-here" }, 2,
    { "@/nothing-here: not a directory", "train-images-idx3-ubyte" } },
  { "npy-set-missing", LOADER, { "dataset=npy", "path=@/empty" }, 2,
    { "@/empty/x.npy: file not found", "x.npy and labels.npy" } },
  { "npy-missing", NPY, { "path=@/npy/none.npy" }, 2, { "@/npy/none.npy: file not found" } },

  /* gzip and IDX */
  { "gz-truncated", LOADER, { "dataset=idx", "path=@/idx-gz-truncated" }, 2,
    { "node 'data' (data_loader)", "@/idx-gz-truncated/train-images-idx3-ubyte.gz", "gzip" } },
  { "gz-corrupt", LOADER, { "dataset=idx", "path=@/idx-gz-corrupt" }, 2,
    { "@/idx-gz-corrupt/train-images-idx3-ubyte.gz", "gzip" } },
  { "idx-magic", LOADER, { "dataset=idx", "path=@/idx-magic" }, 2,
    { "@/idx-magic/train-images-idx3-ubyte: not an IDX file: bad magic 12 34 56 78" } },
  { "idx-size", LOADER, { "dataset=idx", "path=@/idx-size" }, 2,
    { "@/idx-size/train-images-idx3-ubyte: dimensions disagree with the file size" } },

  /* .npy */
  { "npy-magic", NPY, { "path=@/npy/magic.npy" }, 2, { "@/npy/magic.npy", "magic" } },
  { "npy-header", NPY, { "path=@/npy/header.npy" }, 2, { "@/npy/header.npy", "header" } },
  { "npy-fortran", NPY, { "path=@/npy/fortran.npy" }, 2, { "@/npy/fortran.npy", "Fortran" } },
  { "npy-object", NPY, { "path=@/npy/object.npy" }, 2, { "@/npy/object.npy", "pickled" } },
  { "npy-overflow", NPY, { "path=@/npy/overflow.npy" }, 2, { "@/npy/overflow.npy", "overflow" } },
  { "npy-size", NPY, { "path=@/npy/size.npy" }, 2, { "@/npy/size.npy: shape (4, 2) of '<f4' needs 32 bytes of data, the file has 24" } },

  /* CSV: row (line) and column named */
  { "csv-ragged", LOADER, { "dataset=csv", "path=@/csv/ragged.csv" }, 2,
    { "@/csv/ragged.csv: line 3 has 2 columns, expected 3", "ragged" } },
  { "csv-text", LOADER, { "dataset=csv", "path=@/csv/text.csv" }, 2,
    { "@/csv/text.csv: line 3, column 2 ('b'): 'abc' is not" } },

  /* values */
  { "labels-range", LOADER, { "dataset=npy", "path=@/npyset", "n_classes=5" }, 2,
    { "@/npyset/labels.npy", "labels row 5 is 7, outside [0, 5)" } },
  { "cl-labels-range", NPY, { "path=@/probs/p43.npy", "probs=true", "labels=@/probs/y4.npy" }, 2,
    { "node 'cl' (confident_learning)", "input 'labels' row 3 is 3, outside [0, 3)" } },
  { "rate-one", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=symmetric", "rate=1" }, 2,
    { "node 'data' (data_loader)", "param 'rate' = 1: a symmetric noise rate must lie in [0, 1)" } },
  { "rate-negative", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=pairflip", "rate=-0.2" },
    2, { "param 'rate' = -0.2", "[0, 1)" } },
  { "rate2-high", LOADER,
    { "dataset=csv", "path=@/csv/good.csv", "noise=symmetric", "rate=0.25", "noise2=pairflip",
      "rate2=1.5" },
    2, { "param 'rate2' = 1.5" } },
  { "class-map", LOADER,
    { "dataset=csv", "path=@/csv/good.csv", "noise=asymmetric", "rate=0.5", "class_map=0:1,2:12" },
    2, { "param 'class_map' = '0:1,2:12'", "there is no class '12'", "the 4 classes are 0, 1, 2, 3" } },
  { "class-map-name", LOADER,
    { "dataset=fashion-mnist", "path=@/idx-ten", "noise=asymmetric", "rate=0.5",
      "class_map=Shirt:Jacket" },
    2, { "param 'class_map' = 'Shirt:Jacket'", "there is no class 'Jacket'", "6 'Shirt'" } },
  { "fmnist-classes", LOADER, { "dataset=fashion-mnist", "path=@/idx-good" }, 2,
    { "@/idx-good: the labels have 3 classes, Fashion-MNIST has 10" } },
  { "class-map-csv-name", LOADER,
    { "dataset=csv", "path=@/csv/good.csv", "noise=asymmetric", "rate=0.5", "class_map=cat:dog" },
    2, { "there is no class 'cat'" } },
  { "file-noise-length", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=file",
                                   "labels_file=@/csv/short.npy" }, 2,
    { "@/csv/short.npy: the labels are i32[7], expected i32[8]" } },
  { "transition-rows", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=transition",
                                 "transition_file=@/csv/T-bad.npy" }, 2,
    { "param 'noise' = 'transition'", "row 0 of the matrix sums to 0.5" } },
  { "cc-clusters", LOADER,
    { "dataset=csv", "path=@/csv/good.csv", "noise=cc", "rate=0.5", "clusters=0,1;1,2" },
    2, { "node 'data' (data_loader)", "param 'clusters' = '0,1;1,2'", "class 1 twice" } },
  { "cc-clusters-name", LOADER,
    { "dataset=csv", "path=@/csv/good.csv", "noise=cc", "rate=0.5", "clusters=0,7" },
    2, { "param 'clusters' = '0,7'", "there is no class '7'", "the 4 classes are 0, 1, 2, 3" } },
  { "transition-missing", LOADER, { "dataset=csv", "path=@/csv/good.csv", "noise=transition" }, 2,
    { "transition noise needs the C×C matrix" } },
  { "probs-normalised", NPY, { "path=@/probs/twice.npy", "probs=true" }, 0,
    { "warning", "@/probs/twice.npy: 2 of 3 probability rows do not sum to 1", "normalised",
      "rows\t3" } },
  { "probs-nan", NPY, { "path=@/probs/nan.npy", "probs=true" }, 2,
    { "@/probs/nan.npy: probabilities: row 1 has NaN in column 0" } },
};

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kdflow = g_getenv ("KDFLOW");
  srcdir = g_getenv ("KDF_TEST_SRCDIR");
  if (!kdflow || !srcdir) {
    g_printerr ("KDFLOW and KDF_TEST_SRCDIR must be set (meson test sets them)\n");
    return 1;
  }
  make_fixtures ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = g_strdup_printf ("/nodes/bad-input/%s", cases[i].name);
    g_test_add_data_func (path, &cases[i], run_case);
  }
  int rc = g_test_run ();
  remove_tree (tmp);
  g_free (tmp);
  return rc;
}
