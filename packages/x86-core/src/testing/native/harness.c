/*
 * visorlab native-CPU oracle harness.
 *
 * Runs a batch of small x86-64 code snippets on the host processor and reports
 * the architectural state each one ends in, for differential tests of the
 * emulator. Driven by packages/x86-core/src/testing/native-oracle.ts, which
 * compiles this file with `gcc -O2` and caches the binary.
 *
 * stdin  : one input batch (format below), read completely before anything runs.
 * stdout : one output batch, written once at the end.
 * exit   : 0 on success; 2 bad input; 3 environment (mmap/sigaltstack) failure.
 *
 * All integers are little-endian.
 *
 * Input batch
 *   header (16 bytes): u32 magic 'VLNI' (0x494E4C56), u32 version (1),
 *                      u32 case count, u32 per-case timeout in milliseconds
 *   per case:
 *     u8  code length (0..64)
 *     u8  flags: bit0 = 256 bytes of xmm follow, bit1 = scratch memory present
 *     u8  memReg (GPR index 0..15 except 4; meaningful when bit1 is set)
 *     u8  0
 *     u16 memory length (0..4096)
 *     u16 0
 *     u32 mxcsr
 *     u32 0
 *     u64 rflags (only CF PF AF ZF SF DF OF = 0xCD5 are used)
 *     u64 gpr[16] (rax rcx rdx rbx rsp rbp rsi rdi r8..r15; rsp ignored)
 *     [u8 xmm[16][16]]    when flags bit0
 *     u8 code[code length]
 *     u8 memory[memory length]
 *     zero padding to a multiple of 8
 *
 * Output batch
 *   header (48 bytes): u32 magic 'VLNO' (0x4F4E4C56), u32 version (1), u32 case count,
 *                      u32 flags (bit0 seccomp sandbox active, bit1 code page is RWX),
 *                      u64 code address, u64 initial rsp, u64 memory address, u64 0
 *   per case:
 *     u8  status: 0 = completed, else the signal number, 255 = timeout
 *     u8  flags: bit0 = 256 bytes of xmm follow (else xmm equals the input xmm)
 *     u16 0
 *     u32 mxcsr
 *     u64 rflags (raw, as pushfq / the signal frame saw it)
 *     u64 fault rip (0 when completed)
 *     u64 fault address (si_addr for SIGSEGV/SIGBUS, else 0)
 *     u64 0
 *     u64 gpr[16]
 *     [u8 xmm[16][16]]    when flags bit0
 *     u8 memory[input memory length], zero padding to a multiple of 8
 *
 * Address space (fixed, so a test can give the emulator the same layout):
 *   code page   0x10000000 .. +4 KiB   code, then `jmp *0(%rip)` to vl_exit, rest int3
 *   stack       0x1001C000 .. 0x10020000, initial rsp 0x1001FC00, zeroed per case
 *   memory      0x10030000 .. +4 KiB   scratch buffer, zeroed then filled per case;
 *                                      0x10031000 is left unmapped (guard)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef ARCH_GET_FS
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
#endif

#define CODE_ADDR 0x10000000UL
#define CODE_SIZE 0x1000UL
#define CODE_MAX 64
#define STACK_BASE 0x1001C000UL
#define STACK_TOP 0x10020000UL
#define STACK_RSP 0x1001FC00UL
#define MEM_ADDR 0x10030000UL
#define MEM_SIZE 0x1000UL

#define IN_MAGIC 0x494E4C56u
#define OUT_MAGIC 0x4F4E4C56u
#define FORMAT_VERSION 1u
#define STATUS_TIMEOUT 255
#define TICK_MS 50
#define RFLAGS_MASK 0xCD5UL

/* Shared between C, the trampolines below and the signal handler. Offsets are
 * hard-coded in the assembly and checked by the static asserts. */
