import { THUNK_RESUME } from "@visorlab/x86-core";
import {
  Assembler,
  al,
  byte,
  cr0,
  cr2,
  cr3,
  cr4,
  dword,
  eax,
  ebx,
  ecx,
  edi,
  edx,
  esi,
  gs,
  mem,
  qword,
  r8,
  r9,
  r10,
  r11,
  r12,
  r13,
  r14,
  r15,
  rax,
  rbp,
  rbx,
  rcx,
  rdi,
  rdx,
  rsi,
  rsp,
  si,
  sil,
  word,
} from "@visorlab/x86-core/asm";
import { GuestLinuxError } from "./errors";
import { PERCPU, PT_REGS, SEL, TASK, THREAD_SIZE } from "./structs";

/** An exception or interrupt vector with its entry stub. */
export interface IdtVector {
  vector: number;
  /** Entry label (a kernel symbol). */
  name: string;
  /** The handler it calls: `handler(regs, vector, cr2)` → 0 (return to the interrupted code) or 1 (the task is dead). */
  handler: string;
  /** The processor pushes an error code for this vector. */
  errorCode: boolean;
  /** IST index (1 = NMI stack, 2 = double-fault stack), 0 for none. */
  ist: number;
  /** Gate DPL (3 for INT3/INTO so user code may execute them). */
  dpl: number;
}

/** Vectors with dedicated stubs (arch/x86/kernel/traps.c, entry_64.S). */
export const IDT_VECTORS: readonly IdtVector[] = [
  { vector: 0, name: "divide_error", handler: "do_divide_error", errorCode: false, ist: 0, dpl: 0 },
  { vector: 1, name: "debug", handler: "do_debug", errorCode: false, ist: 0, dpl: 0 },
  { vector: 3, name: "int3", handler: "do_int3", errorCode: false, ist: 0, dpl: 3 },
  { vector: 4, name: "overflow", handler: "do_overflow", errorCode: false, ist: 0, dpl: 3 },
  { vector: 5, name: "bounds", handler: "do_bounds", errorCode: false, ist: 0, dpl: 0 },
  { vector: 6, name: "invalid_op", handler: "do_invalid_op", errorCode: false, ist: 0, dpl: 0 },
  { vector: 7, name: "device_not_available", handler: "do_device_not_available", errorCode: false, ist: 0, dpl: 0 },
  {
    vector: 9,
    name: "coprocessor_segment_overrun",
    handler: "do_coprocessor_segment_overrun",
    errorCode: false,
    ist: 0,
    dpl: 0,
  },
  { vector: 10, name: "invalid_TSS", handler: "do_invalid_TSS", errorCode: true, ist: 0, dpl: 0 },
  { vector: 11, name: "segment_not_present", handler: "do_segment_not_present", errorCode: true, ist: 0, dpl: 0 },
  { vector: 12, name: "stack_segment", handler: "do_stack_segment", errorCode: true, ist: 0, dpl: 0 },
  { vector: 13, name: "general_protection", handler: "do_general_protection", errorCode: true, ist: 0, dpl: 0 },
  { vector: 14, name: "page_fault", handler: "do_page_fault", errorCode: true, ist: 0, dpl: 0 },
  { vector: 16, name: "coprocessor_error", handler: "do_coprocessor_error", errorCode: false, ist: 0, dpl: 0 },
  { vector: 17, name: "alignment_check", handler: "do_alignment_check", errorCode: true, ist: 0, dpl: 0 },
  { vector: 18, name: "machine_check", handler: "do_machine_check", errorCode: false, ist: 0, dpl: 0 },
  {
    vector: 19,
    name: "simd_coprocessor_error",
    handler: "do_simd_coprocessor_error",
    errorCode: false,
    ist: 0,
    dpl: 0,
  },
  { vector: 0xef, name: "apic_timer_interrupt", handler: "smp_apic_timer_interrupt", errorCode: false, ist: 0, dpl: 0 },
  {
    vector: 0xfb,
    name: "call_function_interrupt",
    handler: "smp_call_function_interrupt",
    errorCode: false,
    ist: 0,
    dpl: 0,
  },
  { vector: 0xfd, name: "reschedule_interrupt", handler: "smp_reschedule_interrupt", errorCode: false, ist: 0, dpl: 0 },
  { vector: 0xff, name: "spurious_interrupt", handler: "smp_spurious_interrupt", errorCode: false, ist: 0, dpl: 0 },
];

