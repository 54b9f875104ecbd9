import { describe, expect, it, vi } from 'vitest';

vi.mock('uplot', () => ({ default: class {} }));

import { CHANNEL_PALETTE, quantile, robustMax } from '../src/charts';

describe('robustMax (live chart value axis)', () => {
  it('ignores a single 20× spike among steady samples', () => {
    const steady = Array.from({ length: 200 }, (_, i) => 25 + (i % 5) * 0.1);
    const spiked = [...steady];
    spiked[120] = 500;
    const top = robustMax([spiked]);
    // The axis reaches a little above the steady level, far below the spike.
    expect(top).toBeGreaterThan(25.4);
    expect(top).toBeLessThan(25.4 * 1.2);
  });
  it('follows a level that lasts more than 1 % of the samples', () => {
    const v = Array.from({ length: 100 }, (_, i) => (i < 90 ? 10 : 40));
    expect(robustMax([v])).toBeCloseTo(46, 9);
  });
  it('takes every series and skips gaps', () => {
    expect(robustMax([[1, null, 2], [null, 8]])).toBeCloseTo(9.2, 9);
    expect(robustMax([[null], []])).toBe(1);
  });
  it('quantile is the nearest rank', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([5, 1, 3, 2, 4], 1)).toBe(5);
    expect(quantile([], 0.5)).toBeNull();
  });
});

describe('palette', () => {
  it('has distinct colours', () => {
    expect(new Set(CHANNEL_PALETTE.map(c => c.toLowerCase())).size).toBe(CHANNEL_PALETTE.length);
  });
});
