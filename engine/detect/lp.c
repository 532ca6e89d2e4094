/* Label propagation (AML-KD's refinery; METHODS §1 label_propagation): exact k-NN by
 * inner product through tiled BLIS GEMM and per-row top-k heaps, the symmetric
 * normalised graph in CSR, conjugate gradient per class, and the percentile rule.
 *
 * Memory never grows as N²: the similarity exists one T×T tile at a time. Every
 * working buffer goes through a small ledger (Ledger) that records the bytes held, so
 * that the peak is a measured number (KdfLpResult.peak_bytes), and
 * kdf_lp_workspace_bytes states the bound those allocations obey. */
#include "config.h"

#include "detect-private.h"

#include <kdflow/dist.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the ledger of working memory ------------------------------------------ */

typedef struct {
  gsize held, peak;
} Ledger;

static gpointer
ledger_alloc (Ledger *l, gsize count, gsize size)
{
  gpointer p = g_malloc_n (MAX (count, 1), size);
  l->held += MAX (count, 1) * size;
  l->peak = MAX (l->peak, l->held);
  return p;
}

static void
ledger_free (Ledger *l, gpointer p, gsize count, gsize size)
{
  if (p == NULL)
    return;
  g_free (p);
  l->held -= MAX (count, 1) * size;
}

/* ---- workers ---------------------------------------------------------------- */

typedef void (*WorkFunc) (gpointer data, int w, int nw);

typedef struct {
  WorkFunc fn;
  gpointer data;
  int w, nw;
} Work;

static gpointer
work_thread (gpointer p)
{
  Work *t = p;
  t->fn (t->data, t->w, t->nw);
  return NULL;
}

/* Runs FN (DATA, w, NW) for w in [0, NW), worker 0 on the calling thread. */
static void
parallel (int nw, WorkFunc fn, gpointer data)
{
  if (nw <= 1) {
    fn (data, 0, 1);
    return;
  }
  nw = MIN (nw, 64);
  GThread *th[64];
  Work t[64];
  for (int w = 0; w < nw; w++)
    t[w] = (Work){ fn, data, w, nw };
  for (int w = 1; w < nw; w++)
    th[w] = g_thread_new ("kdf-lp", work_thread, &t[w]);
  fn (data, 0, nw);
  for (int w = 1; w < nw; w++)
    g_thread_join (th[w]);
}

/* [lo, hi) of worker W among NW over [0, N), in blocks of ALIGN */
static void
split_range (int64_t n, int w, int nw, int64_t align, int64_t *lo, int64_t *hi)
{
  int64_t blocks = (n + align - 1) / align;
  int64_t b0 = blocks * w / nw, b1 = blocks * (w + 1) / nw;
  *lo = MIN (b0 * align, n);
  *hi = MIN (b1 * align, n);
}

/* ---- k-NN: top-k heaps ------------------------------------------------------- */

void
kdf_knn_options_init (KdfKnnOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  opt->tile = 1024;
  opt->threads = 1;
}

/* Row i's heap lives in SIM[i·k ..] and INDEX[i·k ..]: a min-heap under "worse"
 * (lower similarity, then higher index), so its root is the worst neighbour kept and
 * THR[i] its similarity once the heap is full (−∞ before). */
typedef struct {
  float *sim;
  int32_t *index;
  float *thr;
  int32_t *count;
  int k;
} Heaps;

static inline gboolean
worse (float sa, int32_t ia, float sb, int32_t ib)
{
  return sa < sb || (sa == sb && ia > ib);
}

static void
heap_push (Heaps *h, int64_t row, float s, int32_t j)
{
  const int k = h->k;
  float *hs = h->sim + row * k;
  int32_t *hi = h->index + row * k;
  int32_t n = h->count[row];
  if (n < k) {
    int64_t c = n;
    while (c > 0) {
      int64_t p = (c - 1) / 2;
      if (!worse (s, j, hs[p], hi[p]))
        break;
      hs[c] = hs[p];
      hi[c] = hi[p];
      c = p;
    }
    hs[c] = s;
    hi[c] = j;
    h->count[row] = ++n;
    if (n == k)
      h->thr[row] = hs[0];
    return;
  }
  /* full: only a better candidate than the root gets in */
  if (!worse (hs[0], hi[0], s, j))
    return;
  int64_t c = 0;
  for (;;) {
    int64_t l = 2 * c + 1, r = l + 1, m = c;
    float ms = s;
    int32_t mi = j;
    if (l < k && worse (hs[l], hi[l], ms, mi)) {
      m = l;
      ms = hs[l];
      mi = hi[l];
    }
    if (r < k && worse (hs[r], hi[r], ms, mi))
      m = r;
    if (m == c)
      break;
    hs[c] = hs[m];
    hi[c] = hi[m];
    c = m;
  }
  hs[c] = s;
  hi[c] = j;
  h->thr[row] = hs[0];
}

typedef float v8f __attribute__ ((vector_size (32)));
typedef int v8i __attribute__ ((vector_size (32)));

static inline gboolean
v8_any (v8i m)
{
  uint64_t w[4];
  memcpy (w, &m, sizeof w);
  return (w[0] | w[1] | w[2] | w[3]) != 0;
}

