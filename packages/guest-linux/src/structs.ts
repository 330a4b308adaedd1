/**
 * Byte offsets of the kernel structures this guest keeps in guest memory.
 * Where Linux has the structure, the field order follows Linux of the 3.x–4.x
 * era (the era of the articles: `struct module` still has `module_core` and
 * `core_size`); fields the model does not use are left out, so offsets are
 * this guest's own — always take them from here, never from a Linux header.
 */

/** `struct list_head`: { next, prev }. */
export const LIST_HEAD = { next: 0x00, prev: 0x08, SIZE: 0x10 } as const;

/**
 * `struct pt_regs` (arch/x86/include/asm/ptrace.h, x86-64): the register frame
 * the entry code pushes on the kernel stack.
 */
export const PT_REGS = {
  r15: 0,
  r14: 8,
  r13: 16,
  r12: 24,
  bp: 32,
  bx: 40,
  r11: 48,
  r10: 56,
  r9: 64,
  r8: 72,
  ax: 80,
  cx: 88,
  dx: 96,
  si: 104,
  di: 112,
  orig_ax: 120,
  ip: 128,
  cs: 136,
  flags: 144,
  sp: 152,
  ss: 160,
  SIZE: 168,
} as const;

/**
 * `struct cred` (include/linux/cred.h, 4.x, without CONFIG_DEBUG_CREDENTIALS).
 * `kernel_cap_t` is two 32-bit words (64 bits).
 */
export const CRED = {
  usage: 0x00,
  uid: 0x04,
  gid: 0x08,
  suid: 0x0c,
  sgid: 0x10,
  euid: 0x14,
  egid: 0x18,
  fsuid: 0x1c,
  fsgid: 0x20,
  securebits: 0x24,
  cap_inheritable: 0x28,
  cap_permitted: 0x30,
  cap_effective: 0x38,
  cap_bset: 0x40,
  cap_ambient: 0x48,
  jit_keyring: 0x50,
  session_keyring: 0x58,
  process_keyring: 0x60,
  thread_keyring: 0x68,
  request_key_auth: 0x70,
  security: 0x78,
  user: 0x80,
  user_ns: 0x88,
  group_info: 0x90,
  rcu: 0x98,
  SIZE: 0xa8,
} as const;

/**
 * This guest's `struct task_struct` (Linux's is config-dependent and huge; this
 * keeps the fields the model needs, in Linux's relative order where it has them).
 */
export const TASK = {
  /** `volatile long state`: 0 running, 1 interruptible, 2 uninterruptible, 64 dead. */
  state: 0x00,
  /** Base of the kernel stack (`THREAD_SIZE` bytes). */
  stack: 0x08,
  /** `PF_*` flags. */
  flags: 0x10,
  /** `thread.sp`: kernel RSP saved by the context switch. */
  thread_sp: 0x18,
  mm: 0x20,
  active_mm: 0x28,
  pid: 0x30,
  tgid: 0x34,
  real_cred: 0x38,
  cred: 0x40,
  /** `char comm[16]`. */
  comm: 0x48,
  /** `struct list_head tasks` (all tasks, headed by `init_task`). */
  tasks: 0x58,
  exit_code: 0x68,
  /** CPU the task runs on. */
  cpu: 0x70,
  /** The physical page-table root loaded on switch (`mm->pgd` as CR3). */
  cr3: 0x78,
  /** User FS base (`thread.fsbase`). */
  fsbase: 0x80,
  /** `thread_info.flags` (`TIF_*`). */
  ti_flags: 0x88,
  SIZE: 0x100,
} as const;

/** `TASK.state` values. */
export const TASK_STATE = { RUNNING: 0, INTERRUPTIBLE: 1, UNINTERRUPTIBLE: 2, DEAD: 64 } as const;
/** `TASK.flags` bits. */
export const PF = { EXITING: 0x4, KTHREAD: 0x00200000 } as const;
/** Bytes of a kernel stack (`THREAD_SIZE`, order 2 as in 4.x). */
export const THREAD_SIZE = 16384;

