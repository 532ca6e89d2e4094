/* kdflow — neural networks: models, layers, optimizers, loss terms, checkpoints.
 *
 * A short tour, in the order a training node uses it:
 *
 *   g_autoptr (KdfModel) m = kdf_model_new_from_arch ("mlp:784-512-512-10", seed, &err);
 *   g_autoptr (KdfOptimizer) opt = kdf_optimizer_new_sgd (0.1, 0.9, 5e-4, FALSE);
 *   kdf_optimizer_add_model (opt, m, &err);
 *   KdfLoss *ce = kdf_loss_ce_new (labels, weights, 1.0, &err);      // ce_loss node
 *   KdfLoss *kd = kdf_loss_kd_new (teacher_logits, 4.0, 0.9, &err);  // kd_loss node
 *   KdfLoss *terms[] = { ce, kd };
 *   g_autoptr (KdfTrainer) tr = kdf_trainer_new (m, NULL, opt, &cfg); // student_update
 *   kdf_trainer_epoch (tr, x, terms, 2, rng, threads, &res, cancellable, &err);
 *   kdf_model_save (m, "student.safetensors", &err);
 *
 * and teacher_forward calls kdf_model_predict (m, x, 256, threads, &logits, &features,
 * &err) (softmax_T through kdf_softmax).
 *
 * Layout and conventions (llm.c style): activations are row-major, batch first
 * (N×D, or N×C×H×W for images, as PyTorch). Every kernel writes its output argument
 * first, carries its shapes in a comment and takes a BLIS thread count. Backward
 * kernels ACCUMULATE into every gradient they produce (dinp, dweight, dbias); the
 * model zeroes gradients only when asked (kdf_model_zero_grad, kdf_optimizer_zero_grad).
 * Forward in training mode keeps what backward needs, so one forward is followed by
 * at most one backward. At one thread every result is bit-identical run to run.
 * Thread counts are always arguments: nothing here reads the environment.
 */
#pragma once

#include <gio/gio.h>
#include <kdflow/base.h>
#include <kdflow/tensor.h>

G_BEGIN_DECLS

/* ---- kernels ------------------------------------------------------------------
 * Raw float kernels on contiguous row-major buffers. THREADS is the BLIS budget of
 * the call. Backward kernels accumulate (+=) into dinp, dweight and dbias; a NULL
 * dinp skips the input gradient (the first layer of a network needs none). */

/* out (N,O) = inp (N,I) · weightᵀ (weight is (O,I), PyTorch layout) + bias (O, or
 * NULL); RELU applies max(·,0) in the same pass. */
KDF_API void kdf_linear_forward (float *out, const float *inp, const float *weight, const float *bias,
                                 int64_t n, int64_t in, int64_t o, gboolean relu, int threads);
/* dout (N,O) is the gradient of the (post-ReLU if RELU) output; with RELU it is masked
 * in place by out (N,O) > 0 first. dinp (N,I) += dout·weight; dweight (O,I) +=
 * doutᵀ·inp; dbias (O) += Σ_n dout. GBETA 0 overwrites dweight/dbias instead of
 * accumulating (used right after a lazy zero_grad). */
KDF_API void kdf_linear_backward (float *dinp, float *dweight, float *dbias, float *dout,
                                  const float *out, const float *inp, const float *weight,
                                  int64_t n, int64_t in, int64_t o, gboolean relu, float gbeta,
                                  int threads);

/* out (N,C,OH,OW) = conv(inp (N,C_in,H,W), weight (C,C_in,K,K)) + bias (C, or NULL),
 * with stride S and zero padding P: OH = (H + 2P − K)/S + 1. COL is scratch of
 * C_in·K·K × OH·OW floats (one sample's im2col). RELU as for linear. */
KDF_API void kdf_conv2d_forward (float *out, float *col, const float *inp, const float *weight,
                                 const float *bias, int64_t n, int cin, int h, int w, int cout,
                                 int k, int stride, int pad, gboolean relu, int threads);
/* dout (N,C,OH,OW), masked by out > 0 in place when RELU. dinp (N,C_in,H,W) +=,
 * dweight (C,C_in,K,K) +=, dbias (C) += (GBETA as for linear). COL is scratch of
 * 2 × C_in·K·K × OH·OW floats. */
KDF_API void kdf_conv2d_backward (float *dinp, float *dweight, float *dbias, float *dout,
                                  const float *out, float *col, const float *inp, const float *weight,
                                  int64_t n, int cin, int h, int w, int cout, int k, int stride,
                                  int pad, gboolean relu, float gbeta, int threads);

/* out (N,C,OH,OW) = max over K×K windows of inp (N,C,H,W) with stride S (no padding):
 * OH = (H − K)/S + 1. ARGMAX (N,C,OH,OW) keeps the winning offset inside each plane
 * for backward (first maximum wins). */
KDF_API void kdf_maxpool2d_forward (float *out, int32_t *argmax, const float *inp, int64_t n, int c,
                                    int h, int w, int k, int stride);
/* dinp (N,C,H,W) += dout (N,C,OH,OW) routed through argmax. */
KDF_API void kdf_maxpool2d_backward (float *dinp, const float *dout, const int32_t *argmax, int64_t n,
                                     int c, int h, int w, int k, int stride);

/* out (N,D) = max(inp, 0). */
KDF_API void kdf_relu_forward (float *out, const float *inp, int64_t nd);
/* dinp (N,D) += dout · [out > 0]. */
KDF_API void kdf_relu_backward (float *dinp, const float *dout, const float *out, int64_t nd);

/* out (N,D) = inp · mask / (1 − p), mask (N,D) ∈ {0,1} drawn with P(0) = p from RNG
 * (p = 0 copies and sets mask to 1). */
KDF_API void kdf_dropout_forward (float *out, uint8_t *mask, const float *inp, int64_t nd, double p,
                                  GRand *rng);