struct vl_ctx {
  uint64_t in_regs[16];   /*   0 */
  uint64_t in_rflags;     /* 128 (pre-masked) */
  uint32_t in_mxcsr;      /* 136 */
  uint32_t pad0;          /* 140 */
  uint8_t in_xmm[256];    /* 144 */
  uint64_t out_regs[16];  /* 400 */
  uint64_t out_rflags;    /* 528 */
  uint32_t out_mxcsr;     /* 536 */
  uint32_t pad1;          /* 540 */
  uint8_t out_xmm[256];   /* 544 */
  uint64_t host_rsp;      /* 800 */
  uint64_t code_addr;     /* 808 */
  uint64_t case_rsp;      /* 816 */
  uint64_t entry_rflags;  /* 824 */
  uint64_t host_rflags;   /* 832 */
  uint32_t host_mxcsr;    /* 840 */
  uint32_t host_fs;       /* 844 */
  uint32_t host_gs;       /* 848 */
  uint8_t running;        /* 852 */
  uint8_t has_avx;        /* 853 */
  uint8_t pad2[2];        /* 854 */
  uint64_t host_fsbase;   /* 856 */
  uint64_t host_gsbase;   /* 864 */
  /* C-only fields */
  volatile uint32_t status;
  volatile uint32_t ticks;
  uint32_t tick_limit;
  uint64_t fault_rip;
  uint64_t fault_addr;
};

struct vl_ctx vl_ctx __attribute__((aligned(64)));

_Static_assert(offsetof(struct vl_ctx, in_rflags) == 128, "layout");
_Static_assert(offsetof(struct vl_ctx, in_mxcsr) == 136, "layout");
_Static_assert(offsetof(struct vl_ctx, in_xmm) == 144, "layout");
_Static_assert(offsetof(struct vl_ctx, out_regs) == 400, "layout");
_Static_assert(offsetof(struct vl_ctx, out_rflags) == 528, "layout");
_Static_assert(offsetof(struct vl_ctx, out_mxcsr) == 536, "layout");
_Static_assert(offsetof(struct vl_ctx, out_xmm) == 544, "layout");
_Static_assert(offsetof(struct vl_ctx, host_rsp) == 800, "layout");
_Static_assert(offsetof(struct vl_ctx, code_addr) == 808, "layout");
_Static_assert(offsetof(struct vl_ctx, case_rsp) == 816, "layout");
_Static_assert(offsetof(struct vl_ctx, entry_rflags) == 824, "layout");
_Static_assert(offsetof(struct vl_ctx, host_rflags) == 832, "layout");
_Static_assert(offsetof(struct vl_ctx, host_mxcsr) == 840, "layout");
_Static_assert(offsetof(struct vl_ctx, host_fs) == 844, "layout");
_Static_assert(offsetof(struct vl_ctx, host_gs) == 848, "layout");
_Static_assert(offsetof(struct vl_ctx, running) == 852, "layout");
_Static_assert(offsetof(struct vl_ctx, has_avx) == 853, "layout");
_Static_assert(offsetof(struct vl_ctx, host_fsbase) == 856, "layout");
_Static_assert(offsetof(struct vl_ctx, host_gsbase) == 864, "layout");

void vl_enter(void);
void vl_exit(void);
void vl_resume(void);

/*
 * vl_enter: called from C. Saves the callee-saved registers, host rflags, rsp
 * and mxcsr; loads the case's xmm, mxcsr, GPRs and arithmetic flags; switches
 * to the private stack and jumps to the code page. It "returns" through
 * vl_exit (the code page ends in a jump there) or vl_resume (the signal
 * handler redirects a faulting case there).
 */
