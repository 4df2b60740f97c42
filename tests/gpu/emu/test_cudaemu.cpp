// Suite for the emulated CUDA device itself (test infrastructure; built with UNMIX_CUDA=EMU): its own
// small kernels check that barriers, shared memory, warp shuffles/votes and atomics behave as CUDA
// defines them, and that each class of bug the emulator exists to catch (missing or divergent
// barrier, bad warp mask, host dereference, out-of-bounds, wrong memcpy kind, missing sync) is caught.
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/backend/cuda/emu/emu.h"
#include "core/backend/cuda/emu/emu_launch.h"

#define CK(x) ck_assert_int_eq((int)(x), (int)cudaSuccess)

/* Runs fn in a child process and demands that it aborts with `needle` in its stderr. */
template <class F> static void expect_abort(F fn, const char *needle) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0); // no abort: the parent reports it
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)n);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "expected an abort mentioning '%s'; child %s, stderr:\n%s",
                needle, WIFEXITED(st) ? "exited normally" : "died otherwise", err.c_str());
  ck_assert_msg(err.find(needle) != std::string::npos, "abort message lacks '%s':\n%s", needle, err.c_str());
}

static float *dev_floats(const std::vector<float> &h) {
  float *d = nullptr;
  CK(cudaMalloc(&d, h.size() * sizeof(float)));
  CK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}
static std::vector<float> host_floats(const float *d, size_t n) {
  std::vector<float> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

/* ---- kernels ---------------------------------------------------------------------------------- */
/* Block sum: warp shuffles, then one value per warp through shared memory (as the backend does). */
static __global__ void block_sum_kernel(int n, const float *x, float *out) {
  __shared__ float sh[32];
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < blockDim.x / 32 ? sh[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_down_sync(0xffffffffu, t, o);
    if (threadIdx.x == 0) atomicAdd(out, t);
  }
}
/* The same with the barrier missing: warp 0 reads sh before the other warps wrote it. */
static __global__ void block_sum_nobarrier_kernel(int n, const float *x, float *out) {
  __shared__ float sh[32];
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  if (threadIdx.x < 32) {
    float t = threadIdx.x < blockDim.x / 32 ? sh[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_down_sync(0xffffffffu, t, o);
    if (threadIdx.x == 0) atomicAdd(out, t);
  }
}
/* Every shuffle flavour and a ballot; out[lane * 8 + k]. width 8 for the sub-group variants. */
static __global__ void shuffle_kernel(int *out) {
  const int lane = threadIdx.x;
  int *o = out + lane * 8;
  o[0] = __shfl_sync(0xffffffffu, lane * 10, 5);
  o[1] = __shfl_sync(0xffffffffu, lane * 10, 11, 8); // 11 % 8 = 3 within each group of 8
  o[2] = __shfl_up_sync(0xffffffffu, lane * 10, 3, 8);
  o[3] = __shfl_down_sync(0xffffffffu, lane * 10, 2, 8);
  o[4] = __shfl_xor_sync(0xffffffffu, lane * 10, 9, 16);
  o[5] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
  o[6] = __any_sync(0xffffffffu, lane == 17);
  o[7] = __all_sync(0xffffffffu, lane < 31);
}
static __global__ void histogram_kernel(int n, const int *v, unsigned *hist) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) atomicAdd(&hist[v[i]], 1u);
}
/* Records the order in which threads of block 0 first ran. */
static __global__ void order_kernel(unsigned *counter, unsigned *order) {
  order[threadIdx.x] = atomicAdd(counter, 1u);
}
static __global__ void divergent_barrier_kernel(float *x) {
  if (threadIdx.x >= 16) return; // the other half never reaches the barrier
  x[threadIdx.x] = 1.0f;
  __syncthreads();
}
static __global__ void two_barriers_kernel(float *x) {
  if (threadIdx.x & 1) {
    x[threadIdx.x] = 1.0f;
    __syncthreads();
  } else {
    x[threadIdx.x] = 2.0f;
    __syncthreads();
  }
}
static __global__ void mask_without_self_kernel(int *out) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, (int)threadIdx.x, 0); // lanes 16..31 are not in the mask
}
static __global__ void mask_exited_lane_kernel(int *out) {
  if (threadIdx.x == 31) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}
