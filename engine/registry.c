/* The plugin loader and the registry of node kinds.
 *
 * A plugin kdf-NAME.so exports kdf_plugin_NAME_describe. It is opened with local,
 * eager binding (a missing symbol fails the open with a message instead of killing
 * the process at first call), its ABI checked before anything else is read, and
 * each class validated so that plugin authors hear about a bad descriptor at load
 * time rather than from a confused graph. */
#define _GNU_SOURCE /* dladdr */
#include "config.h"

#include <dlfcn.h>
#include <gmodule.h>
#include <string.h>

#include "graph-private.h"

struct _KdfRegistry {
  GHashTable *classes; /* kind → const KdfNodeClass* */
  GHashTable *origins; /* kind → file path (owned) */
  GHashTable *files;   /* basename → path: earlier directories shadow later ones */
  GPtrArray *modules;  /* GModule*, kept open for the life of the process */
  char **search_path;
  GPtrArray *skipped;  /* Skipped*: plugins that failed to load, reported and passed over */
  GPtrArray *skipped_messages; /* their messages, NULL-terminated */
};

/* A plugin the scan passed over (as GStreamer blacklists a broken plugin): its error,
 * and the kinds it would have provided — the file's plugin name, and the names its
 * descriptor gave if it got that far. A graph asking for one of them gets the error. */
typedef struct {
  char *path;
  char **kinds;
  char *message;
} Skipped;

static void
skipped_free (gpointer p)
{
  Skipped *s = p;
  g_free (s->path);
  g_strfreev (s->kinds);
  g_free (s->message);
  g_free (s);
}

static GMutex registry_lock;
static KdfRegistry *default_registry;
static GError *default_error;

static KdfRegistry *
registry_new (void)
{
  KdfRegistry *reg = g_new0 (KdfRegistry, 1);
  reg->classes = g_hash_table_new (g_str_hash, g_str_equal);
  reg->origins = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  reg->files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  reg->modules = g_ptr_array_new ();
  reg->skipped = g_ptr_array_new_with_free_func (skipped_free);
  reg->skipped_messages = g_ptr_array_new ();
  g_ptr_array_add (reg->skipped_messages, NULL);
  return reg;
}

static void
registry_free (KdfRegistry *reg)
{
  if (!reg)
    return;
  g_hash_table_destroy (reg->classes);
  g_hash_table_destroy (reg->origins);
  g_hash_table_destroy (reg->files);
  /* Modules stay mapped: classes may still be referenced from static data, and
   * sanitizer reports need the symbols. */
  g_ptr_array_free (reg->modules, TRUE);
  g_ptr_array_free (reg->skipped, TRUE);
  g_ptr_array_free (reg->skipped_messages, TRUE);
  g_strfreev (reg->search_path);
  g_free (reg);
}

/* Is libkdflow running from the build tree? Then the build tree's nodes/ is
 * searched instead of the installed plugin directory. */
static gboolean
running_uninstalled (void)
{
  Dl_info info;
  if (!dladdr ((void *) running_uninstalled, &info) || !info.dli_fname)
    return FALSE;
  g_autofree char *dir = g_path_get_dirname (info.dli_fname);
  g_autofree char *real = realpath (dir, NULL);
  g_autofree char *build = realpath (KDF_BUILD_ENGINE_DIR, NULL);
  return real && build && strcmp (real, build) == 0;
}

static char **
compute_search_path (void)
{
  GPtrArray *dirs = g_ptr_array_new ();
  const char *env = g_getenv ("KDFLOW_PLUGIN_PATH");
  if (env && *env) {
    g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
    for (char **p = parts; *p; p++)
      if (**p)
        g_ptr_array_add (dirs, g_strdup (*p));
  }
  g_ptr_array_add (dirs, g_strdup (running_uninstalled () ? KDF_BUILD_NODES_DIR : KDF_PLUGIN_DIR));
  g_ptr_array_add (dirs, NULL);
  return (char **) g_ptr_array_free (dirs, FALSE);
}

const char *const *
kdf_registry_search_path (KdfRegistry *reg)
{
  return (const char *const *) reg->search_path;
}

/* "…/kdf-score_hist.so" → "score_hist" */
static char *
plugin_name_from_path (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  char *name = base;
  if (g_str_has_prefix (name, "kdf-"))
    name += 4;
  char *dot = strstr (name, ".so");
  if (dot)
    *dot = '\0';
  char *out = g_strdup (name);
  g_strdelimit (out, "-.", '_');
  return out;
}