/* The scans compare eight similarities at a time; with AVX2 at hand (chosen at load
 * time) one instruction does it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KDF_SCAN_CLONES __attribute__ ((target_clones ("avx2", "default")))
#else
#define KDF_SCAN_CLONES
#endif

KDF_SCAN_CLONES static void
scan_rows (Heaps *h, const float *s, int64_t i0, int64_t r0, int64_t r1, int64_t j0,
           int64_t tj, gboolean diagonal)
{
  for (int64_t r = r0; r < r1; r++) {
    const int64_t i = i0 + r;
    const float *row = s + r * tj;
    int64_t j = 0;
    for (; j + 8 <= tj; j += 8) {
      v8f v;
      memcpy (&v, row + j, sizeof v);
      const float t = h->thr[i];
      if (!v8_any (v >= (v8f){ t, t, t, t, t, t, t, t }))
        continue;
      for (int64_t q = j; q < j + 8; q++)
        if (row[q] >= h->thr[i] && !(diagonal && j0 + q == i))
          heap_push (h, i, row[q], (int32_t) (j0 + q));
    }
    for (; j < tj; j++)
      if (row[j] >= h->thr[i] && !(diagonal && j0 + j == i))
        heap_push (h, i, row[j], (int32_t) (j0 + j));
  }
}

KDF_SCAN_CLONES static void
scan_cols (Heaps *h, const float *s, int64_t i0, int64_t ti, int64_t j0, int64_t tj,
           int64_t c0, int64_t c1)
{
  float *thr = h->thr + j0;
  for (int64_t r = 0; r < ti; r++) {
    const float *row = s + r * tj;
    const int32_t i = (int32_t) (i0 + r);
    int64_t j = c0;
    for (; j + 8 <= c1; j += 8) {
      v8f v, t;
      memcpy (&v, row + j, sizeof v);
      memcpy (&t, thr + j, sizeof t);
      if (!v8_any (v >= t))
        continue;
      for (int64_t q = j; q < j + 8; q++)
        if (row[q] >= thr[q])
          heap_push (h, j0 + q, row[q], i);
    }
    for (; j < c1; j++)
      if (row[j] >= thr[j])
        heap_push (h, j0 + j, row[j], i);
  }
}

/* A reusable barrier for the k-NN workers. */
typedef struct {
  GMutex m;
  GCond c;
  int n, count;
  guint gen;
} Barrier;

static void
barrier_wait (Barrier *b)
{
  if (b->n <= 1)
    return;
  g_mutex_lock (&b->m);
  const guint gen = b->gen;
  if (++b->count == b->n) {
    b->count = 0;
    b->gen++;
    g_cond_broadcast (&b->c);
  } else {
    while (gen == b->gen)
      g_cond_wait (&b->c, &b->m);
  }
  g_mutex_unlock (&b->m);
}

/* The tiles (I, J), J ≥ I, in order; for each, every worker computes its share of the
 * rows of S = X_I·X_Jᵀ with one BLIS thread and feeds those rows' heaps (row side);
 * after a barrier, for an off-diagonal tile, it feeds the heaps of its share of the
 * columns (column side: S_JI = S_IJᵀ). Row side and column side touch the heaps of
 * different blocks, and each worker its own rows or columns, so no heap is shared. */
typedef struct {
  Heaps *h;
  const float *x;
  int64_t n, d, ldx, tile;
  float *s;
  const KdfKnnOptions *opt;
  Barrier bar;
  gboolean stop;
  int rank, ranks; /* sharded: this rank computes the tile pairs p with p % ranks == rank */
} Knn;

static void
knn_worker (gpointer data, int w, int nw)
{
  Knn *t = data;
  const int64_t n = t->n, tile = t->tile, blocks = (n + tile - 1) / tile;
  const double pairs = (double) blocks * (double) (blocks + 1) / 2.0;
  double done = 0.0;
  int64_t pair = -1;
  for (int64_t bi = 0; bi < blocks; bi++) {
    const int64_t i0 = bi * tile, ti = MIN (tile, n - i0);
    for (int64_t bj = bi; bj < blocks; bj++) {
      const int64_t j0 = bj * tile, tj = MIN (tile, n - j0);
      if (++pair % t->ranks != t->rank)
        continue; /* another rank's tile */
      if (w == 0 && t->opt->cancellable && g_cancellable_is_cancelled (t->opt->cancellable))
        t->stop = TRUE;
      barrier_wait (&t->bar); /* S is free again; everyone sees stop */
      if (t->stop)
        return;
      int64_t lo, hi;
      split_range (ti, w, nw, 4, &lo, &hi);
      if (hi > lo)
        kdf_sgemm (KDF_NO_TRANS, KDF_TRANS, hi - lo, tj, t->d, 1.0f, t->x + (i0 + lo) * t->ldx,
                   t->ldx, 1, t->x + j0 * t->ldx, t->ldx, 1, 0.0f, t->s + lo * tj, tj, 1, 1);
      scan_rows (t->h, t->s, i0, lo, hi, j0, tj, bi == bj);
      if (bi != bj) {
        barrier_wait (&t->bar); /* all of S is there */
        split_range (tj, w, nw, 8, &lo, &hi);
        scan_cols (t->h, t->s, i0, ti, j0, tj, lo, hi);
      }
      done += 1.0;
      if (w == 0 && t->opt->progress)
        t->opt->progress (done * t->ranks / pairs, t->opt->progress_data);
    }
  }
}

