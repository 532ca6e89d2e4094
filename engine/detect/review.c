/* Human review of label-error candidates: the <set>_mturk.json files of
 * cleanlab/label-errors (Northcutt, Athalye & Mueller, "Pervasive Label Errors in
 * Test Sets Destabilize Machine Learning Benchmarks", NeurIPS 2021 D&B). A record is
 * a confirmed label error when fewer than 3 of its 5 workers chose the given label
 * (mturk.given < 3), which reproduces the paper's counts 15 / 54 / 82 / 725 for
 * mnist / cifar10 / 20news / imdb. */
#include "config.h"
#include "../memory-private.h"

#include "detect-private.h"

#include <json-glib/json-glib.h>
#include <math.h>

void
kdf_label_review_free (KdfLabelReview *review)
{
  if (review == NULL)
    return;
  for (guint i = 0; i < review->n_reviewed; i++)
    g_free (review->records[i].id);
  g_free (review->records);
  g_free (review);
}

static gboolean
record_error (GError **error, const char *path, guint i, const char *what)
{
  g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: record %u: %s", path, i, what);
  return FALSE;
}

static gboolean
parse_record (KdfReviewRecord *rec, JsonNode *node, const char *path, guint i, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return record_error (error, path, i, "expected an object");
  JsonObject *obj = json_node_get_object (node);
  JsonNode *id = json_object_get_member (obj, "id");
  if (id == NULL || !JSON_NODE_HOLDS_VALUE (id))
    return record_error (error, path, i, "expected an \"id\" number or string");
  rec->row = -1;
  if (json_node_get_value_type (id) == G_TYPE_INT64) {
    gint64 v = json_node_get_int (id);
    if (v < 0)
      return record_error (error, path, i, "negative \"id\"");
    rec->row = v;
    rec->id = g_strdup_printf ("%" G_GINT64_FORMAT, v);
  } else if (json_node_get_value_type (id) == G_TYPE_STRING) {
    rec->id = g_strdup (json_node_get_string (id));
  } else {
    return record_error (error, path, i, "expected an \"id\" number or string");
  }
  JsonNode *mturk = json_object_get_member (obj, "mturk");
  if (mturk == NULL || !JSON_NODE_HOLDS_OBJECT (mturk))
    return record_error (error, path, i, "expected an \"mturk\" object");
  JsonNode *given = json_object_get_member (json_node_get_object (mturk), "given");
  if (given == NULL || !JSON_NODE_HOLDS_VALUE (given) ||
      json_node_get_value_type (given) != G_TYPE_INT64)
    return record_error (error, path, i, "expected an integer \"mturk.given\"");
  gint64 votes = json_node_get_int (given);
  if (votes < 0 || votes > 1000)
    return record_error (error, path, i, "\"mturk.given\" out of range");
  rec->given_votes = (int) votes;
  rec->confirmed = votes < 3;
  return TRUE;
}

KdfLabelReview *
kdf_label_review_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *local = NULL;
  guint64 fsize = 0;
  if (!kdf_file_check_input (path, &fsize, error))
    return NULL;
  {
    /* json-glib keeps a node per value: tens of bytes per byte of text at worst */
    g_autofree char *what = g_strdup_printf ("%s: the review file", path);
    if (!kdf_memory_check_elements (fsize, 32, what, error))
      return NULL;
  }
  g_autofree char *text = NULL;
  gsize text_len = 0;
  if (!g_file_get_contents (path, &text, &text_len, &local)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
    return NULL;
  }
  /* records are two deep; json-glib recurses once per level */
  gsize deep = kdf_json_too_deep (text, text_len, 32);
  if (deep) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: JSON nested more than 32 deep (at byte %" G_GSIZE_FORMAT ")", path, deep - 1);
    return NULL;
  }
  if (!json_parser_load_from_data (parser, text, (gssize) text_len, &local)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: expected a JSON array of records", path);
    return NULL;
  }
  JsonArray *arr = json_node_get_array (root);
  guint len = json_array_get_length (arr);
  KdfLabelReview *review = g_new0 (KdfLabelReview, 1);
  review->records = g_new0 (KdfReviewRecord, MAX (len, 1));
  for (guint i = 0; i < len; i++) {
    KdfReviewRecord *rec = &review->records[i];
    if (!parse_record (rec, json_array_get_element (arr, i), path, i, error)) {
      review->n_reviewed = i + 1; /* frees the id parsed so far */
      kdf_label_review_free (review);
      return NULL;
    }
    review->n_reviewed = i + 1;
    if (rec->confirmed) {
      review->n_confirmed++;
      if (rec->row < 0)
        review->n_unmapped++;
    }
  }
  return review;
}

gboolean
kdf_label_review_score (KdfReviewScore *out, const KdfLabelReview *review,
                        const uint8_t *flagged, int64_t n, GError **error)
{
  g_return_val_if_fail (out != NULL && review != NULL && flagged != NULL, FALSE);
  out->flagged = 0;
  out->caught = 0;
  for (int64_t i = 0; i < n; i++)
    out->flagged += flagged[i] != 0;
  int64_t mapped = 0;
  for (guint r = 0; r < review->n_reviewed; r++) {
    const KdfReviewRecord *rec = &review->records[r];
    if (!rec->confirmed || rec->row < 0)
      continue;
    if (rec->row >= n) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "label review: confirmed row %" G_GINT64_FORMAT " is outside the %"
                   G_GINT64_FORMAT "-row mask", rec->row, n);
      return FALSE;
    }
    mapped++;
    out->caught += flagged[rec->row] != 0;
  }
  out->precision = out->flagged ? (double) out->caught / (double) out->flagged : 0.0;
  out->recall = mapped ? (double) out->caught / (double) mapped : NAN;
  return TRUE;
}
