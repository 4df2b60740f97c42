// Emulated CUDA device (TEST INFRASTRUCTURE, host C++; never part of a GPU build): the CUDA
// runtime on guarded host memory, streams/events with CUDA's ordering, and the kernel scheduler
// that runs each block's threads as cooperative contexts on the launching OS thread.
//
// Memory: device allocations live in one reserved mapping, each right-aligned against a guard page
// (EMU_ALIGN=left puts it at the start of its pages instead). All device pages are PROT_NONE; inside
// a launch, copy or library call (emu_device_access) the first touch of an allocation faults and the
// SIGSEGV handler opens that allocation until the call ends. Any other fault on the mapping is a bug
// and is reported with the allocation it hit (host dereference, out of bounds, use after free).
//
// Scheduling: threads of a block run until they reach __syncthreads, a warp collective or the end;
// the order in which ready threads run is shuffled per launch (EMU_SEED), so code that needs a
// barrier it lacks computes wrong numbers. Divergent barriers, bad warp masks and deadlocks abort.
#include "core/backend/cuda/emu/emu.h"
#include "core/backend/cuda/emu/emu_launch.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" void emu_ctx_switch(void **from, void *to);
/* Bounds of the section that holds every static __shared__ array (emu_device.h); the anchor
 * makes sure the section exists even in a program without kernels. */
extern "C" char __start_emu_shared[], __stop_emu_shared[];
static char emu_shared_anchor[16] __attribute__((section("emu_shared"), used, aligned(16)));
extern "C" void emu_ctx_start(void);

thread_local uint3 threadIdx, blockIdx, blockDim, gridDim;
thread_local volatile int emu_in_atomic;

/* ==== configuration ============================================================================ */
namespace {
constexpr size_t kPage = 4096;
constexpr size_t kRegion = (size_t)1 << 40; // address space reserved for device memory (1 TiB)
constexpr size_t kMaxRecs = (size_t)1 << 22;

struct config {
  uint64_t seed = 0x5eed;
  bool left = false;    // EMU_ALIGN=left
  bool strict = false;  // EMU_STRICT_STREAMS=1
  int sm_count = 2;     // EMU_SM_COUNT
  bool verbose = false; // EMU_VERBOSE=1
};
config g_cfg;
std::once_flag g_init_once;

bool env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

/* ==== error reporting ============================================================================ */
} // namespace
struct launch_ctx;
namespace {
thread_local const launch_ctx *g_launch;   // the launch running on this OS thread
thread_local const char *g_call;           // the library call in progress (emu_set_current_call)
} // namespace
struct emu_thread;
namespace {
thread_local emu_thread *g_cur; // the emulated CUDA thread running now
} // namespace

struct launch_ctx {
  const char *name, *file;
  int line;
  dim3 grid, block;
  size_t smem;
  std::function<void()> body;
  uint64_t seed;
};

static void vreport(const char *fmt, va_list ap) {
  char buf[2048];
  int n = snprintf(buf, sizeof buf, "emu: ");
  n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(2, buf, (size_t)n);
  (void)w;
  if (g_launch) {
    n = snprintf(buf, sizeof buf,
                 "emu:   in kernel %s (launched at %s:%d, grid %ux%ux%u, block %ux%ux%u), block (%u,%u,%u) thread "
                 "(%u,%u,%u); launch seed %llu (rerun with EMU_SEED=%llu)\n",
                 g_launch->name, g_launch->file, g_launch->line, g_launch->grid.x, g_launch->grid.y,
                 g_launch->grid.z, g_launch->block.x, g_launch->block.y, g_launch->block.z, blockIdx.x, blockIdx.y,
                 blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z, (unsigned long long)g_launch->seed,
                 (unsigned long long)g_cfg.seed);
    w = write(2, buf, (size_t)n);
  }
  if (g_call) {
    n = snprintf(buf, sizeof buf, "emu:   in library call %s\n", g_call);
    w = write(2, buf, (size_t)n);
  }
  void *frames[48];
  int nf = backtrace(frames, 48);
  backtrace_symbols_fd(frames, nf, 2);
}

void emu_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
  signal(SIGABRT, SIG_DFL);
  abort();
}

void emu_set_current_call(const char *what) { g_call = what; }

static void ensure_init_fwd();
static void set_race_launches(int v);
void emu_set_option(const char *name, long long value) {
  ensure_init_fwd();
  if (!strcmp(name, "seed")) g_cfg.seed = (uint64_t)value;
  else if (!strcmp(name, "align_left")) g_cfg.left = value != 0;
  else if (!strcmp(name, "strict_streams")) g_cfg.strict = value != 0;
  else if (!strcmp(name, "race_launches")) set_race_launches((int)value);
  else emu_fail("emu_set_option: unknown option '%s'", name);
}