/* best first: similarity descending, then index ascending */
static void
sort_row (float *s, int32_t *idx, int k)
{
  for (int a = 1; a < k; a++) {
    float sv = s[a];
    int32_t iv = idx[a];
    int b = a;
    while (b > 0 && worse (s[b - 1], idx[b - 1], sv, iv)) {
      s[b] = s[b - 1];
      idx[b] = idx[b - 1];
      b--;
    }
    s[b] = sv;
    idx[b] = iv;
  }
}

/* Sharded k-NN: every rank holds, for every row, the best (up to) k of the candidates
 * in its tiles. The lists of all ranks are gathered and each row keeps the best k of
 * their union — as the order is total and every pair (i, j) lies in exactly one tile,
 * the lists one process makes. */
static gboolean
knn_merge_ranks (Heaps *h, int64_t n, int k, int ranks, GError **error)
{
  /* one block per rank: n·k similarities, n·k indexes, n counts */
  const int64_t block = n * k * (int64_t) (sizeof (float) + sizeof (int32_t)) +
                        n * (int64_t) sizeof (int32_t);
  guint8 *all = g_try_malloc ((gsize) (block * ranks));
  if (!all) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_FAILED,
                 "k-NN: cannot allocate %" G_GINT64_FORMAT " bytes to merge the ranks' lists",
                 (gint64) (block * ranks));
    return FALSE;
  }
  guint8 *mine = all + block * kdf_dist_rank ();
  memcpy (mine, h->sim, (size_t) (n * k) * sizeof (float));
  memcpy (mine + n * k * sizeof (float), h->index, (size_t) (n * k) * sizeof (int32_t));
  memcpy (mine + n * k * (sizeof (float) + sizeof (int32_t)), h->count,
          (size_t) n * sizeof (int32_t));
  if (!kdf_dist_allgather_rows (all, ranks, block, error)) {
    g_free (all);
    return FALSE;
  }
  for (int64_t i = 0; i < n; i++) {
    h->count[i] = 0;
    h->thr[i] = -INFINITY;
  }
  for (int r = 0; r < ranks; r++) {
    const guint8 *b = all + block * r;
    const float *rs = (const float *) b;
    const int32_t *ri = (const int32_t *) (b + n * k * sizeof (float));
    const int32_t *rc = (const int32_t *) (b + n * k * (sizeof (float) + sizeof (int32_t)));
    for (int64_t i = 0; i < n; i++)
      for (int32_t m = 0; m < MIN (rc[i], k); m++)
        heap_push (h, i, rs[i * k + m], ri[i * k + m]);
  }
  g_free (all);
  return TRUE;
}

static gboolean
knn_run (int32_t *index, float *sim, const float *x, int64_t n, int64_t d, int64_t ldx, int k,
         const KdfKnnOptions *opt, Ledger *led, GError **error)
{
  KdfKnnOptions def;
  if (opt == NULL) {
    kdf_knn_options_init (&def);
    opt = &def;
  }
  if (n < 2 || n > G_MAXINT32 || d < 1 || ldx < d) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "k-NN: expected 2 ≤ N ≤ 2^31−1 rows of D ≥ 1 features (row stride ≥ D), "
                 "found N = %" G_GINT64_FORMAT ", D = %" G_GINT64_FORMAT, (gint64) n, (gint64) d);
    return FALSE;
  }
  if (k < 1 || k > n - 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "k-NN: k = %d neighbours; with N = %" G_GINT64_FORMAT
                 " rows (self excluded) k must lie in [1, %" G_GINT64_FORMAT "]",
                 k, (gint64) n, (gint64) (n - 1));
    return FALSE;
  }
  if (opt->tile < 0 || opt->threads < 0) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "k-NN: tile %d and threads %d must be ≥ 0",
                 opt->tile, opt->threads);
    return FALSE;
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++)
      if (!isfinite (x[i * ldx + j])) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "features: expected finite values, found %g at row %" G_GINT64_FORMAT
                     ", column %" G_GINT64_FORMAT, (double) x[i * ldx + j], (gint64) i,
                     (gint64) j);
        return FALSE;
      }

  const int64_t tile = MIN (opt->tile > 0 ? opt->tile : 1024, n);
  const int threads = MAX (opt->threads, 1);
  Heaps h = { .sim = sim, .index = index, .k = k };
  h.thr = ledger_alloc (led, n, sizeof (float));
  h.count = ledger_alloc (led, n, sizeof (int32_t));
  float *s = ledger_alloc (led, (gsize) (tile * tile), sizeof (float));
  for (int64_t i = 0; i < n; i++) {
    h.thr[i] = -INFINITY;
    h.count[i] = 0;
  }

  /* a worker per 16 rows of a tile at least: tiny problems stay on one thread */
  Knn t = { .h = &h, .x = x, .n = n, .d = d, .ldx = ldx, .tile = tile, .s = s, .opt = opt,
            .rank = 0, .ranks = 1 };
  if (opt->shard && kdf_dist_active ()) {
    t.rank = kdf_dist_rank ();
    t.ranks = kdf_dist_size ();
  }
  const int nw = (int) MIN ((int64_t) threads, MAX (tile / 16, 1));
  g_mutex_init (&t.bar.m);
  g_cond_init (&t.bar.c);
  t.bar.n = nw;
  parallel (nw, knn_worker, &t);
  g_mutex_clear (&t.bar.m);
  g_cond_clear (&t.bar.c);
  gboolean ok = TRUE;
  if (t.stop) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_CANCELLED, "k-NN cancelled");
    ok = FALSE;
  }
  if (ok && t.ranks > 1)
    ok = knn_merge_ranks (&h, n, k, t.ranks, error);
  if (ok)
    for (int64_t i = 0; i < n && ok; i++) {
      if (h.count[i] < k) {
        /* only non-finite similarities (overflow) can leave a heap short */
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "k-NN: row %" G_GINT64_FORMAT " has %d finite similarities, fewer than "
                     "k = %d (do the features overflow?)", (gint64) i, h.count[i], k);
        ok = FALSE;
        break;
      }
      sort_row (sim + i * k, index + i * k, k);
      for (int m = 0; m < k; m++)
        if (!isfinite (sim[i * k + m])) {
          g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                       "k-NN: row %" G_GINT64_FORMAT " has a non-finite similarity %g "
                       "(do the features overflow?)", (gint64) i, (double) sim[i * k + m]);
          ok = FALSE;
          break;
        }
    }
  ledger_free (led, s, (gsize) (tile * tile), sizeof (float));
  ledger_free (led, h.count, n, sizeof (int32_t));
  ledger_free (led, h.thr, n, sizeof (float));
  return ok;
}

