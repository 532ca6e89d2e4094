/* kdflow — the base every other header builds on: the export macro, the error domain,
 * the kinds of value that travel on edges (tensors, models, loss terms), tensor dtypes,
 * the refcounted object header of models and loss terms, and port types ("f32[N,C]").
 *
 * Applications include kdflow.h, node authors kdflow-plugin.h; both include this.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Marks the library's public functions: libkdflow.so is built with hidden visibility,
 * so only what a public header declares with KDF_API is exported (a test compares the
 * two lists). */
#define KDF_API __attribute__ ((visibility ("default")))

/* ---- errors ---------------------------------------------------------------- */

#define KDF_ERROR (kdf_error_quark ())
KDF_API GQuark kdf_error_quark (void);

typedef enum {
  KDF_ERROR_FAILED,    /* anything else */
  KDF_ERROR_PLUGIN,    /* a plugin file cannot be loaded, or a node class is malformed */
  KDF_ERROR_ABI,       /* a plugin was built for another ABI */
  KDF_ERROR_KIND,      /* unknown or duplicate node kind */
  KDF_ERROR_PARAM,     /* unknown param, wrong type, out of range */
  KDF_ERROR_PORT,      /* unknown port, two edges into one input, not connected */
  KDF_ERROR_LINK,      /* value kind, dtype or rank mismatch on an edge */
  KDF_ERROR_ORACLE,    /* ground truth into a non-evaluation node */
  KDF_ERROR_CYCLE,     /* a cycle without a delay edge */
  KDF_ERROR_SHAPE,     /* a shape disagreement at run time */
  KDF_ERROR_IO,        /* files */
  KDF_ERROR_FOREIGN,   /* foreign (libffi) kernels */
  KDF_ERROR_LUA,       /* errors in Lua code */
  KDF_ERROR_NODE,      /* a node's run failed */
  KDF_ERROR_CANCELLED, /* the run was cancelled */
  KDF_ERROR_USAGE,     /* bad command line */
  KDF_ERROR_VALUE,     /* bad values in data: a label outside [0, C), NaN, a rate > 1 */
} KdfErrorCode;

/* ---- values ------------------------------------------------------------------ */

typedef enum {
  KDF_VALUE_TENSOR = 0,
  KDF_VALUE_MODEL = 1,
  KDF_VALUE_LOSS = 2,
} KdfValueKind;

KDF_API const char *kdf_value_kind_name (KdfValueKind kind);

typedef enum {
  KDF_DTYPE_F32 = 0,
  KDF_DTYPE_I32 = 1,
  KDF_DTYPE_U8 = 2,
  KDF_DTYPE_ANY = 255, /* port types only: accept any dtype */
} KdfDType;

#define KDF_MAX_RANK 4

KDF_API gsize kdf_dtype_size (KdfDType dtype);
KDF_API const char *kdf_dtype_name (KdfDType dtype); /* "f32", "i32", "u8", "any" */
/* Returns FALSE if NAME is not "f32", "i32" or "u8". */
KDF_API gboolean kdf_dtype_from_name (const char *name, KdfDType *out);

/* Models and loss terms are refcounted objects that start with a KdfObject header,
 * so the engine can carry them on edges without knowing their insides (nn.h). */
typedef struct _KdfObject KdfObject;
struct _KdfObject {
  gint ref_count; /* atomic */
  KdfValueKind kind;
  void (*free) (KdfObject *self);
  /* A short human label for dot files and messages, newly allocated. */
  char *(*describe) (const KdfObject *self);
  gpointer reserved[2];
};

/* Initialises the header of a freshly allocated object (ref_count = 1). */
KDF_API void kdf_object_init (KdfObject *obj, KdfValueKind kind, void (*free_func) (KdfObject *),
                              char *(*describe) (const KdfObject *));
KDF_API gpointer kdf_object_ref (gpointer obj);
KDF_API void kdf_object_unref (gpointer obj); /* NULL-safe */
KDF_API char *kdf_object_describe (gconstpointer obj);

typedef struct _KdfModel KdfModel; /* nn.h; starts with KdfObject */
typedef struct _KdfLoss KdfLoss;   /* nn.h; starts with KdfObject */

/* ---- port types ---------------------------------------------------------------
 *
 * What a port carries, written as a string — the one form used by node classes,
 * Lua port declarations, foreign kernels, `kdflow describe` and dot files:
 *
 *   "model", "loss"          a model or a loss term
 *   "f32[N,C]"               a tensor: dtype f32, i32, u8 or any; the shape in brackets,
 *                            one entry per dim: a symbol (N, C, …: the engine binds it
 *                            from the first port that has it and checks every other
 *                            port against it, with a message naming both), an integer,
 *                            or * (any size). "f32[]" is a scalar (rank 0).
 *   "f32"                    a tensor of any rank
 *   "i32[N] < C"             also: every value lies in [0, C) — class labels. C is a
 *                            symbol bound by another port (or an integer); an input
 *                            whose bound is not known when the node runs is not checked.
 */
#define KDF_PORT_SHAPE_MAX 64

typedef struct {
  KdfValueKind kind;
  KdfDType dtype;                  /* tensors: KDF_DTYPE_ANY accepts any */
  int rank;                        /* tensors: -1 accepts any */
  char shape[KDF_PORT_SHAPE_MAX];  /* the dims, comma-separated ("N,C"; "" for rank ≤ 0) */
  char bound[16];                  /* "C" in "i32[N] < C", or "" */
} KdfPortType;

/* Parses TEXT into TYPE; FALSE with a KDF_ERROR_PORT error saying what is wrong. */
KDF_API gboolean kdf_port_type_parse (const char *text, KdfPortType *type, GError **error);
/* Parses a port declaration "NAME:TYPE" (Lua nodes, foreign kernels), with a
 * trailing "?" for an optional input: *NAME (transfer full), *TYPE and *OPTIONAL.
 * FALSE with a KDF_ERROR_PORT error naming DECL and what is wrong. */
KDF_API gboolean kdf_port_decl_parse (const char *decl, char **name, KdfPortType *type,
                                      gboolean *optional, GError **error);
/* The canonical string of TYPE ("f32[N,C]", "i32[N] < C", "model") (transfer full). */
KDF_API char *kdf_port_type_to_string (const KdfPortType *type);

G_END_DECLS