/* ==== device memory ============================================================================= */
namespace {
enum { REC_LIVE = 1, REC_FREED = 2 };
struct alloc_rec {
  uintptr_t data;   // first page of the allocation's pages
  size_t npages;    // data pages (a guard page follows)
  uintptr_t ptr;    // what cudaMalloc returned
  size_t bytes;     // what the caller asked for
  std::atomic<int> state;
  std::atomic<int> opened;
};
uintptr_t g_base;          // the reserved mapping
size_t g_bump = 1;         // next free page index (page 0 stays a guard)
uint32_t *g_owner;         // page index -> record id + 1 (0: guard or never used)
alloc_rec *g_recs;
std::atomic<uint32_t> g_nrecs{0};
size_t g_live_bytes;
std::mutex g_mem_mu;
std::atomic<int> g_access_depth{0};
uint32_t *g_opened;        // records opened in the current access phase
std::atomic<uint32_t> g_nopened{0};
constexpr unsigned char kCanary = 0xa5;

struct pinned_rec {
  size_t bytes;
  size_t mapped;
};
std::map<uintptr_t, pinned_rec> g_pinned;

bool in_region(uintptr_t a) { return g_base && a >= g_base && a < g_base + kRegion; }

alloc_rec *rec_of(uintptr_t a) {
  if (!in_region(a)) return nullptr;
  uint32_t id = g_owner[(a - g_base) / kPage];
  return id ? &g_recs[id - 1] : nullptr;
}
uint32_t rec_id(const alloc_rec *r) { return (uint32_t)(r - g_recs) + 1; }

/* The allocation a guard-page address `a` most likely belongs to: the nearer of the allocation
 * ending before the guard page (past its end) and the one starting after it (before its start). */
alloc_rec *rec_near(uintptr_t a, bool *after_end) {
  size_t pg = (a - g_base) / kPage;
  alloc_rec *prev = pg > 0 && g_owner[pg - 1] ? &g_recs[g_owner[pg - 1] - 1] : nullptr;
  alloc_rec *next = pg + 1 < kRegion / kPage && g_owner[pg + 1] ? &g_recs[g_owner[pg + 1] - 1] : nullptr;
  if (prev && next) {
    uintptr_t past = a - (prev->ptr + prev->bytes), before = next->ptr - a;
    if (before < past) prev = nullptr;
    else next = nullptr;
  }
  *after_end = prev != nullptr;
  return prev ? prev : next;
}

void open_rec(alloc_rec *r) {
  int expect = 0;
  if (!r->opened.compare_exchange_strong(expect, 1)) return;
  if (mprotect((void *)r->data, r->npages * kPage, PROT_READ | PROT_WRITE) != 0) {
    char m[] = "emu: mprotect failed while opening device memory\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    abort();
  }
  g_opened[g_nopened.fetch_add(1)] = rec_id(r) - 1;
}

void check_canary(alloc_rec *r) {
  const unsigned char *end = (const unsigned char *)(r->data + r->npages * kPage);
  for (const unsigned char *q = (const unsigned char *)(r->ptr + r->bytes); q < end; q++)
    if (*q != kCanary)
      emu_fail("out-of-bounds write: byte %td past the end of device allocation #%u (%zu bytes at %p) was "
               "overwritten (found in the alignment slack before its guard page)",
               q - (const unsigned char *)(r->ptr + r->bytes), rec_id(r), r->bytes, (void *)r->ptr);
}

void close_opened() {
  uint32_t n = g_nopened.exchange(0);
  for (uint32_t i = 0; i < n; i++) {
    alloc_rec *r = &g_recs[g_opened[i]];
    if (r->state.load() == REC_LIVE) check_canary(r);
    mprotect((void *)r->data, r->npages * kPage, PROT_NONE);
    r->opened.store(0);
  }
}

/* ==== fault handling ============================================================================ */
struct sigaction g_old_segv, g_old_bus, g_old_trap;
uintptr_t g_stack_lo, g_stack_hi; // fiber stacks (guard pages inside)

/* ---- shared-memory race checking ---------------------------------------------------------------
 * All static __shared__ arrays live in the "emu_shared" section. For the first blocks of the first
 * launches of each kernel, its pages are made PROT_NONE: every access faults, is recorded in a shadow
 * word (last writer, last reader(s), with the barrier epoch and the warp's collective count) and is
 * then executed by single-stepping (trap flag) with the pages open. Two accesses by different threads
 * between the same two barriers, at least one a write, are a race -- unless both threads are lanes of
 * one warp with a warp collective between them. Atomics are not races. */
struct shadow_word {
  uint32_t w_tid, w_ep, w_wep, r_tid, r_ep, r_wep, a_tid, a_ep, a_wep;
  uint8_t has_w, has_r, r_many, has_a;
};
uintptr_t g_sh_lo, g_sh_hi, g_watch_lo, g_watch_hi;
shadow_word *g_shadow;
volatile sig_atomic_t g_watch_on, g_stepping;
uint32_t g_epoch = 1;
uint32_t g_warp_ep[32];
uint64_t g_traps_shared, g_traps_foreign;
int g_race_launches = 2, g_race_blocks = 2;
void record_shared(uintptr_t a, bool write, bool atomic);

void segv_handler(int sig, siginfo_t *si, void *uctx) {
  uintptr_t a = (uintptr_t)si->si_addr;
  if (g_watch_on && a >= g_watch_lo && a < g_watch_hi) {
    ucontext_t *uc = (ucontext_t *)uctx;
    if (a >= g_sh_lo && a < g_sh_hi && g_cur) {
      g_traps_shared++;
      record_shared(a, (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0, emu_in_atomic != 0);
    } else {
      g_traps_foreign++; // the scheduler poisoning the section
    }
    mprotect((void *)g_watch_lo, g_watch_hi - g_watch_lo, PROT_READ | PROT_WRITE);
    uc->uc_mcontext.gregs[REG_EFL] |= 0x100; // trap after this one instruction
    g_stepping = 1;
    return;
  }
  if (in_region(a)) {
    alloc_rec *r = rec_of(a);
    if (r && r->state.load() == REC_LIVE && a >= r->data && a < r->data + r->npages * kPage) {
      if (g_access_depth.load() > 0) {
        open_rec(r);
        return;
      }
      emu_fail("host code dereferenced device memory at %p: offset %td of device allocation #%u (%zu bytes at %p). "
               "Device memory is only accessible in kernels, cudaMemcpy* and library calls; copy it to the host "
               "first",
               (void *)a, (ptrdiff_t)(a - r->ptr), rec_id(r), r->bytes, (void *)r->ptr);
    }
    if (r && r->state.load() == REC_FREED)
      emu_fail("use after cudaFree: %p is offset %td of device allocation #%u (%zu bytes at %p), already freed",
               (void *)a, (ptrdiff_t)(a - r->ptr), rec_id(r), r->bytes, (void *)r->ptr);
    bool after = false;
    alloc_rec *n = rec_near(a, &after);
    size_t pg = (a - g_base) / kPage;
    alloc_rec *p = pg > 0 && g_owner[pg - 1] ? &g_recs[g_owner[pg - 1] - 1] : nullptr;
    alloc_rec *q = pg + 1 < kRegion / kPage && g_owner[pg + 1] ? &g_recs[g_owner[pg + 1] - 1] : nullptr;
    if (p && q)
      emu_fail("out-of-bounds %s: %p is in the guard page between device allocation #%u (%zu bytes at %p%s; %p is %td "
               "bytes past its end) and #%u (%zu bytes at %p%s; %td bytes before its start)",
               g_access_depth.load() ? "device access" : "host access", (void *)a, rec_id(p), p->bytes,
               (void *)p->ptr, p->state.load() == REC_FREED ? ", freed" : "", (void *)a,
               (ptrdiff_t)(a - (p->ptr + p->bytes)), rec_id(q), q->bytes, (void *)q->ptr,
               q->state.load() == REC_FREED ? ", freed" : "", (ptrdiff_t)(q->ptr - a));
    if (n && after)
      emu_fail("out-of-bounds %s: %p is %td bytes past the end of device allocation #%u (%zu bytes at %p%s)",
               g_access_depth.load() ? "device access" : "host access", (void *)a,
               (ptrdiff_t)(a - (n->ptr + n->bytes)), rec_id(n), n->bytes, (void *)n->ptr,
               n->state.load() == REC_FREED ? ", freed" : "");
    if (n)
      emu_fail("out-of-bounds %s: %p is %td bytes before the start of device allocation #%u (%zu bytes at %p%s)",
               g_access_depth.load() ? "device access" : "host access", (void *)a, (ptrdiff_t)(n->ptr - a),
               rec_id(n), n->bytes, (void *)n->ptr, n->state.load() == REC_FREED ? ", freed" : "");
    emu_fail("access to %p inside the device mapping, which belongs to no allocation", (void *)a);
  }
  if (a >= g_stack_lo && a < g_stack_hi)
    emu_fail("an emulated CUDA thread overflowed its stack (%p): deep recursion or a large local array in a "
             "kernel; raise EMU_STACK_KIB",
             (void *)a);
  // Not ours: hand over to whoever was installed before (ASan), or crash normally.
  struct sigaction *old = sig == SIGBUS ? &g_old_bus : &g_old_segv;
  if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
    old->sa_sigaction(sig, si, uctx);
    return;
  }
  if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
    old->sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);
}