gboolean
kdf_knn_inner_product (int32_t *index, float *sim, const float *x, int64_t n, int64_t d,
                       int64_t ldx, int k, const KdfKnnOptions *opt, gsize *peak_bytes,
                       GError **error)
{
  g_return_val_if_fail (index != NULL && x != NULL, FALSE);
  Ledger led = { 0 };
  float *own = NULL;
  if (sim == NULL && n > 0 && k > 0)
    sim = own = ledger_alloc (&led, (gsize) (n * k), sizeof (float));
  gboolean ok = knn_run (index, sim, x, n, d, ldx, k, opt, &led, error);
  ledger_free (&led, own, (gsize) (n * k), sizeof (float));
  if (peak_bytes)
    *peak_bytes = led.peak;
  return ok;
}

/* ---- the graph ----------------------------------------------------------------- */

void
kdf_csr_clear (KdfCsr *m)
{
  g_free (m->row_ptr);
  g_free (m->col);
  g_free (m->val);
  memset (m, 0, sizeof *m);
}

typedef struct {
  int32_t col;
  double val;
} Entry;

static int
entry_compare (const void *pa, const void *pb)
{
  const Entry *a = pa, *b = pb;
  return (a->col > b->col) - (a->col < b->col);
}

static gboolean
graph_build (KdfCsr *wn, double *degree, const int32_t *index, const double *sim, int64_t n,
             int k, double gamma, Ledger *led, GError **error)
{
  if (n < 1 || n > G_MAXINT32 || k < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                 "graph: expected N ≥ 1 rows and k ≥ 1 neighbours, found N = %" G_GINT64_FORMAT
                 ", k = %d", (gint64) n, k);
    return FALSE;
  }
  if (!(gamma > 0.0) || !isfinite (gamma)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "graph: gamma = %g; expected γ > 0", gamma);
    return FALSE;
  }
  for (int64_t i = 0; i < n; i++)
    for (int m = 0; m < k; m++) {
      int32_t j = index[i * k + m];
      if (j < 0 || j >= n || j == i) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "graph: neighbour %d of row %" G_GINT64_FORMAT " is %d, %s", m, (gint64) i,
                     j, j == i ? "the row itself" : "outside [0, N)");
        return FALSE;
      }
      if (!isfinite (sim[i * k + m])) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "graph: similarity %d of row %" G_GINT64_FORMAT " is %g", m, (gint64) i,
                     sim[i * k + m]);
        return FALSE;
      }
    }

  /* A_ij for j in i's list lands in row i (as W_ij) and in row j (as W_ji) */
  int64_t *start = ledger_alloc (led, n + 1, sizeof (int64_t));
  memset (start, 0, (gsize) (n + 1) * sizeof *start);
  for (int64_t i = 0; i < n; i++)
    for (int m = 0; m < k; m++) {
      const double s = sim[i * k + m];
      if (s > 0.0 && pow (s, gamma) > 0.0) {
        start[i + 1]++;
        start[index[i * k + m] + 1]++;
      }
    }
  for (int64_t i = 0; i < n; i++)
    start[i + 1] += start[i];
  const int64_t total = start[n];
  Entry *e = ledger_alloc (led, total, sizeof (Entry));
  int64_t *fill = ledger_alloc (led, n, sizeof (int64_t));
  memcpy (fill, start, (gsize) n * sizeof *fill);
  for (int64_t i = 0; i < n; i++)
    for (int m = 0; m < k; m++) {
      const double s = sim[i * k + m];
      const double a = s > 0.0 ? pow (s, gamma) : 0.0;
      if (a > 0.0) {
        const int32_t j = index[i * k + m];
        e[fill[i]++] = (Entry){ j, a };
        e[fill[j]++] = (Entry){ (int32_t) i, a };
      }
    }
  ledger_free (led, fill, n, sizeof (int64_t));

  /* sort each row by column, add the two halves of a mutual pair: W = A + Aᵀ */
  int64_t nnz = 0;
  for (int64_t i = 0; i < n; i++) {
    Entry *r = e + start[i];
    const int64_t len = start[i + 1] - start[i];
    qsort (r, (size_t) len, sizeof *r, entry_compare);
    for (int64_t q = 0; q < len; q++)
      nnz += q == 0 || r[q].col != r[q - 1].col;
  }
  wn->n = n;
  wn->nnz = nnz;
  wn->row_ptr = ledger_alloc (led, n + 1, sizeof (int64_t));
  wn->col = ledger_alloc (led, nnz, sizeof (int32_t));
  wn->val = ledger_alloc (led, nnz, sizeof (double));
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++) {
    wn->row_ptr[i] = at;
    const Entry *r = e + start[i];
    const int64_t len = start[i + 1] - start[i];
    for (int64_t q = 0; q < len; q++) {
      if (q > 0 && r[q].col == r[q - 1].col)
        continue;
      double v = r[q].val;
      if (q + 1 < len && r[q + 1].col == r[q].col)
        v += r[q + 1].val;
      wn->col[at] = r[q].col;
      wn->val[at] = v;
      at++;
    }
  }
  wn->row_ptr[n] = at;
  ledger_free (led, e, total, sizeof (Entry));
  ledger_free (led, start, n + 1, sizeof (int64_t));

  /* d_i = Σ_j W_ij (0 → 1); Wn = D^{−1/2} W D^{−1/2} */
  double *rs = ledger_alloc (led, n, sizeof (double));
  for (int64_t i = 0; i < n; i++) {
    double di = 0.0;
    for (int64_t q = wn->row_ptr[i]; q < wn->row_ptr[i + 1]; q++)
      di += wn->val[q];
    if (di == 0.0)
      di = 1.0;
    if (degree)
      degree[i] = di;
    rs[i] = 1.0 / sqrt (di);
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t q = wn->row_ptr[i]; q < wn->row_ptr[i + 1]; q++)
      wn->val[q] *= rs[i] * rs[wn->col[q]];
  ledger_free (led, rs, n, sizeof (double));
  return TRUE;
}

