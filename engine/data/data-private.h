/* engine/data internals shared by the readers and the noise models. */
#pragma once

#include <gio/gio.h>
#include <kdflow/data.h>

G_BEGIN_DECLS

/* A standard normal deviate by Box–Muller; CACHE and HAVE hold the second value. */
double kdf_data_rand_normal (GRand *rand, double *cache, gboolean *have);

/* Chooses K of the N values in A (partial Fisher–Yates, see data.h); the picks end up
 * in A[0..K−1]. */
void kdf_data_choose (GRand *rand, int32_t *a, int64_t n, int64_t k);

/* Opens PATH for reading, through a gzip decompressor if the file starts with the
 * gzip magic. *IS_GZIP tells which. Errors are KDF_ERROR_IO naming the file. */
GInputStream *kdf_data_open_stream (const char *path, gboolean *is_gzip, GError **error);
/* IDX: the header's rank and shape only (a gzip file decompresses its first bytes). */
gboolean kdf_idx_read_shape (const char *path, int *rank, int64_t *shape, GError **error);

/* Turns a GIO error from reading PATH into a KDF_ERROR_IO error naming the file. */
void kdf_data_propagate_io (GError **error, GError *src, const char *path, const char *what);


G_END_DECLS

G_BEGIN_DECLS
/* A class by name (case-insensitive, surrounding spaces ignored) or decimal index in
 * [0, N_CLASSES); −1 if neither. */
int kdf_data_resolve_class (const char *s, int n_classes, const char *const *names);
/* ⌊rate·n⌋, with a little slack so that 0.29 × 100 gives 29, not 28. */
int64_t kdf_data_rate_count (double rate, int64_t n);
G_END_DECLS