/** Linux's vector numbers for the timer and the IPIs. */
export const VECTORS = { LOCAL_TIMER: 0xef, CALL_FUNCTION: 0xfb, RESCHEDULE: 0xfd, SPURIOUS: 0xff } as const;

/** Thunk-implemented functions the entry code calls. */
export interface EntryRefs {
  sysCallTable: bigint;
  nrSyscalls: number;
  /** Address of a kernel function by name. */
  fn(name: string): bigint;
}

/** What assembling the entry code produced. */
export interface EntryCode {
  bytes: Uint8Array;
  /** Function labels in order with their addresses (unsigned). */
  functions: { name: string; addr: bigint }[];
  /** Every label (including local ones). */
  labels: Map<string, bigint>;
  /** Exception-table entries: (faulting instruction, fixup). */
  extable: { insn: bigint; fixup: bigint }[];
  /** Entry stub per vector (the IDT's targets). */
  vectorStubs: Map<number, bigint>;
}

/** Names of the replay stubs (see mem.ts `AccessStubs`) and of the resume thunk in kernel text. */
export const REPLAY_STUBS = ["read8", "read16", "read32", "read64", "write8", "write16", "write32", "write64"] as const;

/**
 * Emits the eight replay stubs and a resume thunk, prefixing labels with
 * `prefix` (shared by kernel, module and user text).
 */
export function emitReplayStubs(a: Assembler, prefix: string): void {
  a.label(`${prefix}resume`).thunk(THUNK_RESUME);
  a.label(`${prefix}read8`).movzx(eax, byte(rdi)).thunk(THUNK_RESUME);
  a.label(`${prefix}read16`).movzx(eax, word(rdi)).thunk(THUNK_RESUME);
  a.label(`${prefix}read32`).mov(eax, dword(rdi)).thunk(THUNK_RESUME);
  a.label(`${prefix}read64`).mov(rax, qword(rdi)).thunk(THUNK_RESUME);
  a.label(`${prefix}write8`).mov(byte(rdi), sil).thunk(THUNK_RESUME);
  a.label(`${prefix}write16`).mov(word(rdi), si).thunk(THUNK_RESUME);
  a.label(`${prefix}write32`).mov(dword(rdi), esi).thunk(THUNK_RESUME);
  a.label(`${prefix}write64`).mov(qword(rdi), rsi).thunk(THUNK_RESUME);
}

const pcpu = (off: number) => qword({ disp: off, seg: gs });

function pushRegs(a: Assembler): void {
  for (const r of [rdi, rsi, rdx, rcx, rax, r8, r9, r10, r11, rbx, rbp, r12, r13, r14, r15]) a.push(r);
}

function popRegs(a: Assembler): void {
  for (const r of [r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi]) a.pop(r);
}

/**
 * Assembles the kernel's entry code at `base` (the start of kernel text):
 * SYSCALL entry and exit, exception and interrupt stubs, the context switch,
 * the idle loop, `ret_from_fork`, the user-copy routines (with exception-table
 * entries) and the small privileged helpers TypeScript kernel code calls.
 */
