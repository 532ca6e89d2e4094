/* The `kdflow` Lua module: the Tensor userdata (t:shape(), t:get(i, ...), t:item(),
 * t:totable(), t:numel(), t:sum(), t.dtype, t.rank, t.oracle, #t), kdf.tensor and
 * kdf.zeros, and the conversion of numbers and nested tables of numbers into tensors
 * that the rest of the binding uses for constants, initial values and outputs. */
#include <math.h>
#include <string.h>

#include "binding-private.h"

/* ---- tensors ------------------------------------------------------------------ */

void
kdf_lua_push_tensor (lua_State *L, KdfTensor *t /* transfer none */)
{
  TensorUD *ud = lua_newuserdatauv (L, sizeof (TensorUD), 0);
  memset (ud, 0, sizeof *ud);
  luaL_setmetatable (L, TENSOR_MT);
  ud->t = kdf_tensor_ref (t);
}

void
kdf_lua_push_tensor_unlocked (lua_State *L, KdfTensor *t /* transfer none */)
{
  kdf_lua_push_tensor (L, t);
  ((TensorUD *) lua_touserdata (L, -1))->unlocked = TRUE;
}

/* Per-sample values of ground truth (the noise mask, clean labels) or of the test split
 * do not leave the graph as Lua numbers: a script that could read them could train or
 * select on them. Aggregates (t:sum(), a scalar's t:item()) stay readable, and so does
 * everything inside a Lua node wired to them. */
static void
check_per_sample_read (lua_State *L, int index, const char *what)
{
  TensorUD *ud = luaL_checkudata (L, index, TENSOR_MT);
  if (!ud->t || ud->unlocked || kdf_tensor_numel (ud->t) <= 1)
    return;
  if (kdf_tensor_is_oracle (ud->t))
    luaL_error (L, "%s: this tensor is ground truth (an oracle value, or computed from one); "
                "its per-sample values stay in the graph — connect it to an evaluation node "
                "(evaluate) for numbers, or read it inside a Lua node wired with "
                "kdf.oracle(port)", what);
  if (kdf_tensor_is_test (ud->t))
    luaL_error (L, "%s: this tensor is the test split (or computed from it); its per-sample "
                "values stay in the graph — evaluate reports on it, or read it inside a Lua "
                "node", what);
}

static KdfTensor *
check_tensor (lua_State *L, int index)
{
  TensorUD *ud = luaL_checkudata (L, index, TENSOR_MT);
  if (!ud->t)
    luaL_argerror (L, index, "tensor already released");
  return ud->t;
}

KdfTensor *
kdf_lua_to_tensor (lua_State *L, int index)
{
  TensorUD *ud = luaL_testudata (L, index, TENSOR_MT);
  return ud ? ud->t : NULL;
}

/* Shape of a nested Lua table (rectangular), or FALSE with a message. */
static gboolean
table_shape (lua_State *L, int index, int *rank, int64_t *shape, char **why)
{
  *rank = 0;
  lua_pushvalue (L, index);
  while (lua_istable (L, -1)) {
    if (*rank == KDF_MAX_RANK) {
      lua_pop (L, 1);
      *why = g_strdup_printf ("more than %d levels of nesting", KDF_MAX_RANK);
      return FALSE;
    }
    lua_Integer len = luaL_len (L, -1);
    shape[(*rank)++] = len;
    if (len == 0)
      break;
    lua_geti (L, -1, 1);
    lua_remove (L, -2);
  }
  lua_pop (L, 1);
  return TRUE;
}

