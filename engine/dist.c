/* Data-parallel runs across processes: the MPI calls behind include/kdflow/dist.h.
 * Built without MPI (meson -Dmpi=disabled, or no Open MPI found) every collective is a
 * no-op and there is one rank. */
#include "config.h"

#include <kdflow/dist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if KDF_HAVE_MPI
#include <mpi.h>
#endif

static int dist_rank = 0, dist_size = 1, dist_local = 1;
static gboolean dist_started = FALSE;
static char dist_lib[128] = "none";

/* The number of ranks a launcher asked for, from its environment (0: not launched). */
static long
launcher_size (void)
{
  static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                      "MPI_LOCALNRANKS" };
  for (guint i = 0; i < G_N_ELEMENTS (vars); i++) {
    const char *v = g_getenv (vars[i]);
    if (v && *v)
      return strtol (v, NULL, 10);
  }
  return g_getenv ("PMIX_RANK") || g_getenv ("PMI_RANK") ? 1 : 0;
}

#if KDF_HAVE_MPI
static gboolean
mpi_check (int rc, const char *what, GError **error)
{
  if (rc == MPI_SUCCESS)
    return TRUE;
  char text[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string (rc, text, &len);
  g_set_error (error, KDF_ERROR, KDF_ERROR_FAILED, "rank %d of %d: %s failed: %s", dist_rank,
               dist_size, what, text);
  return FALSE;
}

static MPI_Op
mpi_op (KdfDistOp op)
{
  return op == KDF_DIST_MAX ? MPI_MAX : op == KDF_DIST_MIN ? MPI_MIN : MPI_SUM;
}

/* MPI counts are ints: large buffers go in chunks. */
#define CHUNK ((int64_t) 1 << 28)

static gboolean
allreduce (void *buf, int64_t n, size_t elem, MPI_Datatype type, KdfDistOp op, GError **error)
{
  for (int64_t off = 0; off < n; off += CHUNK) {
    const int count = (int) MIN (CHUNK, n - off);
    if (!mpi_check (MPI_Allreduce (MPI_IN_PLACE, (char *) buf + off * (int64_t) elem, count,
                                   type, mpi_op (op), MPI_COMM_WORLD),
                    "MPI_Allreduce", error))
      return FALSE;
  }
  return TRUE;
}
#endif

gboolean
kdf_dist_init (int *argc, char ***argv, GError **error)
{
  if (dist_started)
    return TRUE;
  const long asked = launcher_size ();
  if (asked <= 0)
    return TRUE; /* not under a launcher: one rank, no MPI */
#if KDF_HAVE_MPI
  int provided = 0;
  /* nodes run one at a time on the main thread when there are ranks (sched.c); BLIS's
   * threads never call MPI */
  int rc = MPI_Init_thread (argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_FAILED, "MPI_Init_thread failed (code %d)", rc);
    return FALSE;
  }
  dist_started = TRUE;
  MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank (MPI_COMM_WORLD, &dist_rank);
  MPI_Comm_size (MPI_COMM_WORLD, &dist_size);
  MPI_Comm local;
  if (MPI_Comm_split_type (MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dist_rank, MPI_INFO_NULL,
                           &local) == MPI_SUCCESS) {
    MPI_Comm_size (local, &dist_local);
    MPI_Comm_free (&local);
  }
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
  int len = 0;
  MPI_Get_library_version (version, &len);
  /* the first line, e.g. "Open MPI v4.1.4, package: ..." up to the comma */
  version[strcspn (version, ",\n")] = '\0';
  g_strlcpy (dist_lib, version, sizeof dist_lib);
  return TRUE;
#else
  (void) argc;
  (void) argv;
  if (asked > 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_USAGE,
                 "started as one of %ld ranks by an MPI launcher, but this kdflow was built "
                 "without MPI (install libopenmpi-dev and rebuild: meson setup --reconfigure "
                 "build -Dmpi=enabled)", asked);
    return FALSE;
  }
  return TRUE;
#endif
}

void
kdf_dist_finalize (void)
{
#if KDF_HAVE_MPI
  if (dist_started) {
    MPI_Finalize ();
    dist_started = FALSE;
  }
#endif
}

void
kdf_dist_abort (int status)
{
#if KDF_HAVE_MPI
  if (dist_started && dist_size > 1) {
    fflush (stdout);
    fflush (stderr);
    MPI_Abort (MPI_COMM_WORLD, status);
  }
#endif
  (void) status;
}

int
kdf_dist_rank (void)
{
  return dist_rank;
}

int
kdf_dist_size (void)
{
  return dist_size;
}

int
kdf_dist_local_size (void)
{
  return dist_local;
}

gboolean
kdf_dist_active (void)
{
  return dist_size > 1;
}

const char *
kdf_dist_library (void)
{
  return dist_lib;
}

void
kdf_dist_shard_of (int64_t n, int r, int64_t *lo, int64_t *hi)
{
  const int64_t p = dist_size;
  *lo = n / p * r + MIN ((int64_t) r, n % p);
  *hi = *lo + n / p + (r < n % p ? 1 : 0);
}

void
kdf_dist_shard (int64_t n, int64_t *lo, int64_t *hi)
{
  kdf_dist_shard_of (n, dist_rank, lo, hi);
}

gboolean
kdf_dist_allreduce_f32 (float *buf, int64_t n, KdfDistOp op, GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size > 1)
    return allreduce (buf, n, sizeof (float), MPI_FLOAT, op, error);
#endif
  return TRUE;
}

