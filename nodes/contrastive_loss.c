/* contrastive_loss — a loss term over the student's feature tap through a projection
 * head the student's model owns (METHODS §1 contrastive_loss; MODUL, Tang et al., TIP
 * 2024; kernels in engine/nn/contrastive.c). Modes:
 *   supcon    supervised contrastive over the two views, positives = same label
 *   proto     H(Y_mix, softmax(m·Prᵀ/τ)): Pr = the L2-normalised class means of the
 *             teacher's embeddings over the `clean` rows, m the normalised mix
 *             λ·u1_i + (1−λ)·u2_π(i) of the two views' embeddings, Y_mix the same mix of
 *             the labels, λ ~ Beta(beta, beta) and π drawn per batch from the trainer's RNG
 *   instance  InfoNCE between the student's and the teacher's embeddings of each row
 *   simclr    NT-Xent over the two views (no labels: for unlabelled / open-set rows)
 * The head (Linear(F, dim), or Linear(F, hidden) ReLU Linear(hidden, dim)) is added to
 * the student on its first batch, trained by its optimizer and saved in its
 * checkpoint; terms naming the same `head` share it. Two views come from
 * student_update's `augment` and `noise` (without either they are copies). */
#include <kdflow/contrastive.h>
#include <kdflow/kdflow-plugin.h>
#include <kdflow/nn.h>

#include "loss-common.h"

typedef struct {
  KDF_LOSS_FIELDS;
  KdfContrastMode mode;
  double tau, beta;
  int dim, hidden, n_classes;
  const char *head;
} Params;

static const KdfChoice modes[] = {
  { "supcon", KDF_CONTRAST_SUPCON },
  { "proto", KDF_CONTRAST_PROTO },
  { "instance", KDF_CONTRAST_INSTANCE },
  { "simclr", KDF_CONTRAST_SIMCLR },
  { 0 },
};

static const KdfPortSpec inputs[] = {
  KDF_PORT ("labels", "i32[N]", KDF_PORT_OPTIONAL,
            "supcon, proto: the labels of the rows (proto: also the prototypes' classes)"),
  KDF_PORT ("embeddings", "f32[N,D]", KDF_PORT_OPTIONAL,
            "instance, proto: the teacher's embeddings (e.g. its feature tap), dataset order"),
  KDF_PORT ("clean", "u8[N]", KDF_PORT_OPTIONAL,
            "proto: the rows whose teacher embeddings make the prototypes (default: all)"),
  KDF_PORT ("prototypes", "f32[C,D]", KDF_PORT_OPTIONAL,
            "proto: class prototypes to use instead of computing them"),
  KDF_PORT ("mask", "u8[N]", KDF_PORT_OPTIONAL,
            "the rows the term applies to (default: all); others are neither anchors nor negatives"),
  { 0 },
};

static const KdfPortSpec outputs[] = {
  KDF_PORT ("loss", "loss", 0, "the term, for student_update"),
  KDF_PORT ("prototypes", "f32[C,D]", 0, "proto: the prototypes used (class means, before normalising)"),
  { 0 },
};

static const KdfParamSpec params[] = {
  KDF_PARAM_ENUM (Params, mode, "supcon", modes, "supcon, proto, instance or simclr"),
  KDF_PARAM_DOUBLE (Params, tau, 0.3, 1e-3, 100, "temperature τ (MODUL 0.3)"),
  KDF_PARAM_DOUBLE (Params, beta, 8, 1e-3, 1e3, "proto: mixup λ ~ Beta(beta, beta)"),
  KDF_PARAM_INT (Params, dim, 0, 0, 1 << 16,
                 "the head's output width (0: the teacher embeddings' width, else 128)"),
  KDF_PARAM_INT (Params, hidden, 0, 0, 1 << 16, "a hidden layer in the head (0: linear head)"),
  KDF_PARAM_INT (Params, n_classes, 0, 0, 1 << 20,
                 "proto: C (0: the rows of 'prototypes', else max label + 1)"),
  KDF_PARAM_STRING (Params, head, "proj", "the student's head the term trains (shared by name)"),
  KDF_LOSS_PARAMS (Params, 1.0),
  { 0 },
};