static gboolean load_file (KdfRegistry *reg, const char *path, GPtrArray *kinds, GError **error);

gboolean
kdf_registry_load_file (KdfRegistry *reg, const char *path, GError **error)
{
  return load_file (reg, path, NULL, error);
}

/* KINDS (may be NULL) gets the kind names the plugin's descriptor gives, even when it
 * is refused. */
static gboolean
load_file (KdfRegistry *reg, const char *path, GPtrArray *kinds, GError **error)
{
  g_autoptr (GError) local = NULL;
  GModule *module = g_module_open_full (path, G_MODULE_BIND_LOCAL, &local);
  if (!module) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PLUGIN, "plugin %s: cannot load: %s", path,
                 local ? local->message : "unknown error");
    return FALSE;
  }
  g_autofree char *name = plugin_name_from_path (path);
  g_autofree char *symbol = g_strdup_printf ("kdf_plugin_%s_describe", name);
  const KdfPluginInfo *(*describe) (void) = NULL;
  if (!g_module_symbol (module, symbol, (gpointer *) &describe) || !describe) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PLUGIN,
                 "plugin %s: no symbol '%s' (a plugin kdf-NAME.so must be built with "
                 "KDF_PLUGIN (NAME, ...))",
                 path, symbol);
    g_module_close (module);
    return FALSE;
  }
  const KdfPluginInfo *info = describe ();
  if (!info) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PLUGIN, "plugin %s: %s() returned NULL", path,
                 symbol);
    g_module_close (module);
    return FALSE;
  }
  /* the kinds it names (the layout is known within one major ABI) */
  for (guint i = 0; kinds && info->abi_major == KDF_ABI_MAJOR && info->classes && info->classes[i]; i++)
    if (info->classes[i]->name)
      g_ptr_array_add (kinds, g_strdup (info->classes[i]->name));
  if (info->abi_major != KDF_ABI_MAJOR || info->abi_minor > KDF_ABI_MINOR) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_ABI,
                 "plugin %s: built for kdflow ABI %u.%u, this engine has ABI %u.%u%s; "
                 "rebuild the plugin against this kdflow",
                 path, info->abi_major, info->abi_minor, KDF_ABI_MAJOR, KDF_ABI_MINOR,
                 info->abi_major != KDF_ABI_MAJOR ? " (major differs)" : " (minor is newer)");
    g_module_close (module);
    return FALSE;
  }
  /* Validate every class before registering any, so a failure leaves no trace. */
  for (guint i = 0; info->classes && info->classes[i]; i++) {
    const KdfNodeClass *k = info->classes[i];
    g_autofree char *origin = g_strdup_printf ("plugin %s", path);
    gboolean ok = kdf_node_class_check (k, origin, error);
    if (ok && strchr (k->name, ':')) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_PLUGIN,
                   "plugin %s: node kind '%s': names are snake_case ([a-z0-9_])", path, k->name);
      ok = FALSE;
    }
    if (!ok) {
      g_module_close (module);
      return FALSE;
    }
    const char *other = g_hash_table_lookup (reg->origins, k->name);
    for (guint j = 0; !other && j < i; j++)
      if (strcmp (info->classes[j]->name, k->name) == 0)
        other = path;
    if (other) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_KIND,
                   "node kind '%s' is defined twice: in %s and in %s", k->name, other, path);
      g_module_close (module);
      return FALSE;
    }
  }
  for (guint i = 0; info->classes && info->classes[i]; i++) {
    const KdfNodeClass *k = info->classes[i];
    g_hash_table_insert (reg->classes, (gpointer) k->name, (gpointer) k);
    g_hash_table_insert (reg->origins, (gpointer) k->name, g_strdup (path));
  }
  g_ptr_array_add (reg->modules, module);
  return TRUE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
