// Emulated CUDA device (TEST INFRASTRUCTURE): the NCCL calls of the nccl communicator, across
// processes that each own an emulated device (e.g. `mpirun -np 2`, or forked children). The
// ranks of a communicator meet in a POSIX shared-memory segment named from the unique id; each
// collective moves data through per-rank slots between two barriers, on the caller's stream
// (emu_stream_enqueue), and reduces in rank order so every rank gets the same bits. Implements
// NCCL's documented in-place layouts (and rejects other overlaps, undefined in NCCL), group
// calls, non-blocking communicators (ncclInProgress, ncclCommGetAsyncError) and abort; a dead or
// aborting peer turns into an asynchronous error instead of a hang.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "emu.h"
#include "emu_libs.h"
#include "nccl.h"

namespace {

const char kIdMagic[8] = {'E', 'M', 'U', 'N', 'C', 'C', 'L', '1'};
const uint32_t kShmMagic = 0x4e43434cu, kCommMagic = 0xc0331u;
const int kMaxRanks = 64;
const size_t kSlotBytes = (size_t)1 << 20; // per rank; collectives larger than this go in chunks

thread_local char t_last_error[512];
ncclResult_t fail(ncclResult_t r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ncclResult_t fail(ncclResult_t r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
  va_end(ap);
  return r;
}

struct Shared {
  uint32_t magic;
  int32_t nranks;
  uint32_t joined;
  uint32_t aborted; // a rank called ncclCommAbort: everyone else's pending collective fails
  uint32_t bar_count, bar_gen;
  uint32_t present[kMaxRanks];
  int32_t pids[kMaxRanks];
};
size_t header_bytes() { return (sizeof(Shared) + 4095) / 4096 * 4096; }

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
double timeout_s() {
  const char *e = getenv("EMU_NCCL_TIMEOUT_S");
  if (!e || !*e) return 600.0;
  char *end = nullptr;
  double v = strtod(e, &end);
  return end && *end == 0 && v > 0 ? v : 600.0;
}
/* A peer process that exited: gone (ESRCH), or a zombie its parent has not reaped yet. */
bool pid_dead(int pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *close_paren = strrchr(buf, ')'); // "pid (comm) state ..."
  return close_paren && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}
void pause_for(long spins) {
  if (spins < 200) {
    sched_yield();
  } else {
    struct timespec ts = {0, 100 * 1000}; // 100 us: the CI machine has 2 cores for many processes
    nanosleep(&ts, nullptr);
  }
}

/* One rank's view of a communicator; collectives queued on streams hold it by shared_ptr so an
 * abort or destroy never leaves them with a dangling pointer. */
struct State {
  int rank = 0, nranks = 0;
  bool blocking = true;
  char shm_name[64] = {0};
  Shared *sh = nullptr;
  unsigned char *data = nullptr;
  size_t map_bytes = 0;
  std::atomic<int> async{ncclSuccess};  // ncclInProgress while a non-blocking call runs
  std::atomic<bool> local_abort{false};
  std::mutex mu;
  std::string error;
  std::set<cudaStream_t> streams;

  ~State() {
    if (sh) munmap(sh, map_bytes);
  }
  unsigned char *slot(int r) { return data + (size_t)r * kSlotBytes; }
  void set_error(ncclResult_t r, const std::string &msg) {
    std::lock_guard<std::mutex> g(mu);
    if (error.empty()) error = msg;
    int expected = ncclSuccess;
    async.compare_exchange_strong(expected, r);
    expected = ncclInProgress;
    async.compare_exchange_strong(expected, r);
  }
  /* All ranks meet here; false (with the async error set) on abort, a dead peer or the timeout. */
  bool barrier(const char *op) {
    uint32_t gen = __atomic_load_n(&sh->bar_gen, __ATOMIC_ACQUIRE);
    if (__atomic_fetch_add(&sh->bar_count, 1, __ATOMIC_ACQ_REL) == (uint32_t)nranks - 1) {
      __atomic_store_n(&sh->bar_count, 0, __ATOMIC_RELEASE);
      __atomic_fetch_add(&sh->bar_gen, 1, __ATOMIC_ACQ_REL);
      return true;
    }
    const double t0 = now_s(), limit = timeout_s();
    for (long spins = 0; __atomic_load_n(&sh->bar_gen, __ATOMIC_ACQUIRE) == gen; spins++) {
      if (local_abort.load()) return false;
      if (__atomic_load_n(&sh->aborted, __ATOMIC_ACQUIRE)) {
        set_error(ncclRemoteError, std::string(op) + ": a peer rank aborted the communicator");
        return false;
      }
      if (spins % 1000 == 999) {
        for (int r = 0; r < nranks; r++) {
          const int pid = __atomic_load_n(&sh->pids[r], __ATOMIC_ACQUIRE);
          if (r != rank && pid > 0 && pid_dead(pid)) {
            char m[160];
            snprintf(m, sizeof m, "%s: rank %d (pid %d) died", op, r, pid);
            set_error(ncclRemoteError, m);
            return false;
          }
        }
        if (now_s() - t0 > limit) {
          char m[160];
          snprintf(m, sizeof m, "%s: peers did not arrive within %.0f s (EMU_NCCL_TIMEOUT_S)", op, limit);
          set_error(ncclSystemError, m);
          return false;
        }
      }
      pause_for(spins);
    }
    return true;
  }
};

size_t type_size(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

template <class T> T combine(T a, T b, ncclRedOp_t op) {
  switch (op) {
    case ncclSum: case ncclAvg: return (T)(a + b);
    case ncclProd: return (T)(a * b);
    case ncclMax: return b > a ? b : a;
    case ncclMin: return b < a ? b : a;
    default: return a;
  }
}
/* out[i] = op over ranks (in rank order) of src[r][i]. */
template <class T> void reduce_typed(void *out, const std::vector<const unsigned char *> &src, size_t n, ncclRedOp_t op) {
  for (size_t i = 0; i < n; i++) {
    T acc;
    memcpy(&acc, src[0] + i * sizeof(T), sizeof(T));
    for (size_t r = 1; r < src.size(); r++) {
      T v;
      memcpy(&v, src[r] + i * sizeof(T), sizeof(T));
      acc = combine(acc, v, op);
    }
    if (op == ncclAvg) acc = (T)(acc / (T)src.size());
    memcpy((unsigned char *)out + i * sizeof(T), &acc, sizeof(T));
  }
}
void reduce_bf16(void *out, const std::vector<const unsigned char *> &src, size_t n, ncclRedOp_t op) {
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src[0] + 2 * i, 2);
    float acc = emulib_bf16_to_float(h);
    for (size_t r = 1; r < src.size(); r++) {
      memcpy(&h, src[r] + 2 * i, 2);
      acc = emu_round_bf16(combine(acc, emulib_bf16_to_float(h), op)); // bf16 after every step
    }
    if (op == ncclAvg) acc /= (float)src.size();
    h = emulib_float_to_bf16(acc);
    memcpy((unsigned char *)out + 2 * i, &h, 2);
  }
}
void reduce(ncclDataType_t t, void *out, const std::vector<const unsigned char *> &src, size_t n, ncclRedOp_t op) {
  switch (t) {
    case ncclInt8: reduce_typed<int8_t>(out, src, n, op); break;
    case ncclUint8: reduce_typed<uint8_t>(out, src, n, op); break;
    case ncclInt32: reduce_typed<int32_t>(out, src, n, op); break;
    case ncclUint32: reduce_typed<uint32_t>(out, src, n, op); break;
    case ncclInt64: reduce_typed<int64_t>(out, src, n, op); break;
    case ncclUint64: reduce_typed<uint64_t>(out, src, n, op); break;
    case ncclFloat32: reduce_typed<float>(out, src, n, op); break;
    case ncclFloat64: reduce_typed<double>(out, src, n, op); break;
    case ncclBfloat16: reduce_bf16(out, src, n, op); break;
    default: emu_fail("ncclEmu: reduction of data type %d is not emulated", (int)t);
  }
}

bool overlap(const void *a, size_t an, const void *b, size_t bn) {
  const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  return an && bn && x < y + bn && y < x + an;
}

/* ---- groups ----------------------------------------------------------------------------------- */
thread_local int t_group_depth = 0;
thread_local std::vector<std::pair<std::shared_ptr<State>, std::function<void()>>> t_group_ops;

} // namespace