static gboolean
run (KdfNodeCtx *ctx, gpointer state, GError **error)
{
  const Params *p = kdf_ctx_params (ctx);
  KdfTensor *labels = kdf_ctx_input_tensor (ctx, "labels");
  KdfTensor *emb = kdf_ctx_input_tensor (ctx, "embeddings");
  KdfTensor *clean = kdf_ctx_input_tensor (ctx, "clean");
  KdfTensor *pin = kdf_ctx_input_tensor (ctx, "prototypes");
  KdfTensor *mask = kdf_ctx_input_tensor (ctx, "mask");
  const char *mode = p->mode == KDF_CONTRAST_SUPCON  ? "supcon"
                     : p->mode == KDF_CONTRAST_PROTO ? "proto"
                     : p->mode == KDF_CONTRAST_INSTANCE ? "instance"
                                                        : "simclr";
  if ((p->mode == KDF_CONTRAST_SUPCON || p->mode == KDF_CONTRAST_PROTO) && !labels) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM, "mode %s needs input 'labels'", mode);
    return FALSE;
  }
  if (p->mode == KDF_CONTRAST_INSTANCE && !emb) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "mode instance needs input 'embeddings' (the teacher's, dataset order)");
    return FALSE;
  }
  if (p->mode == KDF_CONTRAST_PROTO && !emb && !pin) {
    g_set_error (error, KDF_ERROR, KDF_ERROR_PARAM,
                 "mode proto needs input 'embeddings' (the teacher's, to average per class) or "
                 "'prototypes'");
    return FALSE;
  }
  if (emb && (p->mode == KDF_CONTRAST_SUPCON || p->mode == KDF_CONTRAST_SIMCLR))
    kdf_ctx_warning (ctx, "input 'embeddings' is only read by modes instance and proto "
                     "(mode %s contrasts the student's own views)", mode);
  if (clean && !(p->mode == KDF_CONTRAST_PROTO && emb && !pin))
    kdf_ctx_warning (ctx, "input 'clean' is only read by mode proto computing its prototypes");
  int dim = p->dim;
  const int64_t ew = pin ? pin->shape[1] : emb ? emb->shape[1] : 0;
  if (p->mode == KDF_CONTRAST_INSTANCE || p->mode == KDF_CONTRAST_PROTO) {
    if (dim == 0)
      dim = (int) ew;
    else if (dim != ew) {
      g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                   "param 'dim' = %d, but mode %s compares the head's output with the %s of "
                   "width %" G_GINT64_FORMAT " (set dim = 0 or %" G_GINT64_FORMAT ")",
                   dim, mode, pin ? "input 'prototypes'" : "input 'embeddings'", (gint64) ew,
                   (gint64) ew);
      return FALSE;
    }
  } else if (dim == 0)
    dim = 128;

  g_autoptr (KdfTensor) protos = NULL;
  if (p->mode == KDF_CONTRAST_PROTO) {
    g_autoptr (KdfTensor) y = kdf_tensor_contiguous (labels);
    int64_t c = p->n_classes;
    if (pin) {
      if (c && pin->shape[0] != c) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_SHAPE,
                     "input 'prototypes' has %" G_GINT64_FORMAT " rows, param 'n_classes' is %"
                     G_GINT64_FORMAT, (gint64) pin->shape[0], (gint64) c);
        return FALSE;
      }
      c = pin->shape[0];
      protos = kdf_tensor_contiguous (pin);
    } else {
      if (c == 0)
        for (int64_t i = 0; i < y->shape[0]; i++)
          c = MAX (c, (int64_t) kdf_tensor_i32 (y)[i] + 1);
      if (c < 1) {
        g_set_error (error, KDF_ERROR, KDF_ERROR_VALUE, "input 'labels' holds no class");
        return FALSE;
      }
      g_autoptr (KdfTensor) e = kdf_tensor_contiguous (emb);
      g_autoptr (KdfTensor) cl = clean ? kdf_tensor_contiguous (clean) : NULL;
      protos = kdf_tensor_new_2d (KDF_DTYPE_F32, c, ew);
      if (!kdf_class_prototypes (kdf_tensor_f32 (protos), kdf_tensor_f32 (e), kdf_tensor_i32 (y),
                                 cl ? kdf_tensor_u8 (cl) : NULL, e->shape[0], ew, c, error)) {
        g_prefix_error (error, "inputs 'embeddings', 'labels'%s: ", cl ? ", 'clean'" : "");
        return FALSE;
      }
    }
    if (!kdf_ctx_check_labels (ctx, "labels", c, error))
      return FALSE;
  }
  KdfContrastOptions o = { .mode = p->mode, .tau = p->tau, .beta = p->beta, .head = p->head,
                           .dim = dim, .hidden = p->hidden, .seed = kdf_ctx_seed (ctx) };
  KdfLoss *l = kdf_loss_contrastive_new (&o, labels, emb, protos, mask, p->weight, error);
  if (!kdf_loss_publish (ctx, p->net, l))
    return FALSE;
  if (protos)
    kdf_ctx_set_output_tensor (ctx, "prototypes", g_steal_pointer (&protos));
  return TRUE;
}

static const KdfNodeClass contrastive_loss_class = {
  .struct_size = sizeof (KdfNodeClass),
  .name = "contrastive_loss",
  .summary = "contrastive term through a student projection head (supcon, proto, instance, simclr)",
  .inputs = inputs,
  .outputs = outputs,
  .params = params,
  .params_size = sizeof (Params),
  .run = run,
};

KDF_PLUGIN (contrastive_loss, &contrastive_loss_class)