void trap_handler(int sig, siginfo_t *si, void *uctx) {
  if (g_stepping) {
    ucontext_t *uc = (ucontext_t *)uctx;
    g_stepping = 0;
    uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)0x100;
    if (g_watch_on) mprotect((void *)g_watch_lo, g_watch_hi - g_watch_lo, PROT_NONE);
    return;
  }
  if ((g_old_trap.sa_flags & SA_SIGINFO) && g_old_trap.sa_sigaction) {
    g_old_trap.sa_sigaction(sig, si, uctx);
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void init_runtime() {
  const char *s = getenv("EMU_SEED");
  if (s && *s) {
    if (!strcmp(s, "random")) {
      g_cfg.seed = (uint64_t)time(nullptr) ^ ((uint64_t)getpid() << 32);
    } else {
      char *end = nullptr;
      errno = 0;
      unsigned long long v = strtoull(s, &end, 0);
      if (errno || !end || *end) emu_fail("EMU_SEED=%s is not an unsigned integer or 'random'", s);
      g_cfg.seed = v;
    }
  }
  const char *al = getenv("EMU_ALIGN");
  if (al && *al) {
    if (!strcmp(al, "left")) g_cfg.left = true;
    else if (strcmp(al, "right") != 0) emu_fail("EMU_ALIGN=%s: expected left or right", al);
  }
  g_cfg.strict = env_flag("EMU_STRICT_STREAMS");
  g_cfg.verbose = env_flag("EMU_VERBOSE");
  const char *sm = getenv("EMU_SM_COUNT");
  if (sm && *sm) {
    char *end = nullptr;
    long v = strtol(sm, &end, 10);
    if (!end || *end || v < 1 || v > 1024) emu_fail("EMU_SM_COUNT=%s: expected 1..1024", sm);
    g_cfg.sm_count = (int)v;
  }
  void *m = mmap(nullptr, kRegion, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) emu_fail("cannot reserve %zu GiB of address space for device memory: %s", kRegion >> 30,
                                strerror(errno));
  g_base = (uintptr_t)m;
  void *o = mmap(nullptr, kRegion / kPage * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void *rr = mmap(nullptr, kMaxRecs * sizeof(alloc_rec), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void *op = mmap(nullptr, kMaxRecs * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (o == MAP_FAILED || rr == MAP_FAILED || op == MAP_FAILED) emu_fail("cannot map the emulator's tables");
  g_owner = (uint32_t *)o;
  g_recs = (alloc_rec *)rr;
  g_opened = (uint32_t *)op;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
  sigaction(SIGBUS, &sa, &g_old_bus);
  const char *rc = getenv("EMU_RACECHECK");
  if (rc && *rc) {
    char *end = nullptr;
    long v = strtol(rc, &end, 10);
    if (!end || (*end && *end != ',') || v < 0) emu_fail("EMU_RACECHECK=%s: expected LAUNCHES[,BLOCKS] (0: off)", rc);
    g_race_launches = (int)v;
    if (*end == ',') {
      long b = strtol(end + 1, &end, 10);
      if (*end || b < 1) emu_fail("EMU_RACECHECK=%s: expected LAUNCHES[,BLOCKS] (0: off)", rc);
      g_race_blocks = (int)b;
    }
  }
  g_sh_lo = (uintptr_t)__start_emu_shared;
  g_sh_hi = (uintptr_t)__stop_emu_shared;
  if (g_race_launches > 0 && g_sh_hi > g_sh_lo && ((g_sh_lo | g_sh_hi) & (kPage - 1))) {
    fprintf(stderr, "emu: warning: __shared__ storage is not on pages of its own (linked without emu_shared.ld?): "
                    "shared-memory race checking is off\n");
    g_race_launches = 0;
  }
  if (g_race_launches > 0 && g_sh_hi > g_sh_lo) {
    g_watch_lo = g_sh_lo & ~(uintptr_t)(kPage - 1);
    g_watch_hi = (g_sh_hi + kPage - 1) & ~(uintptr_t)(kPage - 1);
    g_shadow = (shadow_word *)calloc((g_sh_hi - g_sh_lo) / 4 + 1, sizeof(shadow_word));
    struct sigaction st;
    memset(&st, 0, sizeof st);
    st.sa_sigaction = trap_handler;
    st.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&st.sa_mask);
    sigaction(SIGTRAP, &st, &g_old_trap);
  }
  if (g_cfg.verbose)
    fprintf(stderr, "emu: seed %llu, %s-aligned allocations, %s streams, %d SMs\n", (unsigned long long)g_cfg.seed,
            g_cfg.left ? "left" : "right", g_cfg.strict ? "strict (deferred)" : "eager", g_cfg.sm_count);
}
void ensure_init() { std::call_once(g_init_once, init_runtime); }

cudaError_t g_last_error = cudaSuccess;
cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;
  return e;
}
} // namespace

static void ensure_init_fwd() { ensure_init(); }
static void set_race_launches(int v) { g_race_launches = v; }

bool emu_ptr_info(const void *p, size_t *offset, size_t *alloc_bytes, int *kind) {
  ensure_init();
  uintptr_t a = (uintptr_t)p;
  if (kind) *kind = EMU_MEM_PAGEABLE;
  alloc_rec *r = rec_of(a);
  if (r && r->state.load() == REC_LIVE && a >= r->ptr && a <= r->ptr + r->bytes) {
    if (offset) *offset = a - r->ptr;
    if (alloc_bytes) *alloc_bytes = r->bytes;
    if (kind) *kind = EMU_MEM_DEVICE;
    return true;
  }
  std::lock_guard<std::mutex> lk(g_mem_mu);
  auto it = g_pinned.upper_bound(a);
  if (it != g_pinned.begin()) {
    --it;
    if (a >= it->first && a <= it->first + it->second.bytes) {
      if (offset) *offset = a - it->first;
      if (alloc_bytes) *alloc_bytes = it->second.bytes;
      if (kind) *kind = EMU_MEM_PINNED;
      return true;
    }
  }
  return false;
}

static const char *kind_name(int k) {
  return k == EMU_MEM_DEVICE ? "device memory" : k == EMU_MEM_PINNED ? "pinned host memory" : "pageable host memory";
}

void emu_check_device_range(const void *p, size_t bytes, const char *what) {
  ensure_init();
  if (bytes == 0 && !p) return;
  uintptr_t a = (uintptr_t)p;
  alloc_rec *r = rec_of(a);
  if (r && r->state.load() == REC_FREED)
    emu_fail("%s: %p lies in device allocation #%u (%zu bytes at %p), which was already freed", what, p,
             rec_id(r), r->bytes, (void *)r->ptr);
  size_t off = 0, ab = 0;
  int kind = 0;
  if (!emu_ptr_info(p, &off, &ab, &kind) || kind != EMU_MEM_DEVICE)
    emu_fail("%s: %p is %s, not device memory", what, p, kind_name(kind));
  if (bytes > ab - off)
    emu_fail("%s: %zu bytes from %p run %zu bytes past the end of device allocation #%u (%zu bytes at %p, offset "
             "%zu)",
             what, bytes, p, bytes - (ab - off), rec_id(r), ab, (void *)r->ptr, off);
}

void emu_check_host_range(const void *p, size_t bytes, const char *what) {
  ensure_init();
  size_t off = 0, ab = 0;
  int kind = 0;
  if (!p) emu_fail("%s: NULL pointer", what);
  if (emu_ptr_info(p, &off, &ab, &kind) && bytes > ab - off)
    emu_fail("%s: %zu bytes from %p run past the end of the %s allocation (%zu bytes, offset %zu)", what, bytes, p,
             kind_name(kind), ab, off);
  (void)bytes;
}

emu_device_access::emu_device_access() {
  ensure_init();
  g_access_depth.fetch_add(1);
}
emu_device_access::~emu_device_access() {
  if (g_access_depth.fetch_sub(1) == 1) close_opened();
}

/* ==== reduced precision ============================================================================ */
/* tf32: PTX's cvt.rna.tf32.f32 (the conversion sm_80+ tensor-core code applies to fp32 operands)
 * rounds to nearest with ties away from zero, keeping 10 mantissa bits in an fp32 container. */
float emu_round_tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x; // Inf and NaN unchanged
  u += 0x1000u;                                      // half of the 13 dropped bits: ties away from zero
  u &= 0xffffe000u;
  float r;
  memcpy(&r, &u, 4);
  return r;
}
/* bf16: round to nearest, ties to even (as __float2bfloat16_rn); NaN stays a (quiet) NaN. */
float emu_round_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) {
    if (u & 0x007fffffu) u |= 0x00400000u;
    u &= 0xffff0000u;
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
  }
  float r;
  memcpy(&r, &u, 4);
  return r;
}

