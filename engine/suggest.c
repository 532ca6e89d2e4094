/* "Did you mean …?": edit distances between a word a user typed and the names it could
 * have meant (node kinds, ports, params, choices). */
#include "config.h"

#include <string.h>

#include "graph-private.h"

/* Optimal string alignment distance: Levenshtein plus adjacent transpositions
 * ("lenght" is one edit from "length"). */
int
kdf_edit_distance (const char *a, const char *b)
{
  int la = (int) strlen (a), lb = (int) strlen (b);
  g_autofree int *d = g_new (int, (la + 1) * (lb + 1));
#define D(i, j) d[(i) * (lb + 1) + (j)]
  for (int i = 0; i <= la; i++)
    D (i, 0) = i;
  for (int j = 0; j <= lb; j++)
    D (0, j) = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = MIN (MIN (D (i - 1, j) + 1, D (i, j - 1) + 1), D (i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        v = MIN (v, D (i - 2, j - 2) + 1);
      D (i, j) = v;
    }
  int result = D (la, lb);
#undef D
  return result;
}

char *
kdf_suggest (const char *word, const char *const *candidates, guint n)
{
  /* Up to three candidates within an edit distance of a quarter of the word (at
   * least 1), closest first; failing that, candidates that contain the word. Enough to
   * catch typos without noise. */
  const gsize len = strlen (word);
  /* no name is this long: a word of garbage (a script's megabyte string) gets no hint
   * rather than a quadratic search (found by tests/fuzz/fuzz-graph) */
  if (len > 256)
    return g_strdup ("");
  int limit = MAX (1, ((int) len + 1) / 4);
  GPtrArray *hits = g_ptr_array_new ();
  /* each distance once; a candidate whose length alone differs by more than the limit
   * is out without one */
  g_autofree int *dist = g_new (int, MAX (n, 1));
  for (guint i = 0; i < n; i++) {
    const int diff = ABS ((int) strlen (candidates[i]) - (int) len);
    dist[i] = diff > limit ? limit + 1 : kdf_edit_distance (word, candidates[i]);
  }
  for (int d = 0; d <= limit; d++)
    for (guint i = 0; i < n && hits->len < 3; i++)
      if (dist[i] == d)
        g_ptr_array_add (hits, (gpointer) candidates[i]);
  for (guint i = 0; i < n && hits->len == 0; i++)
    if (strlen (word) >= 3 && strstr (candidates[i], word))
      g_ptr_array_add (hits, (gpointer) candidates[i]);
  if (hits->len == 0) {
    g_ptr_array_free (hits, TRUE);
    return g_strdup ("");
  }
  GString *s = g_string_new (" (did you mean ");
  for (guint i = 0; i < hits->len; i++)
    g_string_append_printf (s, "%s'%s'", i == 0 ? "" : i + 1 == hits->len ? " or " : ", ",
                            (const char *) hits->pdata[i]);
  g_string_append (s, "?)");
  g_ptr_array_free (hits, TRUE);
  return g_string_free (s, FALSE);
}