/* Shared histogram; `barrier` false drops the barrier between zeroing and the atomic updates. */
static __global__ void shared_hist_kernel(int n, const int *v, unsigned *out, bool barrier) {
  __shared__ unsigned h[8];
  if (threadIdx.x < 8) h[threadIdx.x] = 0u;
  if (barrier) __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) atomicAdd(&h[v[i] & 7], 1u);
  __syncthreads();
  if (threadIdx.x < 8) atomicAdd(&out[threadIdx.x], h[threadIdx.x]);
}
static __global__ void write_kernel(int n, float *x, float v) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) x[i] = v;
}
static __global__ void write_one_kernel(float *x, int at) { x[at] = 3.0f; }

/* ---- tests ----------------------------------------------------------------------------------------- */
START_TEST(block_sum_matches) {
  for (int n : {1, 31, 257, 1000, 4099}) {
    std::vector<float> h(n);
    double want = 0.0;
    for (int i = 0; i < n; i++) {
      h[i] = (float)((i % 7) - 2) * 0.25f + 1.0f;
      want += h[i];
    }
    float *x = dev_floats(h), *out = dev_floats({0.0f});
    EMU_LAUNCH(block_sum_kernel, 3, 128, 0, nullptr, n, x, out);
    CK(cudaGetLastError());
    float got = host_floats(out, 1)[0];
    ck_assert_msg(fabs(got - want) <= 1e-3 * fabs(want) + 1e-3, "n=%d: sum %g, want %g", n, got, want);
    CK(cudaFree(x));
    CK(cudaFree(out));
  }
}
END_TEST

START_TEST(missing_barrier_gives_wrong_sums) {
  // Shared memory is NaN-poisoned at block start and threads run in a shuffled order, so warp 0
  // reads what other warps have not written yet: with several seeds, some run must be wrong.
  const int n = 1024;
  std::vector<float> h(n, 1.0f);
  float *x = dev_floats(h), *out = dev_floats({0.0f});
  int wrong = 0;
  emu_set_option("race_launches", 0); // the race checker would stop it first (next test)
  for (int seed = 1; seed <= 4; seed++) {
    emu_set_option("seed", seed);
    CK(cudaMemcpy(out, std::vector<float>{0.0f}.data(), sizeof(float), cudaMemcpyHostToDevice));
    EMU_LAUNCH(block_sum_nobarrier_kernel, 2, 256, 0, nullptr, n, x, out);
    float got = host_floats(out, 1)[0];
    if (!(got == (float)n)) wrong++;
  }
  emu_set_option("race_launches", 2);
  ck_assert_msg(wrong > 0, "a missing __syncthreads went unnoticed in 4 seeds");
  CK(cudaFree(x));
  CK(cudaFree(out));
}
END_TEST

START_TEST(missing_barrier_is_a_reported_race) {
  expect_abort(
      [] {
        std::vector<float> h(1024, 1.0f);
        float *x = dev_floats(h), *out = dev_floats({0.0f});
        EMU_LAUNCH(block_sum_nobarrier_kernel, 2, 256, 0, nullptr, 1024, x, out);
      },
      "shared-memory race (");
  // The correct kernel is race-free under the same watch.
  std::vector<float> h(1024, 1.0f);
  float *x = dev_floats(h), *out = dev_floats({0.0f});
  EMU_LAUNCH(block_sum_kernel, 2, 256, 0, nullptr, 1024, x, out);
  ck_assert_float_eq(host_floats(out, 1)[0], 1024.0f);
  CK(cudaFree(x));
  CK(cudaFree(out));
}
END_TEST

