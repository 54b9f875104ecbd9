/**
 * EnergyModel: the live figures the top bar and the panel show, fed by energyd's event stream.
 *
 * While the page is visible the model holds one stream open (`/api/energy/v1/stream`, one
 * `now` object per energyd sample) and reads nothing else per tick: the last 100 s of power are
 * fetched once from `history` when the stream opens (and again when it reopens), then extended
 * from the stream; the energy since the Jupyter server started and the user's share ("you")
 * are asked every SUMMARY_REFRESH_MS. Widgets hear `changed` at most once per refresh
 * interval. A failure (energyd down, the stream cut) closes the stream and opens it again after
 * a growing delay (BACKOFF_MAX_MS at most); a hidden page closes it until shown again.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  EnergyApiError,
  IEnergy,
  IHistory,
  INow,
  ISources,
  IStatus,
  IYou,
  requestAPI,
  streamNow
} from './api';
import { EnergyUnit } from './format';

export interface IEnergySettings {
  refreshIntervalMs: number;
  unit: EnergyUnit;
  /** Channel ids shown in charts; empty = all. */
  channels: string[];
  cellEnergy: boolean;
  cellMetadata: boolean;
  benchmarkRuns: number;
}

export const DEFAULT_SETTINGS: IEnergySettings = {
  refreshIntervalMs: 1000,
  unit: 'J',
  channels: [],
  cellEnergy: true,
  cellMetadata: true,
  benchmarkRuns: 5
};

/** Seconds of power the live chart shows. */
export const LIVE_SECONDS = 100;

/** How often the energy since the server started and "you" are asked while the stream runs. */
export const SUMMARY_REFRESH_MS = 5000;

/** After a failure the stream is reopened after the refresh interval, then after twice the
 * last delay, up to BACKOFF_MAX_MS: a stopped energyd sees at most one request per step and
 * the panel recovers within about 4 s of its return. */
export const BACKOFF_MAX_MS = 4000;

/** The live chart's series: `history` at first, then one point per refresh from the stream. */
export interface ILiveSeries {
  t: number[];
  host: (number | null)[];
  channels: { [id: string]: (number | null)[] };
}

/** Delay before reopening the stream after `failures` failures in a row (0: it just ended). */
export function reconnectDelayMs(failures: number, refreshMs: number): number {
  const base = Math.max(200, refreshMs);
  return failures <= 0 ? base : Math.min(BACKOFF_MAX_MS, base * 2 ** (failures - 1));
}

/** Appends a stream sample to the live series and drops points older than LIVE_SECONDS. */
export function extendLive(live: ILiveSeries, now: INow): void {
  if (live.t.length && now.time <= live.t[live.t.length - 1]) {
    return;
  }
  live.t.push(now.time);
  live.host.push(now.host.watts);
  for (const [id, watts] of Object.entries(live.channels)) {
    watts.push(now.channels[id]?.watts ?? null);
  }
  let old = 0;
  while (old < live.t.length && live.t[old] < now.time - LIVE_SECONDS) {
    old++;
  }
  if (old) {
    live.t.splice(0, old);
    live.host.splice(0, old);
    Object.values(live.channels).forEach(w => w.splice(0, old));
  }
}

function asApiError(error: unknown): EnergyApiError {
  return error instanceof EnergyApiError ? error : new EnergyApiError(0, String(error));
}

/** Whether an error means energyd (or the Jupyter server) does not answer. */
function isDown(error: EnergyApiError): boolean {
  return error.status === 503 || error.status === 0;
}

export class EnergyModel {
  settings: IEnergySettings = { ...DEFAULT_SETTINGS };
  status: IStatus | null = null;
  /** The last status seen, kept while energyd is down (was it the embedded one?). */
  lastStatus: IStatus | null = null;
  sources: ISources | null = null;
  /** The stream's sample shown now (host and channel watts: energyd's mean over ≥ 1 s). */
  now: INow | null = null;
  /** Host energy since the Jupyter server started. */
  sinceServer: IEnergy | null = null;
  /** The server user's share since the Jupyter server started, or why it is missing. */
  you: IYou | null = null;
  youError: EnergyApiError | null = null;
  /** The live chart's points. */
  live: ILiveSeries | null = null;
  /** energyd's sample interval, seconds (null until known). */
  intervalS: number | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** What went wrong last: the stream's failure first, else the energy query's. */
  get error(): EnergyApiError | null {
    return this._streamError ?? this._summaryError;
  }

  /** Label of a channel id from /sources ("Package 0"), or the id. */
  channelLabel(id: string): string {
    const c = this.sources?.channels.find(ch => ch.id === id);
    return c?.label || id;
  }

  channelMeasured(id: string): boolean {
    const c = this.sources?.channels.find(ch => ch.id === id);
    return c ? c.measured : false;
  }

  /** Whether energyd did not answer at all (as opposed to an error it returned). */
  get energydDown(): boolean {
    return this.error !== null && isDown(this.error);
  }

  start(): void {
    if (!this._started) {
      this._started = true;
      document.addEventListener('visibilitychange', this._onVisibility);
      void this._open();
    }
  }

  dispose(): void {
    this._started = false;
    document.removeEventListener('visibilitychange', this._onVisibility);
    this._close();
  }

  setUnit(unit: EnergyUnit): void {
    this.settings = { ...this.settings, unit };
    this._changed.emit();
  }

  updateSettings(settings: Partial<IEnergySettings>): void {
    const refresh = this.settings.refreshIntervalMs;
    this.settings = { ...this.settings, ...settings };
    if (refresh !== this.settings.refreshIntervalMs && this._abort) {
      this._reopen(0); // the history's point spacing follows the refresh interval
    }
    this._changed.emit();
  }