__asm__(
    ".text\n"
    ".globl vl_enter\n"
    ".type vl_enter,@function\n"
    "vl_enter:\n"
    "  push %rbx\n"
    "  push %rbp\n"
    "  push %r12\n"
    "  push %r13\n"
    "  push %r14\n"
    "  push %r15\n"
    "  pushfq\n"
    "  mov (%rsp), %rax\n"
    "  mov %rax, vl_ctx+832(%rip)\n"
    "  and $-0xCD6, %rax\n" /* ~0xCD5: keep the host's system flags */
    "  or vl_ctx+128(%rip), %rax\n"
    "  mov %rax, vl_ctx+824(%rip)\n"
    "  mov %rsp, vl_ctx+800(%rip)\n"
    "  stmxcsr vl_ctx+840(%rip)\n"
    "  fninit\n"
    "  cmpb $0, vl_ctx+853(%rip)\n"
    "  je 1f\n"
    "  vzeroupper\n"
    "1:\n"
    "  movdqu vl_ctx+144+0*16(%rip), %xmm0\n"
    "  movdqu vl_ctx+144+1*16(%rip), %xmm1\n"
    "  movdqu vl_ctx+144+2*16(%rip), %xmm2\n"
    "  movdqu vl_ctx+144+3*16(%rip), %xmm3\n"
    "  movdqu vl_ctx+144+4*16(%rip), %xmm4\n"
    "  movdqu vl_ctx+144+5*16(%rip), %xmm5\n"
    "  movdqu vl_ctx+144+6*16(%rip), %xmm6\n"
    "  movdqu vl_ctx+144+7*16(%rip), %xmm7\n"
    "  movdqu vl_ctx+144+8*16(%rip), %xmm8\n"
    "  movdqu vl_ctx+144+9*16(%rip), %xmm9\n"
    "  movdqu vl_ctx+144+10*16(%rip), %xmm10\n"
    "  movdqu vl_ctx+144+11*16(%rip), %xmm11\n"
    "  movdqu vl_ctx+144+12*16(%rip), %xmm12\n"
    "  movdqu vl_ctx+144+13*16(%rip), %xmm13\n"
    "  movdqu vl_ctx+144+14*16(%rip), %xmm14\n"
    "  movdqu vl_ctx+144+15*16(%rip), %xmm15\n"
    "  ldmxcsr vl_ctx+136(%rip)\n"
    /* popfq from vl_ctx.entry_rflags, so nothing is left on the case's stack */
    "  lea vl_ctx+824(%rip), %rsp\n"
    "  movb $1, vl_ctx+852(%rip)\n"
    "  mov vl_ctx+0*8(%rip), %rax\n"
    "  mov vl_ctx+1*8(%rip), %rcx\n"
    "  mov vl_ctx+2*8(%rip), %rdx\n"
    "  mov vl_ctx+3*8(%rip), %rbx\n"
    "  mov vl_ctx+5*8(%rip), %rbp\n"
    "  mov vl_ctx+6*8(%rip), %rsi\n"
    "  mov vl_ctx+7*8(%rip), %rdi\n"
    "  mov vl_ctx+8*8(%rip), %r8\n"
    "  mov vl_ctx+9*8(%rip), %r9\n"
    "  mov vl_ctx+10*8(%rip), %r10\n"
    "  mov vl_ctx+11*8(%rip), %r11\n"
    "  mov vl_ctx+12*8(%rip), %r12\n"
    "  mov vl_ctx+13*8(%rip), %r13\n"
    "  mov vl_ctx+14*8(%rip), %r14\n"
    "  mov vl_ctx+15*8(%rip), %r15\n"
    "  popfq\n"
    "  mov vl_ctx+816(%rip), %rsp\n" /* mov leaves the flags alone */
    "  jmp *vl_ctx+808(%rip)\n"
    ".size vl_enter, .-vl_enter\n"

    /* vl_exit: reached from the code page with the case's registers live. */
    ".globl vl_exit\n"
    ".type vl_exit,@function\n"
    "vl_exit:\n"
    "  mov %rax, vl_ctx+400+0*8(%rip)\n"
    "  mov %rcx, vl_ctx+400+1*8(%rip)\n"
    "  mov %rdx, vl_ctx+400+2*8(%rip)\n"
    "  mov %rbx, vl_ctx+400+3*8(%rip)\n"
    "  mov %rsp, vl_ctx+400+4*8(%rip)\n"
    "  mov %rbp, vl_ctx+400+5*8(%rip)\n"
    "  mov %rsi, vl_ctx+400+6*8(%rip)\n"
    "  mov %rdi, vl_ctx+400+7*8(%rip)\n"
    "  mov %r8, vl_ctx+400+8*8(%rip)\n"
    "  mov %r9, vl_ctx+400+9*8(%rip)\n"
    "  mov %r10, vl_ctx+400+10*8(%rip)\n"
    "  mov %r11, vl_ctx+400+11*8(%rip)\n"
    "  mov %r12, vl_ctx+400+12*8(%rip)\n"
    "  mov %r13, vl_ctx+400+13*8(%rip)\n"
    "  mov %r14, vl_ctx+400+14*8(%rip)\n"
    "  mov %r15, vl_ctx+400+15*8(%rip)\n"
    "  mov vl_ctx+800(%rip), %rsp\n" /* mov leaves the flags alone */
    "  pushfq\n"
    "  pop %rax\n"
    "  mov %rax, vl_ctx+528(%rip)\n"
    "  movdqu %xmm0, vl_ctx+544+0*16(%rip)\n"
    "  movdqu %xmm1, vl_ctx+544+1*16(%rip)\n"
    "  movdqu %xmm2, vl_ctx+544+2*16(%rip)\n"
    "  movdqu %xmm3, vl_ctx+544+3*16(%rip)\n"
    "  movdqu %xmm4, vl_ctx+544+4*16(%rip)\n"
    "  movdqu %xmm5, vl_ctx+544+5*16(%rip)\n"
    "  movdqu %xmm6, vl_ctx+544+6*16(%rip)\n"
    "  movdqu %xmm7, vl_ctx+544+7*16(%rip)\n"
    "  movdqu %xmm8, vl_ctx+544+8*16(%rip)\n"
    "  movdqu %xmm9, vl_ctx+544+9*16(%rip)\n"
    "  movdqu %xmm10, vl_ctx+544+10*16(%rip)\n"
    "  movdqu %xmm11, vl_ctx+544+11*16(%rip)\n"
    "  movdqu %xmm12, vl_ctx+544+12*16(%rip)\n"
    "  movdqu %xmm13, vl_ctx+544+13*16(%rip)\n"
    "  movdqu %xmm14, vl_ctx+544+14*16(%rip)\n"
    "  movdqu %xmm15, vl_ctx+544+15*16(%rip)\n"
    "  stmxcsr vl_ctx+536(%rip)\n"
    "  movb $0, vl_ctx+852(%rip)\n"
    /* vl_resume: the signal handler sends a faulting case here, rsp = host rsp. */
    ".globl vl_resume\n"
    "vl_resume:\n"
    "  mov %fs, %eax\n"
    "  cmp vl_ctx+844(%rip), %eax\n"
    "  je 2f\n"
    "  mov vl_ctx+844(%rip), %eax\n"
    "  mov %eax, %fs\n"
    "  mov $158, %eax\n" /* arch_prctl(ARCH_SET_FS, host fs base) */
    "  mov $0x1002, %edi\n"
    "  mov vl_ctx+856(%rip), %rsi\n"
    "  syscall\n"
    "2:\n"
    "  mov %gs, %eax\n"
    "  cmp vl_ctx+848(%rip), %eax\n"
    "  je 3f\n"
    "  mov vl_ctx+848(%rip), %eax\n"
    "  mov %eax, %gs\n"
    "  mov $158, %eax\n" /* arch_prctl(ARCH_SET_GS, host gs base) */
    "  mov $0x1001, %edi\n"
    "  mov vl_ctx+864(%rip), %rsi\n"
    "  syscall\n"
    "3:\n"
    "  fninit\n"
    "  ldmxcsr vl_ctx+840(%rip)\n"
    "  popfq\n"
    "  pop %r15\n"
    "  pop %r14\n"
    "  pop %r13\n"
    "  pop %r12\n"
    "  pop %rbp\n"
    "  pop %rbx\n"
    "  ret\n"
    ".size vl_exit, .-vl_exit\n");

