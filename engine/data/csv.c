/* engine/data: numeric CSV files.
 *
 * The whole file is read at once and split into cells in place (quotes removed),
 * then every cell is parsed with g_ascii_strtod, which ignores the locale. */
#include "config.h"
#include "../memory-private.h"

#include "data-private.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GPtrArray *cells;  /* char *, pointing into the buffer */
  GArray *row_start; /* guint: index of each row's first cell */
  GArray *row_line;  /* guint: 1-based line number of each row */
} CsvTable;

static gboolean
is_blank (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isspace (*s))
      return FALSE;
  return TRUE;
}

static gboolean
tokenize (char *buf, gsize len, char delim, CsvTable *tab, const char *path, GError **error)
{
  gsize pos = 0;
  guint line = 1;
  while (pos < len) {
    guint row_line = line;
    guint first = tab->cells->len;
    gboolean quoted_any = FALSE;
    for (;;) {
      char *cell;
      if (buf[pos] == '"') {
        quoted_any = TRUE;
        gsize out = pos;
        cell = buf + out;
        pos++;
        for (;;) {
          if (pos >= len) {
            g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                         "%s: line %u: a quoted cell is never closed", path, row_line);
            return FALSE;
          }
          if (buf[pos] == '"') {
            if (pos + 1 < len && buf[pos + 1] == '"') {
              buf[out++] = '"';
              pos += 2;
              continue;
            }
            pos++;
            break;
          }
          if (buf[pos] == '\n')
            line++;
          buf[out++] = buf[pos++];
        }
        /* out < pos: the opening quote was consumed, so this cannot clobber input. */
        buf[out] = '\0';
        while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'))
          pos++;
        if (pos < len && buf[pos] != delim && buf[pos] != '\n' && buf[pos] != '\r') {
          g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                       "%s: line %u, column %u: text after a closing quote", path, line,
                       tab->cells->len - first + 1);
          return FALSE;
        }
      } else {
        cell = buf + pos;
        while (pos < len && buf[pos] != delim && buf[pos] != '\n' && buf[pos] != '\r')
          pos++;
      }
      g_ptr_array_add (tab->cells, cell);
      char end = pos < len ? buf[pos] : '\n';
      if (pos < len)
        buf[pos] = '\0';
      pos++;
      if (end == delim)
        continue;
      if (end == '\r' && pos < len && buf[pos] == '\n')
        pos++;
      line++;
      break;
    }
    if (tab->cells->len - first == 1 && !quoted_any && is_blank (tab->cells->pdata[first])) {
      g_ptr_array_set_size (tab->cells, first); /* a blank line */
      continue;
    }
    g_array_append_val (tab->row_start, first);
    g_array_append_val (tab->row_line, row_line);
  }
  return TRUE;
}

static gboolean
parse_number (char *cell, double *out)
{
  g_strstrip (cell);
  if (*cell == '\0')
    return FALSE;
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod (cell, &end);
  if (end == cell || *end != '\0')
    return FALSE;
  *out = v;
  return TRUE;
}

gboolean
kdf_csv_read (const char *path, const KdfCsvOptions *opts, KdfTensor **x, KdfTensor **labels,
              char ***feature_names, GError **error)
{
  g_return_val_if_fail (path != NULL && x != NULL, FALSE);
  KdfCsvOptions defaults = { 0 };
  if (opts == NULL)
    opts = &defaults;
  char delim = opts->delimiter ? opts->delimiter : ',';
  *x = NULL;
  if (labels)
    *labels = NULL;
  if (feature_names)
    *feature_names = NULL;

  g_autofree char *buf = NULL;
  gsize len = 0;
  GError *local = NULL;
  guint64 fsize = 0;
  if (!kdf_file_check_input (path, &fsize, error))
    return FALSE;
  {
    /* the text, and for each cell a pointer and a parsed value (a cell takes two bytes
     * at least, "0,"): about five times the file */
    g_autofree char *what = g_strdup_printf ("%s: reading the CSV file", path);
    if (!kdf_memory_check_elements (fsize, 5, what, error))
      return FALSE;
  }
  if (!g_file_get_contents (path, &buf, &len, &local)) {
    if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: file not found", path);
      g_error_free (local);
    } else {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: cannot read: %s", path, local->message);
      g_error_free (local);
    }
    return FALSE;
  }
  CsvTable tab = { g_ptr_array_new (), g_array_new (FALSE, FALSE, sizeof (guint)),
                   g_array_new (FALSE, FALSE, sizeof (guint)) };
  gboolean ok = FALSE;
  char **names = NULL;
  g_autoptr (KdfTensor) tx = NULL;
  g_autoptr (KdfTensor) ty = NULL;

  if (!tokenize (buf, len, delim, &tab, path, error))
    goto out;
  guint n_rows = tab.row_start->len;
  if (n_rows == 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: the file has no rows", path);
    goto out;
  }