static gboolean
fill_from_table (lua_State *L, int index, KdfTensor *t, int depth, int64_t *pos, char **why)
{
  lua_Integer len = luaL_len (L, index);
  if (len != t->shape[depth]) {
    *why = g_strdup_printf ("ragged table: a row at depth %d has %lld entries, expected %lld",
                            depth + 1, (long long) len, (long long) t->shape[depth]);
    return FALSE;
  }
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti (L, index, i);
    if (depth + 1 < t->rank) {
      if (!lua_istable (L, -1)) {
        lua_pop (L, 1);
        *why = g_strdup_printf ("ragged table: expected a row at depth %d", depth + 2);
        return FALSE;
      }
      gboolean ok = fill_from_table (L, lua_gettop (L), t, depth + 1, pos, why);
      lua_pop (L, 1);
      if (!ok)
        return FALSE;
      continue;
    }
    double v;
    if (lua_isboolean (L, -1))
      v = lua_toboolean (L, -1);
    else if (lua_isnumber (L, -1))
      v = lua_tonumber (L, -1);
    else {
      *why = g_strdup_printf ("entry %lld is a %s, not a number", (long long) (*pos + 1),
                              luaL_typename (L, -1));
      lua_pop (L, 1);
      return FALSE;
    }
    lua_pop (L, 1);
    switch (t->dtype) {
    case KDF_DTYPE_F32:
      kdf_tensor_f32 (t)[*pos] = (float) v;
      break;
    case KDF_DTYPE_I32:
      /* range first: converting an out-of-range double to an integer is undefined */
      if (!(v >= INT32_MIN && v <= INT32_MAX) || v != floor (v)) {
        *why = g_strdup_printf ("entry %lld = %g is not an i32", (long long) (*pos + 1), v);
        return FALSE;
      }
      kdf_tensor_i32 (t)[*pos] = (int32_t) v;
      break;
    default:
      if (!(v >= 0 && v <= UINT8_MAX) || v != floor (v)) {
        *why = g_strdup_printf ("entry %lld = %g is not a u8", (long long) (*pos + 1), v);
        return FALSE;
      }
      kdf_tensor_u8 (t)[*pos] = (uint8_t) v;
      break;
    }
    (*pos)++;
  }
  return TRUE;
}

/* Pushes a tensor userdata for the value at INDEX (a tensor userdata, a number or a
 * nested table of numbers) and returns its tensor, borrowed: the userdata owns it, so
 * an error raised later cannot leak it. Raises on anything else. */
KdfTensor *
kdf_lua_push_tensor_value (lua_State *L, int index, KdfDType dtype)
{
  index = lua_absindex (L, index);
  KdfTensor *t = kdf_lua_to_tensor (L, index);
  if (t) {
    lua_pushvalue (L, index);
    return t;
  }
  int rank = 0;
  int64_t shape[KDF_MAX_RANK];
  char *why = NULL;
  if (lua_istable (L, index)) {
    if (!table_shape (L, index, &rank, shape, &why)) {
      lua_pushfstring (L, "cannot make a tensor: %s", why);
      g_free (why);
      lua_error (L);
    }
  } else if (!lua_isnumber (L, index) && !lua_isboolean (L, index)) {
    luaL_error (L, "expected a tensor, a number or a table of numbers, got a %s",
                luaL_typename (L, index));
  }
  TensorUD *ud = lua_newuserdatauv (L, sizeof (TensorUD), 0);
  memset (ud, 0, sizeof *ud);
  luaL_setmetatable (L, TENSOR_MT);
  ud->t = t = kdf_tensor_new (dtype, rank, shape);
  if (!lua_istable (L, index)) {
    double v = lua_isboolean (L, index) ? lua_toboolean (L, index) : lua_tonumber (L, index);
    /* range first, as for table entries: converting an out-of-range double to an
     * integer is undefined (found by fuzz-graph: a number 3.3e60 given to an i32 port) */
    if (dtype == KDF_DTYPE_F32)
      kdf_tensor_f32 (t)[0] = (float) v;
    else if (dtype == KDF_DTYPE_I32 && (v >= INT32_MIN && v <= INT32_MAX) && v == floor (v))
      kdf_tensor_i32 (t)[0] = (int32_t) v;
    else if (dtype == KDF_DTYPE_U8 && (v >= 0 && v <= UINT8_MAX) && v == floor (v))
      kdf_tensor_u8 (t)[0] = (uint8_t) v;
    else
      luaL_error (L, "cannot make a tensor: %f is not %s", v,
                  dtype == KDF_DTYPE_I32 ? "an i32" : "a u8");
    return t;
  }
  int64_t pos = 0;
  if (rank > 0 && shape[0] > 0 && !fill_from_table (L, index, t, 0, &pos, &why)) {
    lua_pushfstring (L, "cannot make a tensor: %s", why);
    g_free (why);
    lua_error (L);
  }
  return t;
}

