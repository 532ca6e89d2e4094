/* The `kdflow` Lua module: the drawing of a script's stages. Every g:run draws its
 * graph into the script's KdfDotBook (a cluster per graph); a value read from one
 * graph's output and given to another graph's input is drawn as an edge between the
 * two. `kdflow dot` prints the book instead of running anything; `kdflow run` writes
 * it as stages.dot into the run directory when the script ran more than one graph.
 *
 * Under `kdflow dot`, g:run prepares (checks) the graph and draws it, and no node
 * runs: port:value() then gives a placeholder (a zero tensor of the port's dtype with
 * every symbolic size KDF_LUA_DOT_SIZE, a small model), so that a script that reads
 * values between its stages goes on to build the next stage. */
#include <stdio.h>
#include <string.h>

#include <kdflow/nn.h>

#include "binding-private.h"

#define DOT_KEY "kdflow.dot"

typedef struct {
  KdfDotBook *book;
  GHashTable *ticks;        /* graph serial → ticks its g:run calls asked for */
  GHashTable *placeholders; /* "serial/node/port" → Placeholder* */
} DotState;

typedef struct {
  KdfValueKind kind;
  gpointer p;
} Placeholder;

static void
placeholder_free (gpointer data)
{
  Placeholder *v = data;
  if (v->kind == KDF_VALUE_TENSOR)
    kdf_tensor_unref (v->p);
  else
    kdf_object_unref (v->p);
  g_free (v);
}

static int
dot_state_gc (lua_State *L)
{
  DotState *s = lua_touserdata (L, 1);
  g_clear_pointer (&s->book, kdf_dot_book_free);
  g_clear_pointer (&s->ticks, g_hash_table_unref);
  g_clear_pointer (&s->placeholders, g_hash_table_unref);
  return 0;
}

static DotState *
dot_state (lua_State *L)
{
  lua_getfield (L, LUA_REGISTRYINDEX, DOT_KEY);
  DotState *s = lua_touserdata (L, -1);
  lua_pop (L, 1);
  if (s)
    return s;
  s = lua_newuserdatauv (L, sizeof (DotState), 0);
  memset (s, 0, sizeof *s);
  lua_createtable (L, 0, 1);
  lua_pushcfunction (L, dot_state_gc);
  lua_setfield (L, -2, "__gc");
  lua_setmetatable (L, -2);
  s->book = kdf_dot_book_new ();
  s->ticks = g_hash_table_new (NULL, NULL);
  s->placeholders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, placeholder_free);
  lua_setfield (L, LUA_REGISTRYINDEX, DOT_KEY);
  return s;
}

void
kdf_lua_dot_record (lua_State *L, KdfGraph *g, guint ticks)
{
  DotState *s = dot_state (L);
  gpointer key = GUINT_TO_POINTER (kdf_graph_get_serial (g));
  guint total = GPOINTER_TO_UINT (g_hash_table_lookup (s->ticks, key)) + ticks;
  g_hash_table_insert (s->ticks, key, GUINT_TO_POINTER (total));
  g_autofree char *label = NULL;
  if (kdf_lua_get_config (L)->dot_only)
    label = g_strdup_printf ("%u tick%s planned (not run)", total, total == 1 ? "" : "s");
  else
    label = g_strdup_printf ("%u tick%s run", kdf_graph_get_tick (g),
                             kdf_graph_get_tick (g) == 1 ? "" : "s");
  kdf_dot_book_add (s->book, g, label, KDF_DOT_PORTS_AUTO);
}

static ValueOrigin *
origin_of (lua_State *L, int index)
{
  TensorUD *t = luaL_testudata (L, index, TENSOR_MT);
  if (t)
    return &t->origin;
  ObjectUD *o = luaL_testudata (L, index, OBJECT_MT);
  return o ? &o->origin : NULL;
}