static const int fault_signals[] = {SIGFPE, SIGSEGV, SIGILL, SIGBUS, SIGTRAP, SIGSYS};

static void die(int code, const char *what) {
  fprintf(stderr, "visorlab native harness: %s: %s\n", what, strerror(errno));
  exit(code);
}

static void bad_input(const char *what) {
  fprintf(stderr, "visorlab native harness: bad input: %s\n", what);
  exit(2);
}

#if defined(__has_attribute)
#if __has_attribute(no_stack_protector)
#define NO_SSP __attribute__((no_stack_protector))
#endif
#endif
#ifndef NO_SSP
#define NO_SSP
#endif

/* Runs on the alternate signal stack; touches no TLS (the case may have
 * clobbered fs), so it calls nothing but memcpy/memset. */
NO_SSP static void on_signal(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = (ucontext_t *)ucv;
  if (!vl_ctx.running) {
    if (sig == SIGALRM) return;
    /* A fault in the harness itself: let the default action kill us. */
    signal(sig, SIG_DFL);
    return;
  }
  if (sig == SIGALRM) {
    if (++vl_ctx.ticks < vl_ctx.tick_limit) return;
    vl_ctx.status = STATUS_TIMEOUT;
  } else {
    vl_ctx.status = (uint32_t)sig;
  }
  greg_t *g = uc->uc_mcontext.gregs;
  uint64_t *o = vl_ctx.out_regs;
  o[0] = (uint64_t)g[REG_RAX];
  o[1] = (uint64_t)g[REG_RCX];
  o[2] = (uint64_t)g[REG_RDX];
  o[3] = (uint64_t)g[REG_RBX];
  o[4] = (uint64_t)g[REG_RSP];
  o[5] = (uint64_t)g[REG_RBP];
  o[6] = (uint64_t)g[REG_RSI];
  o[7] = (uint64_t)g[REG_RDI];
  o[8] = (uint64_t)g[REG_R8];
  o[9] = (uint64_t)g[REG_R9];
  o[10] = (uint64_t)g[REG_R10];
  o[11] = (uint64_t)g[REG_R11];
  o[12] = (uint64_t)g[REG_R12];
  o[13] = (uint64_t)g[REG_R13];
  o[14] = (uint64_t)g[REG_R14];
  o[15] = (uint64_t)g[REG_R15];
  vl_ctx.out_rflags = (uint64_t)g[REG_EFL];
  vl_ctx.fault_rip = (uint64_t)g[REG_RIP];
  vl_ctx.fault_addr = (sig == SIGSEGV || sig == SIGBUS) ? (uint64_t)(uintptr_t)si->si_addr : 0;
  struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
  if (fp) {
    vl_ctx.out_mxcsr = fp->mxcsr;
    memcpy(vl_ctx.out_xmm, fp->_xmm, sizeof vl_ctx.out_xmm);
    fp->mxcsr = vl_ctx.host_mxcsr;
  } else {
    vl_ctx.out_mxcsr = 0;
    memset(vl_ctx.out_xmm, 0, sizeof vl_ctx.out_xmm);
  }
  /* Resume in the harness: host stack, host flags (no TF/AC left behind). */
  g[REG_RIP] = (greg_t)(uintptr_t)&vl_resume;
  g[REG_RSP] = (greg_t)vl_ctx.host_rsp;
  g[REG_EFL] = (greg_t)vl_ctx.host_rflags;
  vl_ctx.running = 0;
}

