/* Checkpoints in the safetensors format (readable by numpy and PyTorch): an 8-byte
 * little-endian header length, a JSON header { name: { dtype, shape, data_offsets },
 * "__metadata__": { ... } }, then the raw tensor bytes. Names and layouts are
 * PyTorch's, so torch.nn.Sequential(...).load_state_dict() takes the same file. */
#include "config.h"

#include "nn-private.h"
#include "../memory-private.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER (100u * 1024u * 1024u) /* as the safetensors reference reader */

static gboolean
io_error (GError **error, const char *path, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
io_error (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: %s", path, msg);
  return FALSE;
}

gboolean
kdf_model_save (KdfModel *m, const char *path, GError **error)
{
  g_return_val_if_fail (m != NULL && path != NULL, FALSE);
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "__metadata__");
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "format");
  json_builder_add_string_value (jb, "pt");
  json_builder_set_member_name (jb, "arch");
  json_builder_add_string_value (jb, m->arch);
  g_autofree char *heads = kdf_model_heads_string (m);
  if (*heads) {
    json_builder_set_member_name (jb, "heads");
    json_builder_add_string_value (jb, heads);
  }
  json_builder_end_object (jb);
  gint64 off = 0;
  for (guint i = 0; i < m->params->len; i++) {
    const KdfParam *p = m->params->pdata[i];
    json_builder_set_member_name (jb, p->name);
    json_builder_begin_object (jb);
    json_builder_set_member_name (jb, "dtype");
    json_builder_add_string_value (jb, "F32");
    json_builder_set_member_name (jb, "shape");
    json_builder_begin_array (jb);
    for (int d = 0; d < p->rank; d++)
      json_builder_add_int_value (jb, p->shape[d]);
    json_builder_end_array (jb);
    json_builder_set_member_name (jb, "data_offsets");
    json_builder_begin_array (jb);
    json_builder_add_int_value (jb, off);
    off += p->numel * (gint64) sizeof (float);
    json_builder_add_int_value (jb, off);
    json_builder_end_array (jb);
    json_builder_end_object (jb);
  }
  json_builder_end_object (jb);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (jb);
  json_generator_set_root (gen, root);
  gsize hlen = 0;
  g_autofree char *header = json_generator_to_data (gen, &hlen);
  /* Pad the header with spaces so the data starts 8-byte aligned (the reference
   * writer does the same; readers may map the data in place). */
  const gsize padded = (hlen + 7) & ~(gsize) 7;
  const gsize total = 8 + padded + (gsize) off;
  g_autofree guint8 *buf = g_malloc (total);
  guint64 le = GUINT64_TO_LE ((guint64) padded);
  memcpy (buf, &le, 8);
  memcpy (buf + 8, header, hlen);
  memset (buf + 8 + hlen, ' ', padded - hlen);
  guint8 *data = buf + 8 + padded;
  for (guint i = 0; i < m->params->len; i++) {
    const KdfParam *p = m->params->pdata[i];
    gsize nb = (gsize) p->numel * sizeof (float);
    memcpy (data, p->data, nb);
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
    for (int64_t j = 0; j < p->numel; j++) {
      guint32 *w = (guint32 *) (data + 4 * j);
      *w = GUINT32_TO_LE (*w);
    }
#endif
    data += nb;
  }
  g_autoptr (GError) local = NULL;
  /* temp file in the same directory + fsync + rename: all or nothing */
  if (!g_file_set_contents_full (path, (const char *) buf, (gssize) total,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local))
    return io_error (error, path, "cannot write the checkpoint: %s", local->message);
  return TRUE;
}

/* The parsed file: header object and the data section. */
typedef struct {
  char *contents;
  gsize length;
  JsonParser *parser;
  JsonObject *root;
  const guint8 *data;
  guint64 data_len;
} StFile;

static void
st_clear (StFile *f)
{
  g_free (f->contents);
  g_clear_object (&f->parser);
}

/* The deepest nesting of arrays and objects a header may have: safetensors headers are
 * three deep; json-glib's parser recurses once per level, on whatever thread (a node's
 * worker) loads the checkpoint. */
#define MAX_HEADER_DEPTH 16

static gboolean
header_depth_ok (const char *text, gsize len, const char *path, GError **error)
{
  gsize at = kdf_json_too_deep (text, len, MAX_HEADER_DEPTH);
  if (at)
    return io_error (error, path,
                     "bad header: JSON nested more than %d deep (at byte %" G_GSIZE_FORMAT ")",
                     MAX_HEADER_DEPTH, 8 + at - 1);
  return TRUE;
}

