import { describe, expect, it } from 'vitest';

import { ICellEnergy } from '../src/cellenergy';
import { addExecution, NOTEBOOK_INTERVALS_MAX } from '../src/notebookenergy';

function run(from: number, joules: number | null, extra: Partial<ICellEnergy> = {}): ICellEnergy {
  return {
    version: 1, from, to: from + 2, duration_s: 2, host_joules: joules, host_watts: null,
    measured: true, coverage: ['rapl:package-0'], channels: {}, kernel_joules: null,
    kernel_share: null, kernel_method: null, kernel_note: null, emissions_g: null, cost: null,
    currency: null, ...extra
  };
}

describe('the notebook record (notebook metadata)', () => {
  it('adds each execution as the API gave it and keeps the intervals', () => {
    let r = addExecution(undefined, run(10, 50, { kernel_joules: 20, emissions_g: 0.004, cost: 0.001, currency: 'EUR' }));
    r = addExecution(r, run(20, 30, { coverage: ['rapl:package-0', 'rapl:dram-0'], emissions_g: 0.002, cost: 0.0005, currency: 'EUR' }));
    expect(r.executions).toBe(2);
    expect(r.host_executions).toBe(2);
    expect(r.host_joules).toBe(80);
    expect(r.kernel_joules).toBe(20);
    expect(r.kernel_executions).toBe(1);
    expect(r.emissions_g).toBeCloseTo(0.006, 12);
    expect(r.cost).toBeCloseTo(0.0015, 12);
    expect(r.currency).toBe('EUR');
    expect(r.coverage).toEqual(['rapl:package-0', 'rapl:dram-0']);
    expect(r.intervals).toEqual([[10, 12], [20, 22]]);
    expect([r.first_from, r.last_to]).toEqual([10, 22]);
    expect(r.measured).toBe(true);
  });
  it('says estimated once one figure was, and counts executions without a figure apart', () => {
    let r = addExecution(null, run(10, 50));
    r = addExecution(r, run(20, null));
    expect([r.executions, r.host_executions, r.host_joules, r.measured]).toEqual([2, 1, 50, true]);
    r = addExecution(r, run(30, 5, { measured: false }));
    expect([r.host_joules, r.measured]).toEqual([55, false]);
  });
  it('starts afresh on a record of another version and bounds the intervals', () => {
    let r = addExecution({ version: 7, host_joules: 1e9 }, run(0, 1));
    expect(r.host_joules).toBe(1);
    for (let i = 1; i <= NOTEBOOK_INTERVALS_MAX + 4; i++) {
      r = addExecution(r, run(i * 10, 1));
    }
    expect(r.intervals).toHaveLength(NOTEBOOK_INTERVALS_MAX);
    expect(r.intervals_dropped).toBe(5);
    expect(r.intervals[0]).toEqual([50, 52]);
    expect(r.first_from).toBe(0);
  });
});