/* dinp (N,D) += dout · mask / (1 − p). */
KDF_API void kdf_dropout_backward (float *dinp, const float *dout, const uint8_t *mask, int64_t nd,
                                   double p);

/* out (N,D) = inp / max(‖inp_n‖₂, 1e-12) per row; NORM (N) keeps the denominators. */
KDF_API void kdf_l2norm_forward (float *out, float *norm, const float *inp, int64_t n, int64_t d);
/* dinp (N,D) += (dout − out·⟨out,dout⟩) / norm per row. */
KDF_API void kdf_l2norm_backward (float *dinp, const float *dout, const float *out, const float *norm,
                                  int64_t n, int64_t d);

/* Numerically stable (max-subtracted) softmax and log-softmax of logits (N,C)
 * divided by temperature T > 0: out (N,C) = softmax(logits / T). OUT may be LOGITS. */
KDF_API void kdf_softmax (float *out, const float *logits, int64_t n, int64_t c, double t);
KDF_API void kdf_log_softmax (float *out, const float *logits, int64_t n, int64_t c, double t);

/* ---- layers and models ---------------------------------------------------------- */

typedef enum {
  KDF_LAYER_LINEAR = 0,
  KDF_LAYER_RELU,
  KDF_LAYER_CONV2D,
  KDF_LAYER_MAXPOOL2D,
  KDF_LAYER_FLATTEN,
  KDF_LAYER_DROPOUT,
  KDF_LAYER_L2NORM,
  KDF_LAYER_PRELU, /* max(x,0) + a·min(x,0), one learnt slope a (init 0.25), nn.PReLU() */
} KdfLayerKind;

/* One layer of a sequential model (the C form of a Lua layer table). Unused fields
 * stay 0; the input shape of each layer follows from the one before. */
typedef struct {
  KdfLayerKind kind;
  int out;          /* linear: output features; conv2d: output channels */
  int kernel;       /* conv2d (e.g. 3), maxpool2d (e.g. 2) */
  int stride;       /* conv2d (0 means 1), maxpool2d (0 means kernel) */
  int padding;      /* conv2d: zero padding on each side */
  gboolean no_bias; /* linear, conv2d */
  double p;         /* dropout probability, in [0,1) */
  gboolean tap;     /* this layer's output is the feature tap (at most one layer) */
  gpointer reserved[2];
} KdfLayerSpec;

/* A parameter tensor of a model: PyTorch's name in an nn.Sequential ("0.weight",
 * "heads.proj.2.bias") and layout (linear (O,I), conv (O,I,K,K)). DATA and GRAD point
 * into the model's parameter and gradient blocks. */
typedef struct {
  const char *name;
  int rank;
  int64_t shape[KDF_MAX_RANK];
  int64_t numel;
  float *data;
  float *grad; /* read it through kdf_model_get_param, which settles a lazy zero_grad */
} KdfParam;

typedef struct _KdfNet KdfNet; /* private: one sequential network (trunk or head) */

/* A network: a sequential trunk with a feature tap, plus optional projection heads on
 * that tap. The fields are public for reading.
 *
 * Threads: the layout and parameters are separate from the workspace of a pass
 * (activations and their gradients). A model owns one workspace, for training:
 * forward, backward and training use it, so one thread at a time trains a model.
 * kdf_model_predict makes a workspace of its own and only reads the parameters, so any
 * number of predicts may run at once while nothing trains it. A node that must forward
 * a model another node keeps training publishes or takes a kdf_model_copy. */
struct _KdfModel {
  KdfObject parent;     /* kind KDF_VALUE_MODEL */
  char *arch;           /* canonical architecture string (checkpoint metadata) */
  int in_rank;          /* 1 (D) or 3 (C,H,W) */
  int64_t in_shape[3];  /* per-sample input shape */
  int64_t in_size;      /* elements per sample */
  int64_t n_classes;    /* width of the logits */
  int64_t n_features;   /* width of the feature tap */
  int64_t n_params;     /* scalar parameters, heads included */
  KdfNet *trunk;        /* layout and parameters (private) */
  GPtrArray *heads;     /* KdfNet*, in creation order */
  GPtrArray *params;    /* KdfParam*, trunk first, then heads, in order */
  GPtrArray *passes;    /* private: the training pass's workspace, one per net */
  gboolean train_pass;  /* the last forward was in training mode (backward allowed) */
  int64_t batch;        /* rows of the last forward */
  gpointer reserved[4];
};

/* Builds a model from an architecture string (transfer full; NULL with a
 * KDF_ERROR_PARAM error naming the bad token). Parameters are initialised as PyTorch
 * does (weights kaiming-uniform with a = √5, i.e. U(±1/√fan_in); biases U(±1/√fan_in))
 * from SEED alone, so the same seed gives the same model on every machine.
 *
 *   mlp:784-512-512-10     Linear+ReLU between sizes, a Linear last.
 *                          Tap: the last hidden ReLU's output (512).
 *   mlp:...:nobias         the same without biases.
 *   linear:256-10[:nobias] one Linear (a linear probe). Tap: its input (256).
 *   cnn:CxHxW-TOKENS-C     an image CNN on C×H×W inputs, then a Linear to C classes:
 *       cN       3×3 conv, stride 1, padding 1, N channels, + ReLU
 *       cNkKsSpP the same with kernel K, stride S, padding P (any of k/s/p may go)
 *       pK       K×K max-pool, stride K
 *       fN       (flatten,) Linear N + ReLU
 *       dP       dropout with probability P (e.g. d0.5)
 *     The tap is the input of the final Linear. The METHODS §3 teacher is
 *       cnn:1x28x28-c32-p2-c64-p2-f256-10
 *     = Conv(1,32,3,p1) ReLU MaxPool(2) Conv(32,64,3,p1) ReLU MaxPool(2) Flatten
 *       Linear(3136,256) ReLU Linear(256,10), tap 256.
 *   seq:SHAPE-L-L-...      the general form (what kdf_model_new writes): SHAPE is D or
 *                          CxHxW; each L is linearO, convOkKsSpP, relu, prelu, maxKsS,
 *                          flatten, dropP, l2norm, or tap (marks the previous layer's
 *                          output); an "nb" suffix on linear/conv drops the bias. */
