/**
 * Benchmark the selected cell: one warm-up run, then N runs; each run's interval is the
 * per-cell measurement's (kernel busy → idle), so the benchmark and the cell line agree. The
 * statistics (mean, sd, 95 % interval of time, machine, channel and kernel energy) are
 * energyd's, from one `runs` query over the runs' intervals with the kernel's scope.
 */
import type { ICodeCellModel } from '@jupyterlab/cells';
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import { EnergyApiError, IRuns, requestAPI } from './api';
import { CellEnergyTracker, ICellEnergy, IMeasured } from './cellenergy';

export interface IBenchmarkResult {
  cellIndex: number;
  /** The execution count the cell shows after the last run ("[9]"), null if none. */
  executionCount?: number | null;
  cellId: string;
  /** Each run's cell record (kernel busy → idle), warm-up excluded. */
  runs: ICellEnergy[];
  warmup: ICellEnergy | null;
  /** energyd's answer over the runs' intervals: each run as `energy` gives it, and stats. */
  answer: IRuns;
  /** Why the kernel's figures are missing (null when `answer.stats.scope` has them). */
  kernelNote: string | null;
  measured: boolean;
  coverage: string[];
}

/** The `runs` parameter: each run's [from, to] as "T0/T1", comma-separated. */
export function runsParam(runs: ICellEnergy[]): string {
  return runs.map(r => `${r.from.toFixed(6)}/${r.to.toFixed(6)}`).join(',');
}

/** energyd's figures over the runs, with the kernel's share (its watch is labelled
 * `kernel:<id>` by the server extension) or, when energyd cannot attribute, without. */
export async function runStatistics(
  kernelId: string | null,
  runs: ICellEnergy[]
): Promise<{ answer: IRuns; kernelNote: string | null }> {
  const param = runsParam(runs);
  let kernelNote = 'no kernel';
  if (kernelId) {
    try {
      const answer = await requestAPI<IRuns>('runs', { runs: param, scope: `kernel:kernel:${kernelId}` });
      return { answer, kernelNote: answer.stats.scope ? null : 'energyd gave no kernel figure' };
    } catch (error) {
      if (!(error instanceof EnergyApiError) || error.status >= 500 || error.status === 0) {
        throw error;
      }
      kernelNote = `energyd cannot attribute these runs: ${error.message}`;
    }
  }
  return { answer: await requestAPI<IRuns>('runs', { runs: param }), kernelNote };
}

function nextMeasurement(
  tracker: CellEnergyTracker,
  panel: NotebookPanel,
  cellId: string,
  timeoutMs: number
): Promise<ICellEnergy> {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(() => {
      tracker.measured.disconnect(on);
      reject(new Error('no energy measurement for the benchmark run (is energyd running?)'));
    }, timeoutMs);
    const on = (_: CellEnergyTracker, m: IMeasured): void => {
      if (m.panel === panel && m.cellId === cellId) {
        window.clearTimeout(timer);
        tracker.measured.disconnect(on);
        resolve(m.energy);
      }
    };
    tracker.measured.connect(on);
  });
}

/** Cancels a running benchmark after the run in progress. */
export class BenchmarkCancelled extends Error {
  constructor() {
    super('Benchmark cancelled.');
  }
}

/** Runs the active cell of `panel` 1 + `runs` times; `progress` reports "run 2 of 5" (also
 * shown under the cell itself); `cancelled()` is checked before each run. */
export async function benchmarkActiveCell(
  panel: NotebookPanel,
  tracker: CellEnergyTracker,
  runs: number,
  progress: (text: string) => void,
  cancelled: () => boolean = () => false
): Promise<IBenchmarkResult> {
  const notebook: Notebook = panel.content;
  const cell = notebook.activeCell;
  if (!cell || cell.model.type !== 'code') {
    throw new Error('Select a code cell to benchmark.');
  }
  const cellId = cell.model.id;
  const cellIndex = notebook.activeCellIndex;
  const results: ICellEnergy[] = [];
  let warmup: ICellEnergy | null = null;
  // Progress next to the cell, where the user looks: above the cell's footer.
  const marker = new Widget();
  marker.addClass('jp-EnergyBenchProgress');
  const layout = cell.layout as PanelLayout;
  layout.insertWidget(Math.max(0, layout.widgets.length - 1), marker);
  try {
    for (let i = 0; i <= runs; i++) {
      if (cancelled()) {
        throw new BenchmarkCancelled();
      }
      const text = i === 0 ? 'warm-up run' : `run ${i} of ${runs}`;
      progress(text);
      marker.node.textContent = `⏱ Benchmark: ${text}…`;
      notebook.activeCellIndex = cellIndex;
      notebook.deselectAll();
      const measured = nextMeasurement(tracker, panel, cellId, 10 * 60 * 1000);
      const ok = await NotebookActions.run(notebook, panel.sessionContext);
      if (cancelled()) {
        measured.catch(() => undefined); // may never come for an interrupted run
        throw new BenchmarkCancelled();
      }
      if (!ok) {
        throw new Error('The cell raised an error; benchmark stopped.');
      }
      const energy = await measured;
      if (i === 0) {
        warmup = energy;
      } else {
        results.push(energy);
      }
    }
  } finally {
    marker.dispose();
  }
  progress('statistics from energyd');
  const { answer, kernelNote } = await runStatistics(
    panel.sessionContext.session?.kernel?.id ?? null,
    results
  );
  return {
    cellIndex,
    executionCount: (cell.model as ICodeCellModel).executionCount ?? null,
    cellId,
    runs: results,
    warmup,
    answer,
    kernelNote,
    measured: answer.runs.every(r => r.host.measured),
    coverage: answer.runs[0]?.host.coverage ?? []
  };
}
