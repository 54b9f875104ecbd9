import { describe, expect, it, vi } from 'vitest';

// benchmark.ts imports JupyterLab's notebook package for its runner; summarize() is pure.
vi.mock('@jupyterlab/notebook', () => ({ NotebookActions: {} }));
// ...and Lumino's widgets for the progress line it puts under the cell.
vi.mock('@lumino/widgets', () => ({ Widget: class {}, PanelLayout: class {} }));

import { summarize } from '../src/benchmark';
import { ICellEnergy } from '../src/cellenergy';

function run(duration: number, joules: number, kernel: number | null): ICellEnergy {
  return {
    version: 1, from: 0, to: duration, duration_s: duration, host_joules: joules,
    host_watts: joules / duration, measured: true, coverage: ['rapl:package-0'],
    channels: { 'rapl:package-0': joules }, kernel_joules: kernel, kernel_share: null,
    kernel_method: null, kernel_note: null
  };
}

describe('benchmark summary', () => {
  it('gives mean ± sd of time and energy per channel, warm-up excluded', () => {
    const r = summarize(2, 'c', run(5, 100, null), [run(1, 20, 10), run(1.2, 24, 12), run(1.1, 22, 11)]);
    expect(r.runs).toHaveLength(3);
    expect(r.time.mean).toBeCloseTo(1.1, 9);
    expect(r.time.sd).toBeCloseTo(0.1, 9);
    expect(r.host.mean).toBeCloseTo(22, 9);
    expect(r.host.sd).toBeCloseTo(2, 9);
    expect(r.channels['rapl:package-0'].mean).toBeCloseTo(22, 9);
    expect(r.kernel!.mean).toBeCloseTo(11, 9);
    expect(r.measured).toBe(true);
  });
  it('has no kernel figure when a run lacks attribution', () => {
    const r = summarize(0, 'c', null, [run(1, 20, 10), run(1, 20, null)]);
    expect(r.kernel).toBeNull();
  });
});
