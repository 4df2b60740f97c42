// Emulated CUDA device (TEST INFRASTRUCTURE, host C++ only, never part of a GPU build): the
// interface between the emulator's runtime (emu_runtime.cpp: memory, streams, launches) and its
// library emulations (emu_cublas.cpp, emu_cudnn.cpp, emu_nccl.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "cuda_runtime.h"

/* ---- where a pointer lives -------------------------------------------------------------- */
enum emu_mem_kind {
  EMU_MEM_DEVICE = 1,   // cudaMalloc: inside the guarded device mapping
  EMU_MEM_PINNED = 2,   // cudaMallocHost / cudaHostAlloc: host memory the runtime tracks
  EMU_MEM_PAGEABLE = 3, // anything else (malloc, stack, globals)
};
/* True when p lies inside a live device or pinned allocation: *offset = p - base, *alloc_bytes =
 * the size the caller asked for, *kind = emu_mem_kind. False (and *kind = EMU_MEM_PAGEABLE) for
 * any other pointer. Any out-pointer may be NULL. */
bool emu_ptr_info(const void *p, size_t *offset, size_t *alloc_bytes, int *kind);
/* Aborts (through emu_fail) unless [p, p + bytes) lies inside ONE live device allocation. `what`
 * names the call and argument, e.g. "cublasGemmEx A". bytes == 0 checks p alone (may be NULL). */
void emu_check_device_range(const void *p, size_t bytes, const char *what);
/* Same, for a pointer that may be device or pinned host (e.g. alpha in device pointer mode). */
void emu_check_host_range(const void *p, size_t bytes, const char *what);

/* ---- host access to device memory ---------------------------------------------------------
 * Device memory is PROT_NONE outside emulated launches, copies and library calls, so that a host
 * dereference of a device pointer faults at once. A library emulation that computes on device
 * buffers holds one of these for the duration (nesting is allowed):
 *     emu_stream_enqueue(stream, [=] { emu_device_access a; ...compute... });
 * Work queued with emu_stream_enqueue already runs inside one; taking another is harmless. */
struct emu_device_access {
  emu_device_access();
  ~emu_device_access();
  emu_device_access(const emu_device_access &) = delete;
  emu_device_access &operator=(const emu_device_access &) = delete;
};

/* ---- stream ordering ------------------------------------------------------------------------
 * Runs `work` in the order of stream s (0 = the legacy default stream, which also orders against
 * every blocking stream), with device memory accessible. In the default (eager) mode the work runs
 * before this returns; with EMU_STRICT_STREAMS=1 it is deferred until a synchronising call
 * (cudaStreamSynchronize, cudaEventSynchronize/Query, cudaDeviceSynchronize, a blocking cudaMemcpy,
 * cudaFree) so host code that forgets to synchronise reads stale data. Capture arguments BY VALUE
 * (host-side scalars such as alpha in host pointer mode must be copied before enqueueing). */
void emu_stream_enqueue(cudaStream_t s, std::function<void()> work);
/* Runs everything queued on s (all streams when s is the legacy default stream 0). */
void emu_stream_drain(cudaStream_t s);

/* ---- reduced-precision inputs as tensor cores see them ----------------------------------------
 * tf32: 8-bit exponent, 10-bit mantissa, round to nearest (ties to even) from fp32 (cuDNN/cuBLAS
 * convert fp32 operands to tf32 before the tensor-core multiply; products accumulate in fp32).
 * bf16: 8-bit exponent, 7-bit mantissa, round to nearest even. Both keep NaN a NaN and Inf an Inf;
 * the result is returned widened back to fp32. */
float emu_round_tf32(float x);
float emu_round_bf16(float x);

/* ---- errors ----------------------------------------------------------------------------------
 * Every misuse the emulator detects ends here: prints "emu: <message>" plus the launch seed and
 * the current kernel/library call when there is one, then aborts (a test then fails loudly).
 * EMU_NO_ABORT is not offered on purpose: a detected bug must not be survivable. */
[[noreturn]] void emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Test hook: changes a setting that otherwise comes from the environment, for the allocations,
 * launches and stream operations that follow: "seed" (EMU_SEED), "align_left" (EMU_ALIGN=left),
 * "strict_streams" (EMU_STRICT_STREAMS), "race_launches" (EMU_RACECHECK: how many launches of
 * each kernel are race-checked). Unknown names abort. */
void emu_set_option(const char *name, long long value);
/* Names the library call in progress for emu_fail's messages and the SIGSEGV handler; NULL clears. */
void emu_set_current_call(const char *what);
