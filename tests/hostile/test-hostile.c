/* Hostile input, from the outside (issue 10): graph scripts, data files, checkpoints
 * and command lines as a careless or malicious user would give them. Each case writes
 * its script into a temporary directory, runs `kdflow run` on it (under `timeout`, so a
 * read that blocks fails the case instead of hanging) and asserts the exit status —
 * only 0, 1, 2 or 130 — and the message naming the culprit, and that there is no crash,
 * sanitizer or leak report (under the sanitizer build LeakSanitizer changes the exit
 * status, which fails the case). In scripts, arguments and needles '@' stands for the
 * fixture directory. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

static const char *kdflow;
static char *tmp;

/* ---- fixtures ------------------------------------------------------------------ */

static char *
fixture_path (const char *rel)
{
  return g_build_filename (tmp, rel, NULL);
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

/* A safetensors file: HEADER (JSON), then LEN bytes of DATA. */
static void
put_st (const char *rel, const char *header, const void *data, gsize len)
{
  GByteArray *b = g_byte_array_new ();
  guint64 hl = GUINT64_TO_LE ((guint64) strlen (header));
  g_byte_array_append (b, (guint8 *) &hl, 8);
  g_byte_array_append (b, (const guint8 *) header, (guint) strlen (header));
  g_byte_array_append (b, data, (guint) len);
  put (rel, b->data, b->len);
  g_byte_array_free (b, TRUE);
}

/* The header of an mlp:4-3 checkpoint (0.weight [3,4], 0.bias [3]) with the given
 * arch, shapes and offsets. */
static char *
st_header (const char *arch, const char *wshape, const char *woff, const char *bshape,
           const char *boff)
{
  return g_strdup_printf ("{\"__metadata__\":{\"format\":\"pt\",\"arch\":\"%s\"},"
                          "\"0.weight\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":%s},"
                          "\"0.bias\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":%s}}",
                          arch, wshape, woff, bshape, boff);
}

static void
put_ck (const char *rel, const char *arch, const char *wshape, const char *woff,
        const char *bshape, const char *boff, const float *data, gsize n)
{
  g_autofree char *h = st_header (arch, wshape, woff, bshape, boff);
  put_st (rel, h, data, n * sizeof (float));
}

/* .npy version 1.0 with header DICT and LEN data bytes. */
static void
put_npy (const char *rel, const char *dict, const void *data, gsize len)
{
  gsize dl = strlen (dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64;
  guint16 hl = GUINT16_TO_LE ((guint16) (dl + pad + 1));
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "\x93NUMPY\x01\x00", 8);
  g_byte_array_append (b, (guint8 *) &hl, 2);
  g_byte_array_append (b, (const guint8 *) dict, (guint) dl);
  for (gsize i = 0; i < pad; i++)
    g_byte_array_append (b, (const guint8 *) " ", 1);
  g_byte_array_append (b, (const guint8 *) "\n", 1);
  g_byte_array_append (b, data, (guint) len);
  put (rel, b->data, b->len);
  g_byte_array_free (b, TRUE);
}

/* An IDX file with magic type TYPE, RANK dims DIMS and LEN bytes of DATA. */
static void
put_idx (const char *rel, guint8 type, int rank, const guint32 *dims, const void *data, gsize len)
{
  GByteArray *b = g_byte_array_new ();
  guint8 magic[4] = { 0, 0, type, (guint8) rank };
  g_byte_array_append (b, magic, 4);
  for (int k = 0; k < rank; k++) {
    guint32 d = GUINT32_TO_BE (dims[k]);
    g_byte_array_append (b, (guint8 *) &d, 4);
  }
  g_byte_array_append (b, data, (guint) len);
  put (rel, b->data, b->len);
  g_byte_array_free (b, TRUE);
}

/* The four files of an IDX set in DIR whose training images are the file IMAGES
 * (copied from the fixture REL). */
static void
idx_set (const char *dir, const char *images_rel)
{
  guint8 img[9 * 4] = { 0 }, lab[9] = { 0, 1, 2, 0, 1, 2, 0, 1, 2 };
  guint32 di[3] = { 9, 2, 2 }, dl[1] = { 9 }, ti[3] = { 3, 2, 2 }, tl[1] = { 3 };
  g_autofree char *p1 = g_strdup_printf ("%s/train-labels-idx1-ubyte", dir);
  g_autofree char *p2 = g_strdup_printf ("%s/t10k-images-idx3-ubyte", dir);
  g_autofree char *p3 = g_strdup_printf ("%s/t10k-labels-idx1-ubyte", dir);
  put_idx (p1, 0x08, 1, dl, lab, 9);
  put_idx (p2, 0x08, 3, ti, img, 12);
  put_idx (p3, 0x08, 1, tl, lab, 3);
  g_autofree char *p4 = g_strdup_printf ("%s/train-images-idx3-ubyte", dir);
  if (images_rel) {
    g_autofree char *src = fixture_path (images_rel);
    g_autofree char *dst = fixture_path (p4);
    g_autofree char *text = NULL;
    gsize len = 0;
    g_assert_true (g_file_get_contents (src, &text, &len, NULL));
    put (p4, text, len);
  } else
    put_idx (p4, 0x08, 3, di, img, sizeof img);
}

