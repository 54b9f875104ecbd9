/**
 * EnergyModel: polls the server extension at the refresh interval and keeps what the top bar and
 * the panel show. One instance per page; widgets listen to `changed`.
 */
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

export class EnergyModel {
  settings: IEnergySettings = { ...DEFAULT_SETTINGS };
  status: IStatus | null = null;
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

  start(): void {
    if (this._timer === null) {
      void this.poll();
    }
  }

  dispose(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
    this._timer = null;
    this._disposed = true;
  }

  setUnit(unit: EnergyUnit): void {
    this.settings = { ...this.settings, unit };
    this._changed.emit();
  }

  updateSettings(settings: Partial<IEnergySettings>): void {
    this.settings = { ...this.settings, ...settings };
    this._changed.emit();
  }

  async poll(): Promise<void> {
    if (this._disposed) {
      return;
    }
    try {
      if (!this.status) {
        this.status = await requestAPI<IStatus>('status');
      }
      if (this.intervalS === null) {
        const info = await requestAPI<{ interval_s?: number }>('info');
        this.intervalS = typeof info.interval_s === 'number' ? info.interval_s : 0.1;
      }
      if (!this.sources || this._polls % 30 === 0) {
        this.sources = await requestAPI<ISources>('sources');
      }
      this.now = await requestAPI<INow>('now');
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
      this.sources = null; // ask again once energyd is back
      this.intervalS = null;
    }
    this._polls++;
    this._changed.emit();
    this._timer = window.setTimeout(
      () => void this.poll(),
      Math.max(200, this.settings.refreshIntervalMs)
    );
  }

  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _polls = 0;
  private _disposed = false;
}
