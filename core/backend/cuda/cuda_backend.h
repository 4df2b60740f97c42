/* Controls that only the CUDA backend has, beyond the op table in backend.h. Callers that
 * use them must be compiled only when the backend is (#ifdef UNMIX_WITH_CUDA), which keeps
 * the rule that nothing above the backend layer depends on CUDA being present. */
#pragma once
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deterministic mode: convolutions use only cuDNN algorithms that cuDNN reports as
 * deterministic, chosen by cuDNN's heuristics (not by timing, which can pick a different
 * algorithm from one run to the next). Every other op of this backend is deterministic in
 * both modes (fixed-order reductions, no floating-point atomics). Off by default. Can be
 * switched at any time; plans made in the other mode are kept for when it is switched back. */
void unmix_cuda_set_deterministic(bool on);
bool unmix_cuda_deterministic(void);

/* The cudaStream_t (as void *) on which every op of the backend runs, in issue order; other
 * CUDA users (NCCL collectives, a loader's copies) must order their work against it. NULL
 * before the backend is initialised. */
void *unmix_cuda_stream(void);

#ifdef __cplusplus
}
#endif
