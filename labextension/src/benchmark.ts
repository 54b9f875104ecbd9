/**
 * Benchmark the selected cell: one warm-up run, then N runs; each run's time and energy come from
 * the per-cell measurement (kernel busy → idle), so the benchmark and the cell line agree.
 */
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import { CellEnergyTracker, ICellEnergy, IMeasured } from './cellenergy';
import { IMeanSd, meanSd } from './format';

export interface IBenchmarkResult {
  cellIndex: number;
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

/** Runs the active cell of `panel` 1 + `runs` times; `progress` reports "run 2 of 5". */
export async function benchmarkActiveCell(
  panel: NotebookPanel,
  tracker: CellEnergyTracker,
  runs: number,
  progress: (text: string) => void
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
  for (let i = 0; i <= runs; i++) {
    progress(i === 0 ? 'warm-up run' : `run ${i} of ${runs}`);
    notebook.activeCellIndex = cellIndex;
    notebook.deselectAll();
    const measured = nextMeasurement(tracker, panel, cellId, 10 * 60 * 1000);
    const ok = await NotebookActions.run(notebook, panel.sessionContext);
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
  return summarize(cellIndex, cellId, warmup, results);
}
