/* The CUDA emulator's runtime (README.md here): cuda_runtime_api.h's calls on host memory, and
 * the launches of emulator.h: each block's threads run one after another or, where the kernel
 * has barriers, as fibers that run until the whole block (or warp) waits.
 *
 * The fibers switch stacks by a few instructions of their own (x86-64 only: meson.build builds
 * the emulator there alone). glibc's swapcontext makes a system call per switch, which made a
 * 1024-thread block's barriers take minutes. Under AddressSanitizer each switch says whose
 * stack is current. */
#include "emulator.h"

#include <map>
#include <set>
#include <vector>

#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

struct HfamEmuEvent {
  double ms;
};

/* hfam_emu_switch (&save, load): pushes the callee-saved registers, MXCSR and the x87 control
 * word, stores the stack pointer in *save, and pops them again from the stack at `load`. */
extern "C" void hfam_emu_switch (void **save, void *load);
asm (".text\n"
     ".globl hfam_emu_switch\n"
     ".type hfam_emu_switch, @function\n"
     "hfam_emu_switch:\n"
     "  pushq %rbp\n"
     "  pushq %rbx\n"
     "  pushq %r12\n"
     "  pushq %r13\n"
     "  pushq %r14\n"
     "  pushq %r15\n"
     "  subq $8, %rsp\n"
     "  stmxcsr (%rsp)\n"
     "  fnstcw 4(%rsp)\n"
     "  movq %rsp, (%rdi)\n"
     "  movq %rsi, %rsp\n"
     "  ldmxcsr (%rsp)\n"
     "  fldcw 4(%rsp)\n"
     "  addq $8, %rsp\n"
     "  popq %r15\n"
     "  popq %r14\n"
     "  popq %r13\n"
     "  popq %r12\n"
     "  popq %rbx\n"
     "  popq %rbp\n"
     "  ret\n"
     ".size hfam_emu_switch, .-hfam_emu_switch\n");

#if defined(__SANITIZE_ADDRESS__)
#define HFAM_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HFAM_EMU_ASAN 1
#endif
#endif

#ifdef HFAM_EMU_ASAN
extern "C" void __sanitizer_start_switch_fiber (void **fake_stack_save, const void *bottom,
                                                size_t size);
extern "C" void __sanitizer_finish_switch_fiber (void *fake_stack_save, const void **bottom_old,
                                                 size_t *size_old);
#endif