KDF_API KdfModel *kdf_model_new_from_arch (const char *arch, guint64 seed, GError **error);

/* Builds a model from IN_SHAPE (rank 1 or 3) and N_SPECS layer specs (transfer full).
 * The last layer's output must be flat (N×C): the logits. The tap defaults to the
 * input of the last Linear. Its arch string is the equivalent "seq:" form. */
KDF_API KdfModel *kdf_model_new (int in_rank, const int64_t *in_shape, const KdfLayerSpec *specs,
                                 guint n_specs, guint64 seed, GError **error);

/* A deep copy: same architecture and heads, same parameter values, gradients zeroed
 * (transfer full). */
KDF_API KdfModel *kdf_model_copy (KdfModel *m);

/* Adds a projection head on the feature tap, owned by the model: SPEC is an MLP size
 * list after the tap ("128-64": Linear(F,128) ReLU Linear(128,64)); a trailing "-l2"
 * L2-normalises its output. Parameters "heads.NAME.0.weight", ... Returns the head's
 * index, or -1 with an error (bad spec, duplicate name). */
KDF_API int kdf_model_add_head (KdfModel *m, const char *name, const char *spec, guint64 seed,
                                GError **error);
KDF_API int kdf_model_find_head (KdfModel *m, const char *name); /* -1 if none */
KDF_API int64_t kdf_model_head_dim (KdfModel *m, int head);      /* output width */

