/* Internal declarations of the CPU backend: one function per row of core/backend/ops.def
 * (generated, named unmix_cpu_<op>; the contracts are written there) and the scratch
 * memory. Every op is multithreaded with OpenMP; GEMM-shaped work goes to OpenBLAS SGEMM. */
#pragma once
#include "core/backend/backend.h"

/* Scratch memory reused across calls (ops run on one caller thread at a time). */
float *unmix_cpu_scratch(int slot, size_t floats);

/* True when precision bf16 is set and the CPU has bf16 units that oneDNN dispatches to: the
 * conv and dense ops then run in bf16 (onednn.h). */
bool unmix_cpu_bf16_active(void);
/* True when UNMIX_CPU_CONV=onednn: fp32 convolutions through oneDNN (backend.c). */
bool unmix_cpu_conv_onednn(void);

#define UNMIX_OP(NAME, name, family, params) void unmix_cpu_##name params;
#include "core/backend/ops.def"
#undef UNMIX_OP