#define ROW_START(r) g_array_index (tab.row_start, guint, (r))
#define ROW_LEN(r) (((r) + 1 < n_rows ? ROW_START ((r) + 1) : tab.cells->len) - ROW_START (r))
#define ROW_LINE(r) g_array_index (tab.row_line, guint, (r))
#define CELL(r, c) ((char *) tab.cells->pdata[ROW_START (r) + (c)])
  guint n_cols = ROW_LEN (0);

  gboolean header = opts->header == KDF_CSV_HEADER_YES;
  if (opts->header == KDF_CSV_HEADER_AUTO) {
    for (guint c = 0; c < n_cols && !header; c++) {
      g_autofree char *copy = g_strdup (CELL (0, c));
      double v;
      header = !parse_number (copy, &v);
    }
  }
  for (guint r = 1; r < n_rows; r++) {
    if (ROW_LEN (r) != n_cols) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                   "%s: line %u has %u columns, expected %u (as on line %u): ragged rows", path,
                   ROW_LINE (r), ROW_LEN (r), n_cols, ROW_LINE (0));
      goto out;
    }
  }
  names = g_new0 (char *, n_cols + 1);
  for (guint c = 0; c < n_cols; c++)
    names[c] = header ? g_strstrip (g_strdup (CELL (0, c))) : g_strdup_printf ("c%u", c);

  int label_col = -1;
  if (opts->label_column) {
    for (guint c = 0; header && c < n_cols && label_col < 0; c++)
      if (strcmp (names[c], opts->label_column) == 0)
        label_col = (int) c;
    if (label_col < 0) {
      char *end = NULL;
      gint64 v = g_ascii_strtoll (opts->label_column, &end, 10);
      if (end != opts->label_column && *end == '\0') {
        if (v < 0)
          v += n_cols;
        if (v >= 0 && v < n_cols)
          label_col = (int) v;
      }
    }
    if (label_col < 0) {
      g_autofree char *all = g_strjoinv (", ", names);
      g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                   "%s: no label column '%s' (the %u columns are: %s)", path, opts->label_column,
                   n_cols, all);
      goto out;
    }
  }
  guint first_data = header ? 1 : 0;
  int64_t n = n_rows - first_data;
  int64_t d = n_cols - (label_col >= 0 ? 1 : 0);

  {
    int64_t shape[2] = { n, d };
    tx = kdf_tensor_try_new (KDF_DTYPE_F32, 2, shape, error);
    if (tx == NULL)
      goto out;
    if (label_col >= 0)
      ty = kdf_tensor_new_1d (KDF_DTYPE_I32, n);
  }
  float *px = kdf_tensor_f32 (tx);
  for (int64_t i = 0; i < n; i++) {
    guint r = first_data + (guint) i;
    int64_t j = 0;
    for (guint c = 0; c < n_cols; c++) {
      double v;
      char *cell = CELL (r, c);
      gboolean parsed = parse_number (cell, &v);
      if (!parsed || !isfinite (v)) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                     "%s: line %u, column %u ('%s'): '%s' is not %s", path, ROW_LINE (r), c + 1,
                     names[c], cell,
                     !*cell ? "a number (empty cell)" : parsed ? "a finite number" : "a number");
        goto out;
      }
      if ((int) c == label_col) {
        if (v < 0 || v > G_MAXINT32 || v != floor (v)) {
          g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                       "%s: line %u, column %u ('%s'): label '%s' is not a non-negative integer",
                       path, ROW_LINE (r), c + 1, names[c], cell);
          goto out;
        }
        kdf_tensor_i32 (ty)[i] = (int32_t) v;
      } else {
        px[i * d + j++] = (float) v;
      }
    }
  }
  if (feature_names) {
    if (label_col >= 0) {
      g_free (names[label_col]);
      memmove (names + label_col, names + label_col + 1, (n_cols - label_col) * sizeof (char *));
    }
    *feature_names = g_steal_pointer (&names);
  }
  *x = g_steal_pointer (&tx);
  if (labels)
    *labels = g_steal_pointer (&ty);
  ok = TRUE;
out:
  g_strfreev (names);
  g_ptr_array_unref (tab.cells);
  g_array_unref (tab.row_start);
  g_array_unref (tab.row_line);
  return ok;
}
