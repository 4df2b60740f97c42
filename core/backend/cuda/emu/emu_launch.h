// Emulated CUDA device (TEST INFRASTRUCTURE): the host C++ side of a kernel launch. Under nvcc the
// backend's launch macro expands to `kernel<<<grid, block, smem, stream>>>(args...)`; compiled as
// host C++ for the emulator it expands to EMU_LAUNCH(kernel, grid, block, smem, stream, args...),
// a variadic template that converts the arguments to the kernel's parameter types (as a launch
// does), captures them by value and queues the grid on the stream (emu_runtime.cpp runs it).
#pragma once
#include <cstddef>
#include <functional>
#include <tuple>
#include <utility>

#include "cuda_runtime.h"

/* Queues one launch on `stream`; `body` runs the kernel for the current thread (the scheduler sets
 * threadIdx/blockIdx before each call). Launch-configuration errors become cudaGetLastError(). */
void emu_launch_erased(const char *kernel, const char *file, int line, dim3 grid, dim3 block, size_t smem,
                       cudaStream_t stream, std::function<void()> body);

template <class... P, class... A>
static inline void emu_launch(const char *name, const char *file, int line, void (*kernel)(P...), dim3 grid,
                              dim3 block, size_t smem, cudaStream_t stream, A &&...args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  auto params = std::make_tuple(static_cast<P>(std::forward<A>(args))...);
  emu_launch_erased(name, file, line, grid, block, smem, stream, [kernel, params]() {
    auto own = params; // parameters are per-thread copies the kernel may modify
    std::apply(kernel, own);
  });
}

/* The spelling the backend's launch macro forwards to (kernel may be a template-id like k<F>). */
#define EMU_LAUNCH(kernel, grid, block, smem, stream, ...)                                           \
  emu_launch(#kernel, __FILE__, __LINE__, kernel, dim3(grid), dim3(block), (size_t)(smem), (stream),  \
             ##__VA_ARGS__)

/* The backend's one launch macro (core/backend/cuda/internal.cuh defines the nvcc spelling and
 * includes this header otherwise). */
#ifndef UNMIX_LAUNCH
#define UNMIX_LAUNCH(kernel, grid, block, smem, stream, ...) EMU_LAUNCH(kernel, grid, block, smem, stream, __VA_ARGS__)
#endif
