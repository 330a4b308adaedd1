import type { Cpu } from "@visorlab/x86-core";
import { EXIT_REASON_ENTRY_FAILURE } from "./exit-reasons";

/**
 * What the host's exit handler sees: the exit information of the last VM
 * exit, read from the VMCS when the exit happened. The object is reused for
 * every exit of a {@link VmxCpu} (copy it to keep it); VMREAD reads the same
 * values.
 */
export class VmExitInfo {
  /** The full exit-reason field: basic reason in bits 15:0, bit 31 for a VM-entry failure. */
  exitReason = 0;
  /** Bits 15:0 of the exit reason ({@link EXIT_REASON}). */
  basicReason = 0;
  /** The exit qualification: a bit field, or a linear address as a signed canonical number. */
  qualification = 0;
  /** VM-exit instruction length (exits caused by instructions, software exceptions). */
  instructionLength = 0;
  /** VM-exit instruction information, where the SDM defines it (27.2.5). */
  instructionInformation = 0;
  /** Guest-physical address (EPT violations and misconfigurations), else NaN. */
  guestPhysicalAddress = Number.NaN;
  /** Guest-linear address (EPT violations with bit 7, INS/OUTS, LMSW from memory), else NaN. */
  guestLinearAddress = Number.NaN;
  /** VM-exit interruption information (bit 31 valid). */
  interruptionInformation = 0;
  /** VM-exit interruption error code (when bit 11 of the information is set). */
  interruptionErrorCode = 0;
  /** IDT-vectoring information (bit 31 valid: the exit happened while delivering that event). */
  idtVectoringInformation = 0;
  /** IDT-vectoring error code. */
  idtVectoringErrorCode = 0;
  /** The guest RIP saved by the exit (signed canonical number). */
  guestRip = 0;

  /** True for a VM-entry failure (exit reason bit 31). */
  get entryFailure(): boolean {
    return (this.exitReason & EXIT_REASON_ENTRY_FAILURE) !== 0;
  }
}

/**
 * The VM exit an interceptor decided on, kept until the processor has stopped
 * and the exit can be performed (27.1), and the event whose delivery is in
 * progress (for IDT-vectoring information, 27.2.3).
 */
export class ExitRecord {
  /** An exit is recorded and not yet performed. */
  pending = false;
  reason = 0;
  qual = 0;
  insnLen = 0;
  insnInfo = 0;
  gpa = Number.NaN;
  gla = Number.NaN;
  intrInfo = 0;
  intrErr = 0;
  activity = 0;
  private dlvInfo = 0;
  /** Error code of the event being delivered. */
  dlvErr = 0;
  private dlvRip = 0;
  private dlvRsp = 0;
  private dlvInstret = -1;

  /** Records an exit; the optional fields (addresses, interruption information) are reset. */
  record(reason: number, qual: number, insnLen: number, insnInfo: number, activity: number): void {
    this.pending = true;
    this.reason = reason;
    this.qual = qual;
    this.insnLen = insnLen;
    this.insnInfo = insnInfo;
    this.gpa = Number.NaN;
    this.gla = Number.NaN;
    this.intrInfo = 0;
    this.intrErr = 0;
    this.activity = activity;
  }

  /**
   * Marks an event whose delivery through the IDT is starting. Delivery
   * retires no instruction and changes RIP and RSP only when it completes, so
   * an exit with the same retired count, RIP and RSP happened during it.
   */
  beginDelivery(cpu: Cpu, info: number, errorCode: number): void {
    this.dlvInfo = info;
    this.dlvErr = errorCode;
    this.dlvRip = cpu.rip;
    this.dlvRsp = cpu.getRsp();
    this.dlvInstret = cpu.instret;
  }

  /** The IDT-vectoring information for an exit now (0 when no delivery was in progress); forgets the delivery. */
  takeVectoring(cpu: Cpu): number {
    const during = this.dlvInstret === cpu.instret && this.dlvRip === cpu.rip && this.dlvRsp === cpu.getRsp();
    this.dlvInstret = -1;
    return during ? this.dlvInfo : 0;
  }
}