/**
 * `struct module` (include/linux/module.h of Linux 3.x–4.4, reduced, same order):
 *
 * ```
 * 0x000 enum module_state state      0x0a0 void *module_core
 * 0x008 struct list_head list        0x0a8 unsigned int init_size
 * 0x018 char name[56]                0x0ac unsigned int core_size
 * 0x050 const char *version          0x0b0 unsigned int init_text_size
 * 0x058 const char *srcversion       0x0b4 unsigned int core_text_size
 * 0x060 const struct kernel_symbol *syms   0x0b8 init_ro_size  0x0bc core_ro_size
 * 0x068 unsigned int num_syms        0x0c0 unsigned long taints
 * 0x070 struct kernel_param *kp      0x0c8 char *args
 * 0x078 unsigned int num_kp          0x0d0 struct list_head source_list
 * 0x080 unsigned int num_exentries   0x0e0 struct list_head target_list
 * 0x088 const struct exception_table_entry *extable   0x0f0 void (*exit)(void)
 * 0x090 int (*init)(void)            0x0f8 atomic_t refcnt
 * 0x098 void *module_init
 * ```
 */
export const STRUCT_MODULE = {
  state: 0x000,
  list: 0x008,
  name: 0x018,
  version: 0x050,
  srcversion: 0x058,
  syms: 0x060,
  num_syms: 0x068,
  kp: 0x070,
  num_kp: 0x078,
  num_exentries: 0x080,
  extable: 0x088,
  init: 0x090,
  module_init: 0x098,
  module_core: 0x0a0,
  init_size: 0x0a8,
  core_size: 0x0ac,
  init_text_size: 0x0b0,
  core_text_size: 0x0b4,
  init_ro_size: 0x0b8,
  core_ro_size: 0x0bc,
  taints: 0x0c0,
  args: 0x0c8,
  source_list: 0x0d0,
  target_list: 0x0e0,
  exit: 0x0f0,
  refcnt: 0x0f8,
  SIZE: 0x100,
} as const;
/** `MODULE_NAME_LEN` (64 − sizeof(unsigned long)). */
export const MODULE_NAME_LEN = 56;
/** `enum module_state`. */
export const MODULE_STATE = { LIVE: 0, COMING: 1, GOING: 2, UNFORMED: 3 } as const;

/** `struct kernel_param` (4.x): name, mod, ops, perm, level, flags, arg. */
export const KERNEL_PARAM = { name: 0, mod: 8, ops: 16, perm: 24, level: 26, flags: 27, arg: 32, SIZE: 40 } as const;

/**
 * `struct mutex` (include/linux/mutex.h of 3.x–4.9): `atomic_t count` (1 =
 * unlocked, 0 = locked, negative = locked with waiters), `spinlock_t
 * wait_lock`, `struct list_head wait_list`, `struct task_struct *owner`.
 */
export const MUTEX = { count: 0x00, wait_lock: 0x04, wait_list: 0x08, owner: 0x18, SIZE: 0x20 } as const;

/**
 * `struct exception_table_entry` (x86, 4.x before 4.6): two 32-bit offsets,
 * each relative to the field's own address: `insn` (the instruction that may
 * fault) and `fixup` (where to continue).
 */
export const EXTABLE_ENTRY = { insn: 0, fixup: 4, SIZE: 8 } as const;

/**
 * `struct file_operations` (include/linux/fs.h, 4.4 order): the pointers a
 * character device provides. Unused slots are NULL.
 */
export const FOPS = {
  owner: 0x00,
  llseek: 0x08,
  read: 0x10,
  write: 0x18,
  read_iter: 0x20,
  write_iter: 0x28,
  iterate: 0x30,
  poll: 0x38,
  unlocked_ioctl: 0x40,
  compat_ioctl: 0x48,
  mmap: 0x50,
  open: 0x58,
  flush: 0x60,
  release: 0x68,
  fsync: 0x70,
  SIZE: 0xd8,
} as const;

