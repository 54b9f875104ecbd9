import { describe, expect, it, vi } from 'vitest';

// model.ts talks to the server through api.ts; the functions tested here are pure.
vi.mock('../src/api', () => ({ requestAPI: vi.fn(), streamNow: vi.fn(), EnergyApiError: class {} }));

import { BACKOFF_MAX_MS, extendLive, ILiveSeries, LIVE_SECONDS, reconnectDelayMs } from '../src/model';

function now(time: number, host: number, pkg: number | null) {
  return {
    time,
    channels: { 'rapl:package-0': { watts: pkg, joules: 0, measured: true } },
    host: { watts: host, joules: 0, coverage: ['rapl:package-0'], measured: true }
  };
}

describe('reconnectDelayMs (the stream after a failure)', () => {
  it('is the refresh interval after a stream that ended, then doubles up to the maximum', () => {
    expect([0, 1, 2, 3, 4, 9].map(f => reconnectDelayMs(f, 1000))).toEqual([1000, 1000, 2000, 4000, 4000, 4000]);
    expect(reconnectDelayMs(20, 1000)).toBe(BACKOFF_MAX_MS);
    expect(reconnectDelayMs(0, 50)).toBe(200); // never faster than 5 a second
  });
});

describe('extendLive (history extended by the stream)', () => {
  it('appends the sample as the stream gives it and drops points older than the window', () => {
    const live: ILiveSeries = { t: [100, 150], host: [25, 26], channels: { 'rapl:package-0': [20, 21] } };
    extendLive(live, now(200, 30, 24));
    expect(live).toEqual({ t: [100, 150, 200], host: [25, 26, 30], channels: { 'rapl:package-0': [20, 21, 24] } });
    extendLive(live, now(100 + LIVE_SECONDS + 60, 31, null));
    expect(live.t).toEqual([200, 100 + LIVE_SECONDS + 60]);
    expect(live.host).toEqual([30, 31]);
    expect(live.channels['rapl:package-0']).toEqual([24, null]);
  });
  it('ignores a sample not newer than the last point', () => {
    const live: ILiveSeries = { t: [100], host: [25], channels: {} };
    extendLive(live, now(100, 99, 99));
    expect(live.host).toEqual([25]);
  });
});
