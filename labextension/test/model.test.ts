import { describe, expect, it, vi } from 'vitest';

// model.ts talks to the server through api.ts; meanPower() is pure.
vi.mock('../src/api', () => ({ requestAPI: vi.fn(), EnergyApiError: class {} }));

import { meanPower } from '../src/model';

function since(to: number, joules: number | null) {
  return {
    from: 0, to, resolution_s: 0.1, channels: {},
    host: { joules, coverage: ['rapl:package-0'], measured: true }
  };
}

describe('meanPower (top bar power)', () => {
  it('is the energy difference over the time difference', () => {
    expect(meanPower(since(10, 250), since(11, 275))).toBeCloseTo(25, 9);
    expect(meanPower(since(10, 250), since(12, 300))).toBeCloseTo(25, 9);
  });
  it('is null without two usable answers', () => {
    expect(meanPower(null, since(11, 275))).toBeNull();
    expect(meanPower(since(10, null), since(11, 275))).toBeNull();
    expect(meanPower(since(10, 250), since(10.1, 252))).toBeNull(); // too short to mean much
    expect(meanPower(since(10, 250), since(11, 10))).toBeNull(); // energyd restarted
  });
});
