/* Batch groups (hfam.h, HfamOptions.max_batch): the contexts of one model made with the same
 * settings hand their frames' network inputs to one runner thread, which runs the frames that
 * arrive together as one batch on the group's backends (batch.c). Private to model/engine/. */
#ifndef HFAM_BATCH_H
#define HFAM_BATCH_H

#include <hfam/hfam.h>
#include "backend.h"

G_BEGIN_DECLS

typedef struct _HfamBatchGroup HfamBatchGroup;
typedef struct _HfamBatchFrame HfamBatchFrame;

/* The model's groups, kept by the model (context.h) while they have members. */
typedef struct {
  GMutex lock;
  GList *groups;
} HfamBatchGroups;

/* How a group's lanes with a batch dimension are made: `new_backend` makes a backend whose
 * queue_batch runs batches of `batch` frames (HfamBackend.batch), from `settings`
 * (`settings_size` bytes, copied into the group and compared byte for byte to find it). The
 * group calls it, and frees what it made, on threads of its own; the backend's ops must
 * outlive it (a copy of its HfamBackend describes the group). */
typedef struct {
  HfamBackend *(*new_backend) (const HfamGraph *graph, int batch, const void *settings,
                               GError **error);
  const void *settings;
  size_t settings_size;
} HfamBatchLanes;

/* Joins the group of `groups` with these options (their precision, threads, max_batch and
 * batch_timeout_us alike; with `batched`, its maker and settings instead of the threads), or
 * starts one: its lanes, on `graph`, and their threads. CPU lanes (`batched` NULL) share
 * `weight_cache` and count their host memory in a budget of the group's own (the starting
 * member's memory_budget); otherwise the group runs its batches on one lane that `batched`
 * makes. NULL, with the backend's error, when a backend fails. */
HfamBatchGroup *hfam_batch_group_join (HfamBatchGroups *groups, const HfamGraph *graph,
                                       HfamCpuWeightCache *weight_cache,
                                       const HfamOptions *options,
                                       const HfamBatchLanes *batched, GError **error);
/* Leaves it: the member's frames must all be collected; `depth`, the member's pipeline depth
 * as it joined (HfamOptions.pipeline_depth, 1 or 2). The last member stops the runner and
 * frees the group. */
void hfam_batch_group_leave (HfamBatchGroups *groups, HfamBatchGroup *group, int depth);
/* What members read of the group's backends (name, precision, batch); only the group runs
 * them. */
HfamBackend *hfam_batch_group_backend (HfamBatchGroup *group);
int hfam_batch_group_max_batch (const HfamBatchGroup *group);

/* Queues a copy of `input` (3 planes, width x height, multiples of 32) from `member` (a
 * context); NULL with HFAM_ERROR_BUDGET when its planes do not fit in the group's budget.
 * `fused_only`: its collect will want alpha_p alone, and the lane fetches nothing else. */
HfamBatchFrame *hfam_batch_group_submit (HfamBatchGroup *group, const void *member,
                                         const float *input, int width, int height,
                                         gboolean fused_only, GError **error);
/* Queues a device frame from `member`, preprocessed by the member's frames-only backend
 * (HfamDeviceOps.slice) on the CUDA context of the group's lane: its input is read, and its
 * alpha_p written, by the lane (a group of CUDA lanes only). */
HfamBatchFrame *hfam_batch_group_submit_device (HfamBatchGroup *group, const void *member,
                                                const HfamDeviceSlice *slice, int width,
                                                int height);
/* Waits until the frame has run, copies the outputs asked for (any pointer in `out` may be
 * NULL; only `fused` for a frame submitted `fused_only`; `out` may be NULL, and is not read
 * for a device frame) and frees it; FALSE with the error of its run (or its plan). */
gboolean hfam_batch_group_collect (HfamBatchGroup *group, HfamBatchFrame *frame,
                                   const HfamOutputs *out, GError **error);

/* What the runner has done so far (hfam-internal.h). */
typedef struct {
  int members;
  int lanes;    /* backends running a batch's frames side by side now */
  guint64 batches;
  guint64 frames;
  int largest;  /* frames in the largest batch */
} HfamBatchCounts;
void hfam_batch_group_counts (HfamBatchGroup *group, HfamBatchCounts *counts);

G_END_DECLS

#endif