gboolean
kdf_lp_graph (KdfCsr *wn, double *degree, const int32_t *index, const double *sim, int64_t n,
              int k, double gamma, GError **error)
{
  g_return_val_if_fail (wn != NULL && index != NULL && sim != NULL, FALSE);
  Ledger led = { 0 };
  return graph_build (wn, degree, index, sim, n, k, gamma, &led, error);
}

/* ---- the solve ------------------------------------------------------------------- */

/* out = v − α·Wn·v */
static void
apply (double *out, const KdfCsr *wn, double alpha, const double *v)
{
  for (int64_t i = 0; i < wn->n; i++) {
    double acc = 0.0;
    for (int64_t q = wn->row_ptr[i]; q < wn->row_ptr[i + 1]; q++)
      acc += wn->val[q] * v[wn->col[q]];
    out[i] = v[i] - alpha * acc;
  }
}

static double
dot (const double *a, const double *b, int64_t n)
{
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}

typedef struct {
  double *z;
  const double *y;
  const KdfCsr *wn;
  int c;
  double alpha;
  KdfLpSolver solver;
  int iters;
  double tol;
  double *work; /* per worker: 5·N */
  int *iterations;
  double *residual;
} Solve;

/* CG (or the plain iteration) for the classes w, w + NW, ... */
static void
solve_worker (gpointer data, int w, int nw)
{
  Solve *sv = data;
  const int64_t n = sv->wn->n;
  const int c = sv->c;
  double *b = sv->work + (int64_t) w * 5 * n, *x = b + n, *r = x + n, *p = r + n, *ap = p + n;
  for (int cls = w; cls < c; cls += nw) {
    for (int64_t i = 0; i < n; i++)
      b[i] = sv->y[i * c + cls];
    const double bnorm = sqrt (dot (b, b, n));
    int it = 0;
    memset (x, 0, (gsize) n * sizeof *x);
    if (bnorm > 0.0) {
      if (sv->solver == KDF_LP_SOLVER_CG) {
        memcpy (r, b, (gsize) n * sizeof *r);
        memcpy (p, b, (gsize) n * sizeof *p);
        double rr = bnorm * bnorm;
        while (it < sv->iters && sqrt (rr) > sv->tol * bnorm) {
          apply (ap, sv->wn, sv->alpha, p);
          const double pap = dot (p, ap, n);
          if (!(pap > 0.0))
            break;
          const double a = rr / pap;
          for (int64_t i = 0; i < n; i++) {
            x[i] += a * p[i];
            r[i] -= a * ap[i];
          }
          const double rr_new = dot (r, r, n);
          const double beta = rr_new / rr;
          for (int64_t i = 0; i < n; i++)
            p[i] = r[i] + beta * p[i];
          rr = rr_new;
          it++;
        }
      } else {
        /* z ← α Wn z + y: with apply (t, z) = z − α Wn z, α Wn z = z − t */
        for (; it < sv->iters; it++) {
          apply (ap, sv->wn, sv->alpha, x);
          for (int64_t i = 0; i < n; i++)
            x[i] = x[i] - ap[i] + b[i];
        }
      }
      /* the true residual, whichever the solver */
      apply (ap, sv->wn, sv->alpha, x);
      for (int64_t i = 0; i < n; i++)
        r[i] = b[i] - ap[i];
      sv->residual[cls] = sqrt (dot (r, r, n)) / bnorm;
    } else {
      sv->residual[cls] = 0.0;
    }
    sv->iterations[cls] = it;
    for (int64_t i = 0; i < n; i++)
      sv->z[i * c + cls] = x[i];
  }
}