export function assembleEntry(base: bigint, refs: EntryRefs): EntryCode {
  const a = new Assembler();
  const functions: string[] = [];
  const fn = (name: string) => {
    functions.push(name);
    a.label(name);
  };
  const extableLabels: [string, string][] = [];

  fn("thunk_resume");
  a.thunk(THUNK_RESUME);
  fn("__kmem_replay");
  emitReplayStubs(a, "__kmem_");

  // ---- SYSCALL (entry_64.S, 4.x): the kernel stack and pt_regs by hand, then sys_call_table[rax].
  fn("entry_SYSCALL_64");
  a.swapgs();
  a.mov(pcpu(PERCPU.rsp_scratch), rsp);
  a.mov(rsp, pcpu(PERCPU.top_of_stack));
  a.push(SEL.USER_DS);
  a.push(pcpu(PERCPU.rsp_scratch));
  a.push(r11);
  a.push(SEL.USER_CS);
  a.push(rcx);
  a.push(rax);
  a.push(rdi).push(rsi).push(rdx).push(rcx);
  a.push(-38); // pt_regs->ax = -ENOSYS until a handler returns
  a.push(r8).push(r9).push(r10).push(r11);
  a.push(rbx).push(rbp).push(r12).push(r13).push(r14).push(r15);
  fn("entry_SYSCALL_64_after_hwframe");
  a.sti();
  a.cmp(rax, refs.nrSyscalls - 1);
  a.jcc("a", ".syscall_badsys");
  a.mov(rcx, r10);
  a.call(qword(mem({ index: rax, scale: 8, disp: BigInt.asIntN(64, refs.sysCallTable) })));
  a.mov(qword(rsp, PT_REGS.ax), rax);
  a.label(".syscall_badsys");
  a.cli();
  a.mov(rdi, rsp);
  a.call(refs.fn("prepare_exit_to_usermode"));
  // Opportunistic SYSRET: only when RCX/R11 in pt_regs still match RIP/RFLAGS and RIP is a user address.
  a.mov(rcx, qword(rsp, PT_REGS.ip));
  a.cmp(rcx, qword(rsp, PT_REGS.cx));
  a.jcc("ne", ".syscall_iret");
  a.mov(r11, qword(rsp, PT_REGS.flags));
  a.cmp(r11, qword(rsp, PT_REGS.r11));
  a.jcc("ne", ".syscall_iret");
  a.cmp(qword(rsp, PT_REGS.cs), SEL.USER_CS);
  a.jcc("ne", ".syscall_iret");
  a.mov(rdx, 0x7ffffffff000n);
  a.cmp(rcx, rdx);
  a.jcc("ae", ".syscall_iret");
  popRegs(a);
  a.mov(rsp, qword(rsp, PT_REGS.sp - PT_REGS.orig_ax));
  a.swapgs();
  a.sysretq();
  a.label(".syscall_iret");
  popRegs(a);
  a.add(rsp, 8);
  a.swapgs();
  a.iretq();

  // ---- Exceptions and interrupts: one stub per vector, then common code.
  const vectorStubs = new Map<number, string>();
  for (const v of IDT_VECTORS) {
    fn(v.name);
    vectorStubs.set(v.vector, v.name);
    if (!v.errorCode) a.push(-1);
    pushRegs(a);
    a.mov(esi, v.vector);
    if (v.vector === 14) a.mov(rdx, cr2);
    else a.xor(edx, edx);
    a.mov(rax, refs.fn(v.handler));
    a.jmp("common_interrupt");
  }
  // Every other external vector: push the vector as orig_ax and go to do_IRQ.
  fn("irq_entries_start");
  const named = new Set(IDT_VECTORS.map((v) => v.vector));
  for (let vec = 32; vec < 256; vec++) {
    if (named.has(vec)) continue;
    const l = `.irq_${vec}`;
    a.label(l);
    vectorStubs.set(vec, l);
    a.push(vec);
    a.jmp("common_irq");
  }
  fn("common_irq");
  pushRegs(a);
  a.mov(rsi, qword(rsp, PT_REGS.orig_ax));
  a.xor(edx, edx);
  a.mov(rax, refs.fn("do_IRQ"));
  fn("common_interrupt");
  a.test(byte(rsp, PT_REGS.cs), 3);
  a.jcc("z", ".ci_kernel_gs");
  a.swapgs();
  a.label(".ci_kernel_gs");
  a.cld();
  a.mov(rdi, rsp);
  a.call(rax);
  a.test(rax, rax);
  a.jcc("nz", ".ci_dead");
  a.test(byte(rsp, PT_REGS.cs), 3);
  a.jcc("z", ".ci_kernel_return");
  a.cli();
  a.mov(rdi, rsp);
  a.call(refs.fn("prepare_exit_to_usermode"));
  popRegs(a);
  a.add(rsp, 8);
  a.swapgs();
  a.iretq();
  a.label(".ci_kernel_return");
  popRegs(a);
  a.add(rsp, 8);
  a.iretq();
  a.label(".ci_dead");
  a.call("do_task_dead");
  a.ud2();

  // NMI on its own stack (IST 1): GS may be either, so look at MSR_GS_BASE (the paranoid entry).
  fn("nmi");
  vectorStubs.set(2, "nmi");
  a.push(-1);
  pushRegs(a);
  a.mov(ecx, 0xc0000101);
  a.rdmsr();
  a.xor(ebx, ebx);
  a.test(edx, edx);
  a.jcc("s", ".nmi_kernel_gs");
  a.swapgs();
  a.mov(ebx, 1);
  a.label(".nmi_kernel_gs");
  a.mov(rdi, rsp);
  a.mov(esi, 2);
  a.call(refs.fn("do_nmi"));
  a.test(ebx, ebx);
  a.jcc("z", ".nmi_return");
  a.swapgs();
  a.label(".nmi_return");
  popRegs(a);
  a.add(rsp, 8);
  a.iretq();

  // Double fault on its own stack (IST 2): report and stop this CPU.
  fn("double_fault");
  vectorStubs.set(8, "double_fault");
  pushRegs(a);
  a.mov(rdi, rsp);
  a.mov(esi, 8);
  a.call(refs.fn("do_double_fault"));
  a.label(".df_hang");
  a.cli();
  a.hlt();
  a.jmp(".df_hang");

  // ---- Scheduling: schedule() saves the callee-saved registers, asks pick_next_task, and switches stacks.
  fn("schedule");
  a.push(rbp).push(rbx).push(r12).push(r13).push(r14).push(r15);
  a.call(refs.fn("pick_next_task"));
  a.test(rax, rax);
  a.jcc("z", ".sched_out");
  fn("__switch_to_asm");
  a.mov(rdi, pcpu(PERCPU.current_task));
  a.mov(qword(rdi, TASK.thread_sp), rsp);
  a.mov(rsp, qword(rax, TASK.thread_sp));
  a.mov(rcx, qword(rax, TASK.cr3));
  a.mov(rdx, cr3);
  a.cmp(rcx, rdx);
  a.jcc("e", ".sched_same_mm");
  a.mov(cr3, rcx);
  a.label(".sched_same_mm");
  a.mov(pcpu(PERCPU.current_task), rax);
  a.mov(rcx, qword(rax, TASK.stack));
  a.add(rcx, THREAD_SIZE);
  a.mov(pcpu(PERCPU.top_of_stack), rcx);
  a.mov(rdx, pcpu(PERCPU.tss));
  a.mov(qword(rdx, 4), rcx);
  a.mov(rsi, rax);
  a.mov(r12, rdi);
  a.mov(ecx, 0xc0000100);
  a.mov(eax, dword(rsi, TASK.fsbase));
  a.mov(edx, dword(rsi, TASK.fsbase + 4));
  a.wrmsr();
  a.mov(rdi, r12);
  a.call(refs.fn("finish_task_switch"));
  a.label(".sched_out");
  a.pop(r15).pop(r14).pop(r13).pop(r12).pop(rbx).pop(rbp);
  a.ret();

  fn("do_task_dead");
  a.call("schedule");
  a.ud2();

  fn("ret_from_fork");
  a.cli();
  a.mov(rdi, rsp);
  a.call(refs.fn("prepare_exit_to_usermode"));
  popRegs(a);
  a.add(rsp, 8);
  a.swapgs();
  a.iretq();

  fn("ret_from_kernel_thread");
  a.sti();
  a.mov(rdi, r12);
  a.call(rbx);
  a.mov(rdi, rax);
  a.call(refs.fn("kthread_exit"));
  a.call("do_task_dead");
  a.ud2();

  // Where each processor starts: per-CPU setup (its local APIC), then the idle loop.
  fn("start_secondary");
  a.call(refs.fn("setup_local_APIC"));
  fn("cpu_idle");
  a.cli();
  a.call(refs.fn("idle_need_resched"));
  a.test(rax, rax);
  a.jcc("nz", ".idle_schedule");
  a.sti();
  a.hlt();
  a.jmp("cpu_idle");
  a.label(".idle_schedule");
  a.sti();
  a.call("schedule");
  a.jmp("cpu_idle");

  // ---- User copies (arch/x86/lib/copy_user_64.S): every access may fault; the fixup returns what is left.
  fn("copy_user_generic");
  a.mov(rcx, rdx);
  a.label(".cu_qwords");
  a.cmp(rcx, 8);
  a.jcc("b", ".cu_bytes");
  a.label(".cu_q_load");
  a.mov(rax, qword(rsi));
  a.label(".cu_q_store");
  a.mov(qword(rdi), rax);
  a.add(rsi, 8);
  a.add(rdi, 8);
  a.sub(rcx, 8);
  a.jmp(".cu_qwords");
  a.label(".cu_bytes");
  a.test(rcx, rcx);
  a.jcc("z", ".cu_done");
  a.label(".cu_b_load");
  a.mov(al, byte(rsi));
  a.label(".cu_b_store");
  a.mov(byte(rdi), al);
  a.inc(rsi);
  a.inc(rdi);
  a.dec(rcx);
  a.jmp(".cu_bytes");
  a.label(".cu_done");
  a.xor(eax, eax);
  a.ret();
  a.label(".cu_fixup");
  a.mov(rax, rcx);
  a.ret();
  extableLabels.push([".cu_q_load", ".cu_fixup"], [".cu_q_store", ".cu_fixup"]);
  extableLabels.push([".cu_b_load", ".cu_fixup"], [".cu_b_store", ".cu_fixup"]);

  fn("strncpy_from_user");
  a.xor(ecx, ecx);
  a.label(".sc_loop");
  a.cmp(rcx, rdx);
  a.jcc("ae", ".sc_full");
  a.label(".sc_load");
  a.mov(al, byte(mem({ base: rsi, index: rcx, scale: 1 })));
  a.mov(byte(mem({ base: rdi, index: rcx, scale: 1 })), al);
  a.test(al, al);
  a.jcc("z", ".sc_done");
  a.inc(rcx);
  a.jmp(".sc_loop");
  a.label(".sc_done");
  a.mov(rax, rcx);
  a.ret();
  a.label(".sc_full");
  a.mov(rax, rdx);
  a.ret();
  a.label(".sc_fault");
  a.mov(rax, -14);
  a.ret();
  extableLabels.push([".sc_load", ".sc_fault"]);

  // ---- Privileged helpers (the paravirt "native_*" operations).
  fn("native_read_cr0");
  a.mov(rax, cr0).ret();
  fn("native_write_cr0");
  a.mov(cr0, rdi).ret();
  fn("native_read_cr2");
  a.mov(rax, cr2).ret();
  fn("native_read_cr3");
  a.mov(rax, cr3).ret();
  fn("native_write_cr3");
  a.mov(cr3, rdi).ret();
  fn("native_read_cr4");
  a.mov(rax, cr4).ret();
  fn("native_write_cr4");
  a.mov(cr4, rdi).ret();
  fn("__native_flush_tlb_single");
  a.invlpg(mem({ base: rdi })).ret();
  fn("__native_flush_tlb");
  a.mov(rax, cr3).mov(cr3, rax).ret();
  fn("__native_flush_tlb_global");
  a.mov(rax, cr4).mov(rdx, rax).and(rdx, -129).mov(cr4, rdx).mov(cr4, rax).ret();
  fn("native_write_msr");
  a.mov(ecx, edi).mov(eax, esi).wrmsr().ret();
  fn("native_read_msr");
  a.mov(ecx, edi).rdmsr().sub(rsp, 8).mov(dword(rsp), eax).mov(dword(rsp, 4), edx).pop(rax).ret();
  fn("cpu_relax");
  a.pause().ret();
  fn("native_safe_halt");
  a.sti().hlt().ret();
  fn("__entry_text_end");

  const out = a.assemble(base);
  const labels = out.labels;
  const get = (l: string): bigint => {
    const v = labels.get(l);
    if (v === undefined) throw new GuestLinuxError("STATE", `entry code: missing label ${l}`);
    return v;
  };
  return {
    bytes: out.bytes,
    functions: functions.map((name) => ({ name, addr: get(name) })),
    labels,
    extable: extableLabels.map(([i, f]) => ({ insn: get(i), fixup: get(f) })),
    vectorStubs: new Map([...vectorStubs].map(([v, l]) => [v, get(l)])),
  };
}
