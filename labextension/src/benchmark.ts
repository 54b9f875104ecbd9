/**
 * Benchmark the selected cell: one warm-up run, then N runs; each run's time and energy come from
 * the per-cell measurement (kernel busy → idle), so the benchmark and the cell line agree.
 */
import type { ICodeCellModel } from '@jupyterlab/cells';
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import { CellEnergyTracker, ICellEnergy, IMeasured } from './cellenergy';
import { IMeanSd, meanSd } from './format';

export interface IBenchmarkResult {
  cellIndex: number;
  /** The execution count the cell shows after the last run ("[9]"), null if none. */
  executionCount?: number | null;
  cellId: string;
  runs: ICellEnergy[];
  warmup: ICellEnergy | null;
  time: IMeanSd;
  host: IMeanSd;
  kernel: IMeanSd | null;
  channels: { [id: string]: IMeanSd };
  measured: boolean;
  coverage: string[];
}

export function summarize(
  cellIndex: number,
  cellId: string,
  warmup: ICellEnergy | null,
  runs: ICellEnergy[]
): IBenchmarkResult {
  const channelIds = new Set<string>();
  runs.forEach(r => Object.keys(r.channels).forEach(id => channelIds.add(id)));
  const channels: { [id: string]: IMeanSd } = {};
  for (const id of channelIds) {
    channels[id] = meanSd(runs.map(r => r.channels[id] ?? NaN).filter(Number.isFinite));
  }
  const kernelValues = runs.map(r => r.kernel_joules).filter((v): v is number => v !== null);
  return {
    cellIndex,
    cellId,
    runs,
    warmup,
    time: meanSd(runs.map(r => r.duration_s)),
    host: meanSd(runs.map(r => r.host_joules ?? NaN).filter(Number.isFinite)),
    kernel: kernelValues.length === runs.length && runs.length > 0 ? meanSd(kernelValues) : null,
    channels,
    measured: runs.every(r => r.measured),
    coverage: runs[0]?.coverage ?? []
  };
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
  const result = summarize(cellIndex, cellId, warmup, results);
  result.executionCount = (cell.model as ICodeCellModel).executionCount ?? null;
  return result;
}
