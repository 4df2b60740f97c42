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

#ifdef __cplusplus
}
#endif