static gboolean
solve_run (double *z, const KdfCsr *wn, const double *y, int c, double alpha, KdfLpSolver solver,
           int iters, double tol, int threads, KdfLpSolveStats *stats, Ledger *led,
           GError **error)
{
  if (wn->n < 1 || c < 1) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE, "solve: N = %" G_GINT64_FORMAT ", C = %d",
                 (gint64) wn->n, c);
    return FALSE;
  }
  if (!(alpha >= 0.0 && alpha < 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "solve: alpha = %g; expected 0 ≤ α < 1",
                 alpha);
    return FALSE;
  }
  if (iters < 0 || !(tol >= 0.0) ||
      (solver != KDF_LP_SOLVER_CG && solver != KDF_LP_SOLVER_ITERATE)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "solve: iters = %d, tol = %g, solver %d (want iters ≥ 0, tol ≥ 0, cg or "
                 "iterate)", iters, tol, (int) solver);
    return FALSE;
  }
  if (!kdf_check_finite_f64 (y, wn->n * c, "seeds Y", error))
    return FALSE;
  const int nw = MAX (1, MIN (threads, c));
  const int64_t n = wn->n;
  Solve sv = { z, y, wn, c, alpha, solver, iters, tol, NULL, NULL, NULL };
  sv.work = ledger_alloc (led, (gsize) (5 * n * nw), sizeof (double));
  sv.iterations = g_new0 (int, c);
  sv.residual = g_new0 (double, c);
  parallel (nw, solve_worker, &sv);
  if (stats) {
    memset (stats, 0, sizeof *stats);
    for (int k = 0; k < c; k++) {
      stats->iterations = MAX (stats->iterations, sv.iterations[k]);
      stats->residual = MAX (stats->residual, sv.residual[k]);
    }
  }
  ledger_free (led, sv.work, (gsize) (5 * n * nw), sizeof (double));
  g_free (sv.iterations);
  g_free (sv.residual);
  return TRUE;
}

gboolean
kdf_lp_solve (double *z, const KdfCsr *wn, const double *y, int c, double alpha,
              KdfLpSolver solver, int iters, double tol, int threads, KdfLpSolveStats *stats,
              GError **error)
{
  g_return_val_if_fail (z != NULL && wn != NULL && y != NULL, FALSE);
  Ledger led = { 0 };
  return solve_run (z, wn, y, c, alpha, solver, iters, tol, threads, stats, &led, error);
}

/* ---- label propagation ------------------------------------------------------------ */

void
kdf_lp_options_init (KdfLpOptions *opt)
{
  memset (opt, 0, sizeof *opt);
  opt->k = 20;
  opt->gamma = 3.0;
  opt->alpha = 0.99;
  opt->normalize = TRUE;
  opt->solver = KDF_LP_SOLVER_CG;
  opt->iters = 20;
  opt->tol = 1e-6;
  opt->percentile = 0.0;
  kdf_knn_options_init (&opt->knn);
}

gsize
kdf_lp_workspace_bytes (int64_t n, int64_t d, int c, const KdfLpOptions *opt)
{
  KdfLpOptions def;
  if (opt == NULL) {
    kdf_lp_options_init (&def);
    opt = &def;
  }
  /* the phases of kdf_label_propagation, each with what it holds at its fullest
   * (nnz ≤ 2NK: each list entry lands in two rows) */
  const gsize N = (gsize) MAX (n, 1), D = (gsize) MAX (d, 1), C = (gsize) MAX (c, 1);
  const gsize K = (gsize) MAX (opt->k, 1);
  const gsize T = (gsize) MIN ((int64_t) (opt->knn.tile > 0 ? opt->knn.tile : 1024), MAX (n, 1));
  const gsize W = (gsize) MAX (1, MIN (MAX (opt->knn.threads, 1), c));
  const gsize nnz = 2 * N * K;
  const gsize xn = opt->normalize ? N * D * 4 + N * 8 : 0;   /* normalised copy, 1/‖x‖ */
  const gsize lists = N * K * 4 + N * K * 4;                   /* neighbours, f32 sims */
  const gsize csr = (N + 1) * 8 + nnz * 4 + nnz * 8;
  const gsize knn = xn + lists + N * 4 + N * 4 + T * T * 4;   /* + thresholds, counts, tile */
  const gsize resim = xn + lists + N * K * 8;                  /* + f64 sims */
  const gsize held = N * K * 4 + N * K * 8;                    /* neighbours, f64 sims */
  const gsize build1 = held + (N + 1) * 8 + nnz * 16 + N * 8;  /* starts, entries, fill */
  const gsize build2 = held + (N + 1) * 8 + nnz * 16 + csr;    /* starts, entries, CSR */
  const gsize build3 = held + csr + N * 8;                     /* CSR, 1/sqrt(d) */
  const gsize solve = csr + 2 * N * C * 8 + 5 * N * W * 8;     /* Y, Z, CG vectors */
  const gsize post = N * C * 8 + 2 * N * 8;                    /* Z, confidences, sorted */
  gsize m = MAX (knn, resim);
  m = MAX (m, MAX (build1, build2));
  m = MAX (m, MAX (build3, solve));
  return MAX (m, post);
}

static double
seconds_since (gint64 t0)
{
  return (double) (g_get_monotonic_time () - t0) / 1e6;
}