gboolean
kdf_dist_allreduce_f64 (double *buf, int64_t n, KdfDistOp op, GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size > 1)
    return allreduce (buf, n, sizeof (double), MPI_DOUBLE, op, error);
#endif
  return TRUE;
}

gboolean
kdf_dist_allreduce_i64 (int64_t *buf, int64_t n, KdfDistOp op, GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size > 1)
    return allreduce (buf, n, sizeof (int64_t), MPI_INT64_T, op, error);
#endif
  return TRUE;
}

gboolean
kdf_dist_allreduce_u8 (uint8_t *buf, int64_t n, KdfDistOp op, GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size > 1)
    return allreduce (buf, n, sizeof (uint8_t), MPI_UINT8_T, op, error);
#endif
  return TRUE;
}

gboolean
kdf_dist_allgather_rows (void *buf, int64_t n, int64_t row_bytes, GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size <= 1 || n == 0)
    return TRUE;
  if (row_bytes <= 0 || row_bytes > G_MAXINT || n > G_MAXINT) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_FAILED,
                 "gather across ranks: %" G_GINT64_FORMAT " rows of %" G_GINT64_FORMAT
                 " bytes is beyond MPI's int counts", (gint64) n, (gint64) row_bytes);
    return FALSE;
  }
  MPI_Datatype row;
  if (!mpi_check (MPI_Type_contiguous ((int) row_bytes, MPI_BYTE, &row), "MPI_Type_contiguous",
                  error))
    return FALSE;
  MPI_Type_commit (&row);
  g_autofree int *counts = g_new (int, dist_size);
  g_autofree int *displs = g_new (int, dist_size);
  for (int r = 0; r < dist_size; r++) {
    int64_t lo, hi;
    kdf_dist_shard_of (n, r, &lo, &hi);
    counts[r] = (int) (hi - lo);
    displs[r] = (int) lo;
  }
  gboolean ok = mpi_check (MPI_Allgatherv (MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts,
                                           displs, row, MPI_COMM_WORLD),
                           "MPI_Allgatherv", error);
  MPI_Type_free (&row);
  return ok;
#else
  return TRUE;
#endif
}

void *
kdf_dist_allgatherv (const void *send, int64_t send_bytes, int64_t *total, int64_t *offsets,
                     GError **error)
{
  g_return_val_if_fail (send_bytes >= 0 && total != NULL, NULL);
#if KDF_HAVE_MPI
  if (dist_size > 1) {
    g_autofree int64_t *sizes = g_new (int64_t, dist_size);
    if (!mpi_check (MPI_Allgather (&send_bytes, 1, MPI_INT64_T, sizes, 1, MPI_INT64_T,
                                   MPI_COMM_WORLD),
                    "MPI_Allgather", error))
      return NULL;
    g_autofree int *counts = g_new (int, dist_size);
    g_autofree int *displs = g_new (int, dist_size);
    int64_t at = 0;
    for (int r = 0; r < dist_size; r++) {
      if (offsets)
        offsets[r] = at;
      if (sizes[r] > G_MAXINT || at > G_MAXINT) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_FAILED,
                     "gather across ranks: %" G_GINT64_FORMAT " bytes in all is beyond MPI's "
                     "int counts", (gint64) (at + sizes[r]));
        return NULL;
      }
      counts[r] = (int) sizes[r];
      displs[r] = (int) at;
      at += sizes[r];
    }
    if (offsets)
      offsets[dist_size] = at;
    char *out = g_malloc (MAX (at, 1));
    if (!mpi_check (MPI_Allgatherv (send, (int) send_bytes, MPI_BYTE, out, counts, displs,
                                    MPI_BYTE, MPI_COMM_WORLD),
                    "MPI_Allgatherv", error)) {
      g_free (out);
      return NULL;
    }
    *total = at;
    return out;
  }
#endif
  (void) error;
  if (offsets) {
    offsets[0] = 0;
    offsets[1] = send_bytes;
  }
  *total = send_bytes;
  return send_bytes > 0 ? g_memdup2 (send, (gsize) send_bytes) : g_malloc (1);
}

gboolean
kdf_dist_agree (gboolean ok, const char *what, GError **error)
{
  if (dist_size <= 1)
    return ok;
  /* the lowest failing rank, or dist_size when none failed */
  int64_t first = ok ? dist_size : dist_rank;
  GError *comm_error = NULL;
  if (!kdf_dist_allreduce_i64 (&first, 1, KDF_DIST_MIN, &comm_error)) {
    if (ok)
      g_propagate_error (error, comm_error);
    else
      g_error_free (comm_error);
    return FALSE;
  }
  if (first == dist_size)
    return TRUE;
  if (ok)
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                 "%s: rank %d stopped on bad input (its message says why)", what, (int) first);
  return FALSE;
}

gboolean
kdf_dist_bcast (void *buf, int64_t bytes, GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size > 1)
    for (int64_t off = 0; off < bytes; off += CHUNK)
      if (!mpi_check (MPI_Bcast ((char *) buf + off, (int) MIN (CHUNK, bytes - off), MPI_BYTE, 0,
                                 MPI_COMM_WORLD),
                      "MPI_Bcast", error))
        return FALSE;
#endif
  return TRUE;
}

gboolean
kdf_dist_barrier (GError **error)
{
#if KDF_HAVE_MPI
  if (dist_size > 1)
    return mpi_check (MPI_Barrier (MPI_COMM_WORLD), "MPI_Barrier", error);
#endif
  return TRUE;
}