static inline KdfModel *
kdf_model_ref (KdfModel *m)
{
  return (KdfModel *) kdf_object_ref (m);
}
static inline void
kdf_model_unref (KdfModel *m)
{
  kdf_object_unref (m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfModel, kdf_model_unref)

/* Parameters: I in [0, m->params->len). Settles a pending lazy zero_grad first, so
 * p->grad is always current (transfer none). */
KDF_API const KdfParam *kdf_model_get_param (KdfModel *m, guint i);
KDF_API const KdfParam *kdf_model_find_param (KdfModel *m, const char *name);

/* Runs the trunk on N samples X (N × in_size floats, contiguous). X must stay valid
 * and unchanged until kdf_model_backward. TRAIN enables dropout (drawing from RNG,
 * which may be NULL when the model has no dropout) and readies backward: the logits
 * and tap gradient buffers are zeroed for the loss terms to add into. Returns the
 * logits (N × n_classes, transfer none, valid until the next forward). */
KDF_API const float *kdf_model_forward (KdfModel *m, const float *x, int64_t n, gboolean train,
                                        GRand *rng, int threads);
/* After a forward: the tap output (N × n_features) and logits (transfer none). */
KDF_API const float *kdf_model_get_features (KdfModel *m);
KDF_API const float *kdf_model_get_logits (KdfModel *m);
/* After a training forward: where loss terms ADD dL/dlogits and dL/dfeatures
 * (N × n_classes, N × n_features; transfer none). */
KDF_API float *kdf_model_get_grad_logits (KdfModel *m);
KDF_API float *kdf_model_get_grad_features (KdfModel *m);

/* Heads: forward from the current tap output (N × head_dim, transfer none), and the
 * buffer where losses add the gradient of the head's output. */
KDF_API const float *kdf_model_head_forward (KdfModel *m, int head, int threads);
KDF_API float *kdf_model_get_head_grad (KdfModel *m, int head);
/* What a loss term that trains a head calls on each batch: the head NAME of SPEC,
 * added on first use (initialised from SEED; the optimizer trains heads added later,
 * and checkpoints keep them), forwarded once per training pass (a second term on the
 * same head shares its output and gradient). Returns its output over the last
 * training forward's rows (rows × head_dim) and *GRAD where to add the gradient; NULL
 * with a KDF_ERROR_PARAM error when the model has a head NAME of another spec or no
 * training forward ran. */
KDF_API const float *kdf_model_head_train (KdfModel *m, const char *name, const char *spec,
                                           guint64 seed, int threads, float **grad,
                                           GError **error);

/* Rotates N square images (N,C,S,S) by ROT[i] quarter turns counter-clockwise:
 * out (N,C,S,S), OUT ≠ IN (rotation_loss's inputs). */
KDF_API void kdf_rotate90 (float *out, const float *in, int64_t n, int c, int s, const int32_t *rot);

/* Backpropagates the gradients added since the training forward (logits, tap, heads
 * that ran forward) and ACCUMULATES parameter gradients. */
KDF_API void kdf_model_backward (KdfModel *m, int threads);
/* Zeroes all parameter gradients. Lazy: marks them zero so the next backward
 * overwrites instead of adding (reading them through kdf_model_get_param settles it). */
KDF_API void kdf_model_zero_grad (KdfModel *m);

/* Forward over a whole data set X (N × in_size or N×C×H×W f32, any strides) in
 * eval mode, BATCH rows at a time (0 means 256), on private buffers (see above).
 * LOGITS (N × n_classes) and/or FEATURES (N × n_features) are new tensors (transfer
 * full; pass NULL to skip one). What teacher_forward calls. */
KDF_API gboolean kdf_model_predict (KdfModel *m, KdfTensor *x, int64_t batch, int threads,
                                    KdfTensor **logits, KdfTensor **features, GError **error);
/* kdf_model_predict on the N_ROWS rows ROWS of X (an index view, no copy of the rows):
 * output row i is X's row ROWS[i]; a row outside X fails (KDF_ERROR_SHAPE). */
KDF_API gboolean kdf_model_predict_rows (KdfModel *m, KdfTensor *x, const int32_t *rows,
                                         int64_t n_rows, int64_t batch, int threads,
                                         KdfTensor **logits, KdfTensor **features,
                                         GError **error);

/* ---- checkpoints (safetensors) ------------------------------------------------ */

/* Writes every parameter as F32 under its PyTorch name, with __metadata__ { "arch":
 * m->arch, "heads": "name=spec;..." , "format": "pt" }. Atomic: a temp file renamed
 * over PATH, so a crash never leaves a half-written checkpoint. */
KDF_API gboolean kdf_model_save (KdfModel *m, const char *path, GError **error);
/* A new model built from the file's architecture (and heads) holding its weights
 * (transfer full). Refuses, with a KDF_ERROR_IO error naming the file and the tensor,
 * truncated files, bad headers, dtypes other than F32, offsets out of range and
 * shapes or names that disagree with the architecture. */
KDF_API KdfModel *kdf_model_load (const char *path, GError **error);
/* Loads weights into an existing model with the same parameters (names and shapes
 * must match; the arch string need not). */
KDF_API gboolean kdf_model_load_into (KdfModel *m, const char *path, GError **error);

/* ---- optimizers and schedules ------------------------------------------------------ */

typedef enum {
  KDF_OPTIM_SGD = 0,
  KDF_OPTIM_ADAM = 1,
} KdfOptimKind;

typedef struct {
  KdfOptimKind kind;
  double lr;
  double weight_decay; /* L2 added to the gradient, as torch.optim (all parameters) */
  /* SGD */
  double momentum;     /* v = μ·v + g (PyTorch, dampening 0) */
  gboolean nesterov;   /* step with g + μ·v */
  /* Adam */
  double beta1, beta2, eps; /* 0 means 0.9, 0.999, 1e-8 */
  gboolean decoupled;       /* AdamW: p -= lr·wd·p instead of L2 */
  gpointer reserved[4];
} KdfOptimConfig;

/* An optimizer over the parameters of one or more models (a teacher–student pair
 * trained jointly is two models in one optimizer). Refcounted. */
typedef struct _KdfOptimizer KdfOptimizer;

KDF_API KdfOptimizer *kdf_optimizer_new (const KdfOptimConfig *cfg, GError **error); /* transfer full */
KDF_API KdfOptimizer *kdf_optimizer_new_sgd (double lr, double momentum, double weight_decay,
                                             gboolean nesterov);
KDF_API KdfOptimizer *kdf_optimizer_new_adam (double lr, double weight_decay);
KDF_API KdfOptimizer *kdf_optimizer_ref (KdfOptimizer *opt);
KDF_API void kdf_optimizer_unref (KdfOptimizer *opt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfOptimizer, kdf_optimizer_unref)

/* Adds M's parameters (takes a reference). Refuses a model already added. */
KDF_API gboolean kdf_optimizer_add_model (KdfOptimizer *opt, KdfModel *m, GError **error);
KDF_API guint kdf_optimizer_n_models (KdfOptimizer *opt);
KDF_API void kdf_optimizer_set_lr (KdfOptimizer *opt, double lr);
KDF_API double kdf_optimizer_get_lr (KdfOptimizer *opt);
/* One update of every parameter of every model from its gradient. */
KDF_API void kdf_optimizer_step (KdfOptimizer *opt, int threads);
/* A data-parallel step (kdflow/dist.h): every net's gradient is multiplied by SCALE
 * (this rank's share of the batch), summed over the ranks, and the update made from
 * the sum — the same on every rank. One rank: the gradient times SCALE. */
KDF_API gboolean kdf_optimizer_step_allreduce (KdfOptimizer *opt, float scale, GError **error);
/* kdf_model_zero_grad on every model. */
KDF_API void kdf_optimizer_zero_grad (KdfOptimizer *opt);
KDF_API guint64 kdf_optimizer_get_steps (KdfOptimizer *opt);

typedef enum {
  KDF_SCHEDULE_CONSTANT = 0,
  KDF_SCHEDULE_STEP,   /* lr · gamma^⌊t / step_size⌋ */
  KDF_SCHEDULE_COSINE, /* min_lr + (lr − min_lr)(1 + cos(π·t/t_max))/2, t clamped to t_max */
} KdfScheduleKind;

/* A learning-rate schedule over a step counter t (epochs or iterations, the caller's
 * choice): an optional linear warm-up over the first WARMUP steps, from
 * lr·warmup_start to lr, then KIND on t − warmup (so warm-up then cosine composes). */
typedef struct {
  KdfScheduleKind kind;
  int64_t step_size; double gamma;  /* step */
  int64_t t_max; double min_lr;     /* cosine: the length after warm-up */
  int64_t warmup; double warmup_start; /* warm-up steps and start factor (0 means 0) */
  gpointer reserved[2];
} KdfSchedule;

KDF_API double kdf_schedule_lr (const KdfSchedule *s, double base_lr, int64_t t);

/* ---- loss terms ------------------------------------------------------------------- */

typedef enum {
  KDF_LOSS_NEEDS_LOGITS = 1 << 0,
  KDF_LOSS_NEEDS_FEATURES = 1 << 1,  /* the tap output (and its gradient) */
  KDF_LOSS_NEEDS_TEACHER = 1 << 2,   /* bound teacher logits */
  KDF_LOSS_NEEDS_TWO_VIEWS = 1 << 3, /* two augmented views of each sample */
  KDF_LOSS_NEEDS_PARTNER = 1 << 4,   /* both networks of a pair on the same batch */
  KDF_LOSS_SELECTS = 1 << 5,         /* selects rows of each batch (writes batch->selected) */
  KDF_LOSS_NEEDS_SELECTION = 1 << 6, /* reads batch->selected: a selecting term must come
                                        before it in the list */
  KDF_LOSS_NEEDS_ROTATION = 1 << 7,  /* a rotated copy of each row (batch->ext->rot) */
} KdfLossNeeds;

/* Which network(s) of a pair a term applies to. */
typedef enum {
  KDF_LOSS_NET0 = 1 << 0,
  KDF_LOSS_NET1 = 1 << 1,
  KDF_LOSS_BOTH = KDF_LOSS_NET0 | KDF_LOSS_NET1,
} KdfLossNets;

/* One network's outputs for one view of a mini-batch (all row-major, n rows). */
typedef struct {
  const float *logits; /* n × n_classes */
  float *grad_logits;  /* n × n_classes: ADD dL/dlogits here */
  const float *features; /* n × n_features (tap) */
  float *grad_features;  /* n × n_features: ADD dL/dfeatures here */
  int64_t n_classes, n_features;
  KdfModel *model;       /* for heads (kdf_model_head_forward); transfer none */
} KdfLossView;

/* A mini-batch as loss terms see it. */
typedef struct {
  int64_t n;               /* rows */
  const int32_t *rows;     /* n dataset rows (indices into the bound per-sample inputs) */
  int n_nets;              /* 1, or 2 for a pair */
  int n_views;             /* 1, or 2 when a term asked for two views */
  KdfLossView out[2][2];   /* [net][view] */
  /* Mixup: when mix is non-NULL, row i of the input was lambda·x[rows[i]] +
   * (1 − lambda)·x[rows[mix[i]]] (mix indexes batch rows); a term mixes its targets
   * the same way. */
  const int32_t *mix;
  double lambda;
  /* If non-NULL (n floats), each term ADDS weight × its per-sample loss on net 0
   * (before per-sample weights, so ranking still sees excluded samples). */
  float *sample_loss;
  int threads;
  /* n flags, 1 on entry: a selecting term (KDF_LOSS_SELECTS) clears the rows it drops
   * from net 0's objective (in-batch small-loss selection); a term that needs the
   * selection reads it after. */
  uint8_t *selected;
  const struct _KdfLossBatchExt *ext; /* what later terms need (below); may be NULL */
  gpointer reserved[2];
} KdfLossBatch;

/* The rest of a batch (the trainer always fills it in). */
typedef struct _KdfLossBatchExt {
  /* The trainer's RNG, for terms that draw per batch (contrastive proto's mixup λ and
   * pairing); draws happen after the forward, in term order, so a run stays a
   * function of the seed. */
  GRand *rng;
  /* With KDF_LOSS_NEEDS_ROTATION: batch row i was also forwarded rotated by rot[i]
   * quarter turns counter-clockwise (rot[i] in 0..3, drawn uniformly per row), from
   * the first view's input; rot_out[net] holds those n rows' outputs. NULL otherwise. */
  const int32_t *rot;
  KdfLossView rot_out[2];
  gpointer reserved[4];
} KdfLossBatchExt;

/* Computes the term over BATCH for the nets it applies to: sets *VALUE to the term's
 * value (the sum over its nets, NOT multiplied by its weight) and ADDS weight ×
 * gradient into the batch's grad buffers. FALSE with an error on bad inputs (a row
 * beyond the bound data, a class count that differs). */
typedef gboolean (*KdfLossComputeFunc) (KdfLoss *self, const KdfLossBatch *batch, double *value,
                                         GError **error);

/* A batch-level objective with its per-sample inputs bound (ARCHITECTURE §6). Terms
 * are written by filling this struct through kdf_loss_new. */
struct _KdfLoss {
  KdfObject parent;       /* kind KDF_VALUE_LOSS */
  char *name;             /* "ce", "kd", ... for display */
  double weight;          /* scale of the term in the objective */
  guint needs;            /* KdfLossNeeds */
  guint nets;             /* KdfLossNets (default NET0) */
  int64_t n_samples;      /* rows of the bound inputs, or -1 if none are bound */
  int64_t n_classes;      /* class count the bound inputs imply, or -1 */
  KdfLossComputeFunc compute;
  gpointer data;          /* the term's own state */
  GDestroyNotify data_free;
  /* A model the term owns and trains (or NULL): e.g. AWE's weight network. The trainer
   * adds it to its optimizer (so its gradients are zeroed with the networks' before
   * every step and it is stepped with them), and after the terms ran, backpropagates
   * what the term added to its logits gradient after a training forward on it. */
  KdfModel *model;
  gpointer reserved[3];
};

/* A new term (transfer full): the base for ce, kd and terms added later. */
KDF_API KdfLoss *kdf_loss_new (const char *name, double weight, guint needs, KdfLossComputeFunc compute,
                               gpointer data, GDestroyNotify data_free);
static inline KdfLoss *
kdf_loss_ref (KdfLoss *l)
{
  return (KdfLoss *) kdf_object_ref (l);
}
static inline void
kdf_loss_unref (KdfLoss *l)
{
  kdf_object_unref (l);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfLoss, kdf_loss_unref)

KDF_API void kdf_loss_set_nets (KdfLoss *l, guint nets);
/* Gives the term a model to own and train (takes a reference; see KdfLoss.model). */
KDF_API void kdf_loss_set_model (KdfLoss *l, KdfModel *m);
KDF_API gboolean kdf_loss_compute (KdfLoss *l, const KdfLossBatch *batch, double *value,
                                   GError **error);

/* Cross-entropy: mean_i w_i · H(t_i, softmax(z_i)) over the batch, i.e. the per-sample
 * weights multiply each sample's CE before the mean (not mean(w)·mean(CE)). TARGETS
 * is N i32 class labels or N×C f32 soft targets; WEIGHTS is N f32 or NULL (all 1).
 * Tensors are referenced, not copied. */
KDF_API KdfLoss *kdf_loss_ce_new (KdfTensor *targets, KdfTensor *weights, double weight,
                                  GError **error);
/* In-batch small-loss selection for the cross-entropy term (AML-KD keeps the (1−r)·B
 * smallest losses of each mini-batch; Co-teaching's per-batch rule):
 *   KDF_SELECT_ALL        every row counts (the default);
 *   KDF_SELECT_SMALL_LOSS the ⌊keep·n⌋ rows of the batch with the smallest unweighted
 *                         CE count (ties to the earlier batch position);
 *   KDF_SELECT_OTSU       the rows whose CE lies below the Otsu threshold of the batch's
 *                         min-max normalised CEs (classic criterion, BINS bins): the
 *                         noise rate need not be known. A batch whose losses are all
 *                         equal keeps every row.
 * The ranking is inside the trainer's actual (shuffled) mini-batch, on the losses of
 * this forward. The term's value is then (1/|K|) Σ_{i∈K} w_i·CE_i over the kept set K
 * (0 if K is empty), its gradient only from K; sample_loss still gets every row's
 * loss, and batch->selected loses the dropped rows (net 0). With nets BOTH each net
 * selects on its own losses. */
typedef enum {
  KDF_SELECT_ALL = 0,
  KDF_SELECT_SMALL_LOSS = 1,
  KDF_SELECT_OTSU = 2,
} KdfSelectKind;

KDF_API gboolean kdf_loss_ce_set_selection (KdfLoss *ce, KdfSelectKind kind, double keep, int bins,
                                            GError **error);

/* The kept rows of N per-sample losses (the kernel behind the CE term's selection):
 * KEPT (n) gets 1 for a kept row; returns |K| or -1 with an error (NaN loss, keep
 * outside [0,1], Otsu failure). */
KDF_API int64_t kdf_batch_select (uint8_t *kept, const double *loss, int64_t n, KdfSelectKind kind,
                                  double keep, int bins, GError **error);

/* Hinton distillation: T² · KL(softmax_T(z_teacher) ‖ softmax_T(z_student)), mean over
 * the batch; TEACHER_LOGITS is N×C f32; T > 0 (4 by default in kd_loss). */
KDF_API KdfLoss *kdf_loss_kd_new (KdfTensor *teacher_logits, double t, double weight, GError **error);

/* Per-sample cross-entropy of logits (N,C) against labels (N): out (N). */
KDF_API void kdf_cross_entropy (float *out, const float *logits, const int32_t *labels, int64_t n,
                                int64_t c);

/* ---- training -------------------------------------------------------------------- */

typedef enum {
  KDF_AUGMENT_NONE = 0,
  KDF_AUGMENT_SHIFT = 1 << 0, /* random translation by ±shift px, zero fill (RandomCrop
                                 with padding) */
  KDF_AUGMENT_FLIP = 1 << 1,  /* horizontal flip with probability ½ */
} KdfAugmentFlags;

/* Augments N images in (N,C,H,W) into out (N,C,H,W) (OUT ≠ IN): each image draws its
 * offsets (dy, dx ∈ [−shift, shift]) and flip from RNG. */
KDF_API void kdf_augment (float *out, const float *in, int64_t n, int c, int h, int w, guint flags,
                          int shift, GRand *rng);

/* Gathers rows: out (n, D) = x[rows[i], :] for a f32 data set X of N rows
 * (D = numel / N, any strides), or a tensor kept on disk (tensor.h: its rows read from
 * the file and decoded). FALSE with an error for a row out of range or a failed read. */
KDF_API gboolean kdf_gather_rows (float *out, KdfTensor *x, const int32_t *rows, int64_t n,
                                  GError **error);

/* A Beta(α, α) draw (mixup's λ) from RNG. */
KDF_API double kdf_rand_beta (GRand *rng, double alpha);

typedef struct {
  int64_t batch;       /* rows per mini-batch (0 means 128) */
  guint augment;       /* KdfAugmentFlags */
  int shift;           /* pixels for KDF_AUGMENT_SHIFT (0 means 2) */
  /* Image shape for augmentation; 0 takes the model's C×H×W input, or 1×√D×√D for a
   * flat input of square size D. */
  int image_c, image_h, image_w;
  double mixup_alpha;  /* > 0: mixup with λ ~ Beta(α, α) per batch */
  gboolean no_shuffle; /* epochs walk rows in order (tests) */
  /* > 0: every view gets Gaussian noise of this standard deviation added per input
   * value (after shift/flip; any input shape), so two views differ even without an
   * image shape (contrastive terms) */
  double noise;
  gpointer reserved[3];
} KdfTrainConfig;

/* One epoch's inputs and outputs besides the data. Per-sample outputs are the training
 * pass's, for the first view, scattered back to dataset order: fill in the pointers
 * you want (caller-owned) and leave the rest NULL. */
typedef struct {
  float *sample_loss;  /* N: Σ_terms weight · per-sample loss (net 0) */
  float *logits;       /* N × n_classes of net 0 */
  float *logits2;      /* N × n_classes of net 1 (a pair) */
  float *features;     /* N × n_features of net 0 */
  /* Called after each mini-batch with the fraction of the epoch's rows done. */
  void (*progress) (double fraction, gpointer data);
  gpointer progress_data;
  int epoch;           /* 0-based, for messages ("epoch 3, batch 12") */
  double loss;         /* out: mean over batches of the weighted objective */
  int64_t batches;     /* out */
  /* N: 1 where the sample counted in net 0's objective in its batch (the in-batch
   * selection, see KdfSelectKind; all 1 when no term selects) */
  uint8_t *selected;
  gpointer reserved[3];
} KdfEpochResult;

/* The training loop's state: one or two networks, their optimizer, reusable batch
 * buffers. Not thread-safe; one per training node. */
typedef struct _KdfTrainer KdfTrainer;

/* NET1 may be NULL (one network). OPT must hold the parameters of every network
 * (transfer none on all; the trainer takes references). CFG may be NULL. */
KDF_API KdfTrainer *kdf_trainer_new (KdfModel *net0, KdfModel *net1, KdfOptimizer *opt,
                                     const KdfTrainConfig *cfg, GError **error);
KDF_API void kdf_trainer_free (KdfTrainer *tr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KdfTrainer, kdf_trainer_free)

/* One training step on the N dataset rows ROWS of X: gather, augment (two views if a
 * term needs them), mixup, forward every network in training mode, zero-grad, sum the
 * terms, backward, optimizer step. *LOSS (may be NULL) gets Σ weight·value; SAMPLE_LOSS
 * (n floats, may be NULL) gets the per-sample losses in batch order. A loss that is not
 * finite fails the step (KDF_ERROR_NODE, naming the value and the learning rate)
 * before any weight changes. */
KDF_API gboolean kdf_trainer_step (KdfTrainer *tr, KdfTensor *x, const int32_t *rows, int64_t n,
                                   KdfLoss *const *losses, guint n_losses, GRand *rng,
                                   int threads, double *loss, float *sample_loss,
                                   GError **error);
/* After a step: its batch's selection (n flags, batch order; transfer none). */
KDF_API const uint8_t *kdf_trainer_get_selected (KdfTrainer *tr);
/* One epoch — the one epoch loop every training node runs: a fresh permutation of the
 * rows of X drawn from RNG (Fisher–Yates; in order with cfg.no_shuffle), mini-batches of
 * cfg.batch rows (the last one may be short), CANCELLABLE checked before each batch
 * (KDF_ERROR_CANCELLED), the training pass's outputs scattered back to dataset order
 * (RES, may be NULL). The terms' bound inputs must cover X's rows and the networks'
 * classes (checked first, with a message naming the term). */
KDF_API gboolean kdf_trainer_epoch (KdfTrainer *tr, KdfTensor *x, KdfLoss *const *losses,
                                    guint n_losses, GRand *rng, int threads,
                                    KdfEpochResult *res, GCancellable *cancellable,
                                    GError **error);
/* An index view of the data (a fold, the rows a filter kept), no copy: from now on the
 * data kdf_trainer_epoch and kdf_trainer_step see is N rows, row r being X's row
 * ROWS[r] (checked against X by each epoch); the terms' inputs, the permutation and
 * RES's per-sample outputs have N rows. ROWS is not copied (transfer none): it must
 * stay valid until the view is replaced; NULL (n = 0) restores all of X's rows. */
KDF_API void kdf_trainer_set_rows (KdfTrainer *tr, const int32_t *rows, int64_t n);
/* Checks LOSSES against X's N rows and the trainer's networks: row counts, class
 * counts, terms that need a partner or are for one (what kdf_trainer_epoch checks). */
KDF_API gboolean kdf_trainer_check_losses (KdfTrainer *tr, int64_t n, KdfLoss *const *losses,
                                           guint n_losses, GError **error);

/* ---- loss terms of the noisy-label methods (METHODS §1: Blind KD, SD/PLL) --------
 * engine/nn/loss_methods.c. Like ce and kd: per-sample inputs bound at construction
 * (referenced, not copied), values are means over the batch, gradients scaled by the
 * term's weight, mixup mixes the targets with the batch's λ and pairing, and
 * sample_loss gets weight × the per-sample loss on net 0. Bad values (a label
 * outside [0, C), a group outside 1..4, an empty candidate set, NaN) are
 * KDF_ERROR_VALUE, bad shapes KDF_ERROR_SHAPE, bad options KDF_ERROR_PARAM.
 *
 * "Partner" terms read the other network of a trained pair on the same batch
 * (KDF_LOSS_NEEDS_PARTNER): with nets NET0 the term trains net 0 against net 1's
 * output, with NET1 the reverse. The partner's output is a target, so no gradient
 * reaches it — except for blind with KDF_LOSS_BOTH, see below. */

/* Blind KD (Kaiser et al., arXiv 2211.11355), the "compensation" loss:
 *   L = Σ_i Σ_{c≠ỹ_i} (z^T_ic − z^S_ic)² / (B·(C−1))
 * (the released code divides by B·C − 1, an operator-precedence slip). LABELS: N
 * i32. TEACHER_LOGITS: N×C f32 bound per sample (a frozen teacher; the term trains
 * the nets it is set to, each against them), or NULL: the teacher is the partner
 * network on the same batch. Partner mode, by nets:
 *   NET0  net 0 (the student) learns from net 1's masked logits, which are a target
 *         (no gradient into net 1) — the paper's intent: distillation;
 *   NET1  the reverse;
 *   BOTH  the one MSE between the two, differentiated w.r.t. both (its value counted
 *         once) — what the released code's single optimizer does, since nothing
 *         detaches the teacher there: the teacher is also pulled towards the student.
 * Mixup: ℓ_i = λ·ℓ(ỹ_a, t_a) + (1−λ)·ℓ(ỹ_b, t_b): each source masks its own label;
 * the target is the partner's logits on the mixed input, or the bound teacher's row
 * of each source. C ≥ 2. */
KDF_API KdfLoss *kdf_loss_blind_new (KdfTensor *labels, KdfTensor *teacher_logits, double weight,
                                     GError **error);

/* Blind KD's robust target of one sample: t (C) = normalise(((1−β)·onehot(LABEL) +
 * β·p)^(1+β)), p (C) a probability row, β ∈ [0,1]. A row whose base is all zero
 * (β = 1 and p = 0) gets the one-hot. FALSE with KDF_ERROR_VALUE on a label outside
 * [0, C) or a β outside [0,1]. */
KDF_API gboolean kdf_robust_target (double *t, const double *p, int64_t c, int32_t label, double beta,
                                    GError **error);

/* Blind KD after the split: mean_i H(t_i, softmax(z_i)) with t_i the robust target of
 * ỹ_i, β_i = ALPHAS[g_i − 1] and p_i the partner's probabilities (Kaiser et al.,
 * arXiv 2211.11355; the released code lets the gradient flow through p into the
 * partner — here p is a target). LABELS: N i32. GROUPS: N i32 in 1..4 (otsu_threshold's
 * groups, 1 = highest agreement), or NULL: β = 0 for every sample, i.e. plain CE on
 * the labels (the released code before the tipping point; no partner needed). ALPHAS:
 * β of groups 1..4, in [0,1] and non-decreasing (0.30, 0.45, 0.55, 0.70 in the paper).
 * PROBS: N×C f32 bound per sample (rows ≥ 0), or NULL: p is the softmax of the
 * partner network's logits on the same batch (with BOTH, each net against the
 * other's; the values add up). Mixup mixes the two sources' targets (each with its
 * own label, β and, when bound, p). */
KDF_API KdfLoss *kdf_loss_robust_ce_new (KdfTensor *labels, KdfTensor *groups, KdfTensor *probs,
                                         const double alphas[4], double weight, GError **error);

/* Generalised cross-entropy over a candidate set (Zhang & Sabuncu 2018; as a PLL loss,
 * Jeong & Chung, arXiv 2402.10482): ℓ_i = Σ_k w_ik (1 − p_ik^q)/q with p =
 * softmax(z_i), i.e. the w-weighted mean of the per-candidate terms. CANDIDATES:
 *   u8 N×C   a mask (topk_refine's): w = 1/|S_i| on the candidates;
 *   f32 N×C  non-negative weights (e.g. topk_refine's 1/k soft targets), normalised
 *            per row — a soft set;
 *   i32 N    one label per row: plain GCE.
 * A row with no candidate (zero sum) is a KDF_ERROR_VALUE. q ∈ (0, 1] (0.7). Mixup
 * mixes the two rows' normalised weights. */
KDF_API KdfLoss *kdf_loss_gce_new (KdfTensor *candidates, double q, double weight, GError **error);

/* ---- AWE: ambiguity-aware weights (AML-KD, Jiang et al., TNNLS 2023; METHODS §1 awe) ---
 * engine/nn/awe.c. Everything is per dataset row: weights come out in the order of the
 * features and labels that went in, and the term reads labels at the batch's dataset
 * rows, so a weight can never land on another sample (the released code scales each
 * LP seed by another sample's weight). */

typedef enum {
  KDF_AWE_NET = 0,    /* g([cos(φ_i, μ_c)]_c ⊕ onehot(ỹ_i)), g: Linear(2C,C) PReLU Linear(C,1) sigmoid */
  KDF_AWE_COSINE = 1, /* sigmoid(cos(φ_i, μ_{ỹ_i})) (AML-KD stage 2) */
  KDF_AWE_MARGIN = 2, /* (cos(φ_i, μ_{ỹ_i}) − max_{c≠ỹ_i} cos(φ_i, μ_c) + 2) / 4 (ours) */
} KdfAweMode;

/* CENTERS (C×F) = the mean of the features (N×F) of each label; COUNTS (C, nullable)
 * the samples per class. A class without samples gets a zero centre (its cosines are
 * 0). KDF_ERROR_VALUE on a label outside [0, C). */
KDF_API gboolean kdf_class_centers (float *centers, int64_t *counts, const float *features,
                                    const int32_t *labels, int64_t n, int64_t f, int64_t c,
                                    GError **error);
/* COS (N×C) = cos(φ_i, μ_c), in double inside; 0 where φ_i or μ_c is zero. */
KDF_API void kdf_awe_cosines (float *cos, const float *features, const float *centers, int64_t n,
                              int64_t f, int64_t c);
/* W (N) from the cosines (N×C) and labels for KDF_AWE_COSINE or KDF_AWE_MARGIN (C ≥ 2
 * for margin). KDF_ERROR_VALUE on a bad label, KDF_ERROR_PARAM on another mode. */
KDF_API gboolean kdf_awe_weights (float *w, const float *cos, const int32_t *labels, int64_t n,
                                  int64_t c, KdfAweMode mode, GError **error);
/* The weight network's input (N×2C): the cosines, then onehot(label). Labels must be
 * in [0, C) (checked by the callers). */
KDF_API void kdf_awe_net_input (float *in, const float *cos, const int32_t *labels, int64_t n,
                                int64_t c);
/* A new weight network for C classes: seq:2C-linearC-prelu-linear1 (transfer full). */
KDF_API KdfModel *kdf_awe_net_new (int64_t c, guint64 seed, GError **error);
/* W (N) = sigmoid(g(input)) with the network in eval mode. */
KDF_API gboolean kdf_awe_net_weights (float *w, KdfModel *net, const float *cos,
                                      const int32_t *labels, int64_t n, int64_t c, int threads,
                                      GError **error);
/* The term that trains the weight network NET with the student (it owns NET: see
 * KdfLoss.model). Per batch: φ_i = net 0's features of the batch row (the student
 * gets no gradient from it), the input cos(φ_i, CENTERS) ⊕ onehot(LABELS[rows[i]])
 * (mixed with the batch's λ under mixup), s_i = sigmoid(g(input)), and
 *   value = mean_i BCE(s_i, t_i),  t_i = batch->selected[i]
 * — the weight network learns to predict which samples the in-batch small-loss
 * selection keeps, so a selecting term must come before it (KDF_LOSS_NEEDS_SELECTION).
 * LABELS: N i32; CENTERS: C×F f32 (F = the student's feature width, checked per batch). */
KDF_API KdfLoss *kdf_loss_awe_new (KdfModel *net, KdfTensor *labels, KdfTensor *centers,
                                   double weight, GError **error);

G_END_DECLS