struct ncclComm {
  uint32_t magic;
  std::shared_ptr<State> st;
  std::thread init_thread; // non-blocking init runs here
};

namespace {

bool ok(const ncclComm *c) { return c && c->magic == kCommMagic && c->st; }

/* Attaches to (or creates) the segment and waits for every rank; runs on the caller's thread
 * (blocking) or on init_thread (non-blocking). */
ncclResult_t rendezvous(State *s, const ncclUniqueId &id) {
  char name[64];
  snprintf(name, sizeof name, "/unmix-emu-nccl-");
  static const char hex[] = "0123456789abcdef";
  size_t len = strlen(name);
  for (int i = 8; i < 24; i++) { // the random part of the id
    name[len++] = hex[((unsigned char)id.internal[i]) >> 4];
    name[len++] = hex[((unsigned char)id.internal[i]) & 15];
  }
  name[len] = 0;
  snprintf(s->shm_name, sizeof s->shm_name, "%s", name);
  const size_t bytes = header_bytes() + (size_t)s->nranks * kSlotBytes;
  int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
  if (fd < 0) return fail(ncclSystemError, "shm_open(%s): %s", name, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) == 0 && (size_t)sb.st_size < bytes && ftruncate(fd, (off_t)bytes) != 0) {
    close(fd);
    return fail(ncclSystemError, "ftruncate(%s): %s", name, strerror(errno));
  }
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return fail(ncclSystemError, "mmap(%s): %s", name, strerror(errno));
  s->sh = (Shared *)p;
  s->map_bytes = bytes;
  s->data = (unsigned char *)p + header_bytes();
  Shared *sh = s->sh;
  int32_t expect = 0;
  if (!__atomic_compare_exchange_n(&sh->nranks, &expect, s->nranks, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
      expect != s->nranks)
    return fail(ncclInvalidArgument, "rank %d says nranks %d, another rank said %d", s->rank, s->nranks, expect);
  uint32_t was = 0;
  if (!__atomic_compare_exchange_n(&sh->present[s->rank], &was, 1u, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return fail(ncclInvalidArgument, "rank %d joined the communicator twice", s->rank);
  __atomic_store_n(&sh->pids[s->rank], (int32_t)getpid(), __ATOMIC_RELEASE);
  __atomic_fetch_add(&sh->joined, 1, __ATOMIC_ACQ_REL);
  const double t0 = now_s(), limit = timeout_s();
  for (long spins = 0; __atomic_load_n(&sh->joined, __ATOMIC_ACQUIRE) < (uint32_t)s->nranks; spins++) {
    if (s->local_abort.load()) return fail(ncclInvalidUsage, "ncclCommInitRank: aborted while waiting for peers");
    if (now_s() - t0 > limit)
      return fail(ncclSystemError, "ncclCommInitRank: only %u of %d ranks arrived within %.0f s",
                  __atomic_load_n(&sh->joined, __ATOMIC_ACQUIRE), s->nranks, limit);
    pause_for(spins);
  }
  if (!s->barrier("ncclCommInitRank")) return ncclSystemError; // everyone has mapped the segment
  if (s->rank == 0) shm_unlink(name);                         // nothing is left behind in /dev/shm
  return ncclSuccess;
}

/* Common checks of a collective call; enqueues `work` now, or at ncclGroupEnd. */
ncclResult_t issue(const char *op, ncclComm_t comm, cudaStream_t stream, std::function<void(State &)> work) {
  State &s = *comm->st;
  const int state = s.async.load();
  if (state == ncclInProgress)
    return fail(ncclInvalidUsage, "%s: the previous non-blocking call on this communicator has not completed "
                                  "(poll ncclCommGetAsyncError until it leaves ncclInProgress)", op);
  if (state != ncclSuccess)
    return fail(ncclInvalidUsage, "%s: the communicator is in error state %d (abort or destroy it)", op, state);
  std::shared_ptr<State> keep = comm->st;
  auto run = [keep, stream, work, op] {
    emu_stream_enqueue(stream, [keep, work, op] {
      State &st = *keep;
      // Aborted or failed: a no-op. ncclInProgress only says that the issuing call has not been
      // polled yet (and, within ncclGroupEnd, that earlier members were issued): it must not stop
      // this work, which may run later (deferred streams) or after a sibling in the group.
      const int a = st.async.load();
      if (st.local_abort.load() || (a != ncclSuccess && a != ncclInProgress)) return;
      emu_device_access access;
      emu_set_current_call(op);
      work(st);
      emu_set_current_call(nullptr);
    });
  };
  {
    std::lock_guard<std::mutex> g(s.mu);
    s.streams.insert(stream);
  }
  if (t_group_depth > 0) {
    t_group_ops.emplace_back(comm->st, run);
    return ncclSuccess;
  }
  run();
  if (!s.blocking) {
    int expect = ncclSuccess;
    s.async.compare_exchange_strong(expect, ncclInProgress); // done; reported by the next query
    return ncclInProgress;
  }
  return ncclSuccess;
}

ncclResult_t check_common(const char *op, ncclComm_t comm, ncclDataType_t t) {
  if (!ok(comm)) return fail(ncclInvalidArgument, "%s: comm is NULL or not a communicator", op);
  if (type_size(t) == 0 || t == ncclFloat16) return fail(ncclInvalidArgument, "%s: data type %d", op, (int)t);
  return ncclSuccess;
}

/* Calls step(offset, len) over n bytes in pieces of at most `chunk`; stops when a step fails
 * (its barrier reported an abort, a dead peer or the timeout). */
template <class F> void chunks(size_t n, size_t chunk, F step) {
  for (size_t off = 0; off < n; off += chunk)
    if (!step(off, n - off < chunk ? n - off : chunk)) return;
}

} // namespace

extern "C" {

ncclResult_t ncclGetVersion(int *version) {
  if (!version) return fail(ncclInvalidArgument, "ncclGetVersion: NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

const char *ncclGetLastError(ncclComm_t comm) {
  if (ok(comm)) {
    std::lock_guard<std::mutex> g(comm->st->mu);
    if (!comm->st->error.empty()) {
      snprintf(t_last_error, sizeof t_last_error, "%s", comm->st->error.c_str());
    }
  }
  return t_last_error;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  if (!id) return fail(ncclInvalidArgument, "ncclGetUniqueId: NULL");
  memset(id, 0, sizeof *id);
  memcpy(id->internal, kIdMagic, sizeof kIdMagic);
  int fd = open("/dev/urandom", O_RDONLY);
  ssize_t got = fd >= 0 ? read(fd, id->internal + 8, 16) : -1;
  if (fd >= 0) close(fd);
  if (got != 16) return fail(ncclSystemError, "ncclGetUniqueId: cannot read /dev/urandom");
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t *config) {
  if (!comm) return fail(ncclInvalidArgument, "ncclCommInitRank: comm is NULL");
  *comm = nullptr;
  if (nranks < 1 || nranks > kMaxRanks) return fail(ncclInvalidArgument, "ncclCommInitRank: nranks %d", nranks);
  if (rank < 0 || rank >= nranks) return fail(ncclInvalidArgument, "ncclCommInitRank: rank %d of %d", rank, nranks);
  if (memcmp(id.internal, kIdMagic, sizeof kIdMagic) != 0)
    return fail(ncclInvalidArgument, "ncclCommInitRank: the unique id was not made by ncclGetUniqueId");
  bool blocking = true;
  if (config) {
    if (config->magic != 0xcafebeef || config->size < sizeof(ncclConfig_t))
      return fail(ncclInvalidArgument, "ncclCommInitRankConfig: config not initialised with NCCL_CONFIG_INITIALIZER");
    if (config->blocking != NCCL_CONFIG_UNDEF_INT && config->blocking != 0 && config->blocking != 1)
      return fail(ncclInvalidArgument, "ncclCommInitRankConfig: blocking = %d", config->blocking);
    blocking = config->blocking != 0;
  }
  ncclComm *c = new ncclComm;
  c->magic = kCommMagic;
  c->st = std::make_shared<State>();
  c->st->rank = rank;
  c->st->nranks = nranks;
  c->st->blocking = blocking;
  *comm = c;
  if (blocking) {
    ncclResult_t r = rendezvous(c->st.get(), id);
    if (r != ncclSuccess) {
      c->st->set_error(r, t_last_error);
      return r;
    }
    return ncclSuccess;
  }
  c->st->async.store(ncclInProgress);
  std::shared_ptr<State> st = c->st;
  c->init_thread = std::thread([st, id] {
    ncclResult_t r = rendezvous(st.get(), id);
    if (r != ncclSuccess) {
      std::lock_guard<std::mutex> g(st->mu);
      st->error = t_last_error;
    }
    st->async.store(r);
  });
  return ncclInProgress;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
  return ncclCommInitRankConfig(comm, nranks, id, rank, nullptr);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *err) {
  if (!ok(comm) || !err) return fail(ncclInvalidArgument, "ncclCommGetAsyncError: bad arguments");
  State &s = *comm->st;
  int a = s.async.load();
  if (a == ncclInProgress && !comm->init_thread.joinable()) {
    // a non-blocking collective: its work is on the stream; the call itself has completed
    s.async.compare_exchange_strong(a, ncclSuccess);
    a = s.async.load();
  }
  if (a != ncclInProgress && comm->init_thread.joinable()) comm->init_thread.join();
  *err = (ncclResult_t)a;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
  if (!ok(comm) || !count) return fail(ncclInvalidArgument, "ncclCommCount: bad arguments");
  *count = comm->st->nranks;
  return ncclSuccess;
}
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
  if (!ok(comm) || !rank) return fail(ncclInvalidArgument, "ncclCommUserRank: bad arguments");
  *rank = comm->st->rank;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (!ok(comm)) return fail(ncclInvalidArgument, "ncclCommFinalize: bad communicator");
  std::set<cudaStream_t> streams;
  {
    std::lock_guard<std::mutex> g(comm->st->mu);
    streams = comm->st->streams;
  }
  for (cudaStream_t s : streams) emu_stream_drain(s); // flush every collective still queued
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  if (!ok(comm)) return fail(ncclInvalidArgument, "ncclCommDestroy: not a communicator");
  if (comm->init_thread.joinable()) {
    comm->st->local_abort.store(true);
    comm->init_thread.join();
  }
  if (comm->st->async.load() == ncclSuccess || comm->st->async.load() == ncclInProgress) ncclCommFinalize(comm);
  comm->magic = 0;
  delete comm; // queued work (none after finalize) keeps the state alive through its shared_ptr
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  if (!ok(comm)) return fail(ncclInvalidArgument, "ncclCommAbort: not a communicator");
  State &s = *comm->st;
  s.local_abort.store(true);
  if (s.sh) __atomic_store_n(&s.sh->aborted, 1u, __ATOMIC_RELEASE); // releases peers stuck in a barrier
  if (comm->init_thread.joinable()) comm->init_thread.join();
  if (s.sh && s.rank == 0) shm_unlink(s.shm_name); // harmless if already unlinked
  comm->magic = 0;
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) {
  t_group_depth++;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
  if (t_group_depth <= 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--t_group_depth > 0) return ncclSuccess;
  auto ops = std::move(t_group_ops);
  t_group_ops.clear();
  bool nonblocking = false;
  for (auto &o : ops) {
    o.second();
    if (!o.first->blocking) {
      int expect = ncclSuccess;
      o.first->async.compare_exchange_strong(expect, ncclInProgress);
      nonblocking = true;
    }
  }
  return nonblocking ? ncclInProgress : ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  const char *fn = "ncclAllReduce";
  ncclResult_t r = check_common(fn, comm, t);
  if (r != ncclSuccess) return r;
  if ((int)op < 0 || op >= ncclNumOps) return fail(ncclInvalidArgument, "%s: reduction op %d", fn, (int)op);
  const size_t es = type_size(t), bytes = count * es;
  if (send != recv && overlap(send, bytes, recv, bytes))
    return fail(ncclInvalidArgument, "%s: send and receive buffers overlap without being the same (in-place)", fn);
  emu_check_device_range(send, bytes, "ncclAllReduce sendbuff");
  emu_check_device_range(recv, bytes, "ncclAllReduce recvbuff");
  return issue(fn, comm, stream, [=](State &s) {
    chunks(bytes, kSlotBytes / es * es, [&](size_t off, size_t len) {
      memcpy(s.slot(s.rank), (const unsigned char *)send + off, len);
      if (!s.barrier(fn)) return false;
      std::vector<const unsigned char *> src;
      for (int q = 0; q < s.nranks; q++) src.push_back(s.slot(q));
      reduce(t, (unsigned char *)recv + off, src, len / es, op);
      return s.barrier(fn);
    });
  });
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  const char *fn = "ncclBroadcast";
  ncclResult_t r = check_common(fn, comm, t);
  if (r != ncclSuccess) return r;
  if (root < 0 || root >= comm->st->nranks) return fail(ncclInvalidArgument, "%s: root %d", fn, root);
  const size_t bytes = count * type_size(t);
  const bool is_root = comm->st->rank == root;
  if (is_root && send != recv && overlap(send, bytes, recv, bytes))
    return fail(ncclInvalidArgument, "%s: send and receive buffers overlap without being the same (in-place)", fn);
  if (is_root) emu_check_device_range(send, bytes, "ncclBroadcast sendbuff"); // only the root's is read
  emu_check_device_range(recv, bytes, "ncclBroadcast recvbuff");
  return issue(fn, comm, stream, [=](State &s) {
    chunks(bytes, kSlotBytes, [&](size_t off, size_t len) {
      if (is_root) memcpy(s.slot(root), (const unsigned char *)send + off, len);
      if (!s.barrier(fn)) return false;
      memcpy((unsigned char *)recv + off, s.slot(root), len);
      return s.barrier(fn);
    });
  });
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t sendcount, ncclDataType_t t, ncclComm_t comm,
                           cudaStream_t stream) {
  const char *fn = "ncclAllGather";
  ncclResult_t r = check_common(fn, comm, t);
  if (r != ncclSuccess) return r;
  const int nr = comm->st->nranks, me = comm->st->rank;
  const size_t bytes = sendcount * type_size(t);
  // in place: sendbuff == recvbuff + rank * sendcount; any other overlap is undefined in NCCL
  const bool in_place = send == (const unsigned char *)recv + (size_t)me * bytes;
  if (!in_place && overlap(send, bytes, recv, bytes * nr))
    return fail(ncclInvalidArgument, "%s: sendbuff overlaps recvbuff but is not recvbuff + rank*sendcount", fn);
  emu_check_device_range(send, bytes, "ncclAllGather sendbuff");
  emu_check_device_range(recv, bytes * nr, "ncclAllGather recvbuff");
  return issue(fn, comm, stream, [=](State &s) {
    chunks(bytes, kSlotBytes, [&](size_t off, size_t len) {
      memcpy(s.slot(me), (const unsigned char *)send + off, len);
      if (!s.barrier(fn)) return false;
      for (int q = 0; q < nr; q++) memcpy((unsigned char *)recv + (size_t)q * bytes + off, s.slot(q), len);
      return s.barrier(fn);
    });
  });
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t recvcount, ncclDataType_t t, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream) {
  const char *fn = "ncclReduceScatter";
  ncclResult_t r = check_common(fn, comm, t);
  if (r != ncclSuccess) return r;
  if ((int)op < 0 || op >= ncclNumOps) return fail(ncclInvalidArgument, "%s: reduction op %d", fn, (int)op);
  const int nr = comm->st->nranks, me = comm->st->rank;
  const size_t es = type_size(t), bytes = recvcount * es;
  // in place: recvbuff == sendbuff + rank * recvcount
  const bool in_place = recv == (const unsigned char *)send + (size_t)me * bytes;
  if (!in_place && overlap(send, bytes * nr, recv, bytes))
    return fail(ncclInvalidArgument, "%s: recvbuff overlaps sendbuff but is not sendbuff + rank*recvcount", fn);
  emu_check_device_range(send, bytes * nr, "ncclReduceScatter sendbuff");
  emu_check_device_range(recv, bytes, "ncclReduceScatter recvbuff");
  const size_t sub = kSlotBytes / (size_t)nr / es * es; // each slot carries one piece per target rank
  return issue(fn, comm, stream, [=](State &s) {
    chunks(bytes, sub, [&](size_t off, size_t len) {
      for (int q = 0; q < nr; q++) memcpy(s.slot(me) + (size_t)q * sub, (const unsigned char *)send + (size_t)q * bytes + off, len);
      if (!s.barrier(fn)) return false;
      std::vector<const unsigned char *> src;
      for (int q = 0; q < nr; q++) src.push_back(s.slot(q) + (size_t)me * sub);
      reduce(t, (unsigned char *)recv + off, src, len / es, op);
      return s.barrier(fn);
    });
  });
}

} // extern "C"
