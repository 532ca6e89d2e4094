/* The memory budget: every size that comes from input (a tensor read from a file, an
 * architecture, a checkpoint, a data file) is checked against it before anything is
 * allocated, so hostile or mistaken input gives an error naming its source instead of
 * an abort in the allocator. The budget is `--memory SIZE`, else KDFLOW_MEMORY, else
 * three quarters of the machine's RAM (or of the cgroup's limit, if lower). Tensor
 * storage alive counts against it: a request must fit in what is left. */
#include "config.h"

#include <errno.h>
#include <kdflow/tensor.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory-private.h"

static guint64 budget;      /* 0: not yet decided */
static gint64 live_bytes;   /* atomic: tensor storage alive */
static GMutex budget_lock;

gboolean
kdf_memory_parse_size (const char *text, guint64 *out, GError **error)
{
  g_return_val_if_fail (text != NULL && out != NULL, FALSE);
  const char *s = text;
  while (g_ascii_isspace (*s))
    s++;
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod (s, &end);
  if (end == s || errno == ERANGE || !(v > 0) || *s == '-' || *s == '+' ||
      g_ascii_strncasecmp (s, "nan", 3) == 0 || g_ascii_strncasecmp (s, "inf", 3) == 0)
    goto bad;
  double mult = 1;
  const char *u = end;
  switch (g_ascii_toupper (*u)) {
  case '\0':
    break;
  case 'K':
    mult = 1024.0;
    u++;
    break;
  case 'M':
    mult = 1024.0 * 1024;
    u++;
    break;
  case 'G':
    mult = 1024.0 * 1024 * 1024;
    u++;
    break;
  case 'T':
    mult = 1024.0 * 1024 * 1024 * 1024;
    u++;
    break;
  case 'B':
    break;
  default:
    goto bad;
  }
  if (mult > 1 && (*u == 'i' || *u == 'I'))
    u++;
  if (*u == 'B' || *u == 'b')
    u++;
  if (*u != '\0')
    goto bad;
  double bytes = v * mult;
  if (bytes < 1024 * 1024 || bytes > 1125899906842624.0 /* 1 PiB */) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
                 "memory size '%s' is out of range (1M to 1P bytes)", text);
    return FALSE;
  }
  *out = (guint64) bytes;
  return TRUE;
bad:
  g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
               "memory size '%s': expected a number of bytes with an optional K, M, G or T "
               "suffix (powers of 1024), like 512M or 4G",
               text);
  return FALSE;
}

static guint64
read_cgroup_limit (void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/sys/fs/cgroup/memory.max", &text, NULL, NULL) &&
      !g_file_get_contents ("/sys/fs/cgroup/memory/memory.limit_in_bytes", &text, NULL, NULL))
    return 0;
  g_strstrip (text);
  char *end = NULL;
  guint64 v = g_ascii_strtoull (text, &end, 10);
  return end != text && *end == '\0' ? v : 0;
}

guint64
kdf_memory_default_budget (void)
{
  long pages = sysconf (_SC_PHYS_PAGES), page = sysconf (_SC_PAGE_SIZE);
  guint64 ram = pages > 0 && page > 0 ? (guint64) pages * (guint64) page : (guint64) 4 << 30;
  guint64 cg = read_cgroup_limit ();
  if (cg > 0 && cg < ram)
    ram = cg;
  return ram / 4 * 3;
}

static guint64
budget_get (void)
{
  g_mutex_lock (&budget_lock);
  if (budget == 0) {
    const char *env = g_getenv ("KDFLOW_MEMORY");
    guint64 v = 0;
    if (env && *env) {
      g_autoptr (GError) error = NULL;
      if (!kdf_memory_parse_size (env, &v, &error)) {
        g_printerr ("kdflow: warning: KDFLOW_MEMORY: %s; using the default\n", error->message);
        v = 0;
      }
    }
    budget = v ? v : kdf_memory_default_budget ();
  }
  guint64 b = budget;
  g_mutex_unlock (&budget_lock);
  return b;
}

guint64
kdf_memory_budget (void)
{
  return budget_get ();
}

void
kdf_memory_set_budget (guint64 bytes)
{
  g_mutex_lock (&budget_lock);
  budget = bytes;
  g_mutex_unlock (&budget_lock);
}

guint64
kdf_memory_in_use (void)
{
  return (guint64) MAX (__atomic_load_n (&live_bytes, __ATOMIC_RELAXED), 0);
}

void
kdf_memory_account (gint64 delta)
{
  __atomic_add_fetch (&live_bytes, delta, __ATOMIC_RELAXED);
}

/* "64.0 MiB" (an ASCII space: g_format_size puts a no-break space there) */
static char *
size_text (guint64 bytes)
{
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  if (bytes < 1024)
    return g_strdup_printf ("%" G_GUINT64_FORMAT " bytes", bytes);
  double v = (double) bytes / 1024.0;
  guint u = 0;
  while (v >= 1024.0 && u + 1 < G_N_ELEMENTS (units)) {
    v /= 1024.0;
    u++;
  }
  return g_strdup_printf ("%.1f %s", v, units[u]);
}

gboolean
kdf_memory_check (guint64 bytes, const char *what, GError **error)
{
  guint64 b = budget_get ();
  guint64 used = kdf_memory_in_use ();
  guint64 left = used < b ? b - used : 0;
  if (bytes <= left)
    return TRUE;
  g_autofree char *need = size_text (bytes), *cap = size_text (b), *in_use = size_text (used);
  g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
               "%s%sneeds %s, over the memory budget of %s (%s already in use); "
               "raise it with --memory SIZE or KDFLOW_MEMORY if this is intended",
               what ? what : "", what ? ": " : "", need, cap, in_use);
  return FALSE;
}

gboolean
kdf_memory_check_elements (guint64 count, guint64 elem_size, const char *what, GError **error)
{
  if (elem_size && count > G_MAXUINT64 / elem_size) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "%s%ssize overflows", what ? what : "",
                 what ? ": " : "");
    return FALSE;
  }
  return kdf_memory_check (count * elem_size, what, error);
}

gsize
kdf_json_too_deep (const char *text, gsize len, int max_depth)
{
  int depth = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"')
      in_string = TRUE;
    else if (c == '{' || c == '[') {
      if (++depth > max_depth)
        return i + 1;
    } else if (c == '}' || c == ']')
      depth--;
  }
  return 0;
}

gboolean
kdf_file_check_input (const char *path, guint64 *size, GError **error)
{
  struct stat st;
  if (stat (path, &st) != 0) {
    int e = errno;
    if (e == ENOENT)
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: file not found", path);
    else
      g_set_error (error, KDF_ERROR, KDF_ERROR_IO, "%s: cannot open: %s", path, g_strerror (e));
    return FALSE;
  }
  if (!S_ISREG (st.st_mode)) {
    const char *kind = S_ISDIR (st.st_mode)    ? "a directory"
                       : S_ISFIFO (st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISCHR (st.st_mode)  ? "a character device"
                       : S_ISBLK (st.st_mode)  ? "a block device"
                       : S_ISSOCK (st.st_mode) ? "a socket"
                                               : "not a regular file";
    g_set_error (error, KDF_ERROR, KDF_ERROR_IO,
                 "%s: is %s; data files must be regular files", path, kind);
    return FALSE;
  }
  if (size)
    *size = (guint64) st.st_size;
  return TRUE;
}