/** This guest's `struct file` for files a driver sees (reduced). */
export const FILE = {
  f_inode: 0x20,
  f_op: 0x28,
  f_flags: 0x40,
  f_mode: 0x44,
  f_pos: 0x48,
  f_cred: 0x50,
  private_data: 0xc8,
  SIZE: 0x100,
} as const;

/** This guest's `struct inode` for device nodes a driver sees (reduced). */
export const INODE = { i_mode: 0x00, i_rdev: 0x04, i_ino: 0x08, SIZE: 0x40 } as const;

/**
 * The per-CPU area (GS base in kernel mode). Offsets `this_cpu_*` use:
 *
 * ```
 * 0x000 this_cpu_off (self)        0x020 cpu_number
 * 0x008 current_task               0x028 &tss
 * 0x010 cpu_current_top_of_stack   0x030 idle task
 * 0x018 rsp_scratch                0x100 TSS (0x68 bytes)   0x200 GDT (16 entries)
 * ```
 */
export const PERCPU = {
  this_cpu_off: 0x000,
  current_task: 0x008,
  top_of_stack: 0x010,
  rsp_scratch: 0x018,
  cpu_number: 0x020,
  tss: 0x028,
  idle_task: 0x030,
  irq_count: 0x038,
  TSS_OFFSET: 0x100,
  GDT_OFFSET: 0x200,
  SIZE: 0x1000,
} as const;

/** Offsets in the 64-bit TSS (SDM vol. 3A, 7.7). */
export const TSS64 = { rsp0: 4, rsp1: 12, rsp2: 20, ist1: 36, iomap_base: 102, SIZE: 0x68 } as const;

/** Segment selectors of x86-64 Linux (arch/x86/include/asm/segment.h). */
export const SEL = {
  KERNEL32_CS: 0x08,
  KERNEL_CS: 0x10,
  KERNEL_DS: 0x18,
  USER32_CS: 0x23,
  USER_DS: 0x2b,
  USER_CS: 0x33,
  TSS: 0x40,
} as const;

/**
 * x86-64 `struct sigcontext` (arch/x86/include/uapi/asm/sigcontext.h) inside
 * `struct ucontext` at `uc_mcontext` (offset 40). Offsets are from the start of
 * the ucontext.
 */
export const UCONTEXT = {
  uc_flags: 0,
  uc_link: 8,
  uc_stack: 16,
  mcontext: 40,
  r8: 40 + 0,
  r9: 40 + 8,
  r10: 40 + 16,
  r11: 40 + 24,
  r12: 40 + 32,
  r13: 40 + 40,
  r14: 40 + 48,
  r15: 40 + 56,
  rdi: 40 + 64,
  rsi: 40 + 72,
  rbp: 40 + 80,
  rbx: 40 + 88,
  rdx: 40 + 96,
  rax: 40 + 104,
  rcx: 40 + 112,
  rsp: 40 + 120,
  rip: 40 + 128,
  eflags: 40 + 136,
  cs: 40 + 144,
  err: 40 + 152,
  trapno: 40 + 160,
  oldmask: 40 + 168,
  cr2: 40 + 176,
  fpstate: 40 + 184,
  uc_sigmask: 40 + 256,
  SIZE: 304,
} as const;

/** `struct rt_sigframe` (x86-64): return address, ucontext, siginfo. */
export const RT_SIGFRAME = { pretcode: 0, uc: 8, info: 8 + UCONTEXT.SIZE, SIZE: 8 + UCONTEXT.SIZE + 128 } as const;

/** `struct new_utsname`: six 65-byte strings. */
export const UTSNAME = {
  sysname: 0,
  nodename: 65,
  release: 130,
  version: 195,
  machine: 260,
  domainname: 325,
  SIZE: 390,
} as const;
