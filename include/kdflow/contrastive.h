/* kdflow — the representation terms of universal-noise KD (MODUL: Tang et al., "Learning
 * Student Network Under Universal Label Noise", IEEE TIP 2024; METHODS §1
 * contrastive_loss, rotation_loss and the feature hint). engine/nn/contrastive.c.
 *
 * Each term trains a head on the student's feature tap — a projection head, a rotation
 * classifier, a hint adapter — that the student's model owns (kdf_model_head_train):
 * it is added on the first batch, trained by the student's optimizer and saved in its
 * checkpoints. Gradients reach the tap through the head.
 *
 * The kernels below take raw embeddings z (rows of a head's output), L2-normalise them
 * inside (u = z/‖z‖), compute in double, return the mean loss and ADD scale × its
 * gradient w.r.t. z into gz (gz may be NULL: value only). row_loss (may be NULL) gets
 * each anchor's loss. */
#pragma once

#include <kdflow/nn.h>

G_BEGIN_DECLS

/* Supervised contrastive loss (Khosla et al. 2020, L_out) over M rows with labels Y:
 *   s_ak = u_a·u_k/τ,  P(a) = {p ≠ a : y_p = y_a},
 *   ℓ_a = log Σ_{k≠a} exp s_ak − (1/|P(a)|) Σ_{p∈P(a)} s_ap,
 *   L = mean of ℓ_a over the anchors with |P(a)| ≥ 1 (0 if there is none).
 * With y = the source row of each of two views this is SimCLR's NT-Xent. */
KDF_API double kdf_supcon (float *gz, double *row_loss, const float *z, const int32_t *y,
                           int64_t m, int64_t d, double tau, double scale);

/* Instance InfoNCE between student rows z (N×D) and teacher rows t (N×D, targets: no
 * gradient), MODUL's instance half: with v = t/‖t‖,
 *   ℓ_i = −u_i·v_i/τ + log( Σ_j exp(u_i·v_j/τ) + Σ_{j≠i} exp(u_i·u_j/τ) ),
 *   L = mean_i ℓ_i (N ≥ 1). */
KDF_API double kdf_instance_nce (float *gz, double *row_loss, const float *z, const float *t,
                                 int64_t n, int64_t d, double tau, double scale);

/* Prototype contrastive loss with mixup over two views (MODUL's categorical half): for
 * row i and its partner j = PERM[i] (both in 0..N−1),
 *   w_i = λ·u1_i + (1−λ)·u2_j,  m_i = w_i/‖w_i‖,  Y_i = λ·onehot(y_i) + (1−λ)·onehot(y_j),
 *   ℓ_i = H(Y_i, softmax(m_i·Prᵀ/τ)),  L = mean_i ℓ_i,
 * with Pr (C×D) = PROTOS L2-normalised per row. Z2 may be Z1 (one view; then GZ2 must
 * be GZ1). Labels must lie in [0, C) (the caller checks). */
KDF_API double kdf_proto_nce (float *gz1, float *gz2, double *row_loss, const float *z1,
                              const float *z2, const int32_t *y, const int32_t *perm,
                              double lambda, const float *protos, int64_t n, int64_t d,
                              int64_t c, double tau, double scale);

/* PROTOS (C×D) = the mean embedding of each label over the rows with MASK[i] ≠ 0 (all
 * rows if MASK is NULL). KDF_ERROR_VALUE on a label outside [0, C) among those rows,
 * or a class with no row (naming it). */
KDF_API gboolean kdf_class_prototypes (float *protos, const float *emb, const int32_t *labels,
                                       const uint8_t *mask, int64_t n, int64_t d, int64_t c,
                                       GError **error);

typedef enum {
  KDF_CONTRAST_SUPCON = 0,   /* labels; both views */
  KDF_CONTRAST_PROTO = 1,    /* labels, prototypes; mixup of the two views, λ ~ Beta(β, β) */
  KDF_CONTRAST_INSTANCE = 2, /* the teacher's embeddings per row */
  KDF_CONTRAST_SIMCLR = 3,   /* nothing: NT-Xent over two views */
} KdfContrastMode;

typedef struct {
  KdfContrastMode mode;
  double tau;       /* temperature > 0 */
  double beta;      /* proto: mixup Beta(β, β) (8 in MODUL) */
  const char *head; /* the student's head the term trains ("proj") */
  int dim;          /* the head's output width (> 0) */
  int hidden;       /* 0: a linear head; > 0: Linear(F, hidden) ReLU Linear(hidden, dim) */
  guint64 seed;     /* the head's initialisation */
  gpointer reserved[4];
} KdfContrastOptions;

/* The contrastive term (transfer full). LABELS: N i32 (supcon, proto). TEACHER: N×D f32,
 * the teacher's embeddings in dataset order (instance; D = dim). PROTOS: C×D f32
 * (proto; D = dim; labels < C). MASK: N u8 or NULL: the rows the term applies to (the
 * others are left out of every batch's loss, as anchors and as negatives). A batch with
 * fewer than 2 such rows adds nothing. The trainer's mixup is refused (proto mixes its
 * views itself); the sample loss gets weight × each row's ℓ (mean over its views). */
KDF_API KdfLoss *kdf_loss_contrastive_new (const KdfContrastOptions *o, KdfTensor *labels,
                                           KdfTensor *teacher, KdfTensor *protos,
                                           KdfTensor *mask, double weight, GError **error);

/* 4-way rotation prediction (Gidaris et al. 2018; MODUL on the open set): each batch row
 * is also forwarded turned by a uniform random r_i quarter turns (the trainer's
 * rotated view, KDF_LOSS_NEEDS_ROTATION; square images only); a linear head HEAD
 * (F → 4) on its features gives logits q_i, and L = mean over the MASK rows of
 * CE(q_i, r_i). MASK: N u8 or NULL (all rows). */
KDF_API KdfLoss *kdf_loss_rotation_new (KdfTensor *mask, const char *head, guint64 seed,
                                        double weight, GError **error);

/* Feature hint (FitNets; MODUL's hint term): a linear adapter HEAD (F → T) on the
 * student's tap, L = mean over the MASK rows, the views and the T columns of
 * (adapter(φ_i) − t_i)², t = TEACHER (N×T f32, the teacher's feature tap in dataset
 * order; mixed like the inputs under mixup). */
KDF_API KdfLoss *kdf_loss_hint_new (KdfTensor *teacher, KdfTensor *mask, const char *head,
                                    guint64 seed, double weight, GError **error);

G_END_DECLS