static int
double_compare (const void *pa, const void *pb)
{
  const double a = *(const double *) pa, b = *(const double *) pb;
  return (a > b) - (a < b);
}

gboolean
kdf_label_propagation (int32_t *labels, float *soft, float *confidence, int32_t *neighbors,
                       const KdfLpInput *in, const KdfLpOptions *opt, KdfLpResult *result,
                       GError **error)
{
  g_return_val_if_fail (labels != NULL && in != NULL, FALSE);
  KdfLpOptions def;
  if (opt == NULL) {
    kdf_lp_options_init (&def);
    opt = &def;
  }
  const int64_t n = in->n, d = in->d;
  const int c = in->c, k = opt->k;
  if (in->x == NULL || in->seeds == NULL) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "label propagation: no features or seeds");
    return FALSE;
  }
  if (!kdf_check_size (n, c, "label propagation", error))
    return FALSE;
  if (!kdf_check_labels (in->seeds, n, c, "seeds", error))
    return FALSE;
  if (!(opt->percentile >= 0.0 && opt->percentile <= 100.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "label propagation: percentile = %g; expected 0 ≤ p ≤ 100", opt->percentile);
    return FALSE;
  }
  if (!(opt->gamma > 0.0) || !(opt->alpha >= 0.0 && opt->alpha < 1.0)) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "label propagation: gamma = %g, alpha = %g; expected γ > 0 and 0 ≤ α < 1",
                 opt->gamma, opt->alpha);
    return FALSE;
  }
  if (in->weights) {
    if (!kdf_check_finite_f32 (in->weights, n, "weights", error))
      return FALSE;
    for (int64_t i = 0; i < n; i++)
      if (in->weights[i] < 0.0f) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "weights row %" G_GINT64_FORMAT " is %g; expected ≥ 0", (gint64) i,
                     (double) in->weights[i]);
        return FALSE;
      }
  }
  if (in->seed_probs) {
    if (!kdf_check_finite_f32 (in->seed_probs, n * c, "seed probabilities", error))
      return FALSE;
    for (int64_t i = 0; i < n * c; i++)
      if (in->seed_probs[i] < 0.0f) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                     "seed probabilities row %" G_GINT64_FORMAT " class %d is %g; expected ≥ 0",
                     (gint64) (i / c), (int) (i % c), (double) in->seed_probs[i]);
        return FALSE;
      }
  }

  Ledger led = { 0 };
  KdfLpResult res = { 0 };
  gboolean ok = FALSE;
  gint64 t0 = g_get_monotonic_time ();

  /* 1. features (normalised), k-NN */
  const float *x = in->x;
  float *xn = NULL;
  double *inv_norm = NULL;
  if (opt->normalize) {
    xn = ledger_alloc (&led, (gsize) (n * d), sizeof (float));
    inv_norm = ledger_alloc (&led, n, sizeof (double));
    for (int64_t i = 0; i < n; i++) {
      double s = 0.0;
      for (int64_t j = 0; j < d; j++)
        s += (double) x[i * d + j] * x[i * d + j];
      inv_norm[i] = s > 0.0 ? 1.0 / sqrt (s) : 0.0;
      for (int64_t j = 0; j < d; j++)
        xn[i * d + j] = (float) (x[i * d + j] * inv_norm[i]);
    }
  }
  int32_t *index = neighbors;
  if (index == NULL)
    index = ledger_alloc (&led, (gsize) (n * k), sizeof (int32_t));
  float *fsim = ledger_alloc (&led, (gsize) (n * k), sizeof (float));
  double *dsim = NULL, *y = NULL, *z = NULL, *conf = NULL;
  KdfCsr wn = { 0 };
  if (in->knn) {
    /* neighbours given (a cached graph of these features): checked, not searched */
    for (int64_t i = 0; i < n; i++)
      for (int m = 0; m < k; m++) {
        const int32_t j = in->knn[i * k + m];
        if (j < 0 || j >= n || j == i) {
          g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE,
                       "given neighbours: row %" G_GINT64_FORMAT " lists %d; expected another "
                       "row in [0, %" G_GINT64_FORMAT ")", (gint64) i, (int) j, (gint64) n);
          goto out;
        }
        index[i * k + m] = j;
      }
  } else if (!knn_run (index, fsim, xn ? xn : x, n, d, d, k, &opt->knn, &led, error))
    goto out;
  res.seconds_knn = seconds_since (t0);
  t0 = g_get_monotonic_time ();

  /* the graph's similarities again, in double from the features: the GEMM chose the
   * neighbours, the weights do not inherit its float rounding */
  dsim = ledger_alloc (&led, (gsize) (n * k), sizeof (double));
  for (int64_t i = 0; i < n; i++)
    for (int m = 0; m < k; m++) {
      const int64_t j = index[i * k + m];
      double s = 0.0;
      for (int64_t q = 0; q < d; q++)
        s += (double) x[i * d + q] * x[j * d + q];
      if (inv_norm)
        s *= inv_norm[i] * inv_norm[j];
      dsim[i * k + m] = s;
    }
  ledger_free (&led, fsim, (gsize) (n * k), sizeof (float));
  fsim = NULL;
  ledger_free (&led, inv_norm, n, sizeof (double));
  inv_norm = NULL;
  ledger_free (&led, xn, (gsize) (n * d), sizeof (float));
  xn = NULL;

  /* 2. Wn */
  if (!graph_build (&wn, NULL, index, dsim, n, k, opt->gamma, &led, error))
    goto out;
  res.nnz = wn.nnz;
  ledger_free (&led, dsim, (gsize) (n * k), sizeof (double));
  dsim = NULL;
  if (index != neighbors) {
    ledger_free (&led, index, (gsize) (n * k), sizeof (int32_t));
    index = NULL;
  }
  res.seconds_graph = seconds_since (t0);
  t0 = g_get_monotonic_time ();

  /* 3. Y: w_i·onehot(seed_i) (or w_i·seed_probs_i) on the seed rows, columns to sum 1 */
  y = ledger_alloc (&led, (gsize) (n * c), sizeof (double));
  memset (y, 0, (gsize) (n * c) * sizeof *y);
  for (int64_t i = 0; i < n; i++) {
    if (in->seed_mask && !in->seed_mask[i])
      continue;
    const double w = in->weights ? in->weights[i] : 1.0;
    if (in->seed_probs)
      for (int cls = 0; cls < c; cls++)
        y[i * c + cls] = w * in->seed_probs[i * c + cls];
    else
      y[i * c + in->seeds[i]] = w;
  }
  for (int cls = 0; cls < c; cls++) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
      s += y[i * c + cls];
    if (s > 0.0)
      for (int64_t i = 0; i < n; i++)
        y[i * c + cls] /= s;
    else
      res.empty_classes++;
  }

  /* 4. (I − αWn) Z = Y */
  z = ledger_alloc (&led, (gsize) (n * c), sizeof (double));
  if (!solve_run (z, &wn, y, c, opt->alpha, opt->solver, opt->iters, opt->tol,
                  MAX (opt->knn.threads, 1), &res.solve, &led, error))
    goto out;
  ledger_free (&led, y, (gsize) (n * c), sizeof (double));
  y = NULL;
  ledger_free (&led, wn.val, wn.nnz, sizeof (double));
  ledger_free (&led, wn.col, wn.nnz, sizeof (int32_t));
  ledger_free (&led, wn.row_ptr, n + 1, sizeof (int64_t));
  memset (&wn, 0, sizeof wn);
  res.seconds_solve = seconds_since (t0);

  /* 5. Z ← max(Z, 0); soft; confidence = max softmax(Z_i); the percentile rule */
  conf = ledger_alloc (&led, n, sizeof (double));
  for (int64_t i = 0; i < n; i++) {
    double *zi = z + i * c, mx = 0.0, sum = 0.0;
    for (int cls = 0; cls < c; cls++) {
      zi[cls] = zi[cls] > 0.0 ? zi[cls] : 0.0;
      mx = MAX (mx, zi[cls]);
      sum += zi[cls];
    }
    double se = 0.0;
    for (int cls = 0; cls < c; cls++)
      se += exp (zi[cls] - mx);
    conf[i] = 1.0 / se; /* softmax at the maximum: exp(0)/Σ exp(z − max) */
    if (confidence)
      confidence[i] = (float) conf[i];
    if (soft)
      for (int cls = 0; cls < c; cls++)
        soft[i * c + cls] = (float) (sum > 0.0 ? zi[cls] / sum : 1.0 / c);
  }
  double thr = -INFINITY;
  if (opt->percentile > 0.0) {
    /* numpy's percentile (linear): position p/100·(N−1) in the sorted confidences */
    double *sorted = ledger_alloc (&led, n, sizeof (double));
    memcpy (sorted, conf, (gsize) n * sizeof *sorted);
    qsort (sorted, (size_t) n, sizeof *sorted, double_compare);
    const double pos = opt->percentile / 100.0 * (double) (n - 1);
    const int64_t lo = (int64_t) floor (pos), hi = MIN (lo + 1, n - 1);
    thr = sorted[lo] + (pos - (double) lo) * (sorted[hi] - sorted[lo]);
    ledger_free (&led, sorted, n, sizeof (double));
  }
  res.conf_threshold = opt->percentile > 0.0 ? thr : NAN;
  for (int64_t i = 0; i < n; i++) {
    const double *zi = z + i * c;
    int best = 0;
    for (int cls = 1; cls < c; cls++)
      if (zi[cls] > zi[best])
        best = cls;
    const gboolean keep = conf[i] < thr || (in->keep_mask && in->keep_mask[i]) ||
                          zi[best] <= 0.0;
    labels[i] = keep ? in->seeds[i] : best;
    res.n_kept += keep;
    res.n_changed += labels[i] != in->seeds[i];
  }
  ok = TRUE;

out:
  ledger_free (&led, conf, n, sizeof (double));
  ledger_free (&led, z, (gsize) (n * c), sizeof (double));
  ledger_free (&led, y, (gsize) (n * c), sizeof (double));
  ledger_free (&led, dsim, (gsize) (n * k), sizeof (double));
  ledger_free (&led, fsim, (gsize) (n * k), sizeof (float));
  ledger_free (&led, inv_norm, n, sizeof (double));
  ledger_free (&led, xn, (gsize) (n * d), sizeof (float));
  if (index != neighbors)
    ledger_free (&led, index, (gsize) (n * k), sizeof (int32_t));
  kdf_csr_clear (&wn);
  res.peak_bytes = led.peak;
  if (result)
    *result = res;
  return ok;
}
