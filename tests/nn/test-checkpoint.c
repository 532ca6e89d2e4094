/* Checkpoints: save → load round trips, numpy reading kdflow's files, and damaged
 * files refused with the file and the tensor named. */
#include "config.h"

#include "nn-test-util.h"

#include <glib/gstdio.h>

static char *tmpdir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static KdfTensor *
random_input (KdfModel *m, int64_t n, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  KdfTensor *x = kdf_tensor_new_2d (KDF_DTYPE_F32, n, m->in_size);
  fill_uniform (kdf_tensor_f32 (x), n * m->in_size, r, 0, 1);
  g_rand_free (r);
  return x;
}

static void
assert_same_outputs (KdfModel *a, KdfModel *b)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfTensor) x = random_input (a, 5, 1);
  KdfTensor *la, *lb, *fa, *fb;
  g_assert_true (kdf_model_predict (a, x, 4, 1, &la, &fa, &err));
  g_assert_true (kdf_model_predict (b, x, 4, 1, &lb, &fb, &err));
  g_assert_cmpmem (la->data, kdf_tensor_nbytes (la), lb->data, kdf_tensor_nbytes (lb));
  g_assert_cmpmem (fa->data, kdf_tensor_nbytes (fa), fb->data, kdf_tensor_nbytes (fb));
  kdf_tensor_unref (la);
  kdf_tensor_unref (lb);
  kdf_tensor_unref (fa);
  kdf_tensor_unref (fb);
  g_assert_cmpuint (a->params->len, ==, b->params->len);
  for (guint i = 0; i < a->params->len; i++) {
    const KdfParam *pa = kdf_model_get_param (a, i), *pb = kdf_model_get_param (b, i);
    g_assert_cmpstr (pa->name, ==, pb->name);
    g_assert_cmpmem (pa->data, pa->numel * 4, pb->data, pb->numel * 4);
  }
}

static void
test_roundtrip (void)
{
  const char *archs[] = { "mlp:20-8-4", "cnn:1x12x12-c4-p2-c6k3s2p1-f8-3", "linear:16-5:nobias",
                          "seq:1x6x6-conv3k3s1p0-relu-max2s2-flatten-linear5-tap-relu-l2norm-linear4nb" };
  for (guint i = 0; i < G_N_ELEMENTS (archs); i++) {
    g_autoptr (GError) err = NULL;
    g_autoptr (KdfModel) m = kdf_model_new_from_arch (archs[i], 100 + i, &err);
    g_assert_no_error (err);
    if (i == 0) {
      kdf_model_add_head (m, "proj", "6-3-l2", 5, &err);
      g_assert_no_error (err);
    }
    g_autofree char *path = tmp_path ("rt.safetensors");
    g_assert_true (kdf_model_save (m, path, &err));
    g_assert_no_error (err);
    g_autoptr (KdfModel) l = kdf_model_load (path, &err);
    g_assert_no_error (err);
    g_assert_cmpstr (l->arch, ==, m->arch);
    g_assert_cmpuint (l->heads->len, ==, m->heads->len);
    assert_same_outputs (m, l);
    /* into a model with other weights */
    g_autoptr (KdfModel) o = kdf_model_copy (l);
    kdf_model_get_param (o, 0)->data[0] += 1.0f;
    g_assert_true (kdf_model_load_into (o, path, &err));
    g_assert_no_error (err);
    assert_same_outputs (m, o);
  }
  /* the save replaced the file in place: no temp files are left behind */
  g_autoptr (GDir) d = g_dir_open (tmpdir, 0, NULL);
  int files = 0;
  while (g_dir_read_name (d))
    files++;
  g_assert_cmpint (files, ==, 1);
}

static void
test_trained_roundtrip (void)
{
  /* a model after training steps (nonzero momentum, lazy grads) saves what it uses */
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:20-8-4", 3, &err);
  g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.1, 0.9, 0, FALSE);
  kdf_optimizer_add_model (opt, m, &err);
  g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, NULL, &err);
  g_autoptr (KdfTensor) x = random_input (m, 40, 2);
  g_autoptr (KdfTensor) y = kdf_tensor_new_1d (KDF_DTYPE_I32, 40);
  for (int i = 0; i < 40; i++)
    kdf_tensor_i32 (y)[i] = i % 4;
  g_autoptr (KdfLoss) ce = kdf_loss_ce_new (y, NULL, 1.0, &err);
  GRand *r = g_rand_new_with_seed (1);
  g_assert_true (kdf_trainer_epoch (tr, x, &ce, 1, r, 1, NULL, NULL, &err));
  g_rand_free (r);
  g_autofree char *path = tmp_path ("trained.safetensors");
  g_assert_true (kdf_model_save (m, path, &err));
  g_autoptr (KdfModel) l = kdf_model_load (path, &err);
  g_assert_no_error (err);
  assert_same_outputs (m, l);
  g_unlink (path);
}

