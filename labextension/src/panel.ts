/**
 * The energy panel: a sentence that makes the energy tangible, the live chart of the last 100 s
 * (per channel and host total, shaded where this notebook's kernel was busy), the long-term chart,
 * the unit switch, this kernel's attributed energy, what the host total covers, and benchmark
 * results.
 */
import { INotebookTracker } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';
import uPlot from 'uplot';

import {
  EnergyApiError,
  IEnergy,
  IHistory,
  IKernelEnergy,
  ILongterm,
  requestAPI
} from './api';
import { IBenchmarkResult } from './benchmark';
import { CellEnergyTracker } from './cellenergy';
import { makeChart } from './charts';
import { chooseComparison } from './comparisons';
import {
  ENERGY_UNITS,
  formatCost,
  formatDuration,
  formatDurationMeanSd,
  formatEmissions,
  formatEnergy,
  formatPower,
  joulesTo,
  qualityLabel
} from './format';
import { MIX_COLORS, MIX_GROUPS, mixBands } from './mix';
import { EnergyModel } from './model';

const LIVE_SECONDS = 100;

type Range = 'server' | 'day' | 'week';

/** Emissions and cost since the server started, with the factor's origin and age. */
function carbonText(since: IEnergy): string {
  const host = since.host;
  const c = since.carbon;
  if (host.emissions_g === undefined && !c) {
    return 'Emissions: this energyd does not estimate carbon yet.';
  }
  let text: string;
  if (host.emissions_g === null || host.emissions_g === undefined) {
    text = `Emissions unknown: ${c?.error ?? 'no carbon intensity yet'}`;
  } else {
    text = `≈ ${formatEmissions(host.emissions_g)} (estimated)`;
    if (c && c.intensity_g_per_kwh !== null) {
      const where = [c.provider, c.zone].filter(Boolean).join(', ');
      const age = c.age_s !== null ? `, ${formatDuration(c.age_s)} old` : '';
      text += ` at ${Math.round(c.intensity_g_per_kwh)} g/kWh (${where}${age})`;
    }
  }
  if (host.cost !== null && host.cost !== undefined) {
    text += ` · cost ${formatCost(host.cost, host.currency)}`;
  }
  return text + '.';
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

export class EnergyPanel extends Widget {
  constructor(
    private readonly model: EnergyModel,
    private readonly cells: CellEnergyTracker,
    private readonly notebooks: INotebookTracker | null
  ) {
    super();
    this.id = 'jp-energy-panel';
    this.addClass('jp-EnergyPanel');
    this.title.label = 'Energy';
    this.title.caption = 'Jupyter Energy';
    this.title.closable = true;

    const n = this.node;
    n.append(el('h2', 'jp-EnergyPanel-title', 'Energy'));
    n.append(this._sentence, this._quality, this._carbon);

    const units = el('div', 'jp-EnergyPanel-unit');
    units.append(el('span', '', 'Unit: '));
    for (const unit of ENERGY_UNITS) {
      const b = el('button', 'jp-EnergyPanel-unitButton', unit);
      b.dataset.unit = unit;
      b.addEventListener('click', () => model.setUnit(unit));
      units.append(b);
    }
    n.append(units);

    n.append(el('h3', '', `Power, last ${LIVE_SECONDS} s`));
    n.append(this._liveNote, this._live);
    n.append(el('h3', '', 'This notebook’s kernel'), this._kernel);

    n.append(el('h3', '', 'Energy over time'));
    const ranges = el('select', 'jp-EnergyPanel-range');
    for (const [value, label] of [
      ['server', 'since server start'],
      ['day', 'last 24 hours'],
      ['week', 'last 7 days']
    ]) {
      const o = el('option', '', label);
      o.value = value;
      ranges.append(o);
    }
    ranges.addEventListener('change', () => {
      this._range = ranges.value as Range;
      this._longtermAt = 0;
      void this._refreshLongterm();
    });
    n.append(ranges, this._longNote, this._long, this._mixLegend);

    n.append(el('h3', '', 'Channels'), this._channels);
    n.append(el('h3', '', 'Benchmark'), this._bench);
    this._bench.textContent =
      'Select a code cell and run “Benchmark the selected cell” (command palette or cell context menu).';

    model.changed.connect(this._onModel, this);
  }

  showBenchmarkProgress(text: string): void {
    this._bench.replaceChildren(el('div', 'jp-EnergyPanel-benchProgress', `Benchmark: ${text}…`));
  }

  showBenchmarkError(text: string): void {
    this._bench.replaceChildren(el('div', 'jp-EnergyPanel-error', text));
  }

  showBenchmark(r: IBenchmarkResult): void {
    this._lastBench = r;
    this._renderBenchmark();
  }

  protected onAfterShow(): void {
    this._onModel();
  }

  protected onResize(): void {
    const w = this._chartWidth();
    this._liveChart?.setSize({ width: w, height: 180 });
    this._longChart?.setSize({ width: w, height: 180 });
  }

  private _chartWidth(): number {
    return Math.max(240, (this.node.clientWidth || 360) - 24);
  }

  private _currentKernelId(): string | null {
    return this.notebooks?.currentWidget?.sessionContext.session?.kernel?.id ?? null;
  }

  private _onModel(): void {
    if (!this.isVisible) {
      return;
    }
    this._renderSummary();
    this._renderChannels();
    if (this._lastBench && this._benchUnit !== this.model.settings.unit) {
      this._renderBenchmark(); // only the unit changes what it shows
    }
    if (!this.model.error) {
      void this._refreshLive();
      void this._refreshKernel();
      void this._refreshLongterm();
    }
  }

  private _renderSummary(): void {
    const m = this.model;
    const unit = m.settings.unit;
    this.node
      .querySelectorAll<HTMLButtonElement>('.jp-EnergyPanel-unitButton')
      .forEach(b => b.classList.toggle('jp-mod-active', b.dataset.unit === unit));
    if (m.error) {
      this._sentence.textContent = `Energy figures are not available: ${m.error.message}`;
      this._quality.textContent = m.error.hint;
      return;
    }
    const since = m.sinceServer;
    const joules = since?.host.joules ?? null;
    if (!since || joules === null || !m.now) {
      this._sentence.textContent = 'Waiting for the first figures…';
      return;
    }
    const chosen = chooseComparison(joules);
    const started = new Date((m.status?.server_started_at ?? since.from) * 1000);
    this._sentence.textContent =
      `${chosen ? chosen.comparison.emoji + ' ' : ''}Your computer used ${formatEnergy(joules, unit)} ` +
      `since you started the Jupyter server (${started.toLocaleTimeString()})` +
      (chosen ? ` — ${chosen.phrase}.` : '.');
    const host = m.now.host;
    const measured = host.measured && since.host.measured;
    const covers = host.coverage.map(id => m.channelLabel(id) + ` (${id})`).join(' + ');
    this._quality.textContent =
      `${measured ? 'Measured' : 'Estimated'}: the host total covers ${covers || 'nothing yet'}. ` +
      `Power now ${formatPower(m.meanWatts)}.` +
      (measured ? '' : ' No energy sensor is readable here, so a CPU-utilisation model estimates it.');
    this._quality.dataset.measured = String(measured);
    this._carbon.textContent = carbonText(since);
  }

  private _renderChannels(): void {
    const m = this.model;
    const rows = (m.sources?.channels ?? []).map(c => {
      const now = m.now?.channels[c.id];
      const tr = el('tr', '');
      const name = el('td', '', c.label || c.id);
      name.append(el('div', 'jp-EnergyPanel-channelId', c.id));
      name.title = c.includes.length ? `includes ${c.includes.join(', ')}` : '';
      const inHost = m.now?.host.coverage.includes(c.id) ? ' · in host total' : '';
      tr.append(
        name,
        el('td', '', formatPower(now?.watts ?? null)),
        el('td', '', qualityLabel(c.measured) + inHost),
        el('td', '', c.status + (c.error ? `: ${c.error}` : ''))
      );
      return tr;
    });
    const table = el('table', 'jp-EnergyPanel-table');
    const head = el('tr', '');
    for (const h of ['channel', 'now', 'figure', 'status']) {
      head.append(el('th', '', h));
    }
    table.append(head, ...rows);
    this._channels.replaceChildren(table);
  }

  private _shownChannels(ids: string[]): string[] {
    const wanted = this.model.settings.channels;
    return wanted.length ? ids.filter(id => wanted.includes(id)) : ids;
  }

  private async _refreshLive(): Promise<void> {
    if (this._liveBusy) {
      return;
    }
    this._liveBusy = true;
    try {
      const h = await requestAPI<IHistory>('history', { seconds: LIVE_SECONDS });
      const ids = this._shownChannels(Object.keys(h.channels)).sort();
      const key = ids.join(',');
      const data: uPlot.AlignedData = [
        h.t,
        h.host.watts as (number | null)[],
        ...ids.map(id => h.channels[id].watts as (number | null)[])
      ];
      const measured = this.model.now?.host.measured ?? false;
      this._liveNote.textContent =
        `Watts, ${qualityLabel(measured)}; host total (thick) and each channel. ` +
        'Shaded: this notebook’s kernel was busy.';
      if (!this._liveChart || this._liveKey !== key) {
        this._liveChart?.destroy();
        this._live.replaceChildren();
        const series = [
          { label: 'host total', width: 2.5 },
          ...ids.map(id => ({ label: id, width: 1.2 }))
        ];
        this._liveChart = makeChart(this._live, this._chartWidth(), 'W', series, data, () =>
          this._busyShade()
        );
        this._liveKey = key;
      } else {
        this._liveChart.setData(data);
      }
    } catch (error) {
      this._liveNote.textContent = `Live chart unavailable: ${String((error as Error).message)}`;
    } finally {
      this._liveBusy = false;
    }
  }

  private _busyShade(): [number, number][] {
    const kid = this._currentKernelId();
    if (!kid) {
      return [];
    }
    const now = Date.now() / 1000;
    return this.cells
      .busyIntervals(kid, now - LIVE_SECONDS)
      .map(b => [b.from, b.to ?? now] as [number, number]);
  }

  private async _refreshKernel(): Promise<void> {
    const kid = this._currentKernelId();
    const m = this.model;
    if (!kid || !m.status || !m.now) {
      this._kernel.textContent = 'No notebook kernel is active.';
      return;
    }
    if (Date.now() - this._kernelAt < 5000 && kid === this._kernelId) {
      return;
    }
    this._kernelAt = Date.now();
    this._kernelId = kid;
    try {
      const k = await requestAPI<IKernelEnergy>(`kernels/${kid}/energy`, {
        from: m.status.server_started_at.toFixed(6),
        to: m.now.time.toFixed(6)
      });
      const unit = m.settings.unit;
      if (k.kernel) {
        this._kernel.textContent =
          `Since the server started this kernel (pid ${k.pid}) used ${formatEnergy(k.kernel.joules, unit)}, ` +
          `${(k.kernel.share * 100).toFixed(1)}% of the machine’s ${formatEnergy(k.host.joules, unit)} ` +
          `(estimated by ${k.kernel.method}).`;
      } else {
        this._kernel.textContent =
          `The kernel’s own share is not available: ${k.kernel_note ?? 'energyd cannot attribute'}. ` +
          `The machine used ${formatEnergy(k.host.joules, unit)} (${qualityLabel(k.host.measured)}) over the same time.`;
      }
    } catch (error) {
      this._kernel.textContent = `Kernel energy unavailable: ${(error as Error).message}`;
    }
  }

  private async _refreshLongterm(): Promise<void> {
    if (Date.now() - this._longtermAt < 30000 || this._longBusy) {
      return;
    }
    this._longtermAt = Date.now();
    this._longBusy = true;
    const m = this.model;
    const to = m.now?.time ?? Date.now() / 1000;
    const from =
      this._range === 'day'
        ? to - 86400
        : this._range === 'week'
          ? to - 7 * 86400
          : m.status?.server_started_at ?? to - 3600;
    const step =
      this._range === 'day' ? 600 : this._range === 'week' ? 3600 : Math.max(1, Math.ceil((to - from) / 120));
    try {
      const lt = await requestAPI<ILongterm>('longterm', {
        from: from.toFixed(3),
        to: to.toFixed(3),
        step
      });
      const unit = m.settings.unit;
      const conv = (v: number | null): number | null => (v === null ? null : joulesTo(v, unit));
      const data: uPlot.AlignedData = [lt.t, lt.host.joules.map(conv)];
      this._longNote.textContent =
        `Energy per ${formatDuration(lt.step_s)} step, host total, in ${unit} ` +
        `(${qualityLabel(m.now?.host.measured)}).`;
      this._longChart?.destroy();
      this._long.replaceChildren();
      const bands = mixBands(lt.t, lt.step_s, lt.mix);
      this._longChart = makeChart(
        this._long,
        this._chartWidth(),
        unit,
        [{ label: `host energy per step (${unit})`, width: 2 }],
        data,
        undefined,
        true,
        bands
      );
      this._mixLegend.replaceChildren();
      if (bands.length) {
        const groups = MIX_GROUPS.filter(g => bands.some(b => b.parts.some(p => p.group === g)));
        this._mixLegend.append(el('span', '', 'Background: the grid’s generation mix — '));
        for (const g of groups) {
          const sw = el('span', 'jp-EnergyPanel-mixSwatch');
          sw.style.background = MIX_COLORS[g];
          this._mixLegend.append(sw, el('span', '', ` ${g} `));
        }
      }
    } catch (error) {
      this._longChart?.destroy();
      this._longChart = null;
      this._long.replaceChildren();
      this._mixLegend.replaceChildren();
      const noEndpoint =
        error instanceof EnergyApiError &&
        error.status === 404 &&
        /no such endpoint/.test(error.message);
      this._longNote.textContent = noEndpoint
        ? 'The long-term record is not available from this energyd yet (no /longterm).'
        : `Long-term chart unavailable: ${(error as Error).message}`;
      if (!noEndpoint) {
        this._longtermAt = Date.now() - 27000; // e.g. a record not written yet: ask in 3 s
      }
    } finally {
      this._longBusy = false;
    }
  }

  private _renderBenchmark(): void {
    const r = this._lastBench;
    if (!r) {
      return;
    }
    const unit = this.model.settings.unit;
    this._benchUnit = unit;
    const fmtE = (x: number, ref?: number): string => formatEnergy(x, unit, ref);
    const ms = (s: { mean: number; sd: number }, f: (x: number, ref?: number) => string): string =>
      `${f(s.mean, s.mean)} ± ${f(s.sd, s.mean)}`;
    const box = el('div', 'jp-EnergyPanel-benchResult');
    box.append(
      el('div', 'jp-EnergyPanel-benchHead',
        `Cell [${r.cellIndex + 1}], ${r.runs.length} runs after one warm-up (mean ± sd):`),
      el('div', 'jp-EnergyPanel-benchTime', `time ${formatDurationMeanSd(r.time.mean, r.time.sd)}`),
      el('div', 'jp-EnergyPanel-benchEnergy',
        `machine energy ${ms(r.host, fmtE)} (${qualityLabel(r.measured)}, ${r.coverage.join(' + ')})`)
    );
    if (r.kernel) {
      box.append(el('div', '', `kernel energy ${ms(r.kernel, fmtE)} (estimated, attributed)`));
    }
    for (const [id, s] of Object.entries(r.channels)) {
      box.append(el('div', 'jp-EnergyPanel-benchChannel', `${this.model.channelLabel(id)} (${id}): ${ms(s, fmtE)}`));
    }
    const table = el('table', 'jp-EnergyPanel-table jp-EnergyPanel-benchRuns');
    const head = el('tr', '');
    for (const h of ['run', 'time', 'energy', 'mean power']) {
      head.append(el('th', '', h));
    }
    table.append(head);
    r.runs.forEach((run, i) => {
      const tr = el('tr', '');
      tr.append(
        el('td', '', String(i + 1)),
        el('td', '', formatDuration(run.duration_s)),
        el('td', '', formatEnergy(run.host_joules, unit)),
        el('td', '', formatPower(run.host_watts))
      );
      table.append(tr);
    });
    box.append(table);
    box.dataset.hostMeanJ = String(r.host.mean);
    box.dataset.hostSdJ = String(r.host.sd);
    box.dataset.timeMeanS = String(r.time.mean);
    this._bench.replaceChildren(box);
  }

  private _sentence = el('p', 'jp-EnergyPanel-sentence');
  private _quality = el('p', 'jp-EnergyPanel-quality');
  private _carbon = el('p', 'jp-EnergyPanel-carbon');
  private _liveNote = el('div', 'jp-EnergyPanel-note');
  private _live = el('div', 'jp-EnergyPanel-live');
  private _kernel = el('p', 'jp-EnergyPanel-kernel');
  private _longNote = el('div', 'jp-EnergyPanel-note jp-EnergyPanel-longNote');
  private _long = el('div', 'jp-EnergyPanel-longterm');
  private _mixLegend = el('div', 'jp-EnergyPanel-note jp-EnergyPanel-mixLegend');
  private _channels = el('div', 'jp-EnergyPanel-channels');
  private _bench = el('div', 'jp-EnergyPanel-benchmark');
  private _liveChart: uPlot | null = null;
  private _liveKey = '';
  private _liveBusy = false;
  private _longChart: uPlot | null = null;
  private _longBusy = false;
  private _longtermAt = 0;
  private _kernelAt = 0;
  private _kernelId: string | null = null;
  private _range: Range = 'server';
  private _lastBench: IBenchmarkResult | null = null;
  private _benchUnit: string | null = null;
}