static KdfDType
check_dtype (lua_State *L, const char *name)
{
  KdfDType d;
  if (!kdf_dtype_from_name (name, &d))
    luaL_error (L, "unknown dtype '%s' (use f32, i32 or u8)", name);
  return d;
}

/* kdf.tensor(table_or_number [, dtype]) */
static int
l_tensor (lua_State *L)
{
  KdfDType dtype = check_dtype (L, luaL_optstring (L, 2, "f32"));
  luaL_argcheck (L, !lua_isnoneornil (L, 1), 1, "a table of numbers expected");
  kdf_lua_push_tensor_value (L, 1, dtype);
  return 1;
}

/* kdf.zeros({shape...} [, dtype]) */
static int
l_zeros (lua_State *L)
{
  luaL_checktype (L, 1, LUA_TTABLE);
  KdfDType dtype = check_dtype (L, luaL_optstring (L, 2, "f32"));
  lua_Integer rank = luaL_len (L, 1);
  luaL_argcheck (L, rank >= 0 && rank <= KDF_MAX_RANK, 1, "rank must be 0..4");
  int64_t shape[KDF_MAX_RANK];
  for (lua_Integer d = 0; d < rank; d++) {
    lua_geti (L, 1, d + 1);
    lua_Integer v = kdf_lua_check_count (L, -1, "kdf.zeros: a dimension", 0, G_MAXINT32);
    shape[d] = v;
    lua_pop (L, 1);
  }
  GError *error = NULL;
  g_autoptr (KdfTensor) t = kdf_tensor_try_new (dtype, (int) rank, shape, &error);
  if (!t)
    return kdf_lua_raise_gerror (L, error);
  kdf_lua_push_tensor (L, t);
  return 1;
}

static int
tensor_gc (lua_State *L)
{
  TensorUD *ud = luaL_checkudata (L, 1, TENSOR_MT);
  g_clear_pointer (&ud->t, kdf_tensor_unref);
  return 0;
}

static int
tensor_tostring (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  g_autofree char *d = kdf_tensor_describe (t);
  if (kdf_tensor_is_on_disk (t))
    lua_pushfstring (L, "tensor %s (on disk: %s)", d, kdf_tensor_on_disk_path (t));
  else
    lua_pushfstring (L, "tensor %s", d);
  return 1;
}

static int
tensor_len (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  lua_pushinteger (L, t->rank ? t->shape[0] : 1);
  return 1;
}

static int
tensor_shape (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  lua_createtable (L, t->rank, 0);
  for (int d = 0; d < t->rank; d++) {
    lua_pushinteger (L, t->shape[d]);
    lua_rawseti (L, -2, d + 1);
  }
  return 1;
}

static void
push_number (lua_State *L, KdfDType dtype, double v)
{
  if (dtype == KDF_DTYPE_F32)
    lua_pushnumber (L, v);
  else
    lua_pushinteger (L, (lua_Integer) v);
}

