/**
 * The notebook's energy record: every execution of its code cells so far, kept in the notebook
 * metadata under `energy` (version 1) next to the cells' own records. Each execution's figures
 * are energyd's over that execution's interval (the cell record); the record adds them up and
 * keeps the intervals, so that what it covers can be asked again (`/runs`). Pure functions: the
 * unit tests run them directly.
 */
import type { ICellEnergy } from './cellenergy';

/** Intervals kept in the record: the newest ones (as many as the API's `runs` takes). */
export const NOTEBOOK_INTERVALS_MAX = 300;

export const NOTEBOOK_COVERS =
  'every execution of this notebook’s code cells measured so far (each from the kernel’s busy ' +
  'to its idle message): the machine’s energy over those intervals (host total) and, where ' +
  'energyd attributes, the kernel’s estimated share';

export interface INotebookEnergy {
  version: 1;
  /** What the figures cover, in words. */
  covers: string;
  /** Executions added (re-runs of a cell count each time). */
  executions: number;
  /** Machine energy over the executions that had a figure (`host_executions`), joules; null
   * while none had one. */
  host_joules: number | null;
  host_executions: number;
  /** Whether every machine figure added was measured (else: estimated). */
  measured: boolean;
  /** Channels the host totals were made of (every set seen). */
  coverage: string[];
  /** The kernel's attributed energy over the executions that had one (estimated). */
  kernel_joules: number | null;
  kernel_executions: number;
  /** Estimated grams CO2eq and cost, over the executions that had them. */
  emissions_g: number | null;
  cost: number | null;
  currency: string | null;
  /** The executions' [from, to] (Unix seconds, kernel clock), the newest NOTEBOOK_INTERVALS_MAX;
   * `intervals_dropped` counts older ones no longer listed. */
  intervals: [number, number][];
  intervals_dropped: number;
  first_from: number | null;
  last_to: number | null;
}

export function emptyNotebookEnergy(): INotebookEnergy {
  return {
    version: 1,
    covers: NOTEBOOK_COVERS,
    executions: 0,
    host_joules: null,
    host_executions: 0,
    measured: true,
    coverage: [],
    kernel_joules: null,
    kernel_executions: 0,
    emissions_g: null,
    cost: null,
    currency: null,
    intervals: [],
    intervals_dropped: 0,
    first_from: null,
    last_to: null
  };
}

function plus(total: number | null, value: number | null | undefined): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return total;
  }
  return (total ?? 0) + value;
}

/** The record with one more execution (a new object; `record` may be anything read from a
 * file: a record of another version starts afresh). */
export function addExecution(record: unknown, e: ICellEnergy): INotebookEnergy {
  const r =
    record && (record as INotebookEnergy).version === 1
      ? { ...emptyNotebookEnergy(), ...(record as INotebookEnergy) }
      : emptyNotebookEnergy();
  const intervals: [number, number][] = [...r.intervals, [e.from, e.to]];
  const dropped = Math.max(0, intervals.length - NOTEBOOK_INTERVALS_MAX);
  // One currency only: a cost in another currency is not added to it.
  const sameCurrency = r.currency === null || e.currency === null || e.currency === r.currency;
  return {
    ...r,
    covers: NOTEBOOK_COVERS,
    executions: r.executions + 1,
    host_joules: plus(r.host_joules, e.host_joules),
    host_executions: r.host_executions + (e.host_joules !== null ? 1 : 0),
    measured: r.measured && (e.host_joules === null || e.measured),
    coverage: [...new Set([...r.coverage, ...e.coverage])],
    kernel_joules: plus(r.kernel_joules, e.kernel_joules),
    kernel_executions: r.kernel_executions + (e.kernel_joules !== null ? 1 : 0),
    emissions_g: plus(r.emissions_g, e.emissions_g),
    cost: sameCurrency ? plus(r.cost, e.cost) : r.cost,
    currency: r.currency ?? e.currency ?? null,
    intervals: intervals.slice(dropped),
    intervals_dropped: r.intervals_dropped + dropped,
    first_from: r.first_from === null ? e.from : Math.min(r.first_from, e.from),
    last_to: r.last_to === null ? e.to : Math.max(r.last_to, e.to)
  };
}