void
kdf_lua_set_origin_top (lua_State *L, KdfNode *n, const char *port)
{
  ValueOrigin *o = origin_of (L, -1);
  if (!o)
    return;
  o->serial = kdf_graph_get_serial (kdf_node_get_graph (n));
  o->node = kdf_node_get_id (n);
  g_autofree char *label = g_strdup_printf ("%s.%s", kdf_node_get_name (n), port);
  o->port = g_intern_string (label);
}

void
kdf_lua_dot_carry (lua_State *L, int index, KdfGraph *g, KdfNode *c)
{
  ValueOrigin *o = origin_of (L, index);
  if (!o || !o->serial)
    return;
  kdf_dot_book_carry (dot_state (L)->book, o->serial, o->node, o->port,
                      kdf_graph_get_serial (g), kdf_node_get_id (c));
}

static gpointer
make_placeholder_value (const KdfPortType *type)
{
  if (type->kind == KDF_VALUE_MODEL) {
    g_autofree char *arch = g_strdup_printf ("linear:%d-%d", KDF_LUA_DOT_SIZE, KDF_LUA_DOT_SIZE);
    return kdf_model_new_from_arch (arch, 1, NULL);
  }
  if (type->kind != KDF_VALUE_TENSOR)
    return NULL;
  int64_t shape[8];
  /* a port of any rank: a matrix, the common case (rows and columns to read) */
  int rank = type->rank < 0 ? 2 : MIN (type->rank, 8);
  g_auto (GStrv) dims = g_strsplit (type->shape, ",", -1);
  for (int i = 0; i < rank; i++) {
    const char *d = dims[0] && i < (int) g_strv_length (dims) ? dims[i] : "";
    gint64 v = 0;
    char *end = NULL;
    if (g_ascii_isdigit (*d))
      v = g_ascii_strtoll (d, &end, 10);
    shape[i] = v > 0 && v <= 1024 && end && !*end ? v : KDF_LUA_DOT_SIZE;
  }
  KdfDType dtype = type->dtype == KDF_DTYPE_ANY ? KDF_DTYPE_F32 : type->dtype;
  return kdf_tensor_new (dtype, rank, shape);
}

static Placeholder *
make_placeholder (const KdfPortType *type)
{
  gpointer p = make_placeholder_value (type);
  if (!p)
    return NULL;
  Placeholder *v = g_new (Placeholder, 1);
  v->kind = type->kind;
  v->p = p;
  return v;
}

void
kdf_lua_dot_push_placeholder (lua_State *L, KdfNode *n, const char *port)
{
  DotState *s = dot_state (L);
  const KdfPortType *type = kdf_node_output_type (n, port, NULL);
  char *key = g_strdup_printf ("%u/%u/%s", kdf_graph_get_serial (kdf_node_get_graph (n)),
                               kdf_node_get_id (n), port);
  Placeholder *v = g_hash_table_lookup (s->placeholders, key);
  if (!v && type && (v = make_placeholder (type)))
    g_hash_table_insert (s->placeholders, key, v);
  else
    g_free (key);
  if (!v) {
    lua_pushnil (L);
    return;
  }
  kdf_lua_push_value (L, v->kind, v->p);
  kdf_lua_set_origin_top (L, n, port);
}

guint
kdf_lua_dot_n_stages (lua_State *L)
{
  return kdf_dot_book_n_stages (dot_state (L)->book);
}

char *
kdf_lua_dot_text (lua_State *L, const char *title, const char *stopped)
{
  GString *note = g_string_new (NULL);
  if (kdf_lua_get_config (L)->dot_only)
    g_string_append_printf (note, "drawn by kdflow dot: no node ran; values read between runs "
                            "were placeholders (zeros, every symbolic size %d)", KDF_LUA_DOT_SIZE);
  if (stopped)
    g_string_append_printf (note, "%sINCOMPLETE: the script stopped: %s\nthe stages after "
                            "that point are not drawn", note->len ? "\n" : "", stopped);
  char *text = kdf_dot_book_to_dot (dot_state (L)->book, title, note->str);
  g_string_free (note, TRUE);
  return text;
}