/* t:get(i, j, ...) with 1-based indices, like Lua tables. */
static int
tensor_get (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  check_per_sample_read (L, 1, "t:get()");
  int64_t index[KDF_MAX_RANK] = { 0 };
  int nargs = lua_gettop (L) - 1;
  if (nargs != t->rank && !(t->rank == 0 && nargs == 0))
    return luaL_error (L, "t:get needs %d indices for a rank-%d tensor, got %d", t->rank,
                       t->rank, nargs);
  for (int d = 0; d < t->rank; d++) {
    lua_Integer i = luaL_checkinteger (L, d + 2);
    if (i < 1 || i > t->shape[d])
      return luaL_error (L, "index %d = %d is out of range 1..%d", d + 1, (int) i,
                         (int) t->shape[d]);
    index[d] = i - 1;
  }
  push_number (L, t->dtype, kdf_tensor_get (t, index));
  return 1;
}

static int
tensor_item (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  if (kdf_tensor_numel (t) != 1)
    return luaL_error (L, "t:item() needs a tensor with one element, this one has %d",
                       (int) kdf_tensor_numel (t));
  push_number (L, t->dtype, kdf_tensor_get_flat (t, 0));
  return 1;
}

static void
push_table_rec (lua_State *L, KdfTensor *t, int depth, int64_t *flat)
{
  if (depth >= t->rank || depth >= KDF_MAX_RANK) { /* the second for GCC's bounds check */
    push_number (L, t->dtype, kdf_tensor_get_flat (t, (*flat)++));
    return;
  }
  lua_createtable (L, (int) t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    push_table_rec (L, t, depth + 1, flat);
    lua_rawseti (L, -2, i + 1);
  }
}

static int
tensor_totable (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  check_per_sample_read (L, 1, "t:totable()");
  int64_t flat = 0;
  push_table_rec (L, t, 0, &flat);
  return 1;
}

static int
tensor_numel (lua_State *L)
{
  lua_pushinteger (L, kdf_tensor_numel (check_tensor (L, 1)));
  return 1;
}

static int
tensor_sum (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  double s = 0;
  for (int64_t i = 0, n = kdf_tensor_numel (t); i < n; i++)
    s += kdf_tensor_get_flat (t, i);
  lua_pushnumber (L, s);
  return 1;
}

static int
tensor_index (lua_State *L)
{
  KdfTensor *t = check_tensor (L, 1);
  if (lua_type (L, 2) != LUA_TSTRING) { /* t[1]: not a member (t:get(1) reads values) */
    lua_pushnil (L);
    return 1;
  }
  const char *key = lua_tostring (L, 2);
  if (strcmp (key, "dtype") == 0) {
    lua_pushstring (L, kdf_dtype_name (t->dtype));
    return 1;
  }
  if (strcmp (key, "rank") == 0) {
    lua_pushinteger (L, t->rank);
    return 1;
  }
  if (strcmp (key, "oracle") == 0) {
    lua_pushboolean (L, kdf_tensor_is_oracle (t));
    return 1;
  }
  if (strcmp (key, "test") == 0) {
    lua_pushboolean (L, kdf_tensor_is_test (t));
    return 1;
  }
  luaL_getmetafield (L, 1, "methods");
  if (lua_getfield (L, -1, key) != LUA_TNIL)
    return 1;
  static const char *const fields[] = { "dtype", "rank", "oracle", "test", NULL };
  return kdf_lua_no_member (L, 1, 2, "tensor", "method or field", fields, NULL);
}

void
kdf_lua_open_tensor (lua_State *L)
{
  static const luaL_Reg tensor_meta[] = { { "__gc", tensor_gc }, { "__index", tensor_index },
                                          { "__tostring", tensor_tostring },
                                          { "__len", tensor_len }, { NULL, NULL } };
  static const luaL_Reg tensor_methods[] = { { "shape", tensor_shape },   { "get", tensor_get },
                                             { "item", tensor_item },     { "totable", tensor_totable },
                                             { "numel", tensor_numel },   { "sum", tensor_sum },
                                             { NULL, NULL } };
  kdf_lua_new_metatable (L, TENSOR_MT, tensor_meta, tensor_methods);

  static const luaL_Reg funcs[] = { { "tensor", l_tensor }, { "zeros", l_zeros }, { NULL, NULL } };
  luaL_setfuncs (L, funcs, 0);
}
