// Emulated CUDA device (TEST INFRASTRUCTURE): the device-side language for kernels compiled as
// host C++ -- qualifiers, built-in indices, __syncthreads, warp shuffles/votes with mask checks,
// atomics and the intrinsics our kernels use. The scheduler behind it is ../emu_runtime.cpp.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cfloat>
#include <climits>
#include <cmath>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
/* Static __shared__ arrays become function-scope statics in one linker section, so the
 * emulator knows where all shared memory lives: it poisons it at every block start (reads of
 * unwritten shared memory give NaN) and watches it for races. Blocks run one at a time on the
 * launching thread, so one static per kernel is exactly "one copy per block". `extern __shared__`
 * (dynamic shared memory) is not supported: none of our kernels uses it. */
#define __shared__ static __attribute__((section("emu_shared"), aligned(16)))

struct uint3 {
  unsigned int x, y, z;
};
/* Set by the scheduler before every switch into a kernel thread. blockDim/gridDim are uint3 (CUDA:
 * dim3) so that, like the others, they are trivial thread_locals without C++ TLS init wrappers. */
extern thread_local uint3 threadIdx, blockIdx, blockDim, gridDim;
static constexpr int warpSize = 32;

/* ---- synchronisation (implemented by the scheduler) ------------------------------------------- */
void emu_syncthreads(const char *file, int line);
#define __syncthreads() emu_syncthreads(__FILE__, __LINE__)
enum emu_warp_op { EMU_WARP_SHFL, EMU_WARP_VOTE, EMU_WARP_SYNC };
/* Posts `value` for this lane and waits until every lane named in `mask` has posted at the same
 * kind of warp operation with the same mask; returns the value of lane `src` (EMU_WARP_SHFL), the
 * ballot of the posted values' low bits (EMU_WARP_VOTE) or 0 (EMU_WARP_SYNC). Aborts when the mask
 * omits the calling lane, names an exited or missing lane, or the lanes disagree. */
uint64_t emu_warp_collective(enum emu_warp_op op, unsigned mask, uint64_t value, int src);
unsigned emu_activemask(void);
/* Atomics on shared memory are not races: the race checker (a signal handler) skips accesses while
 * this is set, hence volatile and the signal fences around it. */
extern thread_local volatile int emu_in_atomic;
#define EMU_ATOMIC_BEGIN() (emu_in_atomic = 1, __atomic_signal_fence(__ATOMIC_SEQ_CST))
#define EMU_ATOMIC_END() (__atomic_signal_fence(__ATOMIC_SEQ_CST), emu_in_atomic = 0)

static inline unsigned emu_lane(void) {
  return (threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y) & 31u;
}

template <class T> static inline uint64_t emu_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
  uint64_t b = 0;
  memcpy(&b, &v, sizeof v);
  return b;
}
template <class T> static inline T emu_from_bits(uint64_t b) {
  T v;
  memcpy(&v, &b, sizeof v);
  return v;
}
/* CUDA's rules for the source lane, per variant, within groups of `width` lanes. */
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = warpSize) {
  const int lane = (int)emu_lane();
  const int s = (lane & ~(width - 1)) + (((src % width) + width) % width);
  return emu_from_bits<T>(emu_warp_collective(EMU_WARP_SHFL, mask, emu_bits(v), s));
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  const int lane = (int)emu_lane();
  const int s = (lane % width) < (int)delta ? lane : lane - (int)delta;
  return emu_from_bits<T>(emu_warp_collective(EMU_WARP_SHFL, mask, emu_bits(v), s));
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  const int lane = (int)emu_lane();
  const int s = (lane % width) + (int)delta >= width ? lane : lane + (int)delta;
  return emu_from_bits<T>(emu_warp_collective(EMU_WARP_SHFL, mask, emu_bits(v), s));
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  const int lane = (int)emu_lane();
  int s = lane ^ lane_mask;
  if (s >= ((lane / width) + 1) * width) s = lane; // later groups are out of reach: own value
  return emu_from_bits<T>(emu_warp_collective(EMU_WARP_SHFL, mask, emu_bits(v), s));
}
static inline unsigned __ballot_sync(unsigned mask, int p) {
  return (unsigned)emu_warp_collective(EMU_WARP_VOTE, mask, p ? 1 : 0, 0);
}
static inline int __any_sync(unsigned mask, int p) { return __ballot_sync(mask, p) != 0; }
static inline int __all_sync(unsigned mask, int p) { return __ballot_sync(mask, p) == mask; }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { emu_warp_collective(EMU_WARP_SYNC, mask, 0, 0); }
static inline unsigned __activemask(void) { return emu_activemask(); }

/* ---- atomics: blocks and threads run on one OS thread, one at a time ------------------------------- */
template <class T> static inline T emu_atomic_rmw(T *a, T v, int op) {
  EMU_ATOMIC_BEGIN();
  T old = *a;
  switch (op) {
    case 0: *a = old + v; break;
    case 1: *a = old - v; break;
    case 2: *a = v > old ? v : old; break;
    case 3: *a = v < old ? v : old; break;
    case 4: *a = v; break;
  }
  EMU_ATOMIC_END();
  return old;
}
#define EMU_ATOMICS(T)                                                                          \
  static inline T atomicAdd(T *a, T v) { return emu_atomic_rmw<T>(a, v, 0); }                   \
  static inline T atomicExch(T *a, T v) { return emu_atomic_rmw<T>(a, v, 4); }
EMU_ATOMICS(int)
EMU_ATOMICS(unsigned int)
EMU_ATOMICS(unsigned long long)
EMU_ATOMICS(float)
EMU_ATOMICS(double)
#undef EMU_ATOMICS
#define EMU_ATOMICS_INT(T)                                                                      \
  static inline T atomicSub(T *a, T v) { return emu_atomic_rmw<T>(a, v, 1); }                   \
  static inline T atomicMax(T *a, T v) { return emu_atomic_rmw<T>(a, v, 2); }                   \
  static inline T atomicMin(T *a, T v) { return emu_atomic_rmw<T>(a, v, 3); }                   \
  static inline T atomicCAS(T *a, T cmp, T v) {                                                 \
    EMU_ATOMIC_BEGIN();                                                                         \
    T old = *a;                                                                                 \
    if (old == cmp) *a = v;                                                                     \
    EMU_ATOMIC_END();                                                                           \
    return old;                                                                                 \
  }
EMU_ATOMICS_INT(int)
EMU_ATOMICS_INT(unsigned int)
EMU_ATOMICS_INT(unsigned long long)
#undef EMU_ATOMICS_INT
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

/* ---- intrinsics -------------------------------------------------------------------------------- */
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
static inline unsigned __float_as_uint(float f) { return emu_from_bits<unsigned>(emu_bits(f)); }
static inline int __float_as_int(float f) { return emu_from_bits<int>(emu_bits(f)); }
static inline float __uint_as_float(unsigned u) { return emu_from_bits<float>(emu_bits(u)); }
static inline float __int_as_float(int u) { return emu_from_bits<float>(emu_bits(u)); }
static inline long long __double_as_longlong(double d) { return emu_from_bits<long long>(emu_bits(d)); }
static inline double __longlong_as_double(long long v) { return emu_from_bits<double>(emu_bits(v)); }
/* The _rn intrinsics are single IEEE operations: the build uses -ffp-contract=off, so a plain
 * expression is never fused. */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
template <class T> static inline T __ldg(const T *p) { return *p; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