namespace hfam_emu {
namespace {

constexpr int WARP = 32;
constexpr size_t FIBER_STACK = 256 * 1024;
constexpr size_t MAX_DYNAMIC_SHARED = 48 * 1024;

cudaError_t last_error = cudaSuccess;
std::map<std::uintptr_t, size_t> allocations; /* base -> size */
std::set<cudaEvent_t> events;

enum class Wait { NONE, BLOCK, WARP, DONE };

struct Fiber {
  void *stack;        /* FIBER_STACK bytes */
  void *sp;           /* where it was switched out */
  void *fake_stack;   /* AddressSanitizer's state of it, while switched out */
  dim3 thread;
  Wait wait;
  std::uint64_t slot; /* a warp shuffle's offer */
  int vote;           /* a block vote's predicate */
};

/* The launch and the thread that runs now. */
struct Running {
  dim3 grid, block, block_index, thread;
  void (*body) (void *);
  void *closure;
  std::vector<unsigned char> shared;
  /* fibers only */
  std::vector<Fiber> *fibers;
  Fiber *fiber;
  void *scheduler_sp, *scheduler_fake_stack;
  const void *scheduler_stack;
  size_t scheduler_stack_size;
};

Running *running;
std::vector<void *> stacks;
unsigned long blocks_run; /* (from 1: shared () takes 0 for never filled) */

void
fail (const char *what)
{
  fprintf (stderr, "CUDA emulator: %s\n", what);
  abort ();
}

/* HFAM_CUDA_EMULATOR_ORDER=reverse runs the blocks of a launch, and the threads of a block, last
 * first: a GPU runs them in no set order, so a result that changes with it is a race. */
bool
reversed ()
{
  static const int reverse = [] {
    const char *order = getenv ("HFAM_CUDA_EMULATOR_ORDER");
    if (order && strcmp (order, "reverse") != 0 && strcmp (order, "forward") != 0)
      fail ("HFAM_CUDA_EMULATOR_ORDER: want forward or reverse");
    return order && strcmp (order, "reverse") == 0;
  }();
  return reverse;
}

/* The i-th of n in the order of HFAM_CUDA_EMULATOR_ORDER. */
unsigned long
in_order (unsigned long i, unsigned long n)
{
  return reversed () ? n - 1 - i : i;
}

/* The index of the i-th of d.x * d.y * d.z, x fastest. */
dim3
unravel (unsigned long i, const dim3 &d)
{
  return dim3 ((unsigned) (i % d.x), (unsigned) (i / d.x % d.y), (unsigned) (i / d.x / d.y));
}

unsigned long
count (const dim3 &d)
{
  return (unsigned long) d.x * d.y * d.z;
}

Running &
now ()
{
  if (!running)
    fail ("a device function ran outside a launch");
  return *running;
}

int
linear (const dim3 &t, const dim3 &block)
{
  return (int) (t.x + block.x * (t.y + block.y * t.z));
}

/* Switches to the stack [bottom, bottom + size), whose pointer is `load`, saving this one's in
 * *save (fake_stack: where AddressSanitizer keeps this stack's state; NULL when it ends). */
void
switch_stacks (void **fake_stack, const void *bottom, size_t size, void **save, void *load)
{
#ifdef HFAM_EMU_ASAN
  __sanitizer_start_switch_fiber (fake_stack, bottom, size);
#endif
  hfam_emu_switch (save, load);
}

/* On a stack that was switched to: tells AddressSanitizer, and learns the stack it came from. */
void
arrived (void *fake_stack, const void **from, size_t *from_size)
{
#ifdef HFAM_EMU_ASAN
  __sanitizer_finish_switch_fiber (fake_stack, from, from_size);
#endif
}

void
to_scheduler (Running &r, void **fake_stack, void **save)
{
  switch_stacks (fake_stack, r.scheduler_stack, r.scheduler_stack_size, save, r.scheduler_sp);
}

/* The thread that runs now, as a fiber: barriers and shuffles need one. */
Fiber &
fiber_now ()
{
  Running &r = now ();
  if (!r.fiber)
    fail ("a barrier or warp shuffle in a kernel launched without fibers (translate.py looks "
          "for them in the kernel and the functions of its file that it calls)");
  return *r.fiber;
}

void
wait_at (Wait kind)
{
  Running &r = now ();
  Fiber &f = fiber_now ();
  f.wait = kind;
  to_scheduler (r, &f.fake_stack, &f.sp);
  arrived (f.fake_stack, nullptr, nullptr);
}

/* Where a fiber starts: runs its thread, then goes back to the scheduler for good. */
void
fiber_main ()
{
  Running &r = now ();
  void *unused;
  arrived (nullptr, &r.scheduler_stack, &r.scheduler_stack_size);
  r.body (r.closure);
  r.fiber->wait = Wait::DONE;
  r.fiber->vote = 0;
  to_scheduler (r, nullptr, &unused);
  fail ("a finished fiber resumed");
}

void *
stack (size_t index)
{
  while (stacks.size () <= index) {
    void *s = mmap (nullptr, FIBER_STACK, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED)
      fail ("no memory for a fiber's stack");
    stacks.push_back (s);
  }
  return stacks[index];
}

/* The fiber's first switch to it pops these registers' values and "returns" into fiber_main,
 * with the stack aligned as after a call. */
void
start_fiber (Fiber &f, void *stack)
{
  void **slot = (void **) (((std::uintptr_t) stack + FIBER_STACK) & ~(std::uintptr_t) 15);
  *--slot = nullptr;                /* fiber_main's own return address: it never returns */
  *--slot = (void *) fiber_main;
  for (int reg = 0; reg < 6; reg++) /* rbp, rbx, r12-r15 */
    *--slot = nullptr;
  *--slot = (void *) (std::uintptr_t) (0x1f80u | (std::uint64_t) 0x037fu << 32); /* MXCSR, x87 */
  f.stack = stack;
  f.sp = slot;
  f.fake_stack = nullptr;
  f.wait = Wait::NONE;
  f.vote = 0;
}

/* Releases whatever waits for all of its group: each warp whose live threads all wait at a
 * shuffle, else the block when all its live threads wait at a barrier. */
bool
release (std::vector<Fiber> &fibers)
{
  bool released = false;
  for (size_t w = 0; w < fibers.size (); w += WARP) {
    const size_t end = std::min (fibers.size (), w + WARP);
    bool any = false, all = true;
    for (size_t i = w; i < end; i++) {
      if (fibers[i].wait == Wait::DONE)
        continue;
      any = true;
      all = all && fibers[i].wait == Wait::WARP;
    }
    if (any && all) {
      for (size_t i = w; i < end; i++)
        if (fibers[i].wait == Wait::WARP)
          fibers[i].wait = Wait::NONE;
      released = true;
    }
  }
  if (released)
    return true;
  bool any = false;
  for (const Fiber &f : fibers) {
    if (f.wait == Wait::DONE)
      continue;
    if (f.wait != Wait::BLOCK)
      return false;
    any = true;
  }
  for (Fiber &f : fibers)
    if (f.wait == Wait::BLOCK)
      f.wait = Wait::NONE;
  return any;
}

void
run_block_fibers (Running &r)
{
  std::vector<Fiber> fibers (count (r.block));
  r.fibers = &fibers;
  for (size_t i = 0; i < fibers.size (); i++) {
    fibers[i].thread = unravel (i, r.block);
    start_fiber (fibers[i], stack (i));
  }
  for (;;) {
    bool live = false;
    for (size_t i = 0; i < fibers.size (); i++) {
      Fiber &f = fibers[in_order (i, fibers.size ())];
      if (f.wait != Wait::NONE)
        continue;
      r.fiber = &f;
      r.thread = f.thread;
      switch_stacks (&r.scheduler_fake_stack, f.stack, FIBER_STACK, &r.scheduler_sp, f.sp);
      arrived (r.scheduler_fake_stack, nullptr, nullptr);
    }
    r.fiber = nullptr;
    for (const Fiber &f : fibers)
      live = live || f.wait != Wait::DONE;
    if (!live)
      break;
    if (!release (fibers))
      fail ("deadlock: the live threads of a block (or warp) wait at different barriers");
  }
  r.fibers = nullptr;
}

void
run_block_plain (Running &r)
{
  const unsigned long n = count (r.block);
  for (unsigned long i = 0; i < n; i++) {
    r.thread = unravel (in_order (i, n), r.block);
    r.body (r.closure);
  }
}

bool
valid_configuration (const dim3 &grid, const dim3 &block)
{
  const unsigned long long threads = (unsigned long long) block.x * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535
         && grid.z <= 65535 && block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024
         && block.y <= 1024 && block.z <= 64 && threads <= 1024;
}

/* Whether [p, p + size) lies within one allocation of cudaMalloc. */
bool
on_device (const void *p, size_t size)
{
  const std::uintptr_t a = (std::uintptr_t) p;
  auto it = allocations.upper_bound (a);
  if (it == allocations.begin ())
    return false;
  --it;
  return a + size >= a && a + size <= it->first + it->second;
}

cudaError_t
set_error (cudaError_t error)
{
  if (error != cudaSuccess)
    last_error = error;
  return error;
}

/* The emulator's one stream is the default one. */
bool
known_stream (cudaStream_t stream)
{
  return stream == nullptr;
}

double
now_ms ()
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

} // namespace

const dim3 &
thread_index ()
{
  return now ().thread;
}

const dim3 &
block_index ()
{
  return now ().block_index;
}

const dim3 &
block_dim ()
{
  return now ().block;
}

const dim3 &
grid_dim ()
{
  return now ().grid;
}

int
lane ()
{
  Running &r = now ();
  return linear (r.thread, r.block) % WARP;
}

unsigned long
block_serial ()
{
  return blocks_run;
}

void *
dynamic_shared ()
{
  Running &r = now ();
  return r.shared.empty () ? nullptr : r.shared.data ();
}

void
sync_block ()
{
  wait_at (Wait::BLOCK);
}

int
sync_block_or (int predicate)
{
  Running &r = now ();
  int any = 0;
  fiber_now ().vote = predicate != 0;
  wait_at (Wait::BLOCK);
  for (const Fiber &f : *r.fibers)
    any |= f.vote;
  /* nobody votes again before everybody has counted */
  wait_at (Wait::BLOCK);
  return any;
}

std::uint64_t
warp_exchange (std::uint64_t value, int source)
{
  Running &r = now ();
  fiber_now ().slot = value;
  wait_at (Wait::WARP);
  const int self = linear (r.thread, r.block), from = self - self % WARP + source;
  const std::uint64_t got = source >= 0 && source < WARP && from < (int) r.fibers->size ()
                                ? (*r.fibers)[from].slot
                                : value;
  wait_at (Wait::WARP);
  return got;
}

bool
is_device_pointer (const void *p)
{
  return on_device (p, 0);
}

void
report_host_pointer (int argument, const void *p)
{
  fprintf (stderr, "CUDA emulator: kernel argument %d (%p) is not device memory\n", argument, p);
  set_error (cudaErrorInvalidValue);
}

void
launch (dim3 grid, dim3 block, size_t shared, cudaStream_t stream, bool barriers,
        void (*body) (void *), void *closure)
{
  if (running)
    fail ("a launch from inside a kernel");
  if (!valid_configuration (grid, block) || shared > MAX_DYNAMIC_SHARED) {
    set_error (cudaErrorInvalidConfiguration);
    return;
  }
  if (!known_stream (stream)) {
    set_error (cudaErrorInvalidResourceHandle);
    return;
  }
  Running r {};
  r.grid = grid;
  r.block = block;
  r.body = body;
  r.closure = closure;
  r.shared.resize (shared);
  running = &r;
  const unsigned long n = count (grid);
  for (unsigned long i = 0; i < n; i++) {
    r.block_index = unravel (in_order (i, n), grid);
    blocks_run++;
    if (shared)
      std::memset (r.shared.data (), 0xff, shared);
    if (barriers)
      run_block_fibers (r);
    else
      run_block_plain (r);
  }
  running = nullptr;
}

} // namespace hfam_emu