  private _onVisibility = (): void => {
    if (document.visibilityState === 'hidden') {
      this._close();
    } else if (this._started && !this._abort && this._retry === null) {
      void this._open();
    }
  };

  /** Closes the stream and every pending timer (hidden page, disposal, failure); with
   * `keepSample`, the newest sample is still shown when its time comes (a stream that ended). */
  private _close(keepSample = false): void {
    this._abort?.abort();
    this._abort = null;
    if (this._retry !== null) {
      window.clearTimeout(this._retry);
      this._retry = null;
    }
    if (this._publishTimer !== null && !keepSample) {
      window.clearTimeout(this._publishTimer);
      this._publishTimer = null;
    }
  }

  /** Closes the stream and opens it again after the delay of `failures` failures. */
  private _reopen(failures: number): void {
    this._close(failures === 0);
    if (!this._started) {
      return;
    }
    this._retry = window.setTimeout(() => {
      this._retry = null;
      if (document.visibilityState !== 'hidden') {
        void this._open();
      }
    }, reconnectDelayMs(failures, this.settings.refreshIntervalMs));
  }

  /** What a stream needs first (status, info and sources once per energyd, the history),
   * then the stream until it ends. While energyd is down the first request fails and nothing
   * else is asked. */
  private async _open(): Promise<void> {
    const abort = new AbortController();
    this._abort = abort;
    let samples = 0;
    try {
      if (!this.status) {
        this.status = await requestAPI<IStatus>('status');
        this.lastStatus = this.status;
      }
      if (this.intervalS === null) {
        const info = await requestAPI<{ interval_s?: number }>('info');
        this.intervalS = typeof info.interval_s === 'number' ? info.interval_s : 0.1;
      }
      if (!this.sources) {
        this.sources = await requestAPI<ISources>('sources');
      }
      // One point per refresh interval, as the stream then adds them.
      const points = Math.max(2, Math.round((LIVE_SECONDS * 1000) / this.settings.refreshIntervalMs));
      const h = await requestAPI<IHistory>('history', { seconds: LIVE_SECONDS, max_points: points });
      if (abort.signal.aborted) {
        return;
      }
      this.live = {
        t: [...h.t],
        host: [...h.host.watts],
        channels: Object.fromEntries(Object.entries(h.channels).map(([id, c]) => [id, [...c.watts]]))
      };
      this._summaryAt = 0;
      await streamNow(now => {
        samples++;
        this._onSample(now);
      }, abort.signal);
      if (abort.signal.aborted) {
        return;
      }
      // energyd ended the stream (it stopped or restarted): open it again, at once if it had
      // delivered samples, else after the next backoff step.
      if (samples) {
        this._failures = 0;
      }
      this._reopen(samples ? 0 : ++this._failures);
    } catch (error) {
      if (abort.signal.aborted) {
        return; // closed on purpose
      }
      this._fail(asApiError(error));
    }
  }

  /** energyd (or the Jupyter server) failed: say so, and try again after the next step. */
  private _fail(error: EnergyApiError): void {
    this._streamError = error;
    // Ask again once energyd is back: it may be another daemon (embedded or the service).
    this.sources = null;
    this.intervalS = null;
    this.status = null;
    this._changed.emit();
    this._reopen(++this._failures);
  }

  /** A stream sample: shown at once if the last publication is a refresh interval old, else
   * at that time (the newest sample then). */
  private _onSample(now: INow): void {
    this._latest = now;
    if (this._publishTimer === null) {
      const wait = this._publishedAt + this.settings.refreshIntervalMs - Date.now();
      this._publishTimer = window.setTimeout(() => {
        this._publishTimer = null;
        this._publish();
      }, Math.max(0, wait));
    }
  }

  private _publish(): void {
    const now = this._latest;
    if (!now) {
      return;
    }
    this._publishedAt = Date.now();
    this.now = now;
    this._failures = 0;
    this._streamError = null;
    if (this.live) {
      extendLive(this.live, now);
    }
    if (Date.now() - this._summaryAt >= SUMMARY_REFRESH_MS) {
      void this._refreshSummary(now.time);
    }
    this._changed.emit();
  }

  /** The energy since the Jupyter server started and the user's share of it, up to the
   * sample shown. A 503 (energyd gone) reopens the stream with backoff. */
  private async _refreshSummary(to: number): Promise<void> {
    const status = this.status;
    if (!status || this._summaryBusy) {
      return;
    }
    this._summaryAt = Date.now();
    this._summaryBusy = true;
    const span = { from: status.server_started_at.toFixed(6), to: to.toFixed(6) };
    try {
      this.sinceServer = await requestAPI<IEnergy>('energy', span);
      this._summaryError = null;
      try {
        this.you = await requestAPI<IYou>('you', span);
        this.youError = null;
      } catch (error) {
        this.you = null;
        this.youError = asApiError(error);
      }
      this._changed.emit();
    } catch (error) {
      const e = asApiError(error);
      if (isDown(e)) {
        this._fail(e);
      } else {
        this._summaryError = e;
        this._changed.emit();
      }
    } finally {
      this._summaryBusy = false;
    }
  }

  private _changed = new Signal<this, void>(this);
  private _started = false;
  private _abort: AbortController | null = null;
  private _retry: number | null = null;
  private _failures = 0;
  private _streamError: EnergyApiError | null = null;
  private _summaryError: EnergyApiError | null = null;
  private _latest: INow | null = null;
  private _publishTimer: number | null = null;
  private _publishedAt = 0;
  private _summaryAt = 0;
  private _summaryBusy = false;
}
