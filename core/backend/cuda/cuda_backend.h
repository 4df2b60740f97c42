/* Controls that only the CUDA backend has, beyond the op table in backend.h. Callers that
 * use them must be compiled only when the backend is (#ifdef UNMIX_WITH_CUDA), which keeps
 * the rule that nothing above the backend layer depends on CUDA being present. */
#pragma once
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The cudaStream_t (as void *) on which every op of the backend runs, in issue order; other
 * CUDA users (NCCL collectives, a loader's copies) must order their work against it. NULL
 * before the backend is initialised. */
void *unmix_cuda_stream(void);

/* bf16 weight pinning (backend.h, weights_pin): off makes every bf16 conv convert its filter
 * itself, as before pinning existed (tests compare the two bit for bit). Stats: conv passes
 * that read a pinned copy, and conversions made by pins, since start. */
void unmix_cuda_weight_pinning(bool on);
void unmix_cuda_weight_pin_stats(long *hits, long *converts);

#ifdef __cplusplus
}
#endif