static void
make_fixtures (void)
{
  GError *error = NULL;
  tmp = g_dir_make_tmp ("kdf-hostile-XXXXXX", &error);
  g_assert_no_error (error);

  /* non-regular files where a data file is expected */
  g_autofree char *fifo = fixture_path ("fifo");
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_autofree char *dir = fixture_path ("a-directory");
  g_mkdir_with_parents (dir, 0755);

  /* checkpoints of mlp:4-3: 12 weights then 3 biases */
  float w[15];
  for (int i = 0; i < 15; i++)
    w[i] = 0.01f * (float) (i + 1);
  put_ck ("ck/good.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[48,60]", w, 15);
  float nan_w[15], inf_w[15];
  memcpy (nan_w, w, sizeof w);
  memcpy (inf_w, w, sizeof w);
  nan_w[5] = NAN;
  inf_w[13] = -INFINITY;
  put_ck ("ck/nan.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[48,60]", nan_w, 15);
  put_ck ("ck/inf.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[48,60]", inf_w, 15);
  /* the bias reads the weight's last 12 bytes: right sizes, overlapping */
  put_ck ("ck/overlap.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[36,48]", w, 12);
  {
    float w16[16] = { 0 }; /* 4 unused bytes between the tensors */
    memcpy (w16, w, sizeof w);
    put_ck ("ck/gap.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[52,64]", w16, 16);
  }
  put_ck ("ck/trailing.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[48,60]", w, 15);
  {
    g_autofree char *h = st_header ("mlp:4-3", "[3,4]", "[0,48]", "[3]", "[48,60]");
    float more[17];
    memcpy (more, w, sizeof w);
    more[15] = more[16] = 0;
    put_st ("ck/trailing.st", h, more, sizeof more);
  }
  put_ck ("ck/range.st", "mlp:4-3", "[3,4]", "[0,48]", "[3]", "[48,6000]", w, 15);
  put_ck ("ck/reversed.st", "mlp:4-3", "[3,4]", "[48,0]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/negative.st", "mlp:4-3", "[3,4]", "[-4,44]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/offsets-text.st", "mlp:4-3", "[3,4]", "[\"0\",\"48\"]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/offsets-three.st", "mlp:4-3", "[3,4]", "[0,24,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/shape-arch.st", "mlp:4-3", "[4,3]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/shape-size.st", "mlp:4-3", "[3,5]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/shape-rank5.st", "mlp:4-3", "[3,4,1,1,1]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/shape-negative.st", "mlp:4-3", "[3,-4]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/shape-overflow.st", "mlp:4-3", "[4611686018427387904,4611686018427387904]", "[0,48]",
          "[3]", "[48,60]", w, 15);
  /* architectures in the metadata that must not be built */
  put_ck ("ck/arch-huge.st", "mlp:8-200000-200000-3", "[3,4]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/arch-flatten.st", "cnn:64x8192x8192-10", "[3,4]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/arch-bad.st", "mlp:4-x-3", "[3,4]", "[0,48]", "[3]", "[48,60]", w, 15);
  put_ck ("ck/arch-other.st", "mlp:4-2", "[3,4]", "[0,48]", "[3]", "[48,60]", w, 15);
  {
    char h[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\",\"epoch\":3},"
               "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
               "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    put_st ("ck/meta-int.st", h, w, sizeof w);
    char f16[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\"},"
                 "\"0.weight\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                 "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    put_st ("ck/dtype.st", f16, w, sizeof w);
    char noarch[] = "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                    "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    put_st ("ck/no-arch.st", noarch, w, sizeof w);
    char extra[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\"},"
                   "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                   "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]},"
                   "\"9.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[60,64]}}";
    float w16[16];
    memcpy (w16, w, sizeof w);
    w16[15] = 1;
    put_st ("ck/extra-tensor.st", extra, w16, sizeof w16);
    char missing[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\"},"
                     "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}";
    put_st ("ck/missing-tensor.st", missing, w, 48);
    char notobj[] = "[1,2,3]";
    put_st ("ck/array.st", notobj, NULL, 0);
    char broken[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\"}, \"0.weight\": {";
    put_st ("ck/json.st", broken, w, sizeof w);
    char heads[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\",\"heads\":\"proj\"},"
                   "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                   "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    put_st ("ck/heads.st", heads, w, sizeof w);
    char heads_huge[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\",\"heads\":\"proj=16000000-16000000\"},"
                        "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                        "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    put_st ("ck/heads-huge.st", heads_huge, w, sizeof w);
  }
  {
    /* deeply nested JSON in the metadata: it overflowed the parser's stack */
    GString *deep = g_string_new ("{\"__metadata__\":{\"arch\":\"mlp:4-3\"},\"x\":");
    for (int i = 0; i < 200000; i++)
      g_string_append_c (deep, '[');
    for (int i = 0; i < 200000; i++)
      g_string_append_c (deep, ']');
    g_string_append_c (deep, '}');
    put_st ("ck/deep.st", deep->str, NULL, 0);
    g_string_free (deep, TRUE);
    /* brackets inside a string are not nesting */
    char quoted[] = "{\"__metadata__\":{\"arch\":\"mlp:4-3\",\"note\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[\"},"
                    "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                    "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    put_st ("ck/quoted.st", quoted, w, sizeof w);
  }
  {
    /* a header length of 2^62, and one longer than the file */
    guint8 b[16] = { 0 };
    b[7] = 0x40;
    memcpy (b + 8, "{}      ", 8);
    put ("ck/hlen-huge.st", b, 16);
    guint64 hl = GUINT64_TO_LE (1000);
    memcpy (b, &hl, 8);
    put ("ck/hlen-long.st", b, 16);
    put ("ck/empty.st", "", 0);
    put ("ck/short.st", "\x10\x00\x00", 3);
  }

  /* .npy */
  const float f6[6] = { 1, 2, 3, 4, 5, 6 };
  put_npy ("npy/good.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f6, sizeof f6);
  put_npy ("npy/budget.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }",
           NULL, 0);
  {
    /* a sparse file as long as its header says: the size check passes, the budget not */
    g_autofree char *p = fixture_path ("npy/budget.npy");
    int fd = g_open (p, O_WRONLY, 0);
    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpint (ftruncate (fd, 128 + (off_t) 40000000000), ==, 0);
    close (fd);
  }
  put_npy ("npy/negative.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 2), }", f6,
           sizeof f6);
  put_npy ("npy/rank5.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 6), }",
           f6, sizeof f6);
  put_npy ("npy/notdict.npy", "[1, 2, 3]", f6, sizeof f6);
  put_npy ("npy/descr.npy", "{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }", f6, sizeof f6);
  put_npy ("npy/shape-text.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': ('a', 2), }", f6,
           sizeof f6);
  put_npy ("npy/truncated.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f6, 10);
  {
    /* version 2.0 whose 4-byte header length claims 4 GiB */
    guint8 b[16] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{', '}', ' ', '\n' };
    put ("npy/hlen.npy", b, 16);
    put ("npy/magic-only.npy", "\x93NUMPY", 6);
  }
  {
    /* 2 MiB of f32, for a budget of 1 MiB */
    gsize n = 512 * 1024;
    float *big = g_new0 (float, n);
    put_npy ("npy/2mib.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (524288,), }", big,
             n * sizeof (float));
    g_free (big);
  }

  /* IDX */
  guint32 huge[3] = { 0xffffffffu, 0xffffffffu, 0xffffffffu };
  put_idx ("idx/huge.idx", 0x08, 3, huge, NULL, 0);
  guint32 big[3] = { 100000, 1000, 1000 };
  put_idx ("idx/budget.idx", 0x08, 3, big, NULL, 0);
  guint8 four[4] = { 1, 2, 3, 4 };
  guint32 r0[1] = { 0 };
  put_idx ("idx/rank0.idx", 0x08, 0, r0, four, 4);
  guint32 r5[5] = { 1, 1, 1, 1, 4 };
  put_idx ("idx/rank5.idx", 0x08, 5, r5, four, 4);
  /* no elements, yet 2^29 × 234 × 2^32 overflowed the strides (found by fuzz-idx) */
  guint32 zero_dim[4] = { 0, 0x2000000au, 0xeau, 0xff000002u };
  put_idx ("idx/zero-dim.idx", 0x0C, 4, zero_dim, NULL, 0);
  idx_set ("idx-zero-dim", "idx/zero-dim.idx");
  idx_set ("idx-huge", "idx/huge.idx");
  idx_set ("idx-budget", "idx/budget.idx");
  idx_set ("idx-rank0", "idx/rank0.idx");
  idx_set ("idx-rank5", "idx/rank5.idx");
  idx_set ("idx-fifo", NULL);
  {
    g_autofree char *p = fixture_path ("idx-fifo/train-images-idx3-ubyte");
    g_remove (p);
    g_assert_cmpint (mkfifo (p, 0600), ==, 0);
  }

  /* CSV */
  put_text ("csv/nan.csv", "a,b,label\n0.1,nan,0\n0.3,0.4,1\n");
  put_text ("csv/inf.csv", "a,b,label\n0.1,0.2,0\n1e999,0.4,1\n");
  put_text ("csv/empty.csv", "");
  put_text ("csv/header-only.csv", "a,b,label\n");
  put ("csv/nul.csv", "a,b,label\n0.1,0\0002,0\n0.3,0.4,1\n", 28);
  {
    GString *s = g_string_new ("a,b,label\n");
    while (s->len < 2 * 1024 * 1024)
      g_string_append (s, "0.1,0.2,0\n0.3,0.4,1\n");
    put_text ("csv/2mib.csv", s->str);
    g_string_free (s, TRUE);
  }

  /* an npy dataset whose labels claim class 2^31 - 1 */
  {
    const float x4[4] = { 0 };
    const gint32 y2[2] = { 0, G_MAXINT32 };
    put_npy ("npyset-biglabel/x.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", x4,
             sizeof x4);
    put_npy ("npyset-biglabel/labels.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
             y2, sizeof y2);
  }

  /* review files for evaluate */
  put_text ("review/good.json", "[{\"id\": 0, \"mturk\": {\"given\": 1, \"guessed\": 4}}]");
  {
    GString *deep = g_string_new (NULL);
    for (int i = 0; i < 200000; i++)
      g_string_append_c (deep, '[');
    for (int i = 0; i < 200000; i++)
      g_string_append_c (deep, ']');
    put_text ("review/deep.json", deep->str);
    g_string_free (deep, TRUE);
  }
  put_text ("review/object.json", "{\"id\": 0}");
  put_text ("review/votes.json", "[{\"id\": 0, \"mturk\": {\"given\": 99999, \"guessed\": 4}}]");
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
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

/* ---- scripts ------------------------------------------------------------------- */

#define PRE "local kdf = require \"kdflow\"\n"
/* a teacher_forward on the checkpoint --set ck=... */
#define CK_SCRIPT                                                                        \
  PRE "local g = kdf.graph { name = \"ck\" }\n"                                          \
      "local t = g:node(\"teacher_forward\", { name = \"tf\", x = kdf.zeros({ 2, 4 }),\n" \
      "  checkpoint = kdf.arg(\"ck\", \"\") })\n"                                        \
      "g:run {}\n"                                                                       \
      "print(\"logits\", t.logits:value():sum())\n"
#define NPY_SCRIPT                                                                                 \
  PRE "local g = kdf.graph { name = \"npy\" }\n"                                                   \
      "local s = g:node(\"npy_source\", { name = \"src\", path = kdf.arg(\"path\", \"\") })\n"      \
      "g:run {}\n"                                                                                 \
      "print(\"rows\", s.rows:value():item())\n"
#define LOADER_SCRIPT                                                                              \
  PRE "local g = kdf.graph { name = \"loader\" }\n"                                                \
      "local d = g:node(\"data_loader\", { name = \"data\", dataset = kdf.arg(\"dataset\", \"\"),\n" \
      "  path = kdf.arg(\"path\", \"\") })\n"                                                      \
      "g:run {}\n"                                                                                 \
      "print(\"loaded\", d.x:value())\n"
#define EVAL_SCRIPT                                                                                \
  PRE "local g = kdf.graph { name = \"ev\" }\n"                                                    \
      "g:node(\"evaluate\", { name = \"ev\", predictions = kdf.tensor({ 0, 1 }, \"i32\"),\n"      \
      "  labels = kdf.tensor({ 0, 1 }, \"i32\"), flagged = kdf.tensor({ 1, 0 }, \"u8\"),\n"       \
      "  save = false, review = kdf.arg(\"review\", \"\") })\n"                                    \
      "g:run {}\n"                                                                                 \
      "print(\"evaluated\")\n"
/* a student of architecture --set arch=... on 8 rows of 8 values */
#define ARCH_SCRIPT                                                                                \
  PRE "local g = kdf.graph { name = \"arch\" }\n"                                                  \
      "local y = kdf.tensor({ 0, 1, 2, 0, 1, 2, 0, 1 }, \"i32\")\n"                                \
      "local ce = g:node(\"ce_loss\", { targets = y })\n"                                          \
      "g:node(\"student_update\", { name = \"st\", x = kdf.zeros({ 8, kdf.arg(\"d\", 8) }),\n"     \
      "  losses = { ce.loss }, arch = kdf.arg(\"arch\", \"mlp:8-3\"), batch = kdf.arg(\"batch\", 4) })\n" \
      "g:run {}\n"                                                                                 \
      "print(\"trained\")\n"
#define PORT_SCRIPT(decl)                                                                          \
  PRE "local g = kdf.graph { name = \"decl\" }\n"                                                  \
      "local ok, err = pcall(function() return g:lua { inputs = { \"a:f32[N]\", " decl " },\n"    \
      "  fn = function() return {} end } end)\n"                                                   \
      "assert(not ok)\n"                                                                           \
      "collectgarbage()\n"                                                                         \
      "g:lua { outputs = { \"b:f32[N]\", " decl " }, fn = function() return {} end }\n"

/* a graph of one Lua node, c, with output v */
#define LUA1                                                                                       \
  PRE "local g = kdf.graph {}\n"                                                                   \
      "local c = g:lua { name = 'c', outputs = { 'v:f32[N]' }, fn = function() return { v = kdf.zeros({ 1 }) } end }\n"

typedef struct {
  const char *name;
  const char *script;   /* Lua source ('@' = the fixture dir) */
  const char *args[8];  /* after `run SCRIPT --quiet --threads 1 --out DIR` */
  const char *env[3];   /* extra KEY=VALUE */
  int status;
  const char *needles[5];
} Case;

static const Case cases[] = {
  /* ---- scripts: what a script throws exits 2 (1 and 130 are the engine's) ---- */
  { "throw-status-0", "error({ status = 0 })\n", { NULL }, { NULL }, 2, { "kdflow: table: " } },
  { "throw-status-1", "error({ status = 1, message = 'forged' })\n", { NULL }, { NULL }, 2, { "kdflow: " } },
  { "throw-status-130", "error(setmetatable({ status = 130 }, { __tostring = function() return 'mine' end }))\n",
    { NULL }, { NULL }, 2, { "kdflow: mine" } },
  { "throw-status-huge", "error({ status = 2^62 })\n", { NULL }, { NULL }, 2, { "kdflow: table: " } },
  { "throw-tostring-error", "error(setmetatable({}, { __tostring = function() error('inner') end }))\n",
    { NULL }, { NULL }, 2, { "a script error (a table whose __tostring failed)" } },
  { "throw-tostring-table", "error(setmetatable({}, { __tostring = function() return {} end }))\n",
    { NULL }, { NULL }, 2, { "a script error (a table whose __tostring failed)" } },
  { "throw-nil", "error(nil)\n", { NULL }, { NULL }, 2, { "kdflow: nil" } },
  { "throw-boolean", "error(true)\n", { NULL }, { NULL }, 2, { "kdflow: true" } },
  { "throw-number", "error(0)\n", { NULL }, { NULL }, 2, { "kdflow: 0" } },
  { "throw-function", "error(print)\n", { NULL }, { NULL }, 2, { "kdflow: function: " } },
  { "throw-coroutine", "coroutine.wrap(function() error('in a coroutine') end)()\n", { NULL }, { NULL },
    2, { "in a coroutine" } },
  { "throw-in-node-status-0",
    PRE "local g = kdf.graph { name = 'n' }\n"
        "g:lua { name = 'thrower', outputs = { 'v:f32[N]' }, fn = function() error({ status = 0 }) end }\n"
        "g:run {}\n",
    { NULL }, { NULL }, 1, { "node 'thrower' (lua)", "tick 0: Lua error:" } },
  { "throw-in-node-tostring",
    PRE "local g = kdf.graph { name = 'n' }\n"
        "g:lua { name = 'thrower', outputs = { 'v:f32[N]' },\n"
        "  fn = function() error(setmetatable({}, { __tostring = function() error('x') end })) end }\n"
        "g:run {}\n",
    { NULL }, { NULL }, 1, { "node 'thrower' (lua)", "__tostring failed" } },
  { "script-fifo", NULL, { NULL }, { NULL }, 2, { "is not a regular file" } },
  { "script-directory", NULL, { NULL }, { NULL }, 2, { "is not a regular file" } },

  /* ---- --set values and counts: range-checked, naming the flag ---- */
  { "set-int-1e99", PRE "print(kdf.arg('epochs', 10))\n", { "--set", "epochs=1e99" }, { NULL }, 2,
    { "--set epochs=1e99: an integer from -2147483648 to 2147483647 is expected" } },
  { "set-int-2^31", PRE "print(kdf.arg('epochs', 10))\n", { "--set", "epochs=2147483648" }, { NULL }, 2,
    { "--set epochs=2147483648: an integer from" } },
  { "set-int-fraction", PRE "print(kdf.arg('epochs', 10))\n", { "--set", "epochs=2.5" }, { NULL }, 2,
    { "--set epochs=2.5: an integer is expected" } },
  { "set-int-word", PRE "print(kdf.arg('epochs', 10))\n", { "--set", "epochs=many" }, { NULL }, 2,
    { "--set epochs=many: a number is expected" } },
  { "set-int-range", PRE "print(kdf.arg('epochs', 10, { min = 1, max = 100 }))\n", { "--set", "epochs=0" },
    { NULL }, 2, { "--set epochs=0: an integer from 1 to 100 is expected" } },
  { "set-int-ok", PRE "print('epochs', kdf.arg('epochs', 10, { min = 1 }) + 1)\n", { "--set", "epochs=1e3" },
    { NULL }, 0, { "epochs\t1001" } },
  { "set-float-inf", PRE "print(kdf.arg('lr', 0.1))\n", { "--set", "lr=1e999" }, { NULL }, 2,
    { "--set lr=1e999: a finite number is expected" } },
  { "set-float-nan", PRE "print(kdf.arg('lr', 0.1))\n", { "--set", "lr=nan" }, { NULL }, 2,
    { "--set lr=nan: a number is expected" } },
  { "set-float-range", PRE "print(kdf.arg('rate', 0.1, { min = 0, max = 1 }))\n", { "--set", "rate=1.5" },
    { NULL }, 2, { "--set rate=1.5: a number from 0 to 1 is expected" } },
  { "set-bool", PRE "print(kdf.arg('flag', false))\n", { "--set", "flag=maybe" }, { NULL }, 2,
    { "--set flag=maybe: true or false is expected" } },
  { "set-pipeline-epochs", NULL, { "--set", "epochs=1e99" }, { NULL }, 2,
    { "--set epochs=1e99: an integer from 1 to 1000000 is expected" } },
  { "set-pipeline-batch", NULL, { "--set", "batch=0" }, { NULL }, 2,
    { "--set batch=0: an integer from 1 to 1048576 is expected" } },
  { "run-ticks-2^32", LUA1 "g:run { ticks = 2^32 }\n",
    { NULL }, { NULL }, 2, { "g:run: ticks must be an integer from 1 to 2147483647, got 4294967296" } },
  { "run-ticks-0", LUA1 "g:run { ticks = 0 }\n",
    { NULL }, { NULL }, 2, { ":4: g:run: ticks must be an integer from 1 to 2147483647, got 0" } },
  { "run-ticks-fraction", LUA1 "g:run { ticks = 1.5 }\n",
    { NULL }, { NULL }, 2, { "g:run: ticks must be an integer from 1 to 2147483647, got 1.5" } },
  { "run-ticks-string", LUA1 "g:run { ticks = 'many' }\n",
    { NULL }, { NULL }, 2, { "g:run: ticks must be an integer from 1 to 2147483647, got many" } },
  { "run-ticks-nan", LUA1 "g:run { ticks = 0/0 }\n",
    { NULL }, { NULL }, 2, { "g:run: ticks must be an integer from 1 to 2147483647" } },
  { "run-threads", LUA1 "g:run { threads = 1e6 }\n",
    { NULL }, { NULL }, 2, { "g:run: threads must be an integer from 1 to 1024" } },
  { "edge-delay", LUA1 "g:lua { name = 'user', inputs = { 'v:f32[N]' }, fn = function() return {} end, v = kdf.delay(c.v, 2^40) }\n",
    { NULL }, { NULL }, 2, { "delay must be an integer from 0 to 1000000" } },
  { "zeros-huge-dim", PRE "kdf.zeros({ 2^40 })\n", { NULL }, { NULL }, 2,
    { "kdf.zeros: a dimension must be an integer from 0 to 2147483647" } },
  { "zeros-negative", PRE "kdf.zeros({ -1 })\n", { NULL }, { NULL }, 2,
    { "kdf.zeros: a dimension must be an integer from 0 to 2147483647, got -1" } },
  { "zeros-budget", PRE "kdf.zeros({ 1000000, 1000000 })\n", { NULL }, { NULL }, 2,
    { ":2: a tensor f32[1000000,1000000]: needs 3.6 TiB, over the memory budget of" } },

  /* ---- the memory budget ---- */
  { "memory-flag-zeros", PRE "kdf.zeros({ 4096, 4096 })\n", { "--memory", "32M" }, { NULL }, 2,
    { "a tensor f32[4096,4096]: needs 64.0 MiB, over the memory budget of 32.0 MiB",
      "raise it with --memory SIZE or KDFLOW_MEMORY" } },
  { "memory-env-zeros", PRE "kdf.zeros({ 4096, 4096 })\n", { NULL }, { "KDFLOW_MEMORY=16M" }, 2,
    { "needs 64.0 MiB, over the memory budget of 16.0 MiB" } },
  { "memory-flag-wins", PRE "print('n', kdf.zeros({ 4096, 4096 }):numel())\n", { "--memory", "1G" },
    { "KDFLOW_MEMORY=16M" }, 0, { "n\t16777216" } },
  { "memory-env-garbage", PRE "print('ok')\n", { NULL }, { "KDFLOW_MEMORY=lots" }, 0,
    { "warning: KDFLOW_MEMORY: memory size 'lots'", "ok" } },
  { "memory-flag-garbage", PRE "print('ok')\n", { "--memory", "12Q" }, { NULL }, 2,
    { "--memory: memory size '12Q': expected a number of bytes" } },
  { "memory-flag-zero", PRE "print('ok')\n", { "--memory", "0" }, { NULL }, 2,
    { "--memory: memory size '0'" } },
  { "memory-flag-negative", PRE "print('ok')\n", { "--memory", "-4G" }, { NULL }, 2,
    { "--memory: memory size '-4G'" } },
  { "memory-flag-tiny", PRE "print('ok')\n", { "--memory", "1K" }, { NULL }, 2,
    { "memory size '1K' is out of range (1M to 1P bytes)" } },
  { "memory-flag-missing", PRE "print('ok')\n", { "--memory" }, { NULL }, 2,
    { "--memory needs a size" } },
  { "lua-string-huge", "local s = string.rep('x', 2^40)\n", { NULL }, { NULL }, 2, { "kdflow: " } },
  { "lua-table-budget", "local t = {}\nfor i = 1, 1e9 do t[i] = i end\n", { "--memory", "64M" }, { NULL },
    2, { "not enough memory" } },
  { "lua-string-budget", "local t = {}\nfor i = 1, 1e6 do t[i] = string.rep('y', 1000) .. i end\n",
    { "--memory", "64M" }, { NULL }, 2, { "not enough memory" } },
  { "arch-mlp-product", ARCH_SCRIPT, { "--set", "arch=mlp:8-200000-200000-3" }, { NULL }, 2,
    { "node 'st' (student_update)", "model 'mlp:8-200000-200000-3': needs 298.0 GiB, over the memory budget" } },
  { "arch-cnn-flatten", ARCH_SCRIPT, { "--set", "arch=cnn:64x8192x8192-10" }, { NULL }, 2,
    { "model 'cnn:64x8192x8192-10': layer 0 (flatten): 64×8192×8192 = 4294967296 values per row, more than 2147483647" } },
  { "arch-cnn-flatten-conv", ARCH_SCRIPT, { "--set", "arch=cnn:1x65536x65536-c2k1p0-10" }, { NULL }, 2,
    { "model 'cnn:1x65536x65536-c2k1p0-10': layer 2 (flatten): 2×65536×65536 = 8589934592 values per row" } },
  { "arch-seq-flatten", ARCH_SCRIPT, { "--set", "arch=seq:4096x4096x4096-flatten-linear3" }, { NULL }, 2,
    { "layer 0 (flatten): 4096×4096×4096 = 68719476736 values per row" } },
  { "arch-too-wide", ARCH_SCRIPT, { "--set", "arch=mlp:8-16777217-3" }, { NULL }, 2,
    { "architecture 'mlp:8-16777217-3': expected a positive size at '16777217'" } },
  { "arch-budget-flag", ARCH_SCRIPT, { "--set", "arch=mlp:8-4096-4096-3", "--memory", "64M" }, { NULL }, 2,
    { "model 'mlp:8-4096-4096-3': needs 128.", "over the memory budget of 64.0 MiB" } },
  { "arch-batch-budget", ARCH_SCRIPT, { "--set", "arch=mlp:8-1024-3", "--set", "batch=1000000", "--memory", "256M" },
    { NULL }, 2, { "training 'mlp:8-1024-3' in batches of 1000000", "over the memory budget of 256.0 MiB" } },
  { "arch-ok", ARCH_SCRIPT, { "--set", "arch=mlp:8-16-3", "--memory", "64M" }, { NULL }, 0, { "trained" } },

  /* ---- port declarations of Lua nodes (they were freed twice) ---- */
  { "decl-trailing-comma", PORT_SCRIPT ("'v:f32[N,]'"), { NULL }, { NULL }, 2, { "port \"v:f32[N,]\"" } },
  { "decl-empty-name", PORT_SCRIPT ("':f32[N]'"), { NULL }, { NULL }, 2, { "port \":f32[N]\"" } },
  { "decl-empty-type", PORT_SCRIPT ("'v:'"), { NULL }, { NULL }, 2, { "port \"v:\"" } },
  { "decl-bound", PORT_SCRIPT ("'v:i32[N] <'"), { NULL }, { NULL }, 2, { "port \"v:i32[N] <\"" } },
  { "decl-long-shape", PORT_SCRIPT ("'v:f32[' .. string.rep('N', 200) .. ']'"), { NULL }, { NULL }, 2,
    { "g:lua: port \"v:f32[NNNN" } },
  { "decl-rank8", PORT_SCRIPT ("'v:f32[A,B,C,D,E,F,G,H]'"), { NULL }, { NULL }, 2, { "at most 4" } },
  { "decl-closing-only", PORT_SCRIPT ("'v:f32]N['"), { NULL }, { NULL }, 2, { "port \"v:f32]N[\"" } },
  { "decl-table", PORT_SCRIPT ("{}"), { NULL }, { NULL }, 2, { "port declarations are strings" } },
  { "decl-duplicate", PRE "local g = kdf.graph {}\n"
                      "g:lua { inputs = { 'a:f32[N]', 'a:f32[N]' }, fn = function() return {} end }\n",
    { NULL }, { NULL }, 2, { "decl-duplicate.lua:3:", "input port 'a' is declared twice" } },

  /* ---- data files ---- */
  { "npy-fifo", NPY_SCRIPT, { "--set", "path=@/fifo" }, { NULL }, 2,
    { "@/fifo: is a FIFO (named pipe); data files must be regular files" } },
  { "npy-directory", NPY_SCRIPT, { "--set", "path=@/a-directory" }, { NULL }, 2,
    { "@/a-directory: is a directory" } },
  { "npy-device", NPY_SCRIPT, { "--set", "path=/dev/zero" }, { NULL }, 2,
    { "/dev/zero: is a character device" } },
  { "npy-budget", NPY_SCRIPT, { "--set", "path=@/npy/budget.npy" }, { NULL }, 2,
    { "@/npy/budget.npy: a tensor f32[100000,100000]: needs 37.3 GiB, over the memory budget" } },
  { "npy-budget-flag", NPY_SCRIPT, { "--set", "path=@/npy/2mib.npy", "--memory", "1M" }, { NULL }, 2,
    { "@/npy/2mib.npy: a tensor f32[524288]: needs 2.0 MiB, over the memory budget of 1.0 MiB" } },
  { "npy-budget-ok", NPY_SCRIPT, { "--set", "path=@/npy/2mib.npy", "--memory", "16M" }, { NULL }, 0,
    { "rows\t524288" } },
  { "npy-negative-shape", NPY_SCRIPT, { "--set", "path=@/npy/negative.npy" }, { NULL }, 2, { "@/npy/negative.npy" } },
  { "npy-rank5", NPY_SCRIPT, { "--set", "path=@/npy/rank5.npy" }, { NULL }, 2,
    { "@/npy/rank5.npy: the array has rank 5" } },
  { "npy-not-dict", NPY_SCRIPT, { "--set", "path=@/npy/notdict.npy" }, { NULL }, 2, { "@/npy/notdict.npy" } },
  { "npy-complex", NPY_SCRIPT, { "--set", "path=@/npy/descr.npy" }, { NULL }, 2, { "@/npy/descr.npy", "<c16" } },
  { "npy-shape-text", NPY_SCRIPT, { "--set", "path=@/npy/shape-text.npy" }, { NULL }, 2, { "@/npy/shape-text.npy" } },
  { "npy-truncated", NPY_SCRIPT, { "--set", "path=@/npy/truncated.npy" }, { NULL }, 2,
    { "@/npy/truncated.npy: shape (3, 2) of '<f4' needs 24 bytes of data, the file has 10" } },
  { "npy-header-4gib", NPY_SCRIPT, { "--set", "path=@/npy/hlen.npy" }, { NULL }, 2,
    { "@/npy/hlen.npy: truncated .npy header: it claims 4294967295 bytes" } },
  { "npy-magic-only", NPY_SCRIPT, { "--set", "path=@/npy/magic-only.npy" }, { NULL }, 2,
    { "@/npy/magic-only.npy: truncated .npy header" } },
  { "idx-fifo", LOADER_SCRIPT, { "--set", "dataset=idx", "--set", "path=@/idx-fifo" }, { NULL }, 2,
    { "@/idx-fifo/train-images-idx3-ubyte: is a FIFO (named pipe)" } },
  { "idx-dims-overflow", LOADER_SCRIPT, { "--set", "dataset=idx", "--set", "path=@/idx-huge" }, { NULL }, 2,
    { "@/idx-huge/train-images-idx3-ubyte: IDX dimensions overflow" } },
  { "idx-dims-budget", LOADER_SCRIPT, { "--set", "dataset=idx", "--set", "path=@/idx-budget" }, { NULL }, 2,
    { "@/idx-budget/train-images-idx3-ubyte: dimensions disagree with the file size" } },
  { "idx-zero-dim-strides", LOADER_SCRIPT, { "--set", "dataset=idx", "--set", "path=@/idx-zero-dim" }, { NULL }, 2,
    { "@/idx-zero-dim/train-images-idx3-ubyte: tensor shape overflows" } },
  { "idx-rank0", LOADER_SCRIPT, { "--set", "dataset=idx", "--set", "path=@/idx-rank0" }, { NULL }, 2,
    { "@/idx-rank0/train-images-idx3-ubyte: IDX rank 0 is not supported (1 to 4)" } },
  { "idx-rank5", LOADER_SCRIPT, { "--set", "dataset=idx", "--set", "path=@/idx-rank5" }, { NULL }, 2,
    { "@/idx-rank5/train-images-idx3-ubyte: IDX rank 5 is not supported (1 to 4)" } },
  { "csv-fifo", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/fifo" }, { NULL }, 2,
    { "@/fifo: is a FIFO (named pipe)" } },
  { "csv-directory", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/a-directory" }, { NULL }, 2,
    { "@/a-directory: is a directory" } },
  { "csv-nan", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/csv/nan.csv" }, { NULL }, 2,
    { "@/csv/nan.csv: line 2, column 2 ('b'): 'nan' is not" } },
  { "csv-inf", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/csv/inf.csv" }, { NULL }, 2,
    { "@/csv/inf.csv: line 3, column 1 ('a'): '1e999' is not" } },
  { "csv-empty", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/csv/empty.csv" }, { NULL }, 2,
    { "@/csv/empty.csv: the file has no rows" } },
  { "csv-header-only", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/csv/header-only.csv" }, { NULL },
    2, { "@/csv/header-only.csv" } },
  { "csv-nul", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/csv/nul.csv" }, { NULL }, 2,
    { "@/csv/nul.csv" } },
  { "csv-budget", LOADER_SCRIPT, { "--set", "dataset=csv", "--set", "path=@/csv/2mib.csv", "--memory", "8M" },
    { NULL }, 2, { "@/csv/2mib.csv: reading the CSV file: needs 10.0 MiB, over the memory budget of 8.0 MiB" } },
  { "review-deep", EVAL_SCRIPT, { "--set", "review=@/review/deep.json" }, { NULL }, 2,
    { "param 'review': @/review/deep.json: JSON nested more than 32 deep (at byte 32)" } },
  { "review-fifo", EVAL_SCRIPT, { "--set", "review=@/fifo" }, { NULL }, 2,
    { "param 'review': @/fifo: is a FIFO (named pipe)" } },
  { "review-object", EVAL_SCRIPT, { "--set", "review=@/review/object.json" }, { NULL }, 2,
    { "@/review/object.json: expected a JSON array of records" } },
  { "review-votes", EVAL_SCRIPT, { "--set", "review=@/review/votes.json" }, { NULL }, 2,
    { "@/review/votes.json", "\"mturk.given\" out of range" } },
  { "review-good", EVAL_SCRIPT, { "--set", "review=@/review/good.json" }, { NULL }, 0, { "evaluated" } },

  /* ---- sizes derived from label values ---- */
  { "eval-label-2^31", PRE "local g = kdf.graph { name = 'ev' }\n"
      "g:node('evaluate', { name = 'ev', predictions = kdf.tensor({ 0, 1 }, 'i32'),\n"
      "  labels = kdf.tensor({ 0, 2147483647 }, 'i32'), save = false })\ng:run {}\n",
    { NULL }, { NULL }, 2,
    { "node 'ev' (evaluate)", "a label or prediction is 2147483647: C = 1 + the largest would exceed 65536" } },
  { "eval-classes-budget", PRE "local g = kdf.graph { name = 'ev' }\n"
      "g:node('evaluate', { name = 'ev', predictions = kdf.tensor({ 0, 1 }, 'i32'),\n"
      "  labels = kdf.tensor({ 0, 1 }, 'i32'), save = false, n_classes = 65536 })\ng:run {}\n",
    { "--memory", "4G" }, { NULL }, 2,
    { "node 'ev' (evaluate)", "the confusion matrix: needs 96.0 GiB, over the memory budget of 4.0 GiB" } },
  { "loader-label-2^31", LOADER_SCRIPT, { "--set", "dataset=npy", "--set", "path=@/npyset-biglabel" }, { NULL }, 2,
    { "@/npyset-biglabel/labels.npy", "the largest label is 2147483647: more than 65536 classes" } },
  { "ranking-label-2^31", PRE "local g = kdf.graph { name = 'rk' }\n"
      "g:node('loss_ranking', { name = 'rk', loss = kdf.tensor({ 0.1, 0.2 }),\n"
      "  labels = kdf.tensor({ 0, 2147483647 }, 'i32'), scope = 'per_class' })\ng:run {}\n",
    { NULL }, { NULL }, 2,
    { "node 'rk' (loss_ranking)", "input 'labels': the largest label is 2147483647" } },

  { "otsu-bins-budget", PRE "local g = kdf.graph { name = 'ot' }\n"
      "g:node('otsu_threshold', { name = 'ot', scores = kdf.tensor({ 0.1, 0.9, 0.5 }), bins = 10000000 })\n"
      "g:run {}\n",
    { "--memory", "64M" }, { NULL }, 2,
    { "node 'ot' (otsu_threshold)", "histogram bins: needs 762.9 MiB, over the memory budget of 64.0 MiB" } },

  /* ---- checkpoints: validated before a model is built ---- */
  { "ck-good", CK_SCRIPT, { "--set", "ck=@/ck/good.st" }, { NULL }, 0, { "logits\t" } },
  { "ck-quoted-brackets", CK_SCRIPT, { "--set", "ck=@/ck/quoted.st" }, { NULL }, 0, { "logits\t" } },
  { "ck-nan", CK_SCRIPT, { "--set", "ck=@/ck/nan.st" }, { NULL }, 2,
    { "node 'tf' (teacher_forward)", "@/ck/nan.st: tensor '0.weight': element 5 is NaN" } },
  { "ck-inf", CK_SCRIPT, { "--set", "ck=@/ck/inf.st" }, { NULL }, 2,
    { "@/ck/inf.st: tensor '0.bias': element 1 is infinite" } },
  { "ck-overlap", CK_SCRIPT, { "--set", "ck=@/ck/overlap.st" }, { NULL }, 2,
    { "@/ck/overlap.st: tensor '0.bias': data_offsets [36, 48] overlap tensor '0.weight' [0, 48]" } },
  { "ck-gap", CK_SCRIPT, { "--set", "ck=@/ck/gap.st" }, { NULL }, 2,
    { "@/ck/gap.st: tensor '0.bias': data_offsets [52, 64] leave bytes 48 to 52 of the data section unused" } },
  { "ck-trailing", CK_SCRIPT, { "--set", "ck=@/ck/trailing.st" }, { NULL }, 2,
    { "@/ck/trailing.st: the data section has 68 bytes, the tensors use 60 (trailing bytes)" } },
  { "ck-range", CK_SCRIPT, { "--set", "ck=@/ck/range.st" }, { NULL }, 2,
    { "@/ck/range.st: tensor '0.bias': data_offsets [48, 6000] out of range (the data section has 60 bytes)" } },
  { "ck-reversed", CK_SCRIPT, { "--set", "ck=@/ck/reversed.st" }, { NULL }, 2,
    { "@/ck/reversed.st: tensor '0.weight': data_offsets [48, 0] out of range" } },
  { "ck-negative-offset", CK_SCRIPT, { "--set", "ck=@/ck/negative.st" }, { NULL }, 2,
    { "@/ck/negative.st: tensor '0.weight': data_offsets [-4, 44] out of range" } },
  { "ck-offsets-text", CK_SCRIPT, { "--set", "ck=@/ck/offsets-text.st" }, { NULL }, 2,
    { "@/ck/offsets-text.st: tensor '0.weight': bad data_offsets (want [begin, end])" } },
  { "ck-offsets-three", CK_SCRIPT, { "--set", "ck=@/ck/offsets-three.st" }, { NULL }, 2,
    { "tensor '0.weight': bad data_offsets (want [begin, end])" } },
  { "ck-shape-arch", CK_SCRIPT, { "--set", "ck=@/ck/shape-arch.st" }, { NULL }, 2,
    { "@/ck/shape-arch.st: tensor '0.weight': shape [4,3], the architecture 'mlp:4-3' wants [3,4]" } },
  { "ck-shape-size", CK_SCRIPT, { "--set", "ck=@/ck/shape-size.st" }, { NULL }, 2,
    { "@/ck/shape-size.st: tensor '0.weight': 48 bytes of data for its shape (want 4 per element)" } },
  { "ck-shape-rank5", CK_SCRIPT, { "--set", "ck=@/ck/shape-rank5.st" }, { NULL }, 2,
    { "@/ck/shape-rank5.st: tensor '0.weight': rank 5, at most 4" } },
  { "ck-shape-negative", CK_SCRIPT, { "--set", "ck=@/ck/shape-negative.st" }, { NULL }, 2,
    { "@/ck/shape-negative.st: tensor '0.weight': bad shape entry 1" } },
  { "ck-shape-overflow", CK_SCRIPT, { "--set", "ck=@/ck/shape-overflow.st" }, { NULL }, 2,
    { "tensor '0.weight': 48 bytes of data for its shape (want more than the file can hold)" } },
  { "ck-arch-huge", CK_SCRIPT, { "--set", "ck=@/ck/arch-huge.st" }, { NULL }, 2,
    { "@/ck/arch-huge.st: bad architecture in __metadata__: model 'mlp:8-200000-200000-3': needs 298.0 GiB" } },
  { "ck-arch-flatten", CK_SCRIPT, { "--set", "ck=@/ck/arch-flatten.st" }, { NULL }, 2,
    { "@/ck/arch-flatten.st: bad architecture in __metadata__", "more than 2147483647" } },
  { "ck-arch-bad", CK_SCRIPT, { "--set", "ck=@/ck/arch-bad.st" }, { NULL }, 2,
    { "@/ck/arch-bad.st: bad architecture in __metadata__: architecture 'mlp:4-x-3'" } },
  { "ck-arch-other", CK_SCRIPT, { "--set", "ck=@/ck/arch-other.st" }, { NULL }, 2,
    { "@/ck/arch-other.st: tensor '0.weight': shape [3,4], the architecture 'mlp:4-2' wants [2,4]" } },
  { "ck-meta-int", CK_SCRIPT, { "--set", "ck=@/ck/meta-int.st" }, { NULL }, 2,
    { "@/ck/meta-int.st: bad header: __metadata__ entry 'epoch' is not a string" } },
  { "ck-dtype", CK_SCRIPT, { "--set", "ck=@/ck/dtype.st" }, { NULL }, 2,
    { "@/ck/dtype.st: tensor '0.weight': dtype F16, expected F32" } },
  { "ck-no-arch", CK_SCRIPT, { "--set", "ck=@/ck/no-arch.st" }, { NULL }, 2,
    { "@/ck/no-arch.st: no architecture: __metadata__ has no \"arch\" string" } },
  { "ck-extra-tensor", CK_SCRIPT, { "--set", "ck=@/ck/extra-tensor.st" }, { NULL }, 2,
    { "@/ck/extra-tensor.st: tensor '9.weight': not a parameter of 'mlp:4-3'" } },
  { "ck-missing-tensor", CK_SCRIPT, { "--set", "ck=@/ck/missing-tensor.st" }, { NULL }, 2,
    { "@/ck/missing-tensor.st: tensor '0.bias': missing (the architecture 'mlp:4-3' has it)" } },
  { "ck-array", CK_SCRIPT, { "--set", "ck=@/ck/array.st" }, { NULL }, 2,
    { "@/ck/array.st: bad header: it must be a JSON object starting at byte 8" } },
  { "ck-json", CK_SCRIPT, { "--set", "ck=@/ck/json.st" }, { NULL }, 2, { "@/ck/json.st: bad header JSON" } },
  { "ck-heads", CK_SCRIPT, { "--set", "ck=@/ck/heads.st" }, { NULL }, 2,
    { "@/ck/heads.st: bad heads metadata 'proj'" } },
  { "ck-heads-huge", CK_SCRIPT, { "--set", "ck=@/ck/heads-huge.st" }, { NULL }, 2,
    { "@/ck/heads-huge.st: bad heads metadata", "over the memory budget" } },
  { "ck-deep-json", CK_SCRIPT, { "--set", "ck=@/ck/deep.st" }, { NULL }, 2,
    { "node 'tf' (teacher_forward)", "@/ck/deep.st: bad header: JSON nested more than 16 deep (at byte 62)" } },
  { "ck-header-2^62", CK_SCRIPT, { "--set", "ck=@/ck/hlen-huge.st" }, { NULL }, 2,
    { "@/ck/hlen-huge.st: bad header: it claims 4611686018427387904 bytes (at most 104857600)" } },
  { "ck-header-long", CK_SCRIPT, { "--set", "ck=@/ck/hlen-long.st" }, { NULL }, 2,
    { "@/ck/hlen-long.st: truncated: the header claims 1000 bytes, the file has 8 after the length" } },
  { "ck-empty", CK_SCRIPT, { "--set", "ck=@/ck/empty.st" }, { NULL }, 2,
    { "@/ck/empty.st: truncated: 0 bytes, not even the 8-byte header length" } },
  { "ck-short", CK_SCRIPT, { "--set", "ck=@/ck/short.st" }, { NULL }, 2,
    { "@/ck/short.st: truncated: 3 bytes" } },
  { "ck-fifo", CK_SCRIPT, { "--set", "ck=@/fifo" }, { NULL }, 2,
    { "@/fifo: cannot read the checkpoint: is a FIFO (named pipe)" } },
  { "ck-directory", CK_SCRIPT, { "--set", "ck=@/a-directory" }, { NULL }, 2,
    { "@/a-directory: cannot read the checkpoint: is a directory" } },
  { "ck-budget", CK_SCRIPT, { "--set", "ck=@/npy/2mib.npy", "--memory", "1M" }, { NULL }, 2,
    { "@/npy/2mib.npy: the checkpoint: needs 2.0 MiB, over the memory budget of 1.0 MiB" } },
};

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
  g_autofree char *script = NULL;
  if (c->script) {
    g_autofree char *rel = g_strdup_printf ("scripts/%s.lua", c->name);
    g_autofree char *text = expand (c->script);
    put_text (rel, text);
    script = fixture_path (rel);
  } else if (strcmp (c->name, "script-fifo") == 0)
    script = fixture_path ("fifo");
  else if (strcmp (c->name, "script-directory") == 0)
    script = fixture_path ("a-directory");
  else /* the pipelines' shared flags */
    script = g_build_filename (g_getenv ("KDF_TEST_SRCDIR"), "..", "graphs", "clean.lua", NULL);
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, g_strdup ("timeout"));
  g_ptr_array_add (argv, g_strdup ("120"));
  g_ptr_array_add (argv, g_strdup (kdflow));
  g_ptr_array_add (argv, g_strdup ("run"));
  g_ptr_array_add (argv, g_strdup (script));
  g_ptr_array_add (argv, g_strdup ("--quiet"));
  g_ptr_array_add (argv, g_strdup ("--threads"));
  g_ptr_array_add (argv, g_strdup ("1"));
  g_ptr_array_add (argv, g_strdup ("--out"));
  g_ptr_array_add (argv, g_build_filename (tmp, "runs", c->name, NULL));
  for (int k = 0; k < 8 && c->args[k]; k++)
    g_ptr_array_add (argv, expand (c->args[k]));
  g_ptr_array_add (argv, NULL);
  char **envp = g_get_environ ();
  for (int k = 0; k < 3 && c->env[k]; k++) {
    const char *eq = strchr (c->env[k], '=');
    g_autofree char *key = g_strndup (c->env[k], (gsize) (eq - c->env[k]));
    envp = g_environ_setenv (envp, key, eq + 1, TRUE);
  }
  g_autofree char *out = NULL, *err = NULL;
  int wait_status = 0;
  GError *error = NULL;
  if (!g_spawn_sync (tmp, (char **) argv->pdata, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                     &wait_status, &error))
    g_error ("cannot run %s: %s", kdflow, error->message);
  g_strfreev (envp);
  int status = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
  if (g_getenv ("KDF_TEST_SHOW"))
    g_printerr ("%s (%d): %s", c->name, status, err);
  g_ptr_array_free (argv, TRUE);
  if (status != c->status) {
    g_test_message ("%s: expected exit status %d, got %d\nstdout:\n%s\nstderr:\n%s", c->name,
                    c->status, status, out, err);
    g_test_fail ();
    return;
  }
  g_assert_true (status == 0 || status == 1 || status == 2 || status == 130);
  for (int k = 0; k < 5 && c->needles[k]; k++) {
    g_autofree char *needle = expand (c->needles[k]);
    if (!strstr (err, needle) && !strstr (out, needle)) {
      g_test_message ("%s: expected \"%s\" in the output\nstdout:\n%s\nstderr:\n%s", c->name,
                      needle, out, err);
      g_test_fail ();
      return;
    }
  }
  g_assert_null (strstr (err, "AddressSanitizer"));
  g_assert_null (strstr (err, "LeakSanitizer"));
  g_assert_null (strstr (err, "runtime error:"));
  g_assert_null (strstr (err, "CRITICAL"));
  g_assert_null (strstr (err, "unprotected Lua error"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kdflow = g_getenv ("KDFLOW");
  if (!kdflow || !g_getenv ("KDF_TEST_SRCDIR")) {
    g_printerr ("KDFLOW and KDF_TEST_SRCDIR must be set (meson test sets them)\n");
    return 1;
  }
  make_fixtures ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = g_strdup_printf ("/hostile/%s", cases[i].name);
    g_test_add_data_func (path, &cases[i], run_case);
  }
  int rc = g_test_run ();
  remove_tree (tmp);
  g_free (tmp);
  return rc;
}
