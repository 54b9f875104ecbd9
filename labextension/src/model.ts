/**
 * EnergyModel: polls the server extension at the refresh interval (a Lumino Poll: backoff
 * while energyd is down, standby while the tab is hidden) and keeps what the top bar and
 * the panel show. One instance per page; widgets listen to `changed`.
 */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  EnergyApiError,
  IEnergy,
  INow,
  ISources,
  IStatus,
  requestAPI
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

/** Mean host power between two "energy since the server started" answers, or null. */
export function meanPower(a: IEnergy | null, b: IEnergy | null): number | null {
  if (!a || !b || a.host.joules === null || b.host.joules === null) {
    return null;
  }
  const dt = b.to - a.to;
  const dj = b.host.joules - a.host.joules;
  return dt > 0.2 && dj >= 0 ? dj / dt : null;
}

/** The live figures' poll: the refresh interval while energyd answers; after a failure the
 * interval grows (factor 2, randomised by Lumino between the interval and twice the last one)
 * up to BACKOFF_MAX_MS, so a stopped energyd sees at most one request per step and the panel
 * still recovers within about 4 s of its return. Standby while the tab is hidden. */
export const BACKOFF_MAX_MS = 4000;

export class EnergyModel {
  settings: IEnergySettings = { ...DEFAULT_SETTINGS };
  status: IStatus | null = null;
  /** The last status seen, kept while energyd is down (was it the embedded one?). */
  lastStatus: IStatus | null = null;
  sources: ISources | null = null;
  now: INow | null = null;
  /** Host energy since the Jupyter server started. */
  sinceServer: IEnergy | null = null;
  error: EnergyApiError | null = null;
  /** Host power averaged over the last refresh interval (from the energy counters), watts;
   * steadier than one sample's power. */
  meanWatts: number | null = null;
  /** energyd's sample interval, seconds (null until known). */
  intervalS: number | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
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
    return this.error !== null && (this.error.status === 503 || this.error.status === 0);
  }

  start(): void {
    if (this._poll === null) {
      this._poll = new Poll({
        name: 'jupyter-energy:now',
        factory: () => this.tick(),
        frequency: {
          interval: Math.max(200, this.settings.refreshIntervalMs),
          backoff: 2,
          max: BACKOFF_MAX_MS
        },
        standby: 'when-hidden'
      });
      // The constructor raises `max` to Lumino's default of 30 s; the setter keeps ours, so a
      // returning energyd is seen within BACKOFF_MAX_MS.
      this._poll.frequency = {
        interval: Math.max(200, this.settings.refreshIntervalMs),
        backoff: 2,
        max: BACKOFF_MAX_MS
      };
    }
  }

  dispose(): void {
    this._poll?.dispose();
    this._poll = null;
  }

  setUnit(unit: EnergyUnit): void {
    this.settings = { ...this.settings, unit };
    this._changed.emit();
  }

  updateSettings(settings: Partial<IEnergySettings>): void {
    this.settings = { ...this.settings, ...settings };
    if (this._poll) {
      this._poll.frequency = {
        ...this._poll.frequency,
        interval: Math.max(200, this.settings.refreshIntervalMs)
      };
    }
    this._changed.emit();
  }

  /** One poll tick. `now` goes first: while energyd is down that one request fails and
   * nothing else is asked. Rejects on failure so that the poll backs off. */
  async tick(): Promise<void> {
    try {
      this.now = await requestAPI<INow>('now');
      if (!this.status) {
        this.status = await requestAPI<IStatus>('status');
        this.lastStatus = this.status;
      }
      if (this.intervalS === null) {
        const info = await requestAPI<{ interval_s?: number }>('info');
        this.intervalS = typeof info.interval_s === 'number' ? info.interval_s : 0.1;
      }
      if (!this.sources || this._polls % 30 === 0) {
        this.sources = await requestAPI<ISources>('sources');
      }
      const previous = this.sinceServer;
      this.sinceServer = await requestAPI<IEnergy>('energy', {
        from: this.status.server_started_at.toFixed(6),
        to: this.now.time.toFixed(6)
      });
      this.meanWatts = meanPower(previous, this.sinceServer) ?? this.now.host.watts;
      this.error = null;
    } catch (error) {
      this.error =
        error instanceof EnergyApiError
          ? error
          : new EnergyApiError(0, String(error));
      // Ask again once energyd is back: it may be another daemon (embedded or the service).
      this.sources = null;
      this.intervalS = null;
      this.status = null;
      this._polls++;
      this._changed.emit();
      throw error;
    }
    this._polls++;
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _poll: Poll | null = null;
  private _polls = 0;
}
