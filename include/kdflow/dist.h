/* kdflow — data-parallel runs across processes (MPI).
 *
 * `mpirun -np N kdflow run GRAPH.lua` starts N ranks of the same script. Every rank
 * builds the same graph with the same seeds, so data, noise, splits and initial
 * weights agree without any message. What is split:
 *
 *  - training (kdf_trainer_epoch): each global mini-batch is sharded across the ranks,
 *    gradients are averaged with one allreduce per network, and the per-sample outputs
 *    (losses, logits, features, selections) are gathered in dataset order;
 *  - detection (confident_learning, otsu_threshold, loss_ranking, agreement): each rank
 *    scores its block of rows; counts, sums and histograms are reduced and the flags
 *    gathered, so every rank holds the flags one process computes.
 *
 * Rank 0 owns the run directory; the other ranks write to a private temporary one.
 * Outside mpirun (or in a build without MPI) there is one rank and every collective
 * below returns at once, leaving the buffers as they are.
 *
 * Collectives must be called by every rank in the same order: the scheduler runs one
 * node at a time, on the main thread, when there is more than one rank. */
#pragma once

#include <kdflow/base.h>

G_BEGIN_DECLS

typedef enum {
  KDF_DIST_SUM,
  KDF_DIST_MAX,
  KDF_DIST_MIN,
} KdfDistOp;

/* Starts MPI when this process was launched by mpirun (or srun, or another PMI
 * launcher); does nothing otherwise. FALSE with an error when the launcher asks for
 * more than one rank and this build has no MPI, or MPI fails to start. */
KDF_API gboolean kdf_dist_init (int *argc, char ***argv, GError **error);
/* Ends MPI after a successful run (every rank must call it). */
KDF_API void kdf_dist_finalize (void);
/* Ends every rank of the job with STATUS (a rank that failed alone must not leave the
 * others waiting in a collective). Returns only without MPI. */
KDF_API void kdf_dist_abort (int status);

/* This process's rank, 0..size-1, and the number of ranks (1 outside mpirun). */
KDF_API int kdf_dist_rank (void);
KDF_API int kdf_dist_size (void);
/* The ranks of the job that share this machine (1 outside mpirun): the thread budget
 * is the machine's cores divided among them. */
KDF_API int kdf_dist_local_size (void);
/* TRUE when there is more than one rank. */
KDF_API gboolean kdf_dist_active (void);
/* A human-readable name of the transport, e.g. "Open MPI v4.1.4" or "none". */
KDF_API const char *kdf_dist_library (void);

/* This rank's block of N rows, [*lo, *hi): contiguous, in rank order, sizes differing
 * by at most one. */
KDF_API void kdf_dist_shard (int64_t n, int64_t *lo, int64_t *hi);
/* The block of rank R. */
KDF_API void kdf_dist_shard_of (int64_t n, int r, int64_t *lo, int64_t *hi);

/* In-place allreduce of N values across the ranks. */
KDF_API gboolean kdf_dist_allreduce_f32 (float *buf, int64_t n, KdfDistOp op, GError **error);
KDF_API gboolean kdf_dist_allreduce_f64 (double *buf, int64_t n, KdfDistOp op, GError **error);
KDF_API gboolean kdf_dist_allreduce_i64 (int64_t *buf, int64_t n, KdfDistOp op, GError **error);
KDF_API gboolean kdf_dist_allreduce_u8 (uint8_t *buf, int64_t n, KdfDistOp op, GError **error);

/* BUF holds N rows of ROW_BYTES bytes; each rank has filled the rows of its
 * kdf_dist_shard(N). Afterwards every rank holds all N rows. */
KDF_API gboolean kdf_dist_allgather_rows (void *buf, int64_t n, int64_t row_bytes, GError **error);

/* Every rank's SEND_BYTES bytes at SEND, concatenated in rank order, on every rank: a
 * new buffer (g_free) of *TOTAL bytes; OFFSETS (nullable, size + 1 entries) receives
 * where each rank's part starts (OFFSETS[size] = *TOTAL). With one rank: a copy of
 * SEND. NULL with an error when MPI fails or a part is beyond MPI's int counts. For
 * data of a length only its rank knows (e.g. the candidate rows of a selection). */
KDF_API void *kdf_dist_allgatherv (const void *send, int64_t send_bytes, int64_t *total,
                                   int64_t *offsets, GError **error);

/* Agreement on a check that each rank made on its own rows: TRUE when OK is TRUE on
 * every rank. Otherwise FALSE on every rank: a rank whose OK is FALSE keeps its ERROR
 * (it must be set), the others get "WHAT: rank R stopped on bad input (its message
 * says why)", R the lowest failing rank. With one rank: OK. */
KDF_API gboolean kdf_dist_agree (gboolean ok, const char *what, GError **error);

/* Rank 0's BYTES bytes of BUF to every rank. */
KDF_API gboolean kdf_dist_bcast (void *buf, int64_t bytes, GError **error);

/* Waits for every rank. */
KDF_API gboolean kdf_dist_barrier (GError **error);

G_END_DECLS
