/* The label-errors mturk files: confirmed-error counts and scoring a flagged mask. */
#include <kdflow/detect.h>
#include <kdflow/kdflow-plugin.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <math.h>

static char *
fixture (const char *name)
{
  return g_build_filename (DETECT_FIXTURES, "label-errors", name, NULL);
}

static KdfLabelReview *
load (const char *name)
{
  g_autofree char *path = fixture (name);
  g_autoptr (GError) error = NULL;
  KdfLabelReview *r = kdf_label_review_load (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (r);
  return r;
}

static void
test_counts (void)
{
  /* README of label-errors: reviewed 100 / 275 / 93 / 1310, confirmed
   * (mturk.given < 3) 15 / 54 / 82 / 725. */
  const struct {
    const char *file;
    guint reviewed, confirmed, unmapped;
  } sets[] = {
    { "mnist_mturk.json", 100, 15, 0 },
    { "cifar10_mturk.json", 275, 54, 0 },
    { "20news_mturk.json", 93, 82, 0 },
    { "imdb_mturk.json", 1310, 725, 725 }, /* ids are file names, not rows */
  };
  for (guint s = 0; s < G_N_ELEMENTS (sets); s++) {
    g_autoptr (KdfLabelReview) r = load (sets[s].file);
    g_assert_cmpuint (r->n_reviewed, ==, sets[s].reviewed);
    g_assert_cmpuint (r->n_confirmed, ==, sets[s].confirmed);
    g_assert_cmpuint (r->n_unmapped, ==, sets[s].unmapped);
  }
  g_autoptr (KdfLabelReview) m = load ("mnist_mturk.json");
  g_assert_cmpstr (m->records[0].id, ==, "247");
  g_assert_cmpint (m->records[0].row, ==, 247);
  g_assert_cmpint (m->records[0].given_votes, ==, 5);
  g_assert_false (m->records[0].confirmed);
  g_autoptr (KdfLabelReview) imdb = load ("imdb_mturk.json");
  g_assert_cmpstr (imdb->records[0].id, ==, "test/neg/10003_3");
  g_assert_cmpint (imdb->records[0].row, ==, -1);
  g_assert_cmpint (imdb->records[0].given_votes, ==, 2);
  g_assert_true (imdb->records[0].confirmed);
}

static void
test_score (void)
{
  g_autoptr (KdfLabelReview) r = load ("mnist_mturk.json");
  /* The confirmed mnist rows (given votes in parentheses):
   * 947(0) 1621(2) 1901(2) 2130(2) 2462(0) 2597(0) 2654(0) 3520(2) 3558(1) 5937(1)
   * 6651(0) 6783(2) 8527(2) 9679(2) 9729(2). Flag seven of them, two reviewed but
   * not confirmed (247, 259) and one never reviewed (0). */
  g_autofree uint8_t *mask = g_new0 (uint8_t, 10000);
  const int rows[] = { 947, 1621, 2462, 3558, 6651, 8527, 9729, 247, 259, 0 };
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    mask[rows[i]] = 1;
  KdfReviewScore s;
  g_autoptr (GError) error = NULL;
  g_assert_true (kdf_label_review_score (&s, r, mask, 10000, &error));
  g_assert_cmpint (s.flagged, ==, 10);
  g_assert_cmpint (s.caught, ==, 7);
  g_assert_cmpfloat_with_epsilon (s.precision, 0.7, 1e-15);
  g_assert_cmpfloat_with_epsilon (s.recall, 7.0 / 15.0, 1e-15);

  /* A mask shorter than the confirmed rows is a shape error. */
  g_autoptr (GError) e2 = NULL;
  g_assert_false (kdf_label_review_score (&s, r, mask, 5000, &e2));
  g_assert_error (e2, KDF_ERROR, KDF_ERROR_SHAPE);
}

static void
test_bad_files (void)
{
  g_autoptr (GError) e1 = NULL;
  g_assert_null (kdf_label_review_load ("/nonexistent/kdflow/mturk.json", &e1));
  g_assert_error (e1, KDF_ERROR, KDF_ERROR_IO);

  const char *cases[] = {
    "{\"id\": 1}",                                     /* not an array */
    "[{\"id\": 1, \"mturk\": {\"guessed\": 2}}]",      /* no mturk.given */
    "[{\"id\": 1.5, \"mturk\": {\"given\": 2}}]",      /* fractional id */
    "[{\"id\": 1, \"mturk\": {\"given\": 2}}, 7]",     /* a record that is no object */
    "[{\"id\": 1, \"mturk\": {\"given\": 2}",          /* truncated */
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autofree char *path = NULL;
    g_autoptr (GError) error = NULL;
    int fd = g_file_open_tmp ("kdf-mturk-XXXXXX.json", &path, &error);
    g_assert_no_error (error);
    close (fd);
    g_assert_true (g_file_set_contents (path, cases[c], -1, &error));
    KdfLabelReview *r = kdf_label_review_load (path, &error);
    g_assert_null (r);
    g_assert_error (error, KDF_ERROR, KDF_ERROR_IO);
    g_unlink (path);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detect/review/counts", test_counts);
  g_test_add_func ("/detect/review/score", test_score);
  g_test_add_func ("/detect/review/bad-files", test_bad_files);
  return g_test_run ();
}