/* numpy (Debian's, at /usr/bin/python3) parses kdflow's file with nothing but json
 * and frombuffer, and runs the MLP forward itself: same names, layouts and logits. */
static const char numpy_script[] =
  "import json, struct, sys\n"
  "import numpy as np\n"
  "raw = open(sys.argv[1], 'rb').read()\n"
  "n = struct.unpack('<Q', raw[:8])[0]\n"
  "h = json.loads(raw[8:8 + n])\n"
  "base = 8 + n\n"
  "t = {}\n"
  "for k, v in h.items():\n"
  "    if k == '__metadata__':\n"
  "        continue\n"
  "    assert v['dtype'] == 'F32'\n"
  "    b, e = v['data_offsets']\n"
  "    t[k] = np.frombuffer(raw[base + b:base + e], dtype='<f4').reshape(v['shape'])\n"
  "x = np.frombuffer(open(sys.argv[2], 'rb').read(), dtype='<f4').reshape(-1, 20)\n"
  "a = np.maximum(x @ t['0.weight'].T + t['0.bias'], 0)\n"
  "a = np.maximum(a @ t['2.weight'].T + t['2.bias'], 0)\n"
  "z = a @ t['4.weight'].T + t['4.bias']\n"
  "print(h['__metadata__']['arch'])\n"
  "print(' '.join(sorted(t)))\n"
  "print(' '.join('%.9g' % v for v in z.ravel()))\n";

static void
test_numpy_reads (void)
{
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip ("/usr/bin/python3 is absent (Debian's python3-numpy is needed)");
    return;
  }
  g_autoptr (GError) err = NULL;
  const char *probe_argv[] = { "/usr/bin/python3", "-c", "import numpy", NULL };
  int status = 0;
  if (!g_spawn_sync (NULL, (char **) probe_argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL)) {
    g_test_skip ("numpy cannot be imported by /usr/bin/python3 (install python3-numpy)");
    return;
  }
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:20-16-8-4", 9, &err);
  g_autofree char *path = tmp_path ("np.safetensors");
  g_autofree char *xpath = tmp_path ("x.f32");
  g_assert_true (kdf_model_save (m, path, &err));
  g_autoptr (KdfTensor) x = random_input (m, 3, 4);
  g_assert_true (g_file_set_contents (xpath, x->data, (gssize) kdf_tensor_nbytes (x), &err));
  const char *argv[] = { "/usr/bin/python3", "-c", numpy_script, path, xpath, NULL };
  g_autofree char *out = NULL, *errs = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               &errs, &status, &err));
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("python failed: %s", errs);
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  g_assert_cmpstr (lines[0], ==, "mlp:20-16-8-4");
  g_assert_cmpstr (lines[1], ==, "0.bias 0.weight 2.bias 2.weight 4.bias 4.weight");
  g_auto (GStrv) vals = g_strsplit (lines[2], " ", -1);
  g_assert_cmpuint (g_strv_length (vals), ==, 12);
  const float *z = kdf_model_forward (m, kdf_tensor_f32 (x), 3, FALSE, NULL, 1);
  for (int j = 0; j < 12; j++)
    g_assert_cmpfloat_with_epsilon (g_ascii_strtod (vals[j], NULL), z[j], 1e-5);
  g_unlink (path);
  g_unlink (xpath);
}

/* PyTorch (Debian's python3-torch) loads a kdflow CNN checkpoint into the equivalent
 * nn.Sequential with load_state_dict and computes the same logits. */
