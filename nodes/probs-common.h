/* Shared by the nodes that read probabilities: validate them, normalise rows that do not
 * sum to 1 with one warning, and refuse NaN, negative or all-zero rows. */
#pragma once

#include <kdflow/data.h>
#include <kdflow/kdflow-plugin.h>

/* PROBS checked by kdf_probs_check with tolerance TOL (the node's `tol` param), as a
 * contiguous tensor (transfer full); NULL with ERROR prefixed by WHAT ("input 'probs'",
 * a file name). Rows that were normalised are reported by one kdf_ctx_warning. */
static inline KdfTensor *
kdf_node_checked_probs (KdfNodeCtx *ctx, KdfTensor *probs, double tol, const char *what,
                        GError **error)
{
  int64_t fixed = 0;
  g_autoptr (KdfTensor) checked = kdf_probs_check (probs, tol, &fixed, error);
  if (checked == NULL) {
    g_prefix_error (error, "%s: ", what);
    return NULL;
  }
  if (fixed > 0)
    kdf_ctx_warning (ctx,
                     "%s: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                     " probability rows do not sum to 1 (within %g); they were normalised",
                     what, (gint64) fixed, (gint64) checked->shape[0], tol);
  return kdf_tensor_contiguous (checked);
}
