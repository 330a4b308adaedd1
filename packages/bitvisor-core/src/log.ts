/** One line of the hypervisor's log, stamped for merging with the guest's log. */
export interface LogLine {
  /** Monotonic stamp: the issuing processor's retired-instruction count (0 outside guest context). */
  stamp: number;
  /** Index of the processor the line was written on (-1 for machine-wide lines). */
  cpu: number;
  /** The text, without a trailing newline. */
  text: string;
}

/**
 * The hypervisor's log buffer, like BitVisor's dbgsh log: a bounded ring of
 * lines (the oldest are dropped, and counted, when it is full), read by the
 * runner and by tests. `printf`-style partial lines are joined until a newline.
 */
export class LogBuffer {
  private readonly lines: LogLine[] = [];
  private readonly listeners: ((line: LogLine) => void)[] = [];
  private partial = "";
  /** Lines dropped because the ring was full. */
  dropped = 0;

  constructor(readonly capacity = 65536) {}

  /** Appends text; complete lines (ending in `\n`) become log lines, the rest waits. */
  printf(text: string, stamp = 0, cpu = -1): void {
    const all = this.partial + text;
    const parts = all.split("\n");
    this.partial = parts.pop() ?? "";
    for (const p of parts) this.push({ stamp, cpu, text: p });
  }

  /** Appends one whole line. */
  log(text: string, stamp = 0, cpu = -1): void {
    if (this.partial !== "") {
      this.push({ stamp, cpu, text: this.partial });
      this.partial = "";
    }
    this.push({ stamp, cpu, text });
  }

  /** Calls `fn` with every line as it is written; returns a function that stops it. */
  onLine(fn: (line: LogLine) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private push(line: LogLine): void {
    for (const fn of this.listeners) fn(line);
    if (this.lines.length >= this.capacity) {
      this.lines.shift();
      this.dropped++;
    }
    this.lines.push(line);
  }

  /** The lines so far (plus a pending partial line, if any). */
  read(): readonly LogLine[] {
    return this.partial === "" ? [...this.lines] : [...this.lines, { stamp: 0, cpu: -1, text: this.partial }];
  }

  /** The log as text, one line per entry. */
  text(): string {
    return this.read()
      .map((l) => `${l.text}\n`)
      .join("");
  }
}
