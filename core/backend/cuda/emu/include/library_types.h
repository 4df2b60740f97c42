/* Emulated CUDA device (TEST INFRASTRUCTURE): the data-type enums that cuBLAS and NCCL share with
 * the CUDA runtime, with NVIDIA's values (library_types.h). C and C++. */
#pragma once
typedef enum cudaDataType_t {
  CUDA_R_16F = 2,
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16BF = 14,
  CUDA_R_8I = 3,
  CUDA_R_32I = 10,
} cudaDataType_t;
typedef cudaDataType_t cudaDataType;