static const char torch_script[] =
  "import json, struct, sys\n"
  "import numpy as np\n"
  "import torch\n"
  "from torch import nn\n"
  "raw = open(sys.argv[1], 'rb').read()\n"
  "n = struct.unpack('<Q', raw[:8])[0]\n"
  "h = json.loads(raw[8:8 + n])\n"
  "sd = {k: torch.from_numpy(np.frombuffer(raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]],\n"
  "      dtype='<f4').reshape(v['shape']).copy()) for k, v in h.items() if k != '__metadata__'}\n"
  "net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
  "      nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(54, 8),\n"
  "      nn.ReLU(), nn.Linear(8, 3))\n"
  "net.load_state_dict(sd, strict=True)\n"
  "x = torch.from_numpy(np.frombuffer(open(sys.argv[2], 'rb').read(), dtype='<f4').reshape(-1, 1, 12, 12).copy())\n"
  "print(' '.join('%.9g' % v for v in net(x).detach().numpy().ravel()))\n";

static void
test_torch_loads (void)
{
  int status = 0;
  const char *probe_argv[] = { "/usr/bin/python3", "-c", "import numpy, torch", NULL };
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE) ||
      !g_spawn_sync (NULL, (char **) probe_argv, NULL,
                     G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
                     NULL, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL)) {
    g_test_skip ("torch cannot be imported by /usr/bin/python3 (install python3-torch)");
    return;
  }
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("cnn:1x12x12-c4-p2-c6k3s2p1-f8-3", 5, &err);
  g_assert_no_error (err);
  g_autofree char *path = tmp_path ("torch.safetensors");
  g_autofree char *xpath = tmp_path ("xt.f32");
  g_assert_true (kdf_model_save (m, path, &err));
  g_autoptr (KdfTensor) x = random_input (m, 2, 6);
  g_assert_true (g_file_set_contents (xpath, x->data, (gssize) kdf_tensor_nbytes (x), &err));
  const char *argv[] = { "/usr/bin/python3", "-c", torch_script, path, xpath, NULL };
  g_autofree char *out = NULL, *errs = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               &errs, &status, &err));
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("python failed: %s", errs);
  g_auto (GStrv) vals = g_strsplit (g_strstrip (out), " ", -1);
  g_assert_cmpuint (g_strv_length (vals), ==, 6);
  const float *z = kdf_model_forward (m, kdf_tensor_f32 (x), 2, FALSE, NULL, 1);
  for (int j = 0; j < 6; j++)
    g_assert_cmpfloat_with_epsilon (g_ascii_strtod (vals[j], NULL), z[j], 1e-5);
  g_unlink (path);
  g_unlink (xpath);
}

/* ---- damaged files -------------------------------------------------------------------- */

static GBytes *
read_all (const char *path)
{
  char *c;
  gsize n;
  g_assert_true (g_file_get_contents (path, &c, &n, NULL));
  return g_bytes_new_take (c, n);
}

/* Writes BYTES with the first occurrence of FROM in the header replaced by TO (same
 * length, so the offsets stay valid). */
static void
write_edited (const char *path, GBytes *bytes, const char *from, const char *to)
{
  gsize n;
  const char *d = g_bytes_get_data (bytes, &n);
  g_autofree char *c = g_memdup2 (d, n);
  guint64 hlen;
  memcpy (&hlen, c, 8);
  g_autofree char *hdr = g_strndup (c + 8, hlen);
  char *at = strstr (hdr, from);
  g_assert_nonnull (at);
  g_assert_cmpuint (strlen (from), ==, strlen (to));
  memcpy (c + 8 + (at - hdr), to, strlen (to));
  g_assert_true (g_file_set_contents (path, c, (gssize) n, NULL));
}

static void
expect_refused (const char *path, const char *what1, const char *what2)
{
  g_autoptr (GError) err = NULL;
  KdfModel *m = kdf_model_load (path, &err);
  g_assert_null (m);
  g_assert_error (err, KDF_ERROR, KDF_ERROR_IO);
  if (!strstr (err->message, path) || (what1 && !strstr (err->message, what1)) ||
      (what2 && !strstr (err->message, what2)))
    g_error ("message '%s' lacks '%s' / '%s' / '%s'", err->message, path, what1 ? what1 : "",
             what2 ? what2 : "");
  g_test_message ("refused: %s", err->message);
}