/* ==== streams and events ============================================================================ */
struct CUstream_st {
  std::deque<std::function<void()>> queue;
  uint64_t enqueued = 0, executed = 0;
  bool nonblocking = false;
  bool legacy = false;
};
struct CUevent_st {
  CUstream_st *stream = nullptr;
  uint64_t target = 0;
  bool recorded = false;
};
namespace {
std::vector<CUstream_st *> g_streams; // every live stream, the legacy default stream first
CUstream_st *legacy_stream() {
  static CUstream_st *s = [] {
    auto *n = new CUstream_st;
    n->legacy = true;
    g_streams.push_back(n);
    return n;
  }();
  return s;
}
CUstream_st *resolve(cudaStream_t s) {
  ensure_init();
  if (!s || s == cudaStreamLegacy || s == cudaStreamPerThread) return legacy_stream();
  if (std::find(g_streams.begin(), g_streams.end(), s) == g_streams.end())
    emu_fail("stream %p is not a live stream (destroyed, or never created)", (void *)s);
  return s;
}
void run_one(CUstream_st *s) {
  std::function<void()> w = std::move(s->queue.front());
  s->queue.pop_front();
  {
    emu_device_access acc;
    w();
  }
  s->executed++;
}
void drain_to(CUstream_st *s, uint64_t target) {
  while (s->executed < target && !s->queue.empty()) run_one(s);
}
void drain(CUstream_st *s) { drain_to(s, s->enqueued); }
void drain_all() {
  for (size_t i = 0; i < g_streams.size(); i++) drain(g_streams[i]);
}
/* The legacy default stream waits for every blocking stream and they wait for it. */
void drain_for_legacy() {
  for (CUstream_st *s : g_streams)
    if (!s->nonblocking) drain(s);
}
} // namespace

void emu_stream_enqueue(cudaStream_t st, std::function<void()> work) {
  CUstream_st *s = resolve(st);
  if (s->legacy && g_cfg.strict) {
    for (CUstream_st *o : g_streams)
      if (o != s && !o->nonblocking) drain(o);
  }
  s->queue.push_back(std::move(work));
  s->enqueued++;
  if (!g_cfg.strict) drain(s);
}
void emu_stream_drain(cudaStream_t st) {
  CUstream_st *s = resolve(st);
  if (s->legacy) drain_all();
  else drain(s);
}

/* ==== runtime API ================================================================================ */
extern "C" {
const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define N(x) \
  case x: return #x;
    N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation) N(cudaErrorInitializationError)
    N(cudaErrorInsufficientDriver) N(cudaErrorInvalidConfiguration) N(cudaErrorInvalidDevicePointer)
    N(cudaErrorInvalidMemcpyDirection) N(cudaErrorInvalidResourceHandle) N(cudaErrorNoDevice)
    N(cudaErrorInvalidDevice) N(cudaErrorInvalidDeviceFunction) N(cudaErrorNoKernelImageForDevice)
    N(cudaErrorUnsupportedPtxVersion) N(cudaErrorNotReady) N(cudaErrorIllegalAddress)
    N(cudaErrorLaunchOutOfResources) N(cudaErrorMisalignedAddress) N(cudaErrorLaunchFailure) N(cudaErrorUnknown)
#undef N
  }
  return "cudaErrorUnknown";
}
const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return cudaGetErrorName(e);
  }
}
cudaError_t cudaGetLastError(void) {
  cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_last_error; }
cudaError_t cudaGetDeviceCount(int *count) {
  ensure_init();
  if (!count) return set_error(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  ensure_init();
  return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice);
}
cudaError_t cudaGetDevice(int *device) {
  if (!device) return set_error(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
  ensure_init();
  if (!p) return set_error(cudaErrorInvalidValue);
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "unmix emulated CUDA device (CPU, test only)");
  p->totalGlobalMem = (size_t)16 << 30;
  p->sharedMemPerBlock = 48 * 1024;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->multiProcessorCount = g_cfg.sm_count;
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
  ensure_init();
  drain_all();
  return cudaSuccess;
}
cudaError_t cudaDeviceReset(void) { return cudaDeviceSynchronize(); }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  ensure_init();
  size_t total = (size_t)16 << 30;
  std::lock_guard<std::mutex> lk(g_mem_mu);
  if (free_bytes) *free_bytes = g_live_bytes < total ? total - g_live_bytes : 0;
  if (total_bytes) *total_bytes = total;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
  ensure_init();
  if (!p) return set_error(cudaErrorInvalidValue);
  *p = nullptr;
  if (bytes == 0) return cudaSuccess; // as CUDA: a NULL pointer and success
  if (bytes > ((size_t)16 << 30)) return set_error(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lk(g_mem_mu);
  size_t npages = (bytes + kPage - 1) / kPage;
  if (g_bump + npages + 1 > kRegion / kPage || g_nrecs.load() >= kMaxRecs)
    emu_fail("the emulator's device address space is exhausted (freed memory is never reused, so that a use "
             "after free is caught)");
  uint32_t id = g_nrecs.fetch_add(1);
  alloc_rec *r = &g_recs[id];
  r->data = g_base + g_bump * kPage;
  r->npages = npages;
  r->bytes = bytes;
  // Right-aligned: the end of the buffer touches the guard page, up to 15 bytes of slack that
  // keep CUDA's alignment promises for our element types and are checked by a canary.
  r->ptr = g_cfg.left ? r->data : (r->data + npages * kPage - bytes) & ~(uintptr_t)15;
  r->opened.store(0);
  for (size_t i = 0; i < npages; i++) g_owner[g_bump + i] = id + 1;
  g_bump += npages + 1; // + the guard page
  if (mprotect((void *)r->data, npages * kPage, PROT_READ | PROT_WRITE) != 0)
    emu_fail("mprotect failed: %s", strerror(errno));
  // Fresh device memory holds garbage on a GPU: NaN bytes (0xff) here, so a kernel that reads
  // what nobody wrote produces NaN; the slack after the buffer holds the canary.
  memset((void *)r->data, 0xff, npages * kPage);
  memset((void *)(r->ptr + bytes), kCanary, r->data + npages * kPage - (r->ptr + bytes));
  mprotect((void *)r->data, npages * kPage, PROT_NONE);
  r->state.store(REC_LIVE);
  g_live_bytes += bytes;
  *p = (void *)r->ptr;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  ensure_init();
  if (!p) return cudaSuccess;
  drain_all(); // cudaFree synchronises the device
  alloc_rec *r = rec_of((uintptr_t)p);
  if (!r || (uintptr_t)p != r->ptr) {
    int kind = 0;
    emu_ptr_info(p, nullptr, nullptr, &kind);
    emu_fail("cudaFree(%p): not a pointer returned by cudaMalloc (it is %s%s)", p, kind_name(kind),
             r ? ", inside a device allocation" : "");
  }
  if (r->state.load() == REC_FREED)
    emu_fail("cudaFree(%p): device allocation #%u (%zu bytes) was already freed", p, rec_id(r), r->bytes);
  std::lock_guard<std::mutex> lk(g_mem_mu);
  mprotect((void *)r->data, r->npages * kPage, PROT_READ);
  check_canary(r);
  r->state.store(REC_FREED);
  mprotect((void *)r->data, r->npages * kPage, PROT_NONE);
  madvise((void *)r->data, r->npages * kPage, MADV_DONTNEED);
  g_live_bytes -= r->bytes;
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
  ensure_init();
  if (!p) return set_error(cudaErrorInvalidValue);
  (void)flags;
  size_t mapped = (bytes + kPage - 1) / kPage * kPage;
  if (mapped == 0) mapped = kPage;
  void *m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    *p = nullptr;
    return set_error(cudaErrorMemoryAllocation);
  }
  memset(m, 0xff, mapped);
  std::lock_guard<std::mutex> lk(g_mem_mu);
  g_pinned[(uintptr_t)m] = pinned_rec{bytes, mapped};
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, cudaHostAllocDefault); }
cudaError_t cudaFreeHost(void *p) {
  ensure_init();
  if (!p) return cudaSuccess;
  drain_all();
  std::lock_guard<std::mutex> lk(g_mem_mu);
  auto it = g_pinned.find((uintptr_t)p);
  if (it == g_pinned.end()) {
    alloc_rec *r = rec_of((uintptr_t)p);
    emu_fail("cudaFreeHost(%p): not a pointer returned by cudaMallocHost/cudaHostAlloc%s", p,
             r ? " (it is device memory: use cudaFree)" : "");
  }
  munmap(p, it->second.mapped);
  g_pinned.erase(it);
  return cudaSuccess;
}