static void *map_fixed(uint64_t addr, size_t len, int prot) {
  void *p = mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if ((uint64_t)(uintptr_t)p != addr) { /* kernel without MAP_FIXED_NOREPLACE treated it as a hint */
    munmap(p, len);
    errno = EEXIST;
    return NULL;
  }
  return p;
}

/* Traps (SIGSYS) any system call made from the code page, so a random
 * `syscall` / `int 0x80` in a case cannot touch the host. */
static int install_seccomp(void) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(CODE_ADDR >> 32), 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)CODE_ADDR, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)(CODE_ADDR + CODE_SIZE), 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 0;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return 0;
  }
  return 1;
}

struct outbuf {
  uint8_t *p;
  size_t len, cap;
};

static uint8_t *out_reserve(struct outbuf *b, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : (1u << 20);
    while (cap < b->len + n) cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) die(3, "realloc");
    b->p = q;
    b->cap = cap;
  }
  uint8_t *r = b->p + b->len;
  b->len += n;
  return r;
}

static uint8_t *read_all(size_t *len) {
  size_t cap = 1u << 20, n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) die(3, "malloc");
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (!buf) die(3, "realloc");
    }
    ssize_t r = read(0, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die(3, "read stdin");
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

static void write_all(const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die(3, "write stdout");
    }
    p += w;
    n -= (size_t)w;
  }
}

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

