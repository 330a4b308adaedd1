/**
 * The x86-64 Linux ABI facts the guest implements: errno values
 * (include/uapi/asm-generic/errno-base.h, errno.h), system-call numbers
 * (arch/x86/entry/syscalls/syscall_64.tbl), open flags, mmap flags, signals,
 * capabilities.
 */

/** errno values (positive; system calls return their negation). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  EOVERFLOW: 75,
} as const;
/** An errno name. */
export type ErrnoName = keyof typeof ERRNO;

/** System-call numbers of x86-64 Linux (the ones this guest implements, and a few it names). */
export const NR = {
  read: 0,
  write: 1,
  open: 2,
  close: 3,
  stat: 4,
  fstat: 5,
  lseek: 8,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  brk: 12,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  rt_sigreturn: 15,
  ioctl: 16,
  pread64: 17,
  pwrite64: 18,
  access: 21,
  sched_yield: 24,
  madvise: 28,
  getpid: 39,
  exit: 60,
  kill: 62,
  uname: 63,
  getcwd: 79,
  mknod: 133,
  getuid: 102,
  syslog: 103,
  getgid: 104,
  setuid: 105,
  setgid: 106,
  geteuid: 107,
  getegid: 108,
  getppid: 110,
  mlock: 149,
  munlock: 150,
  arch_prctl: 158,
  init_module: 175,
  delete_module: 176,
  gettid: 186,
  clock_gettime: 228,
  exit_group: 231,
  openat: 257,
  finit_module: 313,
} as const;

/** Entries in `sys_call_table`: 0 … 332 (statx, Linux 4.11) — the table of the 4.x era. */
export const NR_SYSCALLS = 333;

/** open(2) flags. */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  ACCMODE: 3,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  CLOEXEC: 0o2000000,
} as const;

/** `AT_FDCWD` for openat. */
export const AT_FDCWD = -100;

/** lseek whence values. */
export const SEEK = { SET: 0, CUR: 1, END: 2 } as const;

/** mmap/mprotect protection bits and mmap flags. */
export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;
/** mmap flags. */
export const MAP = {
  SHARED: 0x01,
  PRIVATE: 0x02,
  FIXED: 0x10,
  ANONYMOUS: 0x20,
  POPULATE: 0x8000,
  LOCKED: 0x2000,
} as const;
/** madvise advice values this guest implements. */
export const MADV = { NORMAL: 0, WILLNEED: 3, DONTNEED: 4, PAGEOUT: 21 } as const;

/** Signal numbers. */
export const SIG = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
} as const;
/** `sa_flags` bits of rt_sigaction. */
export const SA = { SIGINFO: 4, RESTORER: 0x04000000, NODEFER: 0x40000000, RESETHAND: 0x80000000 } as const;

/** Capability numbers (include/uapi/linux/capability.h). */
export const CAP = {
  CHOWN: 0,
  SETGID: 6,
  SETUID: 7,
  IPC_LOCK: 14,
  SYS_MODULE: 16,
  SYS_RAWIO: 17,
  SYS_ADMIN: 21,
  SYSLOG: 34,
} as const;
/** Every capability of the 4.x era (CAP_LAST_CAP = 37). */
export const CAP_FULL_SET = (1n << 38n) - 1n;

/** clock ids. */
export const CLOCK = {
  REALTIME: 0,
  MONOTONIC: 1,
  PROCESS_CPUTIME_ID: 2,
  THREAD_CPUTIME_ID: 3,
  MONOTONIC_RAW: 4,
  BOOTTIME: 7,
} as const;

/** arch_prctl codes. */
export const ARCH = { SET_GS: 0x1001, SET_FS: 0x1002, GET_FS: 0x1003, GET_GS: 0x1004 } as const;

/** ioctl numbers the console implements. */
export const TCGETS = 0x5401;

/** The highest user address + 1 (TASK_SIZE_MAX of x86-64: 2^47 − one page). */
export const TASK_SIZE_MAX = 0x7ffffffff000;