static void
test_bad_files (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:20-8-4", 1, &err);
  g_autofree char *good = tmp_path ("good.safetensors");
  g_autofree char *bad = tmp_path ("bad.safetensors");
  g_assert_true (kdf_model_save (m, good, &err));
  g_autoptr (GBytes) bytes = read_all (good);
  gsize n;
  const guint8 *d = g_bytes_get_data (bytes, &n);
  guint64 hlen;
  memcpy (&hlen, d, 8);

  /* truncated: no length, inside the header, inside the data of the last tensor */
  g_assert_true (g_file_set_contents (bad, (const char *) d, 5, NULL));
  expect_refused (bad, "truncated", NULL);
  g_assert_true (g_file_set_contents (bad, (const char *) d, (gssize) (8 + hlen / 2), NULL));
  expect_refused (bad, "truncated", NULL);
  g_assert_true (g_file_set_contents (bad, (const char *) d, (gssize) (n - 6), NULL));
  expect_refused (bad, "'2.bias'", "out of range");
  /* header length absurd */
  g_autofree guint8 *c = g_memdup2 (d, n);
  guint64 huge = GUINT64_TO_LE (G_GUINT64_CONSTANT (1) << 40);
  memcpy (c, &huge, 8);
  g_assert_true (g_file_set_contents (bad, (const char *) c, (gssize) n, NULL));
  expect_refused (bad, "bad header", NULL);
  /* bad JSON */
  write_edited (bad, bytes, "{\"__metadata__\"", "[\"__metadata__\"");
  expect_refused (bad, "bad header", NULL);
  /* wrong dtype */
  write_edited (bad, bytes, "\"0.weight\":{\"dtype\":\"F32\"", "\"0.weight\":{\"dtype\":\"F64\"");
  expect_refused (bad, "'0.weight'", "F64");
  /* wrong shape (same element count) */
  write_edited (bad, bytes, "[8,20]", "[20,8]");
  expect_refused (bad, "'0.weight'", "shape [20,8]");
  /* offsets beyond the data */
  write_edited (bad, bytes, "\"data_offsets\":[0,", "\"data_offsets\":[9,");
  expect_refused (bad, "'0.weight'", "bytes of data");
  /* a tensor the architecture does not have */
  write_edited (bad, bytes, "\"2.bias\"", "\"3.bias\"");
  expect_refused (bad, "'3.bias'", "not a parameter");
  /* an architecture that disagrees with the tensors */
  write_edited (bad, bytes, "mlp:20-8-4", "mlp:20-8-5");
  expect_refused (bad, "'2.weight'", "mlp:20-8-5");
  /* no architecture */
  write_edited (bad, bytes, "\"arch\"", "\"arcx\"");
  expect_refused (bad, "architecture", NULL);
  /* missing file */
  g_autofree char *none = tmp_path ("none.safetensors");
  expect_refused (none, "cannot read", NULL);

  /* load_into a model with a head: the head's tensors are missing; the model keeps
   * its weights */
  g_autoptr (KdfModel) h = kdf_model_new_from_arch ("mlp:20-8-4", 2, &err);
  kdf_model_add_head (h, "proj", "4", 1, &err);
  float before = kdf_model_get_param (h, 0)->data[0];
  g_assert_false (kdf_model_load_into (h, good, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_IO);
  g_assert_nonnull (strstr (err->message, "'heads.proj.0.weight': missing"));
  g_assert_cmpfloat (kdf_model_get_param (h, 0)->data[0], ==, before);
  g_clear_error (&err);
  /* unwritable destination */
  g_autofree char *nodir = g_build_filename (tmpdir, "no", "such", "dir.safetensors", NULL);
  g_assert_false (kdf_model_save (m, nodir, &err));
  g_assert_error (err, KDF_ERROR, KDF_ERROR_IO);
  g_assert_nonnull (strstr (err->message, nodir));
  g_unlink (good);
  g_unlink (bad);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) err = NULL;
  tmpdir = g_dir_make_tmp ("kdf-nn-XXXXXX", &err);
  g_assert_no_error (err);
  g_test_add_func ("/nn/checkpoint/roundtrip", test_roundtrip);
  g_test_add_func ("/nn/checkpoint/trained", test_trained_roundtrip);
  g_test_add_func ("/nn/checkpoint/numpy", test_numpy_reads);
  g_test_add_func ("/nn/checkpoint/torch", test_torch_loads);
  g_test_add_func ("/nn/checkpoint/bad-files", test_bad_files);
  int rc = g_test_run ();
  /* remove what the tests left */
  g_autoptr (GDir) d = g_dir_open (tmpdir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    g_autofree char *p = tmp_path (name);
    g_unlink (p);
  }
  g_rmdir (tmpdir);
  g_free (tmpdir);
  kdf_blas_finalize ();
  return rc;
}