using namespace hfam_emu;

extern "C" {

cudaError_t
cudaGetDeviceCount (int *count)
{
  if (!count)
    return set_error (cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t
cudaGetDeviceProperties (struct cudaDeviceProp *prop, int device)
{
  if (!prop)
    return set_error (cudaErrorInvalidValue);
  if (device != 0)
    return set_error (cudaErrorInvalidDevice);
  *prop = {};
  snprintf (prop->name, sizeof prop->name, "CUDA emulator on the CPU (tests/gpu/emulator)");
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t
cudaDeviceSynchronize (void)
{
  return cudaSuccess;
}

cudaError_t
cudaGetLastError (void)
{
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

const char *
cudaGetErrorString (cudaError_t error)
{
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  }
  return "unknown error";
}

cudaError_t
cudaMalloc (void **ptr, size_t size)
{
  void *p = nullptr;
  if (!ptr)
    return set_error (cudaErrorInvalidValue);
  /* exactly `size` bytes (at least one), so that a sanitizer sees a kernel read past the end;
   * aligned as cudaMalloc aligns */
  if (posix_memalign (&p, 256, size ? size : 1) != 0)
    return set_error (cudaErrorMemoryAllocation);
  allocations[(std::uintptr_t) p] = size;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t
cudaFree (void *ptr)
{
  if (!ptr)
    return cudaSuccess;
  auto it = allocations.find ((std::uintptr_t) ptr);
  if (it == allocations.end ())
    return set_error (cudaErrorInvalidDevicePointer);
  allocations.erase (it);
  free (ptr);
  return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                 cudaStream_t stream)
{
  const bool from_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool to_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (count == 0)
    return cudaSuccess;
  if (!dst || !src)
    return set_error (cudaErrorInvalidValue);
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return set_error (cudaErrorInvalidMemcpyDirection);
  if (!known_stream (stream))
    return set_error (cudaErrorInvalidResourceHandle);
  /* what the direction says is device memory must be, and all of the copy */
  if ((from_device && !on_device (src, count)) || (to_device && !on_device (dst, count))) {
    fprintf (stderr, "CUDA emulator: a copy of %zu bytes %p -> %p (kind %d) reaches outside "
             "device memory\n", count, src, dst, (int) kind);
    return set_error (cudaErrorInvalidValue);
  }
  memmove (dst, src, count);
  return cudaSuccess;
}

cudaError_t
cudaMemcpy (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
  return cudaMemcpyAsync (dst, src, count, kind, nullptr);
}

cudaError_t
cudaMemset (void *ptr, int value, size_t count)
{
  if (count == 0)
    return cudaSuccess;
  if (!on_device (ptr, count))
    return set_error (cudaErrorInvalidValue);
  memset (ptr, value, count);
  return cudaSuccess;
}

cudaError_t
cudaEventCreate (cudaEvent_t *event)
{
  if (!event)
    return set_error (cudaErrorInvalidValue);
  *event = new HfamEmuEvent ();
  events.insert (*event);
  return cudaSuccess;
}

cudaError_t
cudaEventDestroy (cudaEvent_t event)
{
  if (!event || !events.erase (event))
    return set_error (cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t
cudaEventRecord (cudaEvent_t event, cudaStream_t stream)
{
  if (!event || !events.count (event) || !known_stream (stream))
    return set_error (cudaErrorInvalidResourceHandle);
  event->ms = now_ms ();
  return cudaSuccess;
}

cudaError_t
cudaEventSynchronize (cudaEvent_t event)
{
  return event && events.count (event) ? cudaSuccess
                                       : set_error (cudaErrorInvalidResourceHandle);
}

cudaError_t
cudaEventElapsedTime (float *ms, cudaEvent_t start, cudaEvent_t end)
{
  if (!ms)
    return set_error (cudaErrorInvalidValue);
  if (!start || !end || !events.count (start) || !events.count (end))
    return set_error (cudaErrorInvalidResourceHandle);
  *ms = (float) (end->ms - start->ms);
  return cudaSuccess;
}

} // extern "C"
