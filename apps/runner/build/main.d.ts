/** Where the runner writes its output, one line at a time. */
export type Print = (line: string) => void;
/** Runs the `visorlab` command with `argv` (without node and script); returns the exit status. */
export declare function main(argv: readonly string[], print: Print): number;
/** Options every scenario understands. */
export interface ScenarioOptions {
    seed: number;
    cpus: number;
    json: boolean;
    extra: Record<string, string>;
}
