import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// The model's only ways to the server: requestAPI (one request) and streamNow (the stream).
// Mocked here, each call counted by endpoint: a request per tick would show as about one
// call per refresh interval.
vi.mock('../src/api', () => ({ requestAPI: vi.fn(), streamNow: vi.fn(), EnergyApiError: class {} }));

import { requestAPI, streamNow } from '../src/api';
import { EnergyModel, SUMMARY_REFRESH_MS } from '../src/model';

const ANSWERS: { [endpoint: string]: unknown } = {
  status: { server_started_at: 1000, uid: 1000 },
  info: { interval_s: 0.1 },
  sources: { channels: [] },
  history: { t: [1000], host: { watts: [20] }, channels: {} },
  energy: { host: { joules: 1 } },
  you: { you: { joules: 0.5 } }
};

function sample(time: number) {
  return { time, channels: {}, host: { watts: 25, joules: 0, coverage: [], measured: true } };
}

describe('EnergyModel while the stream is open', () => {
  const calls: string[] = [];
  let onNow: ((now: ReturnType<typeof sample>) => void) | null = null;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal('window', globalThis);
    vi.stubGlobal('document', {
      visibilityState: 'visible',
      addEventListener: () => undefined,
      removeEventListener: () => undefined
    });
    calls.length = 0;
    vi.mocked(requestAPI).mockImplementation(async (endpoint: string) => {
      calls.push(endpoint);
      return ANSWERS[endpoint] as never;
    });
    vi.mocked(streamNow).mockImplementation((cb, signal) => {
      calls.push('stream');
      onNow = cb as typeof onNow;
      return new Promise<void>(resolve => signal.addEventListener('abort', () => resolve()));
    });
  });

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('asks history once and the summaries every 5 s, nothing per tick', async () => {
    const model = new EnergyModel();
    model.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(onNow).not.toBeNull();
    // 20 s of energyd samples at 10 a second, the figures refreshed every second.
    const seconds = 20;
    let published = 0;
    model.changed.connect(() => published++);
    for (let i = 1; i <= seconds * 10; i++) {
      onNow!(sample(1000 + i / 10));
      await vi.advanceTimersByTimeAsync(100);
    }
    const count = (e: string) => calls.filter(c => c === e).length;
    // The figures followed the stream: about one publication per refresh interval.
    expect(model.now?.time).toBeGreaterThanOrEqual(1000 + seconds - 1);
    expect(published).toBeGreaterThanOrEqual(seconds - 1);
    expect(count('stream')).toBe(1);
    expect(count('history')).toBe(1);
    expect(count('status') + count('info') + count('sources')).toBe(3);
    expect(count('now')).toBe(0);
    const summaries = Math.ceil((seconds * 1000) / SUMMARY_REFRESH_MS) + 1;
    expect(count('energy')).toBeGreaterThanOrEqual(seconds * 1000 / SUMMARY_REFRESH_MS - 1);
    expect(count('energy')).toBeLessThanOrEqual(summaries);
    expect(count('you')).toBeLessThanOrEqual(summaries);
    expect(calls.length).toBeLessThanOrEqual(5 + 2 * summaries);
    model.dispose();
  });
});
