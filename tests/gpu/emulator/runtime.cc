/* The CUDA emulator's launches (README.md here; host.cc has the rest of the runtime): each
 * block's threads run one after another or, where the kernel has barriers, as fibers that run
 * until the whole block (or warp) waits.
 *
 * The fibers switch stacks by a few instructions of their own (x86-64 only: meson.build builds
 * the emulator there alone). glibc's swapcontext makes a system call per switch, which made a
 * 1024-thread block's barriers take minutes. Under AddressSanitizer each switch says whose
 * stack is current. */
#include "emulator.h"
#include "stream.h"

#include <vector>

#include <stdio.h>
#include <sys/mman.h>

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

void
report_host_pointer (int argument, const void *p)
{
  fprintf (stderr, "CUDA emulator: kernel argument %d (%p) is not device memory\n", argument, p);
  set_error (cudaErrorInvalidValue);
}

bool
check_launch (dim3 grid, dim3 block, size_t shared)
{
  if (valid_configuration (grid, block) && shared <= MAX_DYNAMIC_SHARED)
    return true;
  set_error (cudaErrorInvalidConfiguration);
  return false;
}

void
launch (dim3 grid, dim3 block, size_t shared, bool barriers, void (*body) (void *),
        void *closure)
{
  if (running)
    fail ("a launch from inside a kernel");
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