static int where(const void *p) {
  int k = 0;
  emu_ptr_info(p, nullptr, nullptr, &k);
  return k;
}
static const char *kind_str(enum cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
  }
  return "an invalid cudaMemcpyKind";
}

/* Checks kind against where dst and src really live and the sizes against their allocations;
 * returns the kind with cudaMemcpyDefault resolved. */
static enum cudaMemcpyKind check_copy(const char *fn, void *dst, const void *src, size_t bytes,
                                      enum cudaMemcpyKind kind) {
  int dk = where(dst), sk = where(src);
  bool ddev = dk == EMU_MEM_DEVICE, sdev = sk == EMU_MEM_DEVICE;
  if (kind == cudaMemcpyDefault)
    kind = ddev ? (sdev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                : (sdev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  bool want_ddev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool want_sdev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((int)kind < 0 || (int)kind > 4) emu_fail("%s: invalid cudaMemcpyKind %d", fn, (int)kind);
  if (bytes == 0) return kind;
  if (!dst || !src) emu_fail("%s(%s, %zu bytes): NULL %s", fn, kind_str(kind), bytes, !dst ? "dst" : "src");
  if (ddev != want_ddev)
    emu_fail("%s(%s, %zu bytes): dst %p is %s", fn, kind_str(kind), bytes, dst, kind_name(dk));
  if (sdev != want_sdev)
    emu_fail("%s(%s, %zu bytes): src %p is %s", fn, kind_str(kind), bytes, src, kind_name(sk));
  char what[96];
  snprintf(what, sizeof what, "%s(%s) dst", fn, kind_str(kind));
  if (ddev) emu_check_device_range(dst, bytes, what);
  else emu_check_host_range(dst, bytes, what);
  snprintf(what, sizeof what, "%s(%s) src", fn, kind_str(kind));
  if (sdev) emu_check_device_range(src, bytes, what);
  else emu_check_host_range(src, bytes, what);
  if (kind == cudaMemcpyDeviceToDevice && (uintptr_t)dst < (uintptr_t)src + bytes &&
      (uintptr_t)src < (uintptr_t)dst + bytes)
    emu_fail("%s: overlapping device ranges (dst %p, src %p, %zu bytes): cudaMemcpy requires disjoint ranges", fn,
             dst, src, bytes);
  return kind;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t st) {
  ensure_init();
  kind = check_copy("cudaMemcpyAsync", dst, src, bytes, kind);
  if (!bytes) return cudaSuccess;
  CUstream_st *s = resolve(st);
  int sk = where(src), dk = where(dst);
  if (kind == cudaMemcpyHostToDevice && sk == EMU_MEM_PAGEABLE) {
    // Pageable source: CUDA stages it before returning, so the caller may reuse it at once.
    auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                              (const unsigned char *)src + bytes);
    emu_stream_enqueue(s, [dst, staged, bytes] { memcpy(dst, staged->data(), bytes); });
    return cudaSuccess;
  }
  emu_stream_enqueue(s, [dst, src, bytes] { memcpy(dst, src, bytes); });
  // Pageable destination: CUDA returns only once the copy is complete.
  if (kind == cudaMemcpyDeviceToHost && dk == EMU_MEM_PAGEABLE) drain_to(s, s->enqueued);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
  ensure_init();
  kind = check_copy("cudaMemcpy", dst, src, bytes, kind);
  if (!bytes) return cudaSuccess;
  // On the legacy default stream: waits for blocking streams, not for non-blocking ones.
  drain_for_legacy();
  emu_device_access acc;
  memcpy(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              enum cudaMemcpyKind kind, cudaStream_t st) {
  ensure_init();
  if (height == 0 || width == 0) return cudaSuccess;
  if (width > dpitch || width > spitch) return set_error(cudaErrorInvalidValue);
  size_t dspan = dpitch * (height - 1) + width, sspan = spitch * (height - 1) + width;
  int dk = where(dst), sk = where(src);
  if (kind == cudaMemcpyDefault)
    kind = dk == EMU_MEM_DEVICE ? (sk == EMU_MEM_DEVICE ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                : (sk == EMU_MEM_DEVICE ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  if ((dk == EMU_MEM_DEVICE) != (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice) ||
      (sk == EMU_MEM_DEVICE) != (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice))
    emu_fail("cudaMemcpy2DAsync(%s): dst %p is %s, src %p is %s", kind_str(kind), dst, kind_name(dk), src,
             kind_name(sk));
  if (dk == EMU_MEM_DEVICE) emu_check_device_range(dst, dspan, "cudaMemcpy2DAsync dst");
  if (sk == EMU_MEM_DEVICE) emu_check_device_range(src, sspan, "cudaMemcpy2DAsync src");
  CUstream_st *s = resolve(st);
  if (sk != EMU_MEM_DEVICE && sk != EMU_MEM_PINNED) {
    auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                              (const unsigned char *)src + sspan);
    src = nullptr;
    emu_stream_enqueue(s, [=] {
      for (size_t r = 0; r < height; r++) memcpy((char *)dst + r * dpitch, staged->data() + r * spitch, width);
    });
  } else {
    emu_stream_enqueue(s, [=] {
      for (size_t r = 0; r < height; r++) memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    });
  }
  if (kind == cudaMemcpyDeviceToHost && dk == EMU_MEM_PAGEABLE) drain(s);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t st) {
  ensure_init();
  if (!bytes) return cudaSuccess;
  emu_check_device_range(p, bytes, "cudaMemsetAsync");
  emu_stream_enqueue(st, [p, value, bytes] { memset(p, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  cudaError_t e = cudaMemsetAsync(p, value, bytes, nullptr);
  drain_for_legacy();
  return e;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
  ensure_init();
  if (!s) return set_error(cudaErrorInvalidValue);
  legacy_stream();
  auto *n = new CUstream_st;
  n->nonblocking = (flags & cudaStreamNonBlocking) != 0;
  g_streams.push_back(n);
  *s = n;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t st) {
  CUstream_st *s = resolve(st);
  if (s->legacy) return set_error(cudaErrorInvalidResourceHandle);
  drain(s); // pending work still completes, as CUDA does
  g_streams.erase(std::find(g_streams.begin(), g_streams.end(), s));
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t st) {
  CUstream_st *s = resolve(st);
  if (s->legacy) drain_for_legacy();
  else drain(s);
  return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t st) {
  CUstream_st *s = resolve(st);
  if (s->executed == s->enqueued) return cudaSuccess;
  // Report "not ready" once, as a busy GPU would, then let the work run (a polling loop ends).
  drain(s);
  return cudaErrorNotReady;
}

static CUevent_st *check_event(cudaEvent_t e, const char *fn) {
  if (!e) emu_fail("%s: NULL event", fn);
  return e;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
  ensure_init();
  (void)flags;
  if (!e) return set_error(cudaErrorInvalidValue);
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete check_event(e, "cudaEventDestroy");
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t st) {
  CUevent_st *ev = check_event(e, "cudaEventRecord");
  CUstream_st *s = resolve(st);
  ev->stream = s;
  ev->target = s->enqueued;
  ev->recorded = true;
  return cudaSuccess;
}
/* A strict-mode event completes when someone waits for it; so does the work before it. */
static void complete_event(CUevent_st *ev) {
  if (!ev->recorded) return;
  if (std::find(g_streams.begin(), g_streams.end(), ev->stream) == g_streams.end()) return; // stream gone: drained
  drain_to(ev->stream, ev->target);
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  complete_event(check_event(e, "cudaEventSynchronize"));
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  CUevent_st *ev = check_event(e, "cudaEventQuery");
  if (ev->recorded && ev->stream->executed < ev->target) {
    // Report "not ready" once, as a GPU still busy would, then let the work run.
    complete_event(ev);
    return cudaErrorNotReady;
  }
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t st, cudaEvent_t e, unsigned int flags) {
  (void)flags;
  CUevent_st *ev = check_event(e, "cudaStreamWaitEvent");
  if (!ev->recorded) return cudaSuccess;
  CUstream_st *src = ev->stream;
  uint64_t target = ev->target;
  emu_stream_enqueue(st, [src, target] {
    if (std::find(g_streams.begin(), g_streams.end(), src) != g_streams.end()) drain_to(src, target);
  });
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  check_event(a, "cudaEventElapsedTime");
  check_event(b, "cudaEventElapsedTime");
  if (!ms) return set_error(cudaErrorInvalidValue);
  *ms = 0.0f; // the emulator has no device clock
  return cudaSuccess;
}
} // extern "C"

/* ==== the kernel scheduler ========================================================================== */
namespace {
enum tstate { T_READY, T_BARRIER, T_WARP, T_DONE };
} // namespace
struct emu_thread {
  void *sp;
  uint3 idx;
  unsigned lin;
  tstate state;
  const char *bar_file;
  int bar_line;
  emu_warp_op wop;
  unsigned wmask;
  uint64_t wval, wresult;
  int wsrc;
};
namespace {
void record_shared(uintptr_t a, bool write, bool atomic) {
  const uint32_t tid = g_cur->lin, warp = tid >> 5, wep = g_warp_ep[warp];
  shadow_word &w = g_shadow[(a - g_sh_lo) >> 2];
  auto ordered = [&](uint32_t otid, uint32_t oep, uint32_t owep) {
    return otid == tid || oep != g_epoch || ((otid >> 5) == warp && owep != wep);
  };
  const unsigned bx = blockDim.x ? blockDim.x : 1, by = blockDim.y ? blockDim.y : 1;
  auto other = [&](uint32_t o, char *buf, size_t n) {
    snprintf(buf, n, "(%u,%u,%u)", o % bx, (o / bx) % by, o / (bx * by));
    return buf;
  };
  const char *mine = atomic ? "updated atomically" : write ? "written" : "read";
  char ob[48];
  if (w.has_w && !ordered(w.w_tid, w.w_ep, w.w_wep))
    emu_fail("shared-memory race (%s): byte %td of __shared__ storage is %s by this thread and was written by thread "
             "%s with no __syncthreads between them",
             atomic ? "atomic/write" : write ? "write/write" : "read after write", (ptrdiff_t)(a - g_sh_lo), mine,
             other(w.w_tid, ob, sizeof ob));
  // Atomics do not race with each other, only with plain accesses.
  if (!atomic && w.has_a && !ordered(w.a_tid, w.a_ep, w.a_wep))
    emu_fail("shared-memory race (%s/atomic): byte %td of __shared__ storage is %s by this thread and was updated "
             "atomically by thread %s with no __syncthreads between them",
             write ? "write" : "read", (ptrdiff_t)(a - g_sh_lo), mine, other(w.a_tid, ob, sizeof ob));
  if ((write || atomic) && w.has_r && w.r_ep == g_epoch && (w.r_many || !ordered(w.r_tid, w.r_ep, w.r_wep)))
    emu_fail("shared-memory race (%s after read): byte %td of __shared__ storage is %s by this thread and was read "
             "by thread %s%s with no __syncthreads between them",
             atomic ? "atomic" : "write", (ptrdiff_t)(a - g_sh_lo), mine, other(w.r_tid, ob, sizeof ob),
             w.r_many ? " and others" : "");
  if (atomic) {
    w.a_tid = tid;
    w.a_ep = g_epoch;
    w.a_wep = wep;
    w.has_a = 1;
  } else if (write) {
    w.w_tid = tid;
    w.w_ep = g_epoch;
    w.w_wep = wep;
    w.has_w = 1;
  } else {
    if (w.has_r && w.r_ep == g_epoch && w.r_tid != tid) w.r_many = 1;
    else if (!(w.has_r && w.r_ep == g_epoch)) w.r_many = 0;
    w.r_tid = tid;
    w.r_ep = g_epoch;
    w.r_wep = wep;
    w.has_r = 1;
  }
}

struct rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  template <class T> void shuffle(std::vector<T> &v) {
    for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[next() % i]);
  }
};

size_t g_stack_bytes;
unsigned char *g_stacks;      // 1024 stacks, each with a guard page below it
std::vector<emu_thread> g_th;
void *g_sched_sp;
const std::function<void()> *g_body;
uint64_t g_launch_count;
#ifdef EMU_ASAN
void *g_asan_fake;
const void *g_main_stack_bottom;
size_t g_main_stack_size;
#endif

unsigned char *stack_of(unsigned i) { return g_stacks + (size_t)i * (g_stack_bytes + kPage) + kPage; }

void ensure_stacks() {
  if (g_stacks) return;
  size_t kib = 64;
#ifdef EMU_ASAN
  kib = 256;
#endif
  const char *e = getenv("EMU_STACK_KIB");
  if (e && *e) {
    char *end = nullptr;
    long v = strtol(e, &end, 10);
    if (!end || *end || v < 16 || v > 65536) emu_fail("EMU_STACK_KIB=%s: expected 16..65536", e);
    kib = (size_t)v;
  }
  g_stack_bytes = (kib * 1024 + kPage - 1) / kPage * kPage;
  size_t total = 1024 * (g_stack_bytes + kPage);
  void *m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) emu_fail("cannot map thread stacks: %s", strerror(errno));
  g_stacks = (unsigned char *)m;
  for (unsigned i = 0; i < 1024; i++) mprotect(stack_of(i) - kPage, kPage, PROT_NONE);
  g_stack_lo = (uintptr_t)m;
  g_stack_hi = (uintptr_t)m + total;
}

void to_scheduler(emu_thread *t) {
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(t->state == T_DONE ? nullptr : &g_asan_fake, g_main_stack_bottom,
                                 g_main_stack_size);
#endif
  emu_ctx_switch(&t->sp, g_sched_sp);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(g_asan_fake, nullptr, nullptr);
#endif
}

extern "C" void emu_thread_entry(void *arg) {
  emu_thread *t = (emu_thread *)arg;
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &g_main_stack_bottom, &g_main_stack_size);
#endif
  (*g_body)();
  t->state = T_DONE;
  to_scheduler(t);
  __builtin_unreachable();
}

void prepare(emu_thread *t) {
  unsigned char *top = stack_of(t->lin) + g_stack_bytes;
#ifdef EMU_ASAN
  __asan_unpoison_memory_region(stack_of(t->lin), g_stack_bytes);
#endif
  uint64_t *sp = (uint64_t *)(((uintptr_t)top) & ~(uintptr_t)15) - 8;
  uint32_t csr = __builtin_ia32_stmxcsr();
  uint64_t fpu = csr | ((uint64_t)0x037f << 32);
  sp[0] = fpu;
  sp[1] = 0;                                   // r15
  sp[2] = 0;                                   // r14
  sp[3] = (uint64_t)(uintptr_t)&emu_thread_entry; // r13: the function
  sp[4] = (uint64_t)(uintptr_t)t;              // r12: its argument
  sp[5] = 0;                                   // rbx
  sp[6] = 0;                                   // rbp
  sp[7] = (uint64_t)(uintptr_t)&emu_ctx_start; // return address
  t->sp = sp;
}

void resume(emu_thread *t) {
  g_cur = t;
  threadIdx = t->idx;
#ifdef EMU_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_of(t->lin), g_stack_bytes);
#endif
  emu_ctx_switch(&g_sched_sp, t->sp);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  g_cur = nullptr;
}

const char *state_name(const emu_thread &t, char *buf, size_t n) {
  switch (t.state) {
    case T_READY: return "running";
    case T_DONE: return "exited";
    case T_BARRIER: snprintf(buf, n, "at __syncthreads (%s:%d)", t.bar_file, t.bar_line); return buf;
    case T_WARP:
      snprintf(buf, n, "at a warp %s with mask 0x%08x",
               t.wop == EMU_WARP_SHFL ? "shuffle" : t.wop == EMU_WARP_VOTE ? "vote" : "__syncwarp", t.wmask);
      return buf;
  }
  return "?";
}

[[noreturn]] void fail_thread(const emu_thread &t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fail_thread(const emu_thread &t, const char *fmt, ...) {
  threadIdx = t.idx;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  emu_fail("%s", msg);
}

/* Completes the warp collectives whose lanes have all arrived; returns how many lanes it released. */
size_t resolve_warps(unsigned nt, std::vector<unsigned> &ready) {
  size_t released = 0;
  for (unsigned w = 0; w * 32 < nt; w++) {
    unsigned base = w * 32, nl = std::min(32u, nt - base);
    for (unsigned l = 0; l < nl; l++) {
      emu_thread &t = g_th[base + l];
      if (t.state != T_WARP) continue;
      unsigned m = t.wmask;
      char sb[160];
      for (unsigned j = 0; j < 32; j++) {
        if (!((m >> j) & 1u)) continue;
        if (j >= nl)
          fail_thread(t, "warp collective with mask 0x%08x names lane %u, which does not exist (the block has %u "
                         "threads)",
                      m, j, nt);
        emu_thread &o = g_th[base + j];
        if (o.state == T_WARP && (o.wmask != m || o.wop != t.wop))
          fail_thread(t, "lanes of one warp disagree: lane %u is at a warp %s with mask 0x%08x, lane %u %s", l,
                      t.wop == EMU_WARP_SHFL ? "shuffle" : t.wop == EMU_WARP_VOTE ? "vote" : "__syncwarp", m, j,
                      state_name(o, sb, sizeof sb));
        if (o.state != T_WARP)
          fail_thread(t, "warp collective with mask 0x%08x waits for lane %u, which is %s: divergent warp "
                         "synchronisation (undefined on a GPU)",
                      m, j, state_name(o, sb, sizeof sb));
      }
      uint64_t ballot = 0;
      for (unsigned j = 0; j < 32; j++)
        if ((m >> j) & 1u) ballot |= (g_th[base + j].wval & 1u) << j;
      for (unsigned j = 0; j < 32; j++) {
        if (!((m >> j) & 1u)) continue;
        emu_thread &o = g_th[base + j];
        if (o.wop == EMU_WARP_SHFL) {
          unsigned s = (unsigned)o.wsrc;
          if (s >= 32 || !((m >> s) & 1u))
            fail_thread(o, "shuffle reads lane %d, which is not in the mask 0x%08x (undefined on a GPU)", o.wsrc, m);
          o.wresult = g_th[base + s].wval;
        } else {
          o.wresult = o.wop == EMU_WARP_VOTE ? ballot : 0;
        }
      }
      g_warp_ep[w & 31]++;
      for (unsigned j = 0; j < 32; j++)
        if ((m >> j) & 1u) {
          g_th[base + j].state = T_READY;
          ready.push_back(base + j);
          released++;
        }
    }
  }
  return released;
}

void run_block(unsigned nt, rng &r) {
  std::vector<unsigned> ready(nt), batch;
  for (unsigned i = 0; i < nt; i++) {
    emu_thread &t = g_th[i];
    t.state = T_READY;
    prepare(&t);
    ready[i] = i;
  }
  unsigned live = nt;
  for (;;) {
    if (ready.empty()) {
      if (live == 0) break;
      if (resolve_warps(nt, ready) > 0) continue;
      unsigned nbar = 0, ndone = 0, first_bar = nt, first_done = nt;
      for (unsigned i = 0; i < nt; i++) {
        if (g_th[i].state == T_BARRIER) {
          nbar++;
          if (first_bar == nt) first_bar = i;
        } else if (g_th[i].state == T_DONE) {
          ndone++;
          if (first_done == nt) first_done = i;
        }
      }
      char sb[160];
      if (nbar == live) {
        const emu_thread &b = g_th[first_bar];
        if (ndone)
          fail_thread(b, "divergent __syncthreads at %s:%d: %u of %u threads of the block exited without reaching "
                         "it (first: thread (%u,%u,%u)); undefined on a GPU",
                      b.bar_file, b.bar_line, ndone, nt, g_th[first_done].idx.x, g_th[first_done].idx.y,
                      g_th[first_done].idx.z);
        for (unsigned i = 0; i < nt; i++) {
          const emu_thread &o = g_th[i];
          if (o.bar_line != b.bar_line || strcmp(o.bar_file, b.bar_file) != 0)
            fail_thread(o, "divergent __syncthreads: this thread waits at %s:%d while thread (%u,%u,%u) waits at "
                           "%s:%d",
                        o.bar_file, o.bar_line, b.idx.x, b.idx.y, b.idx.z, b.bar_file, b.bar_line);
        }
        g_epoch++;
        for (unsigned i = 0; i < nt; i++) {
          g_th[i].state = T_READY;
          ready.push_back(i);
        }
        continue;
      }
      // Some threads wait at a barrier, others at a warp collective that cannot complete.
      for (unsigned i = 0; i < nt; i++)
        if (g_th[i].state == T_WARP)
          fail_thread(g_th[i], "deadlock: this thread is %s, while thread (%u,%u,%u) is %s",
                      state_name(g_th[i], sb, sizeof sb), g_th[first_bar < nt ? first_bar : 0].idx.x,
                      g_th[first_bar < nt ? first_bar : 0].idx.y, g_th[first_bar < nt ? first_bar : 0].idx.z,
                      first_bar < nt ? "at __syncthreads" : "elsewhere");
      emu_fail("scheduler: no thread can run (internal error)");
    }
    r.shuffle(ready);
    batch.swap(ready);
    ready.clear();
    for (unsigned i : batch) {
      emu_thread &t = g_th[i];
      resume(&t);
      if (t.state == T_DONE) live--;
      else if (t.state == T_READY) ready.push_back(i); // cannot happen: threads only stop to wait
    }
    batch.clear();
  }
}

void run_launch(launch_ctx &L) {
  ensure_stacks();
  const unsigned nt = L.block.x * L.block.y * L.block.z;
  const uint64_t nb = (uint64_t)L.grid.x * L.grid.y * L.grid.z;
  g_th.resize(nt);
  for (unsigned i = 0; i < nt; i++) {
    g_th[i].lin = i;
    g_th[i].idx = uint3{i % L.block.x, (i / L.block.x) % L.block.y, i / (L.block.x * L.block.y)};
  }
  const launch_ctx *prev = g_launch;
  g_launch = &L;
  g_body = &L.body;
  blockDim = uint3{L.block.x, L.block.y, L.block.z};
  gridDim = uint3{L.grid.x, L.grid.y, L.grid.z};
  rng r{L.seed};
  // Blocks run in a shuffled order too: no block may rely on another having run first.
  std::vector<uint64_t> order(nb);
  for (uint64_t i = 0; i < nb; i++) order[i] = i;
  r.shuffle(order);
  static std::map<std::string, int> launches_of; // per kernel (name and launch site)
  int nth = 0;
  if (g_shadow && g_race_launches > 0) {
    std::string key = std::string(L.name) + "@" + L.file + ":" + std::to_string(L.line);
    nth = launches_of[key]++;
  }
  uint64_t done = 0;
  for (uint64_t b : order) {
    blockIdx = uint3{(unsigned)(b % L.grid.x), (unsigned)((b / L.grid.x) % L.grid.y),
                     (unsigned)(b / ((uint64_t)L.grid.x * L.grid.y))};
    // Uninitialised shared memory reads as NaN (all bits set), as garbage would on a GPU. Later
    // blocks find the previous block's values instead (wrong too, and far cheaper than a memset
    // of the whole section per block).
    if (g_sh_hi > g_sh_lo && done < 4) memset((void *)g_sh_lo, 0xff, g_sh_hi - g_sh_lo);
    g_epoch++;
    const bool watch = g_shadow && nth < g_race_launches && done < (uint64_t)g_race_blocks;
    if (watch) {
      mprotect((void *)g_watch_lo, g_watch_hi - g_watch_lo, PROT_NONE);
      g_watch_on = 1;
    }
    run_block(nt, r);
    if (watch) {
      g_watch_on = 0;
      mprotect((void *)g_watch_lo, g_watch_hi - g_watch_lo, PROT_READ | PROT_WRITE);
    }
    done++;
  }
  g_launch = prev;
  g_body = nullptr;
}
} // namespace

void emu_syncthreads(const char *file, int line) {
  emu_thread *t = g_cur;
  if (!t) emu_fail("__syncthreads() called outside a kernel (%s:%d)", file, line);
  t->state = T_BARRIER;
  t->bar_file = file;
  t->bar_line = line;
  to_scheduler(t);
}

uint64_t emu_warp_collective(enum emu_warp_op op, unsigned mask, uint64_t value, int src) {
  emu_thread *t = g_cur;
  if (!t) emu_fail("warp collective called outside a kernel");
  unsigned lane = t->lin & 31u;
  if (!((mask >> lane) & 1u))
    emu_fail("lane %u calls a warp %s with mask 0x%08x, which does not include the lane itself", lane,
             op == EMU_WARP_SHFL ? "shuffle" : op == EMU_WARP_VOTE ? "vote" : "__syncwarp", mask);
  t->state = T_WARP;
  t->wop = op;
  t->wmask = mask;
  t->wval = value;
  t->wsrc = src;
  to_scheduler(t);
  return t->wresult;
}

unsigned emu_activemask(void) {
  emu_thread *t = g_cur;
  if (!t) emu_fail("__activemask() called outside a kernel");
  unsigned base = t->lin & ~31u, m = 0;
  for (unsigned j = 0; j < 32 && base + j < g_th.size(); j++)
    if (g_th[base + j].state != T_DONE) m |= 1u << j;
  return m;
}

void emu_launch_erased(const char *kernel, const char *file, int line, dim3 grid, dim3 block, size_t smem,
                       cudaStream_t stream, std::function<void()> body) {
  ensure_init();
  if (g_cur) emu_fail("kernel %s launched from inside a kernel (dynamic parallelism is not emulated)", kernel);
  uint64_t nt = (uint64_t)block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || nt == 0 || nt > 1024 || block.z > 64 || grid.y > 65535 ||
      grid.z > 65535 || grid.x > 0x7fffffffu) {
    if (g_cfg.verbose)
      fprintf(stderr, "emu: launch of %s at %s:%d: invalid configuration grid %ux%ux%u block %ux%ux%u\n", kernel, file,
              line, grid.x, grid.y, grid.z, block.x, block.y, block.z);
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (smem > 48 * 1024) {
    set_error(cudaErrorInvalidValue);
    return;
  }
  auto L = std::make_shared<launch_ctx>();
  L->name = kernel;
  L->file = file;
  L->line = line;
  L->grid = grid;
  L->block = block;
  L->smem = smem;
  L->body = std::move(body);
  L->seed = g_cfg.seed + 0x9e3779b97f4a7c15ull * ++g_launch_count;
  emu_stream_enqueue(stream, [L] { run_launch(*L); });
}
