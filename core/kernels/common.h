/* Shared definitions for element-wise bodies compiled both by the C compiler (called from
 * OpenMP loops in the CPU backend) and by nvcc (called from __global__ wrappers in the
 * CUDA backend), so the CPU tests exercise the same arithmetic the GPU runs. */
#pragma once
#include <stdint.h>
#include <math.h>

#if defined(__CUDACC__)
#define UNMIX_HD __host__ __device__ __forceinline__
#else
#define UNMIX_HD static inline
#endif
