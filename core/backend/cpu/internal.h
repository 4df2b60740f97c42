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
/* Which kernels the fp32 convolutions run on (UNMIX_CPU_CONV, read by the backend's init;
 * backend.c): auto (the default), the reference path alone, or oneDNN wherever it can. The
 * setter is for tests and benchmarks; without oneDNN every mode is the reference path. */
enum unmix_cpu_conv { UNMIX_CPU_CONV_AUTO, UNMIX_CPU_CONV_REFERENCE, UNMIX_CPU_CONV_ONEDNN };
enum unmix_cpu_conv unmix_cpu_conv_mode(void);
void unmix_cpu_conv_set_mode(enum unmix_cpu_conv m);
/* The kernel an fp32 conv pass (0 forward, 1 backward-data, 2 backward-weight) of geometry g
 * runs on under the current mode (conv.c): our im2col + SGEMM, oneDNN's direct kernel, or
 * oneDNN's Winograd F(4x4, 3x3) kernel. A oneDNN kernel that turns out to be missing for the
 * geometry falls back: Winograd to auto's choice between the other two, direct to ours. */
enum unmix_cpu_kernel { UNMIX_CPU_KERNEL_REFERENCE, UNMIX_CPU_KERNEL_DIRECT, UNMIX_CPU_KERNEL_WINOGRAD };
enum unmix_cpu_kernel unmix_cpu_conv_kernel(int pass, const struct unmix_conv_geom *g);

#define UNMIX_OP(NAME, name, family, params) void unmix_cpu_##name params;
#include "core/backend/ops.def"
#undef UNMIX_OP
