/** What a bench scenario gets: the run's choices and a place for temporary data. */
export interface BenchContext {
  /** --quick: fewer messages per run, for a look in a minute rather than a measurement. */
  quick: boolean;
  /** --profile: the Postroom child runs with --cpu-prof; profiles land in this directory. */
  profileDir?: string;
  /** Parent directory for data directories (on the real disk: fsync must cost what it costs). */
  tmpRoot: string;
  /** Whether a case (by measurement id, e.g. `smtp.4KiB.s20.kept`) is to run (`--only`). */
  wants(id: string): boolean;
  /** A progress line on stderr. */
  log(line: string): void;
}

/** A target printed beside a result; never asserted (performance is not a test). */
export interface Target {
  op: '>=' | '<=';
  value: number;
}

/** One number a scenario measured, with the same run against a baseline when there is one. */
export interface Measurement {
  /** Stable id, e.g. `smtp.4KiB.s20.kept` (the JSON key later runs are compared by). */
  id: string;
  /** What a person reads in the table. */
  label: string;
  unit: string;
  /** Postroom's number. */
  value: number;
  /** The same run against a reference (Postfix's smtp-sink discards every message). */
  baseline?: { name: string; value: number };
  target?: Target;
  /** A short remark printed at the end of the row (CPU per message, backlog). */
  note?: string;
  /** Counts, seconds, anything that explains the number. */
  details?: Record<string, unknown>;
}

/** A bench scenario: one module under bench/scenarios/, listed in bench/scenarios/index.ts. */
export interface Scenario {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Measurement[]>;
}

/** Whether a measurement meets its target. */
export function meets(m: Measurement): boolean | undefined {
  if (!m.target) return undefined;
  return m.target.op === '>=' ? m.value >= m.target.value : m.value <= m.target.value;
}