skip_plugin (KdfRegistry *reg, const char *path, GPtrArray *kinds, GError *error)
{
  Skipped *s = g_new0 (Skipped, 1);
  s->path = g_strdup (path);
  g_ptr_array_add (kinds, plugin_name_from_path (path));
  g_ptr_array_add (kinds, NULL);
  s->kinds = (char **) g_ptr_array_free (kinds, FALSE);
  s->message = g_strdup (error->message);
  g_ptr_array_add (reg->skipped, s);
  g_ptr_array_index (reg->skipped_messages, reg->skipped_messages->len - 1) = s->message;
  g_ptr_array_add (reg->skipped_messages, NULL);
  /* reported once, when the registry is built; the run goes on without it */
  if (!g_getenv ("KDFLOW_PLUGIN_QUIET"))
    g_printerr ("kdflow: warning: skipping a plugin that failed to load: %s\n", error->message);
}

static gboolean
scan_directory (KdfRegistry *reg, const char *dir, GError **error)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d)
    return TRUE; /* a missing directory on the path is not an error */
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *entry;
  while ((entry = g_dir_read_name (d))) {
    if (g_str_has_prefix (entry, "kdf-") && g_str_has_suffix (entry, ".so"))
      g_ptr_array_add (names, g_strdup (entry));
    else if (g_str_has_prefix (entry, "libkdf-") && g_str_has_suffix (entry, ".so") &&
             !g_getenv ("KDFLOW_PLUGIN_QUIET"))
      /* Meson's default name for shared_module('kdf-x'): say why it is not loaded */
      g_printerr ("kdflow: warning: ignoring %s/%s: a plugin file must be named %s "
                  "(Meson: name_prefix : '')\n", dir, entry, entry + 3);
  }
  g_dir_close (d);
  g_ptr_array_sort (names, compare_strings);
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < names->len; i++) {
    const char *base = names->pdata[i];
    if (g_hash_table_contains (reg->files, base))
      continue; /* shadowed by the same file name earlier on the path */
    g_autofree char *path = g_build_filename (dir, base, NULL);
    GPtrArray *kinds = g_ptr_array_new_with_free_func (g_free);
    g_autoptr (GError) local = NULL;
    if (load_file (reg, path, kinds, &local)) {
      g_ptr_array_free (kinds, TRUE);
      g_hash_table_insert (reg->files, g_strdup (base), g_strdup (path));
    } else
      skip_plugin (reg, path, kinds, local);
  }
  g_ptr_array_free (names, TRUE);
  (void) error;
  return ok;
}

KdfRegistry *
kdf_registry_get_default (GError **error)
{
  g_mutex_lock (&registry_lock);
  if (!default_registry && !default_error) {
    KdfRegistry *reg = registry_new ();
    reg->search_path = compute_search_path ();
    gboolean ok = TRUE;
    for (char **dir = reg->search_path; ok && *dir; dir++)
      ok = scan_directory (reg, *dir, &default_error);
    if (ok)
      default_registry = reg;
    else
      registry_free (reg);
  }
  KdfRegistry *reg = default_registry;
  if (!reg && error)
    *error = g_error_copy (default_error);
  g_mutex_unlock (&registry_lock);
  return reg;
}

void kdf_registry_shutdown (void);
void
kdf_registry_shutdown (void)
{
  g_mutex_lock (&registry_lock);
  registry_free (default_registry);
  default_registry = NULL;
  g_clear_error (&default_error);
  g_mutex_unlock (&registry_lock);
}

const char *
kdf_registry_skipped_for (KdfRegistry *reg, const char *kind)
{
  for (guint i = 0; i < reg->skipped->len; i++) {
    const Skipped *s = reg->skipped->pdata[i];
    if (g_strv_contains ((const char *const *) s->kinds, kind))
      return s->message;
  }
  return NULL;
}

const char *const *
kdf_registry_skipped (KdfRegistry *reg)
{
  return (const char *const *) reg->skipped_messages->pdata;
}

const KdfNodeClass *
kdf_registry_lookup (KdfRegistry *reg, const char *kind)
{
  return g_hash_table_lookup (reg->classes, kind);
}

const char *
kdf_registry_origin (KdfRegistry *reg, const char *kind)
{
  return g_hash_table_lookup (reg->origins, kind);
}

GPtrArray *
kdf_registry_list (KdfRegistry *reg)
{
  GPtrArray *names = g_ptr_array_new ();
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, reg->classes);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (names, key);
  g_ptr_array_sort (names, compare_strings);
  return names;
}

char *
kdf_registry_suggest (KdfRegistry *reg, const char *kind)
{
  g_autoptr (GPtrArray) names = kdf_registry_list (reg);
  return kdf_suggest (kind, (const char *const *) names->pdata, names->len);
}