int main(void) {
  size_t in_len;
  uint8_t *in = read_all(&in_len);
  if (in_len < 16 || rd32(in) != IN_MAGIC) bad_input("magic");
  if (rd32(in + 4) != FORMAT_VERSION) bad_input("version");
  uint32_t count = rd32(in + 8);
  uint32_t timeout_ms = rd32(in + 12);
  if (timeout_ms == 0) timeout_ms = 1000;

  /* Address space. */
  int code_rwx = 1;
  uint8_t *code = map_fixed(CODE_ADDR, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
  if (!code && (errno == EACCES || errno == EPERM)) {
    code_rwx = 0; /* W^X policy: write RW, then flip to RX per case */
    code = map_fixed(CODE_ADDR, CODE_SIZE, PROT_READ | PROT_WRITE);
  }
  if (!code) die(3, "mmap code page");
  uint8_t *stack = map_fixed(STACK_BASE, STACK_TOP - STACK_BASE, PROT_READ | PROT_WRITE);
  if (!stack) die(3, "mmap stack");
  uint8_t *mem = map_fixed(MEM_ADDR, MEM_SIZE, PROT_READ | PROT_WRITE);
  if (!mem) die(3, "mmap memory");

  /* Host state the trampolines restore. */
  uint32_t sel;
  __asm__ volatile("mov %%fs, %0" : "=r"(sel));
  vl_ctx.host_fs = sel;
  __asm__ volatile("mov %%gs, %0" : "=r"(sel));
  vl_ctx.host_gs = sel;
  unsigned long base = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_FS, &base) != 0) die(3, "arch_prctl(ARCH_GET_FS)");
  vl_ctx.host_fsbase = base;
  base = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_GS, &base) != 0) die(3, "arch_prctl(ARCH_GET_GS)");
  vl_ctx.host_gsbase = base;
  __builtin_cpu_init();
  vl_ctx.has_avx = __builtin_cpu_supports("avx") ? 1 : 0;
  vl_ctx.code_addr = CODE_ADDR;
  vl_ctx.case_rsp = STACK_RSP;
  vl_ctx.tick_limit = (timeout_ms + TICK_MS - 1) / TICK_MS + 1;

  /* Signals: on an alternate stack, since the case owns rsp. */
  stack_t ss;
  ss.ss_size = 1u << 16;
  ss.ss_sp = malloc(ss.ss_size);
  ss.ss_flags = 0;
  if (!ss.ss_sp || sigaltstack(&ss, NULL) != 0) die(3, "sigaltstack");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++) {
    if (sigaction(fault_signals[i], &sa, NULL) != 0) die(3, "sigaction");
  }
  if (sigaction(SIGALRM, &sa, NULL) != 0) die(3, "sigaction");
  sigset_t unblock;
  sigemptyset(&unblock);
  for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++) sigaddset(&unblock, fault_signals[i]);
  sigaddset(&unblock, SIGALRM);
  sigprocmask(SIG_UNBLOCK, &unblock, NULL);

  int sandboxed = install_seccomp();
  if (!sandboxed) {
    fprintf(stderr, "visorlab native harness: warning: seccomp unavailable, syscalls in cases are not trapped\n");
  }

  struct outbuf out = {0};
  uint8_t *h = out_reserve(&out, 48);
  memset(h, 0, 48);
  wr32(h, OUT_MAGIC);
  wr32(h + 4, FORMAT_VERSION);
  wr32(h + 8, count);
  wr32(h + 12, (sandboxed ? 1u : 0u) | (code_rwx ? 2u : 0u));
  wr64(h + 16, CODE_ADDR);
  wr64(h + 24, STACK_RSP);
  wr64(h + 32, MEM_ADDR);

  struct itimerval tv;
  tv.it_interval.tv_sec = 0;
  tv.it_interval.tv_usec = TICK_MS * 1000;
  tv.it_value = tv.it_interval;
  if (setitimer(ITIMER_REAL, &tv, NULL) != 0) die(3, "setitimer");

  static const uint8_t jmp_exit[6] = {0xFF, 0x25, 0, 0, 0, 0}; /* jmp *0(%rip) */
  const uint64_t exit_addr = (uint64_t)(uintptr_t)&vl_exit;
  size_t pos = 16;
  for (uint32_t c = 0; c < count; c++) {
    if (pos + 152 > in_len) bad_input("truncated case header");
    const uint8_t *ch = in + pos;
    uint32_t code_len = ch[0], flags = ch[1], mem_reg = ch[2];
    uint32_t mem_len = (uint32_t)ch[4] | ((uint32_t)ch[5] << 8);
    uint32_t mxcsr = rd32(ch + 8);
    uint64_t rflags;
    memcpy(&rflags, ch + 16, 8);
    if (code_len > CODE_MAX) bad_input("code longer than 64 bytes");
    if (mem_len > MEM_SIZE) bad_input("memory longer than 4096 bytes");
    int has_xmm = (flags & 1) != 0, has_mem = (flags & 2) != 0;
    if (has_mem && (mem_reg > 15 || mem_reg == 4)) bad_input("memReg");
    if (!has_mem && mem_len != 0) bad_input("memory length without memory");
    if (mxcsr & 0xFFFF0000u) bad_input("mxcsr reserved bits");
    size_t body = 152 + (has_xmm ? 256u : 0u) + code_len + mem_len;
    size_t padded = (body + 7) & ~(size_t)7;
    if (pos + padded > in_len) bad_input("truncated case body");
    const uint8_t *p = ch + 24;
    memcpy(vl_ctx.in_regs, p, 128);
    p += 128;
    if (has_xmm) {
      memcpy(vl_ctx.in_xmm, p, 256);
      p += 256;
    } else {
      memset(vl_ctx.in_xmm, 0, 256);
    }
    const uint8_t *case_code = p;
    const uint8_t *case_mem = p + code_len;
    pos += padded;

    /* Code page: int3 everywhere, the case's bytes, then the jump to vl_exit. */
    if (!code_rwx && mprotect(code, CODE_SIZE, PROT_READ | PROT_WRITE) != 0) die(3, "mprotect RW");
    memset(code, 0xCC, CODE_SIZE);
    memcpy(code, case_code, code_len);
    memcpy(code + code_len, jmp_exit, 6);
    memcpy(code + code_len + 6, &exit_addr, 8);
    if (!code_rwx && mprotect(code, CODE_SIZE, PROT_READ | PROT_EXEC) != 0) die(3, "mprotect RX");
    memset(stack, 0, STACK_TOP - STACK_BASE);
    memset(mem, 0, MEM_SIZE);
    if (has_mem) {
      memcpy(mem, case_mem, mem_len);
      vl_ctx.in_regs[mem_reg] = MEM_ADDR;
    }
    vl_ctx.in_regs[4] = STACK_RSP;
    vl_ctx.in_rflags = rflags & RFLAGS_MASK;
    vl_ctx.in_mxcsr = mxcsr;
    vl_ctx.status = 0;
    vl_ctx.ticks = 0;
    vl_ctx.fault_rip = 0;
    vl_ctx.fault_addr = 0;

    vl_enter();

    int xmm_changed = memcmp(vl_ctx.out_xmm, vl_ctx.in_xmm, 256) != 0;
    size_t rec = 40 + 128 + (xmm_changed ? 256u : 0u) + ((mem_len + 7u) & ~7u);
    uint8_t *r = out_reserve(&out, rec);
    memset(r, 0, rec);
    r[0] = (uint8_t)vl_ctx.status;
    r[1] = xmm_changed ? 1 : 0;
    wr32(r + 4, vl_ctx.out_mxcsr);
    wr64(r + 8, vl_ctx.out_rflags);
    wr64(r + 16, vl_ctx.fault_rip);
    wr64(r + 24, vl_ctx.fault_addr);
    /* r + 32: reserved */
    memcpy(r + 40, vl_ctx.out_regs, 128);
    uint8_t *q = r + 168;
    if (xmm_changed) {
      memcpy(q, vl_ctx.out_xmm, 256);
      q += 256;
    }
    if (mem_len) memcpy(q, mem, mem_len);
  }
  if (pos != in_len) bad_input("trailing bytes");

  memset(&tv, 0, sizeof tv);
  setitimer(ITIMER_REAL, &tv, NULL);
  write_all(out.p, out.len);
  return 0;
}
