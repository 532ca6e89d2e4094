/* engine/nn internals shared by model.c, optim.c, checkpoint.c and train.c. */
#pragma once

#include <kdflow/nn.h>

G_BEGIN_DECLS

typedef struct {
  KdfLayerKind kind;
  int torch_index;        /* position in the nn.Sequential (names "N.weight") */
  int in_rank;            /* 1 or 3 */
  int in_c, in_h, in_w;   /* flat input: in_c = features, h = w = 1 */
  int out_c, out_h, out_w;
  int64_t in_size, out_size; /* per sample */
  int kernel, stride, pad;
  gboolean bias;
  gboolean relu_fused;    /* linear/conv: applies the next layer's ReLU itself */
  gboolean alias;         /* output shares the input's buffer (flatten, fused ReLU) */
  double p;               /* dropout */
  int64_t w_off, b_off;   /* into the parameter block, -1 if none */
  int64_t w_numel, b_numel;
} KdfLayer;

/* A network's layout and parameters: what it is, not what a pass through it holds.
 * Read-only during a forward, so any number of passes may use it at once. */
struct _KdfNet {
  char *name;     /* NULL for the trunk; the head name otherwise */
  char *spec;     /* a head's spec string */
  int n_layers;
  KdfLayer *layers;
  int tap;        /* activation index of the feature tap, 0..n_layers */
  int64_t in_size, out_size;
  float *params, *grads; /* one block each, carved by w_off / b_off */
  int64_t n_params;
  gboolean grads_zero;   /* lazy zero_grad pending */
  gboolean input_grad;   /* backward writes dact[0] (heads: into the trunk's tap) */
  int *buf;       /* buf[j]: the activation that owns act[j]'s memory (aliasing) */
  int64_t col_size; /* floats of im2col scratch a pass needs */
  int64_t row_floats; /* floats of activations, their gradients and masks a pass needs per row */
};

/* A pass's workspace through one net: activations and their gradients for CAP rows.
 * act[j] is the input of layer j (act[0] = the net's input, borrowed). A training
 * pass keeps what backward needs; each predict owns one of its own. */
typedef struct {
  int64_t cap;
  int n_layers;
  int *buf;          /* the net's aliasing map: act[j] owns its memory iff buf[j] == j */
  float **act, **dact;
  int32_t **argmax;
  uint8_t **mask;
  float **norm;
  float *col;
  float *in_grad;    /* trunk with the tap at its input: that gradient */
  int64_t n;         /* rows of the last forward */
  gboolean train;    /* last forward was a training one */
  gboolean pending;  /* forward ran since the last backward (heads) */
} KdfPass;

/* arch.c: architecture strings */
typedef struct {
  GArray *specs; /* KdfLayerSpec */
  int in_rank;
  int64_t in_shape[3];
} KdfArchParse;

gboolean kdf_arch_parse (const char *arch, KdfArchParse *ap, GError **error);
/* The "seq:" string of a layer list. */
char *kdf_arch_seq_string (int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs,
                           guint n);
/* Reads a positive decimal integer (≤ 2^24) at *P, advancing it. */
gboolean kdf_arch_read_int (const char **p, int *out);

/* net.c: building nets, passes, forward and backward */
KdfNet *kdf_net_build (const char *what, int in_rank, const int64_t *in_shape,
                       const KdfLayerSpec *specs, guint n, GError **error);
void kdf_net_init_params (KdfNet *net, guint64 seed);
void kdf_net_free (KdfNet *net);
KdfPass *kdf_pass_new (const KdfNet *net);
void kdf_pass_free (KdfPass *pass);
/* X (N × in_size) through NET, keeping what backward needs when TRAIN. DX: where the
 * gradient w.r.t. X goes (a head's input is the trunk's tap), or NULL. Returns the
 * output (N × out_size, in PASS). */
const float *kdf_net_forward (const KdfNet *net, KdfPass *pass, const float *x, float *dx,
                              int64_t n, gboolean train, GRand *rng, int threads);

/* Called as backward finishes each layer with parameters (its gradient is final then)
 * and after the last one: how a fused optimizer step hooks in without the model knowing
 * about optimizers. */
typedef struct {
  void (*layer_done) (gpointer data, KdfNet *net, int64_t off, int64_t len);
  void (*net_done) (gpointer data, KdfNet *net);
  gpointer data;
} KdfBackwardHooks;

/* Backpropagates what was added to PASS's output (and tap) gradients since its training
 * forward, ACCUMULATING parameter gradients into NET (overwriting after a lazy zero). */
void kdf_net_backward (KdfNet *net, KdfPass *pass, const KdfBackwardHooks *hooks, int threads);

/* kernels.c: max-pool backward that overwrites dinp, optionally applying the ReLU
 * mask of its input RELU_OUT. */
void kdf_maxpool2d_backward_set (float *dinp, const float *dout, const int32_t *argmax,
                                 const float *relu_out, int64_t n, int c, int h, int w, int k,
                                 int stride);

float *kdf_nn_alloc (int64_t n_floats); /* 64-byte aligned, zeroed */
void kdf_nn_free (void *p);

/* Makes a lazily zeroed gradient block real. */
void kdf_net_settle_grads (KdfNet *net);
/* All parameter/gradient blocks of a model: net 0 is the trunk. */
guint kdf_model_n_nets (KdfModel *m);
KdfNet *kdf_model_nth_net (KdfModel *m, guint i);

gboolean kdf_optimizer_holds (KdfOptimizer *opt, KdfModel *m);

/* A step split so that each layer is updated right after its backward, while its
 * gradient is still in cache (the trainer's path; kdf_optimizer_step is begin + end):
 * begin, then step_range on slices of nets whose gradients are final, net_done per
 * such net, then end (updates every net not marked done). */
void kdf_optimizer_begin_step (KdfOptimizer *opt);
void kdf_optimizer_step_range (KdfOptimizer *opt, KdfNet *net, int64_t off, int64_t len);
void kdf_optimizer_net_done (KdfOptimizer *opt, KdfNet *net);
void kdf_optimizer_end_step (KdfOptimizer *opt);

/* kdf_model_backward with HOOKS (a fused optimizer step: the trainer's). */
void kdf_model_backward_ex (KdfModel *m, const KdfBackwardHooks *hooks, int threads);

/* loss.c: checks every value of the contiguous f32 tensor T (finite, and ≥ 0 if NONNEG),
 * naming term, input, row and column of the first bad one (KDF_ERROR_VALUE). */
gboolean kdf_loss_check_finite (const char *term, const char *what, KdfTensor *t,
                                gboolean nonneg, GError **error);
/* loss.c: *OUT = Y[ROW], a label of term TERM, or a KDF_ERROR_VALUE naming term, row and
 * label when it lies outside [0, C) (every loss term checks its labels this way). */
gboolean kdf_loss_label_at (int32_t *out, const char *term, const int32_t *y, int32_t row,
                            int64_t c, GError **error);

/* "heads" metadata: "name=spec;name=spec" (newly allocated, "" if none). */
char *kdf_model_heads_string (KdfModel *m);

/* blas.c: C (m×n) = alpha·op(A)·op(B) + beta·C in double, row-major (TA/TB transpose
 * the stored matrices; LDA etc. their stored row lengths). */
void kdf_dgemm_rm (gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                   double *c, int64_t ldc, int threads);

G_END_DECLS