static gboolean
st_open (StFile *f, const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  memset (f, 0, sizeof *f);
  guint64 size = 0;
  if (!kdf_file_check_input (path, &size, &local)) {
    /* "PATH: file not found" -> "PATH: cannot read the checkpoint: file not found" */
    const char *msg = local->message;
    if (g_str_has_prefix (msg, path) && g_str_has_prefix (msg + strlen (path), ": "))
      msg += strlen (path) + 2;
    return io_error (error, path, "cannot read the checkpoint: %s", msg);
  }
  g_autofree char *what = g_strdup_printf ("%s: the checkpoint", path);
  if (!kdf_memory_check (size, what, error))
    return FALSE;
  if (!g_file_get_contents (path, &f->contents, &f->length, &local))
    return io_error (error, path, "cannot read the checkpoint: %s", local->message);
  if (f->length < 8)
    return io_error (error, path, "truncated: %" G_GSIZE_FORMAT " bytes, not even the 8-byte header length",
                     f->length);
  guint64 hlen;
  memcpy (&hlen, f->contents, 8);
  hlen = GUINT64_FROM_LE (hlen);
  if (hlen > MAX_HEADER)
    return io_error (error, path, "bad header: it claims %" G_GUINT64_FORMAT " bytes (at most %u)", hlen,
                     MAX_HEADER);
  if (hlen > f->length - 8)
    return io_error (error, path,
                     "truncated: the header claims %" G_GUINT64_FORMAT " bytes, the file has %" G_GSIZE_FORMAT " after the length",
                     hlen, f->length - 8);
  if (hlen < 2 || f->contents[8] != '{')
    return io_error (error, path, "bad header: it must be a JSON object starting at byte 8");
  if (!header_depth_ok (f->contents + 8, hlen, path, error))
    return FALSE;
  f->parser = json_parser_new ();
  if (!json_parser_load_from_data (f->parser, f->contents + 8, (gssize) hlen, &local))
    return io_error (error, path, "bad header JSON: %s", local->message);
  JsonNode *root = json_parser_get_root (f->parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return io_error (error, path, "bad header: the JSON is not an object");
  f->root = json_node_get_object (root);
  f->data = (const guint8 *) f->contents + 8 + hlen;
  f->data_len = f->length - 8 - hlen;
  return TRUE;
}

static const char *
st_metadata (StFile *f, const char *key)
{
  JsonNode *md = json_object_get_member (f->root, "__metadata__");
  if (!md || !JSON_NODE_HOLDS_OBJECT (md))
    return NULL;
  JsonNode *v = json_object_get_member (json_node_get_object (md), key);
  if (!v || !JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (v);
}

static gboolean
get_int (JsonArray *a, guint i, gint64 *out)
{
  JsonNode *n = json_array_get_element (a, i);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return TRUE;
}

static char *
shape_str (int rank, const int64_t *shape)
{
  GString *s = g_string_new ("[");
  for (int d = 0; d < rank; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "," : "", (gint64) shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

typedef struct {
  const char *name;
  gint64 begin, end;
} Extent;

static int
extent_cmp (const void *a, const void *b)
{
  const Extent *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Checks F's header on its own, before any model is built from it: __metadata__ holds
 * strings; every tensor has dtype F32, a shape of rank ≤ 4 whose size matches its
 * data_offsets; the offsets lie in the data section, in order, without overlaps or
 * gaps, and cover it; every value is finite. */
/* The header entry of tensor NAME: an object (*ENTRY, borrowed) with dtype "F32" and
 * a shape array (returned, borrowed), or NULL with an error naming the tensor. Shared
 * by the validation pass and the load. */
static JsonArray *
st_entry_shape (StFile *f, const char *path, const char *name, JsonObject **entry,
                GError **error)
{
  JsonNode *node = json_object_get_member (f->root, name);
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    io_error (error, path, "tensor '%s': bad header entry (not an object)", name);
    return NULL;
  }
  JsonObject *o = json_node_get_object (node);
  *entry = o;
  JsonNode *dt = json_object_get_member (o, "dtype");
  if (!dt || !JSON_NODE_HOLDS_VALUE (dt) || json_node_get_value_type (dt) != G_TYPE_STRING) {
    io_error (error, path, "tensor '%s': bad header entry (no dtype)", name);
    return NULL;
  }
  if (strcmp (json_node_get_string (dt), "F32") != 0) {
    io_error (error, path, "tensor '%s': dtype %s, expected F32", name, json_node_get_string (dt));
    return NULL;
  }
  JsonNode *sh = json_object_get_member (o, "shape");
  if (!sh || !JSON_NODE_HOLDS_ARRAY (sh)) {
    io_error (error, path, "tensor '%s': bad header entry (no shape)", name);
    return NULL;
  }
  return json_node_get_array (sh);
}

static gboolean
st_validate (StFile *f, const char *path, GError **error)
{
  JsonNode *md = json_object_get_member (f->root, "__metadata__");
  if (md) {
    if (!JSON_NODE_HOLDS_OBJECT (md))
      return io_error (error, path, "bad header: __metadata__ is not an object");
    g_autoptr (GList) keys = json_object_get_members (json_node_get_object (md));
    for (GList *l = keys; l; l = l->next) {
      JsonNode *v = json_object_get_member (json_node_get_object (md), l->data);
      if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
        return io_error (error, path, "bad header: __metadata__ entry '%s' is not a string",
                         (const char *) l->data);
    }
  }
  g_autoptr (GList) members = json_object_get_members (f->root);
  g_autoptr (GArray) ext = g_array_new (FALSE, FALSE, sizeof (Extent));
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    if (strcmp (name, "__metadata__") == 0)
      continue;
    JsonObject *o = NULL;
    JsonArray *sa = st_entry_shape (f, path, name, &o, error);
    if (!sa)
      return FALSE;
    guint rank = json_array_get_length (sa);
    if (rank > KDF_MAX_RANK)
      return io_error (error, path, "tensor '%s': rank %u, at most %d", name, rank, KDF_MAX_RANK);
    guint64 numel = 1;
    gboolean overflow = FALSE;
    for (guint d = 0; d < rank; d++) {
      gint64 v;
      if (!get_int (sa, d, &v) || v < 0)
        return io_error (error, path, "tensor '%s': bad shape entry %u", name, d);
      if (v && numel > G_MAXINT64 / 4 / (guint64) v)
        overflow = TRUE;
      else
        numel *= (guint64) v;
    }
    JsonNode *of = json_object_get_member (o, "data_offsets");
    gint64 b, e;
    if (!of || !JSON_NODE_HOLDS_ARRAY (of) || json_array_get_length (json_node_get_array (of)) != 2 ||
        !get_int (json_node_get_array (of), 0, &b) || !get_int (json_node_get_array (of), 1, &e))
      return io_error (error, path, "tensor '%s': bad data_offsets (want [begin, end])", name);
    if (b < 0 || e < b || (guint64) e > f->data_len)
      return io_error (error, path,
                       "tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] out of range (the data section has %" G_GUINT64_FORMAT " bytes)",
                       name, b, e, f->data_len);
    if (overflow || (guint64) (e - b) != numel * sizeof (float))
      return io_error (error, path,
                       "tensor '%s': %" G_GINT64_FORMAT " bytes of data for its shape (want %s)",
                       name, e - b, overflow ? "more than the file can hold" : "4 per element");
    g_array_append_val (ext, ((Extent){ name, b, e }));
  }
  g_array_sort (ext, extent_cmp);
  gint64 at = 0;
  for (guint i = 0; i < ext->len; i++) {
    const Extent *x = &g_array_index (ext, Extent, i);
    if (x->begin < at) {
      const Extent *prev = &g_array_index (ext, Extent, i - 1);
      return io_error (error, path,
                       "tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] overlap tensor '%s' [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                       x->name, x->begin, x->end, prev->name, prev->begin, prev->end);
    }
    if (x->begin > at)
      return io_error (error, path,
                       "tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] leave bytes %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT " of the data section unused",
                       x->name, x->begin, x->end, at, x->begin);
    at = x->end;
  }
  if ((guint64) at != f->data_len)
    return io_error (error, path,
                     "the data section has %" G_GUINT64_FORMAT " bytes, the tensors use %" G_GINT64_FORMAT " (trailing bytes)",
                     f->data_len, at);
  for (guint i = 0; i < ext->len; i++) {
    const Extent *x = &g_array_index (ext, Extent, i);
    for (gint64 j = 0; j < (x->end - x->begin) / 4; j++) {
      guint32 w;
      memcpy (&w, f->data + x->begin + 4 * j, 4);
      w = GUINT32_FROM_LE (w);
      float v;
      memcpy (&v, &w, 4);
      if (!isfinite (v))
        return io_error (error, path, "tensor '%s': element %" G_GINT64_FORMAT " is %s", x->name,
                         j, isnan (v) ? "NaN" : "infinite");
    }
  }
  return TRUE;
}

/* Checks every tensor of F against M's parameters and, only if all agree, copies the
 * weights in (a failed load leaves M as it was). */
static gboolean
st_fill (StFile *f, KdfModel *m, const char *path, GError **error)
{
  const guint np = m->params->len;
  g_autofree const guint8 **src = g_new0 (const guint8 *, np);
  g_autoptr (GList) members = json_object_get_members (f->root);
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    if (strcmp (name, "__metadata__") == 0)
      continue;
    guint idx = np;
    for (guint i = 0; i < np; i++)
      if (strcmp (((KdfParam *) m->params->pdata[i])->name, name) == 0) {
        idx = i;
        break;
      }
    if (idx == np)
      return io_error (error, path, "tensor '%s': not a parameter of '%s'", name, m->arch);
    const KdfParam *p = m->params->pdata[idx];
    JsonObject *o = NULL;
    JsonArray *sa = st_entry_shape (f, path, name, &o, error);
    if (!sa)
      return FALSE;
    int64_t shape[KDF_MAX_RANK] = { 0 };
    guint rank = json_array_get_length (sa);
    gboolean same = rank == (guint) p->rank;
    g_autofree char *want = shape_str (p->rank, p->shape);
    if (rank > KDF_MAX_RANK)
      return io_error (error, path, "tensor '%s': rank %u, the architecture wants %s", name, rank,
                       want);
    for (guint d = 0; d < rank; d++) {
      gint64 v;
      if (!get_int (sa, d, &v) || v < 0)
        return io_error (error, path, "tensor '%s': bad shape entry %u", name, d);
      shape[d] = v;
      same = same && v == p->shape[d];
    }
    if (!same) {
      g_autofree char *got = shape_str ((int) rank, shape);
      return io_error (error, path, "tensor '%s': shape %s, the architecture '%s' wants %s", name,
                       got, m->arch, want);
    }
    JsonNode *of = json_object_get_member (o, "data_offsets");
    gint64 b, e;
    if (!of || !JSON_NODE_HOLDS_ARRAY (of) || json_array_get_length (json_node_get_array (of)) != 2 ||
        !get_int (json_node_get_array (of), 0, &b) || !get_int (json_node_get_array (of), 1, &e))
      return io_error (error, path, "tensor '%s': bad data_offsets (want [begin, end])", name);
    if (b < 0 || e < b || (guint64) e > f->data_len)
      return io_error (error, path,
                       "tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] out of range (the data section has %" G_GUINT64_FORMAT " bytes)",
                       name, b, e, f->data_len);
    if ((guint64) (e - b) != (guint64) p->numel * sizeof (float))
      return io_error (error, path,
                       "tensor '%s': %" G_GINT64_FORMAT " bytes of data for shape %s (want %" G_GINT64_FORMAT ")",
                       name, e - b, want, (gint64) p->numel * 4);
    src[idx] = f->data + b;
  }
  for (guint i = 0; i < np; i++)
    if (!src[i])
      return io_error (error, path, "tensor '%s': missing (the architecture '%s' has it)",
                       ((KdfParam *) m->params->pdata[i])->name, m->arch);
  for (guint i = 0; i < np; i++) {
    const KdfParam *p = m->params->pdata[i];
    memcpy (p->data, src[i], (size_t) p->numel * sizeof (float));
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
    for (int64_t j = 0; j < p->numel; j++) {
      guint32 w;
      memcpy (&w, p->data + j, 4);
      w = GUINT32_FROM_LE (w);
      memcpy (p->data + j, &w, 4);
    }
#endif
  }
  return TRUE;
}

KdfModel *
kdf_model_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  StFile f;
  KdfModel *m = NULL;
  g_autoptr (GError) local = NULL;
  if (!st_open (&f, path, error) || !st_validate (&f, path, error))
    goto out;
  const char *arch = st_metadata (&f, "arch");
  if (!arch) {
    io_error (error, path, "no architecture: __metadata__ has no \"arch\" string");
    goto out;
  }
  m = kdf_model_new_from_arch (arch, 0, &local);
  if (!m) {
    io_error (error, path, "bad architecture in __metadata__: %s", local->message);
    goto out;
  }
  const char *heads = st_metadata (&f, "heads");
  if (heads && *heads) {
    g_auto (GStrv) hs = g_strsplit (heads, ";", -1);
    for (int i = 0; hs[i]; i++) {
      char *eq = strchr (hs[i], '=');
      if (!eq) {
        io_error (error, path, "bad heads metadata '%s'", heads);
        g_clear_pointer (&m, kdf_model_unref);
        goto out;
      }
      *eq = '\0';
      if (kdf_model_add_head (m, hs[i], eq + 1, 0, &local) < 0) {
        io_error (error, path, "bad heads metadata: %s", local->message);
        g_clear_pointer (&m, kdf_model_unref);
        goto out;
      }
    }
  }
  if (!st_fill (&f, m, path, error))
    g_clear_pointer (&m, kdf_model_unref);
out:
  st_clear (&f);
  return m;
}

gboolean
kdf_model_load_into (KdfModel *m, const char *path, GError **error)
{
  g_return_val_if_fail (m != NULL && path != NULL, FALSE);
  StFile f;
  gboolean ok = st_open (&f, path, error) && st_validate (&f, path, error) &&
                st_fill (&f, m, path, error);
  st_clear (&f);
  return ok;
}
