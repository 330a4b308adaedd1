/** What a {@link LogEntry} is about. */
export type LogKind = "ipi" | "shootdown" | "init" | "sipi" | "apic" | "task";

/** One line of a machine's event log. */
export interface LogEntry {
  /** Position in the log, from 0. */
  readonly seq: number;
  /** Machine-wide retired instructions when the entry was made (a deterministic timestamp). */
  readonly instructions: number;
  /** The processor the entry is about (its index), or null for machine-wide entries. */
  readonly cpu: number | null;
  /** What the entry is about. */
  readonly kind: LogKind;
  /** The line as printed, e.g. `shootdown: cpu0 -> cpu1 NMI`. */
  readonly text: string;
}

/**
 * A machine's deterministic event log: IPIs, INIT/SIPI, shootdown steps and host-task
 * events, in the order they happened. The same configuration and seed give the same log.
 */
export class EventLog {
  /** Every entry so far. */
  readonly entries: LogEntry[] = [];
  private readonly sink: ((entry: LogEntry) => void) | undefined;
  private readonly clock: () => number;

  /** `clock` gives the timestamp of new entries; `sink` sees each entry as it is added. */
  constructor(clock: () => number, sink?: (entry: LogEntry) => void) {
    this.clock = clock;
    this.sink = sink;
  }

  /** Appends an entry and returns it. */
  add(cpu: number | null, kind: LogKind, text: string): LogEntry {
    const e: LogEntry = { seq: this.entries.length, instructions: this.clock(), cpu, kind, text };
    this.entries.push(e);
    this.sink?.(e);
    return e;
  }

  /** The texts of the entries (optionally only those of some kinds). */
  lines(...kinds: LogKind[]): string[] {
    const out: string[] = [];
    for (const e of this.entries) if (kinds.length === 0 || kinds.includes(e.kind)) out.push(e.text);
    return out;
  }

  /** The whole log as text, one entry per line, each prefixed with its timestamp. */
  format(): string {
    return this.entries.map((e) => `[${String(e.instructions).padStart(10)}] ${e.text}`).join("\n");
  }

  /** Number of entries. */
  get length(): number {
    return this.entries.length;
  }
}