START_TEST(atomic_against_plain_access_is_a_race) {
  const int n = 500;
  std::vector<int> v(n);
  for (int i = 0; i < n; i++) v[i] = i;
  int *dv = nullptr;
  unsigned *out = nullptr;
  CK(cudaMalloc(&dv, n * sizeof(int)));
  CK(cudaMalloc(&out, 8 * sizeof(unsigned)));
  CK(cudaMemcpy(dv, v.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  CK(cudaMemset(out, 0, 8 * sizeof(unsigned)));
  EMU_LAUNCH(shared_hist_kernel, 1, 64, 0, nullptr, n, dv, out, true);
  std::vector<unsigned> h(8);
  CK(cudaMemcpy(h.data(), out, 8 * sizeof(unsigned), cudaMemcpyDeviceToHost));
  for (int k = 0; k < 8; k++) ck_assert_uint_eq(h[k], (unsigned)(n / 8 + (k < n % 8)));
  expect_abort([dv, out] { EMU_LAUNCH(shared_hist_kernel, 1, 64, 0, nullptr, 500, dv, out, false); },
               "shared-memory race (");
  CK(cudaFree(dv));
  CK(cudaFree(out));
}
END_TEST

START_TEST(shuffles_follow_cuda) {
  int *d = nullptr;
  CK(cudaMalloc(&d, 32 * 8 * sizeof(int)));
  EMU_LAUNCH(shuffle_kernel, 1, 32, 0, nullptr, d);
  std::vector<int> o(32 * 8);
  CK(cudaMemcpy(o.data(), d, o.size() * sizeof(int), cudaMemcpyDeviceToHost));
  unsigned ballot = 0;
  for (int l = 0; l < 32; l++)
    if (l % 3 == 0) ballot |= 1u << l;
  for (int l = 0; l < 32; l++) {
    const int *r = &o[l * 8];
    ck_assert_int_eq(r[0], 50);
    ck_assert_int_eq(r[1], ((l & ~7) + 3) * 10);
    ck_assert_int_eq(r[2], ((l % 8) < 3 ? l : l - 3) * 10);
    ck_assert_int_eq(r[3], ((l % 8) + 2 >= 8 ? l : l + 2) * 10);
    int s = l ^ 9;
    ck_assert_int_eq(r[4], (s >= (l / 16 + 1) * 16 ? l : s) * 10);
    ck_assert_uint_eq((unsigned)r[5], ballot);
    ck_assert_int_eq(r[6], 1);
    ck_assert_int_eq(r[7], 0);
  }
  CK(cudaFree(d));
}
END_TEST

START_TEST(atomics_count_exactly) {
  const int n = 5003;
  std::vector<int> v(n);
  std::vector<unsigned> want(7, 0);
  for (int i = 0; i < n; i++) want[v[i] = (i * 13) % 7]++;
  int *dv = nullptr;
  unsigned *dh = nullptr;
  CK(cudaMalloc(&dv, n * sizeof(int)));
  CK(cudaMalloc(&dh, 7 * sizeof(unsigned)));
  CK(cudaMemcpy(dv, v.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  CK(cudaMemset(dh, 0, 7 * sizeof(unsigned)));
  EMU_LAUNCH(histogram_kernel, 5, 96, 0, nullptr, n, dv, dh);
  std::vector<unsigned> got(7);
  CK(cudaMemcpy(got.data(), dh, 7 * sizeof(unsigned), cudaMemcpyDeviceToHost));
  for (int k = 0; k < 7; k++) ck_assert_uint_eq(got[k], want[k]);
  CK(cudaFree(dv));
  CK(cudaFree(dh));
}
END_TEST

static std::vector<unsigned> run_order(long long seed) {
  emu_set_option("seed", seed);
  unsigned *c = nullptr, *o = nullptr;
  CK(cudaMalloc(&c, sizeof(unsigned)));
  CK(cudaMalloc(&o, 64 * sizeof(unsigned)));
  CK(cudaMemset(c, 0, sizeof(unsigned)));
  EMU_LAUNCH(order_kernel, 1, 64, 0, nullptr, c, o);
  std::vector<unsigned> h(64);
  CK(cudaMemcpy(h.data(), o, 64 * sizeof(unsigned), cudaMemcpyDeviceToHost));
  CK(cudaFree(c));
  CK(cudaFree(o));
  return h;
}
START_TEST(thread_order_is_seeded) {
  std::vector<unsigned> a = run_order(7), b = run_order(7), c = run_order(8);
  ck_assert_msg(a != c, "two seeds gave the same thread order");
  // Same seed, but launches get seeds from (seed, launch number): equal only if we reset them.
  std::vector<unsigned> ident(64);
  for (unsigned i = 0; i < 64; i++) ident[i] = i;
  ck_assert_msg(a != ident && b != ident, "threads ran in index order: the order is not shuffled");
}
END_TEST

START_TEST(divergent_barrier_aborts) {
  expect_abort(
      [] {
        float *x = nullptr;
        cudaMalloc(&x, 32 * sizeof(float));
        EMU_LAUNCH(divergent_barrier_kernel, 1, 32, 0, nullptr, x);
      },
      "divergent __syncthreads");
  expect_abort(
      [] {
        float *x = nullptr;
        cudaMalloc(&x, 32 * sizeof(float));
        EMU_LAUNCH(two_barriers_kernel, 1, 32, 0, nullptr, x);
      },
      "divergent __syncthreads");
}
END_TEST

START_TEST(bad_warp_masks_abort) {
  expect_abort(
      [] {
        int *o = nullptr;
        cudaMalloc(&o, 32 * sizeof(int));
        EMU_LAUNCH(mask_without_self_kernel, 1, 32, 0, nullptr, o);
      },
      "does not include the lane itself");
  expect_abort(
      [] {
        int *o = nullptr;
        cudaMalloc(&o, 32 * sizeof(int));
        EMU_LAUNCH(mask_exited_lane_kernel, 1, 32, 0, nullptr, o);
      },
      "which is exited");
  expect_abort(
      [] {
        int *o = nullptr;
        cudaMalloc(&o, 32 * sizeof(int));
        EMU_LAUNCH(mask_exited_lane_kernel, 1, 16, 0, nullptr, o); // a 16-thread block: lanes 16..31 do not exist
      },
      "does not exist");
}
END_TEST

START_TEST(host_deref_of_device_pointer_aborts) {
  expect_abort(
      [] {
        float *x = nullptr;
        cudaMalloc(&x, 100 * sizeof(float));
        volatile float v = x[3];
        (void)v;
      },
      "host code dereferenced device memory");
}
END_TEST

START_TEST(out_of_bounds_is_caught) {
  // Right-aligned: one element past the end hits the guard page.
  expect_abort(
      [] {
        float *x = nullptr;
        cudaMalloc(&x, 1024 * sizeof(float));
        EMU_LAUNCH(write_one_kernel, 1, 1, 0, nullptr, x, 1024);
      },
      "bytes past");
  // Size not a multiple of 16: the slack before the guard page holds a canary.
  expect_abort(
      [] {
        float *x = nullptr;
        cudaMalloc(&x, 7 * sizeof(float));
        EMU_LAUNCH(write_one_kernel, 1, 1, 0, nullptr, x, 7);
      },
      "was overwritten");
  // Left-aligned: one element before the start hits the guard page.
  expect_abort(
      [] {
        emu_set_option("align_left", 1);
        float *x = nullptr;
        cudaMalloc(&x, 64 * sizeof(float));
        EMU_LAUNCH(write_one_kernel, 1, 1, 0, nullptr, x, -1);
      },
      "bytes before");
  // And in range it is fine (both modes).
  for (int left = 0; left < 2; left++) {
    emu_set_option("align_left", left);
    float *x = nullptr;
    CK(cudaMalloc(&x, 7 * sizeof(float)));
    EMU_LAUNCH(write_kernel, 1, 32, 0, nullptr, 7, x, 2.0f);
    std::vector<float> h = host_floats(x, 7);
    for (float v : h) ck_assert_float_eq(v, 2.0f);
    CK(cudaFree(x));
  }
  emu_set_option("align_left", 0);
}
END_TEST

START_TEST(use_after_free_is_caught) {
  expect_abort(
      [] {
        float *x = nullptr;
        cudaMalloc(&x, 64 * sizeof(float));
        cudaFree(x);
        EMU_LAUNCH(write_kernel, 1, 32, 0, nullptr, 64, x, 1.0f);
      },
      "use after cudaFree");
}
END_TEST

START_TEST(memcpy_kinds_and_sizes_are_checked) {
  expect_abort(
      [] {
        float *x = nullptr;
        float h[4] = {0};
        cudaMalloc(&x, 4 * sizeof(float));
        cudaMemcpy(h, x, sizeof h, cudaMemcpyHostToDevice); // swapped direction
      },
      "is pageable host memory");
  expect_abort(
      [] {
        float *x = nullptr;
        float h[8] = {0};
        cudaMalloc(&x, 4 * sizeof(float));
        cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice); // 8 floats into 4
      },
      "past the end of device allocation");
  expect_abort(
      [] {
        float *p = nullptr;
        cudaMallocHost(&p, 16);
        cudaFree(p);
      },
      "not a pointer returned by cudaMalloc");
  // cudaMemcpyDefault works out the direction from the pointers.
  std::vector<float> h = {1, 2, 3};
  float *x = nullptr;
  CK(cudaMalloc(&x, 3 * sizeof(float)));
  CK(cudaMemcpy(x, h.data(), 3 * sizeof(float), cudaMemcpyDefault));
  std::vector<float> back(3);
  CK(cudaMemcpy(back.data(), x, 3 * sizeof(float), cudaMemcpyDefault));
  ck_assert(back == h);
  size_t off = 0, bytes = 0;
  int kind = 0;
  ck_assert(emu_ptr_info(x + 1, &off, &bytes, &kind));
  ck_assert_uint_eq(off, 4);
  ck_assert_uint_eq(bytes, 12);
  ck_assert_int_eq(kind, EMU_MEM_DEVICE);
  ck_assert(!emu_ptr_info(h.data(), nullptr, nullptr, &kind));
  ck_assert_int_eq(kind, EMU_MEM_PAGEABLE);
  CK(cudaFree(x));
}
END_TEST

START_TEST(strict_streams_expose_a_missing_sync) {
  emu_set_option("strict_streams", 1);
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  float *x = nullptr, *pinned = nullptr;
  CK(cudaMalloc(&x, 16 * sizeof(float)));
  CK(cudaMallocHost(&pinned, 16 * sizeof(float)));
  for (int i = 0; i < 16; i++) pinned[i] = -1.0f;
  EMU_LAUNCH(write_kernel, 1, 32, 0, s, 16, x, 5.0f);
  CK(cudaMemcpyAsync(pinned, x, 16 * sizeof(float), cudaMemcpyDeviceToHost, s));
  ck_assert_float_eq(pinned[0], -1.0f); // nothing ran yet: a host read here is the bug
  // A blocking cudaMemcpy on the legacy stream does not wait for a non-blocking stream.
  float h = 0.0f;
  CK(cudaMemcpy(&h, x, sizeof h, cudaMemcpyDeviceToHost));
  ck_assert_msg(h != 5.0f, "legacy-stream cudaMemcpy waited for a non-blocking stream");
  cudaEvent_t e;
  CK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  CK(cudaEventRecord(e, s));
  CK(cudaEventSynchronize(e));
  ck_assert_float_eq(pinned[0], 5.0f);
  ck_assert_float_eq(pinned[15], 5.0f);
  // Pageable H2D is staged at the call: the source may change afterwards.
  std::vector<float> src(16, 7.0f);
  CK(cudaMemcpyAsync(x, src.data(), 16 * sizeof(float), cudaMemcpyHostToDevice, s));
  src.assign(16, 9.0f);
  // Pinned H2D is read when it runs: changing the source before the sync is a bug that shows.
  for (int i = 0; i < 16; i++) pinned[i] = 11.0f;
  float *y = nullptr;
  CK(cudaMalloc(&y, 16 * sizeof(float)));
  CK(cudaMemcpyAsync(y, pinned, 16 * sizeof(float), cudaMemcpyHostToDevice, s));
  for (int i = 0; i < 16; i++) pinned[i] = 12.0f;
  CK(cudaStreamSynchronize(s));
  ck_assert_float_eq(host_floats(x, 16)[3], 7.0f);
  ck_assert_float_eq(host_floats(y, 16)[3], 12.0f);
  // Cross-stream ordering through an event.
  cudaStream_t s2;
  CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  EMU_LAUNCH(write_kernel, 1, 32, 0, s, 16, x, 4.0f);
  CK(cudaEventRecord(e, s));
  CK(cudaStreamWaitEvent(s2, e, 0));
  CK(cudaMemcpyAsync(y, x, 16 * sizeof(float), cudaMemcpyDeviceToDevice, s2));
  CK(cudaStreamSynchronize(s2));
  ck_assert_float_eq(host_floats(y, 16)[0], 4.0f);
  // A polling loop on cudaStreamQuery ends: "not ready" once, then the work has run.
  EMU_LAUNCH(write_kernel, 1, 32, 0, s, 16, x, 6.0f);
  ck_assert_int_eq(cudaStreamQuery(s), cudaErrorNotReady);
  ck_assert_int_eq(cudaStreamQuery(s), cudaSuccess);
  ck_assert_float_eq(host_floats(x, 16)[0], 6.0f);
  CK(cudaEventDestroy(e));
  CK(cudaStreamDestroy(s));
  CK(cudaStreamDestroy(s2));
  CK(cudaFree(x));
  CK(cudaFree(y));
  CK(cudaFreeHost(pinned));
  emu_set_option("strict_streams", 0);
}
END_TEST

START_TEST(launch_configuration_errors_are_reported) {
  float *x = nullptr;
  CK(cudaMalloc(&x, 4));
  EMU_LAUNCH(write_kernel, 1, 2048, 0, nullptr, 1, x, 1.0f);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
  EMU_LAUNCH(write_kernel, 0, 32, 0, nullptr, 1, x, 1.0f);
  ck_assert_int_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
  CK(cudaFree(x));
}
END_TEST

START_TEST(reduced_precision_rounding) {
  // tf32 keeps 10 mantissa bits: 1 + 2^-11 is a tie (rounds away from zero), 1 + 2^-12 rounds down.
  ck_assert_float_eq(emu_round_tf32(1.0f + ldexpf(1.0f, -11)), 1.0f + ldexpf(1.0f, -10));
  ck_assert_float_eq(emu_round_tf32(1.0f + ldexpf(1.0f, -12)), 1.0f);
  ck_assert_float_eq(emu_round_tf32(-(1.0f + ldexpf(1.0f, -11))), -(1.0f + ldexpf(1.0f, -10)));
  // bf16 keeps 7: ties go to even.
  ck_assert_float_eq(emu_round_bf16(1.0f + ldexpf(1.0f, -8)), 1.0f);
  ck_assert_float_eq(emu_round_bf16(1.0f + 3 * ldexpf(1.0f, -8)), 1.0f + ldexpf(1.0f, -6));
  ck_assert_float_eq(emu_round_bf16(1.0f + 3 * ldexpf(1.0f, -9)), 1.0f + ldexpf(1.0f, -7));
  ck_assert(isnan(emu_round_bf16(NAN)) && isnan(emu_round_tf32(NAN)));
  ck_assert(isinf(emu_round_bf16(INFINITY)) && isinf(emu_round_tf32(-INFINITY)));
}
END_TEST

int main(void) {
  Suite *s = suite_create("cudaemu");
  TCase *tc = tcase_create("emu");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, block_sum_matches);
  tcase_add_test(tc, missing_barrier_gives_wrong_sums);
  tcase_add_test(tc, missing_barrier_is_a_reported_race);
  tcase_add_test(tc, atomic_against_plain_access_is_a_race);
  tcase_add_test(tc, shuffles_follow_cuda);
  tcase_add_test(tc, atomics_count_exactly);
  tcase_add_test(tc, thread_order_is_seeded);
  tcase_add_test(tc, divergent_barrier_aborts);
  tcase_add_test(tc, bad_warp_masks_abort);
  tcase_add_test(tc, host_deref_of_device_pointer_aborts);
  tcase_add_test(tc, out_of_bounds_is_caught);
  tcase_add_test(tc, use_after_free_is_caught);
  tcase_add_test(tc, memcpy_kinds_and_sizes_are_checked);
  tcase_add_test(tc, strict_streams_expose_a_missing_sync);
  tcase_add_test(tc, launch_configuration_errors_are_reported);
  tcase_add_test(tc, reduced_precision_rounding);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
