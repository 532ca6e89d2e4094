/* What long kernels of the engine (the trainer, model prediction, detection) use to
 * stop early: the cancellable of the node running on the calling thread (cancel.c). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The cancellable of the node running on this thread, or NULL outside a node. */
G_GNUC_INTERNAL GCancellable *kdf_sched_current_cancellable (void);
/* FALSE with KDF_ERROR_CANCELLED ("WHAT: cancelled") if the node running on this thread
 * was cancelled; call it between mini-batches or tiles. */
G_GNUC_INTERNAL gboolean kdf_cancel_check (const char *what, GError **error);

G_END_DECLS
