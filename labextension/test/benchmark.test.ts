import { beforeEach, describe, expect, it, vi } from 'vitest';

// benchmark.ts imports JupyterLab's notebook package for its runner and Lumino's widgets for
// the progress line under the cell; the statistics come from the API (mocked here).
vi.mock('@jupyterlab/notebook', () => ({ NotebookActions: {} }));
vi.mock('@lumino/widgets', () => ({ Widget: class {}, PanelLayout: class {} }));
const requestAPI = vi.fn();
vi.mock('../src/api', () => ({
  requestAPI: (...args: unknown[]) => requestAPI(...args),
  EnergyApiError: class EnergyApiError extends Error {
    constructor(readonly status: number, message: string) {
      super(message);
    }
  }
}));

import { EnergyApiError } from '../src/api';
import { runsParam, runStatistics } from '../src/benchmark';
import { ICellEnergy } from '../src/cellenergy';

function run(from: number, to: number): ICellEnergy {
  return {
    version: 1, from, to, duration_s: to - from, host_joules: 1, host_watts: 1, measured: true,
    coverage: [], channels: {}, kernel_joules: null, kernel_share: null, kernel_method: null,
    kernel_note: null
  };
}

const answer = (scope: boolean) => ({ runs: [], stats: { seconds: {}, host: {}, channels: {}, scope: scope ? {} : null } });

describe('benchmark statistics from energyd (runs)', () => {
  beforeEach(() => requestAPI.mockReset());
  it('asks one runs query with every run interval and the kernel scope', async () => {
    const runs = [run(1700000000.123456789, 1700000000.5), run(1700000001, 1700000001.25)];
    expect(runsParam(runs)).toBe('1700000000.123457/1700000000.500000,1700000001.000000/1700000001.250000');
    requestAPI.mockResolvedValueOnce(answer(true));
    const r = await runStatistics('k-1', runs);
    expect(requestAPI).toHaveBeenCalledTimes(1);
    expect(requestAPI).toHaveBeenCalledWith('runs', { runs: runsParam(runs), scope: 'kernel:kernel:k-1' });
    expect(r.kernelNote).toBeNull();
    expect(r.answer).toEqual(answer(true));
  });
  it('asks again without the scope when energyd cannot attribute, and says why', async () => {
    requestAPI.mockRejectedValueOnce(new EnergyApiError(404, 'no watch kernel:k-1'));
    requestAPI.mockResolvedValueOnce(answer(false));
    const r = await runStatistics('k-1', [run(1, 2)]);
    expect(requestAPI.mock.calls[1]).toEqual(['runs', { runs: '1.000000/2.000000' }]);
    expect(r.kernelNote).toMatch(/cannot attribute these runs: no watch kernel:k-1/);
  });
  it('does not hide energyd being down', async () => {
    requestAPI.mockRejectedValueOnce(new EnergyApiError(503, 'energyd is not reachable'));
    await expect(runStatistics('k-1', [run(1, 2)])).rejects.toThrow('not reachable');
  });
});
