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
  IKernelEnergy,
  ILongterm,
  IProcesses,
  requestAPI
} from './api';
import { IBenchmarkResult } from './benchmark';
import { CellEnergyTracker, ICellEnergy } from './cellenergy';
import { makeChart } from './charts';
import { chooseComparison } from './comparisons';
import {
  ENERGY_UNITS,
  EnergyUnit,
  formatCost,
  formatDuration,
  formatDurationStat,
  formatInterval,
  formatEmissions,
  formatEnergy,
  formatPower,
  formatPowerRef,
  formatStat,
  joulesTo,
  qualityLabel,
  timeTick,
  youText
} from './format';
import { MIX_COLORS, MIX_GROUPS, mixBands } from './mix';
import { EnergyModel, LIVE_SECONDS, SUMMARY_REFRESH_MS } from './model';
import { INotebookEnergy } from './notebookenergy';

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

/** Every cell's energy record as CSV (one row per cell, the metadata's own fields). */
export function cellsCsv(rows: { index: number; count: number | null; energy: ICellEnergy }[]): string {
  const cols: (keyof ICellEnergy)[] = [
    'from', 'to', 'duration_s', 'host_joules', 'host_watts', 'measured', 'kernel_joules',
    'kernel_share', 'kernel_method', 'emissions_g', 'cost', 'currency'
  ];
  const quote = (v: unknown): string => {
    const t = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  const lines = [['cell', 'execution_count', ...cols, 'coverage'].join(',')];
  for (const r of rows) {
    lines.push(
      [r.index + 1, r.count, ...cols.map(c => r.energy[c]), r.energy.coverage.join(' + ')]
        .map(quote)
        .join(',')
    );
  }
  return lines.join('\n') + '\n';
}

function downloadCsv(name: string, rows: { index: number; count: number | null; energy: ICellEnergy }[]): void {
  const blob = new Blob([cellsCsv(rows)], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${name.replace(/\.ipynb$/, '')}-energy.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(a.href);
}

/** The notebook's record: its energy, emissions and cost over every execution so far, what
 * that covers, measured or estimated, and over which time. */
function notebookTotal(total: INotebookEnergy, unit: EnergyUnit): HTMLElement[] {
  const p = el('p', 'jp-EnergyPanel-notebookTotal');
  const span =
    total.first_from !== null && total.last_to !== null
      ? ` between ${new Date(total.first_from * 1000).toLocaleString()} and ` +
        `${new Date(total.last_to * 1000).toLocaleTimeString()}`
      : '';
  let text =
    `So far: ${formatEnergy(total.host_joules, unit)} (machine, ${qualityLabel(total.measured)}` +
    `${total.coverage.length ? `, ${total.coverage.join(' + ')}` : ''}) over ` +
    `${total.host_executions} execution(s)${span}`;
  if (total.kernel_joules !== null) {
    text += `; this notebook’s kernel ${formatEnergy(total.kernel_joules, unit)} of it ` +
      `(estimated, over ${total.kernel_executions} execution(s))`;
  }
  text += '.';
  if (total.emissions_g !== null) {
    text += ` ≈ ${formatEmissions(total.emissions_g)} (estimated)`;
    text += total.cost !== null ? `, ${formatCost(total.cost, total.currency)}.` : '.';
  }
  p.textContent = text;
  p.title = `Covers ${total.covers}.` +
    (total.intervals_dropped ? ` The record lists the newest ${total.intervals.length} intervals.` : '');
  p.dataset.joules = String(total.host_joules ?? '');
  p.dataset.executions = String(total.executions);
  p.dataset.measured = String(total.measured);
  return [p];
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

/** A <select> of [value, label] options calling `onChange` with the chosen value. */
function select(
  className: string,
  options: [string, string][],
  onChange: (value: string) => void
): HTMLSelectElement {
  const s = el('select', className);
  for (const [value, label] of options) {
    const o = el('option', '', label);
    o.value = value;
    s.append(o);
  }
  s.addEventListener('change', () => onChange(s.value));
  return s;
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

    this.node.append(el('h2', 'jp-EnergyPanel-title', 'Energy'), this._benchTop, this._down);
    this._down.hidden = true;
    this._benchTop.hidden = true;
    // Everything below needs energyd; hidden while it does not answer.
    const n = this._body;
    this.node.append(n);
    n.append(this._sentence, this._quality, this._carbon);
    n.append(el('h3', '', 'You'), this._you);

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
    n.append(this._liveNote, this._live, this._liveSpike);
    n.append(el('h3', '', 'This notebook’s kernel'), this._kernel);
    n.append(el('h3', '', 'This notebook'), this._notebook);

    n.append(el('h3', '', 'Processes'));
    const scope = select('jp-EnergyPanel-procScope', [
      ['mine', 'my processes'],
      ['all', 'all users']
    ], value => {
      this._procScope = value as 'mine' | 'all';
      this._procAt = 0;
      void this._refreshProcesses();
    });
    n.append(scope, this._procNote, this._procs);

    n.append(el('h3', '', 'Energy over time'));
    const ranges = select('jp-EnergyPanel-range', [
      ['server', 'since server start'],
      ['day', 'last 24 hours'],
      ['week', 'last 7 days']
    ], value => {
      this._range = value as Range;
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

  /** Benchmark progress at the top of the panel (where the eye is) with a Cancel button;
   * `text` null hides it. */
  showBenchmarkProgress(text: string | null, cancel?: () => void): void {
    this._benchTop.hidden = text === null;
    if (text === null) {
      this._benchTop.replaceChildren();
      return;
    }
    const line = el('span', 'jp-EnergyPanel-benchProgress', `Benchmark: ${text}…`);
    const parts: HTMLElement[] = [line];
    if (cancel) {
      const b = el('button', 'jp-EnergyPanel-benchCancel', 'Cancel');
      b.addEventListener('click', cancel);
      parts.push(b);
    }
    this._benchTop.replaceChildren(...parts);
    this._bench.replaceChildren(el('div', 'jp-EnergyPanel-benchProgress', `Benchmark: ${text}…`));
  }

  showBenchmarkError(text: string): void {
    this.showBenchmarkProgress(null);
    this._bench.replaceChildren(el('div', 'jp-EnergyPanel-error', text));
  }

  showBenchmark(r: IBenchmarkResult): void {
    this.showBenchmarkProgress(null);
    this._lastBench = r;
    this._renderBenchmark();
  }

  protected onAfterShow(): void {
    this._onModel();
  }

  protected onResize(): void {
    const w = this._chartWidth();
    this._liveChart?.setSize({ width: w, height: 160 });
    this._longChart?.setSize({ width: w, height: 160 });
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
    this._renderDown();
    if (this.model.error && this.model.energydDown) {
      return;
    }
    this._renderSummary();
    this._renderChannels();
    if (this._lastBench && this._benchUnit !== this.model.settings.unit) {
      this._renderBenchmark(); // only the unit changes what it shows
    }
    if (!this.model.error) {
      this._renderLive();
      void this._refreshKernel();
      void this._refreshLongterm();
      void this._refreshProcesses();
    }
    this._renderNotebook();
  }

  /** The current notebook's record (notebook metadata: every execution so far), then its
   * executed cells as their energy records say (cell metadata): the cells that used the most,
   * and every record as CSV. Each figure is energyd's, as stored. */
  private _renderNotebook(): void {
    const nb = this.notebooks?.currentWidget ?? null;
    const unit = this.model.settings.unit;
    const record = nb?.content.model?.getMetadata('energy') as INotebookEnergy | undefined;
    const total = record && record.version === 1 ? record : null;
    const rows = (nb?.content.widgets ?? [])
      .map((cell, index) => ({
        index,
        count: (cell.model.sharedModel as { execution_count?: number | null }).execution_count ?? null,
        energy: cell.model.getMetadata('energy') as ICellEnergy | undefined
      }))
      .filter((r): r is { index: number; count: number | null; energy: ICellEnergy } =>
        !!r.energy && r.energy.version === 1);
    const key =
      `${nb?.id}|${unit}|${total?.executions}|${total?.last_to}|` +
      rows.map(r => `${r.index}:${r.energy.to}`).join(',');
    if (key === this._notebookKey) {
      return;
    }
    this._notebookKey = key;
    const totalNode = total ? notebookTotal(total, unit) : [];
    if (!nb || !rows.length) {
      this._notebook.replaceChildren(
        ...totalNode,
        el('div', 'jp-EnergyPanel-note', nb ? 'No cell of this notebook has an energy record yet.' : 'No notebook is open.')
      );
      return;
    }
    const top = [...rows]
      .sort((a, b) => (b.energy.host_joules ?? -1) - (a.energy.host_joules ?? -1))
      .slice(0, 5);
    const table = el('table', 'jp-EnergyPanel-table jp-EnergyPanel-topCells');
    const head = el('tr', '');
    for (const h of ['cell', 'energy', 'time', 'kernel', 'CO₂e']) {
      head.append(el('th', '', h));
    }
    table.append(head);
    for (const r of top) {
      const e = r.energy;
      const tr = el('tr', '');
      tr.dataset.cellIndex = String(r.index);
      tr.append(
        el('td', '', r.count !== null ? `[${r.count}]` : `#${r.index + 1}`),
        el('td', '', `${formatEnergy(e.host_joules, unit)} ${e.measured ? '' : '(est.)'}`.trim()),
        el('td', '', formatDuration(e.duration_s)),
        el('td', '', e.kernel_joules !== null ? formatEnergy(e.kernel_joules, unit) : '–'),
        el('td', '', e.emissions_g !== null && e.emissions_g !== undefined ? formatEmissions(e.emissions_g) : '–')
      );
      table.append(tr);
    }
    const csv = el('button', 'jp-EnergyPanel-csv', 'Download CSV');
    csv.addEventListener('click', () => downloadCsv(nb.title.label || 'notebook', rows));
    this._notebook.replaceChildren(
      ...totalNode,
      el('div', 'jp-EnergyPanel-note',
        `${rows.length} cell(s) with an energy record (their last execution); the ${top.length} that used the most:`),
      table,
      csv
    );
  }

  /** Top processes by attributed power (energyd's /processes), the user's own or all. */
  private async _refreshProcesses(): Promise<void> {
    if (Date.now() - this._procAt < SUMMARY_REFRESH_MS || this._procBusy) {
      return;
    }
    this._procAt = Date.now();
    this._procBusy = true;
    try {
      const uid = this.model.status?.uid;
      const mine = this._procScope === 'mine' && uid !== undefined;
      const p = await requestAPI<IProcesses>('processes', { top: 8, user: mine ? uid : undefined });
      this._procNote.textContent =
        `Power attributed to each process over the last ${formatDuration(p.scan_interval_s)} ` +
        `(estimated by ${p.method}).`;
      const table = el('table', 'jp-EnergyPanel-table jp-EnergyPanel-procTable');
      const head = el('tr', '');
      for (const h of ['process', 'user', 'power', 'CPU']) {
        head.append(el('th', '', h));
      }
      table.append(head);
      for (const proc of p.processes) {
        const tr = el('tr', '');
        const name = el('td', 'jp-EnergyPanel-procCommand', proc.command);
        name.title = `pid ${proc.pid}`;
        tr.append(
          name,
          el('td', '', proc.user),
          el('td', '', formatPower(proc.watts)),
          el('td', '', proc.cpu_share === null ? '–' : `${Math.round(proc.cpu_share * 100)}%`)
        );
        tr.dataset.pid = String(proc.pid);
        tr.dataset.uid = String(proc.uid);
        table.append(tr);
      }
      if (!p.processes.length) {
        this._procs.replaceChildren(el('div', 'jp-EnergyPanel-note', 'No busy process yet.'));
      } else {
        this._procs.replaceChildren(table);
      }
    } catch (error) {
      this._procs.replaceChildren();
      this._procNote.textContent = `Processes not available: ${(error as Error).message}`;
    } finally {
      this._procBusy = false;
    }
  }

  /** energyd does not answer: say so and what to do, instead of empty headings. */
  private _renderDown(): void {
    const m = this.model;
    const down = m.error !== null && m.energydDown;
    this._down.hidden = !down;
    this._body.hidden = down;
    this.node.dataset.energyd = down ? 'down' : 'up';
    if (!down) {
      return;
    }
    const what = m.lastStatus?.embedded
      ? 'The energyd this Jupyter server started has stopped. The server starts it again by ' +
        'itself (at most every 10 s); the figures come back here when it answers.'
      : 'Start the system service (measured figures, shared by every user): ' +
        '`sudo ./run.sh --system` in the Jupyter Energy repository (see docs/service.md). ' +
        'Or let this Jupyter server start its own energyd: restart the server with ' +
        'c.EnergyExtensionApp.auto_start = True (the default).';
    this._down.replaceChildren(
      el('h3', 'jp-EnergyPanel-downTitle', 'energyd is not running'),
      el('p', '', what),
      el('p', 'jp-EnergyPanel-note', `Details: ${m.error?.message ?? ''} Retrying with backoff.`)
    );
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
      `Power now ${formatPower(host.watts)}.` +
      (measured
        ? ''
        : ' No energy sensor is readable here, so a CPU-utilisation model estimates it. ' +
          'Installing the system service gives measured figures: `sudo ./run.sh --system` in the ' +
          'Jupyter Energy repository (see docs/service.md).');
    this._quality.dataset.measured = String(measured);
    this._carbon.textContent = carbonText(since);
    this._you.textContent = youText(m.you, m.youError?.message ?? null, unit);
    this._you.dataset.joules = String(m.you?.you.joules ?? '');
    this._you.dataset.share = String(m.you?.you.share ?? '');
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

  /** The live chart from the model's series (history, then the stream's samples). */
  private _renderLive(): void {
    const h = this.model.live;
    if (!h) {
      return;
    }
    const ids = this._shownChannels(Object.keys(h.channels)).sort();
    const key = ids.join(',');
    const data: uPlot.AlignedData = [h.t, h.host, ...ids.map(id => h.channels[id])];
    const measured = this.model.now?.host.measured ?? false;
    this._liveNote.textContent =
      `Watts, ${qualityLabel(measured)}: host total (thick) and each channel. ` +
      'Shaded, with a bar along the top: this notebook’s kernel was busy.';
    if (!this._liveChart || this._liveKey !== key) {
      this._liveChart?.destroy();
      this._live.replaceChildren();
      const series = [
        { label: 'host total', width: 2.5 },
        ...ids.map(id => ({ label: this.model.channelLabel(id), width: 1.4 }))
      ];
      this._liveChart = makeChart(this._live, this._chartWidth(), 'W', series, data, {
        shade: () => this._busyShade()
      });
      this._liveKey = key;
    } else {
      this._liveChart.setData(data);
    }
    // Samples above the robust axis are cut at its top: say so, with the highest one.
    const top = this._liveChart.scales.y.max ?? Infinity;
    let peak: [number, number] | null = null;
    for (let s = 1; s < data.length; s++) {
      (data[s] as (number | null)[]).forEach((v, i) => {
        if (v !== null && v > top && (!peak || v > peak[1])) {
          peak = [h.t[i], v];
        }
      });
    }
    const p = peak as [number, number] | null;
    this._liveSpike.textContent = p
      ? `A sample of ${formatPower(p[1])} at ${timeTick(p[0], 0)} is above the scale ` +
        '(the axis follows the 99th percentile; hover for each value).'
      : '';
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
      // Steps before the record began hold nothing: leave them out, so that a fresh record
      // is a few wide bars rather than one point at the end of an empty week.
      const began = lt.record?.began_at ?? null;
      const keep = lt.t.map(t => began === null || t + lt.step_s > began);
      const pick = <T,>(a: T[]): T[] => a.filter((_, i) => keep[i]);
      const t = pick(lt.t);
      const data: uPlot.AlignedData = [t, pick(lt.host.joules).map(conv)];
      const since =
        began !== null
          ? ` Recording since ${new Date(began * 1000).toLocaleString()}` +
            (t.length < 3 ? ': only a few steps so far.' : '.')
          : '';
      this._longNote.textContent =
        `Energy per ${formatDuration(lt.step_s)} step, host total, in ${unit} ` +
        `(${qualityLabel(m.now?.host.measured)}).` + since;
      this._longChart?.destroy();
      this._long.replaceChildren();
      const mix = lt.mix
        ? Object.fromEntries(Object.entries(lt.mix).map(([g, v]) => [g, pick(v)]))
        : undefined;
      const bands = mixBands(t, lt.step_s, mix);
      this._longChart = makeChart(
        this._long,
        this._chartWidth(),
        unit,
        [{ label: `host energy per step`, width: 1 }],
        data,
        { bars: true, bands }
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
      } else {
        const provider = m.sinceServer?.carbon?.provider;
        this._mixLegend.textContent =
          `No generation mix${provider ? ` with the ${provider} carbon provider` : ''}: ` +
          'energyd gets one from a live provider (uk, rte, or entsoe / electricitymaps with a ' +
          'token); set [carbon] provider in energyd’s configuration (see docs/carbon.md).';
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

  /** The benchmark as energyd's `runs` answered it: statistics and each run. */
  private _renderBenchmark(): void {
    const r = this._lastBench;
    if (!r) {
      return;
    }
    const unit = this.model.settings.unit;
    this._benchUnit = unit;
    const stats = r.answer.stats;
    const fmtE = (x: number, ref?: number): string => formatEnergy(x, unit, ref);
    const box = el('div', 'jp-EnergyPanel-benchResult');
    box.append(
      el('div', 'jp-EnergyPanel-benchHead',
        `Cell [${r.executionCount ?? ' '}], ${r.runs.length} runs after one warm-up ` +
        '(mean ± sd, 95 % interval of the mean; energyd’s statistics):'),
      el('div', 'jp-EnergyPanel-benchTime',
        `time ${formatDurationStat(stats.seconds)}${formatInterval(stats.seconds, formatDuration)}`),
      el('div', 'jp-EnergyPanel-benchEnergy',
        `machine energy ${formatStat(stats.host.joules, fmtE)} (${qualityLabel(r.measured)}, ` +
        `${r.coverage.join(' + ')})${formatInterval(stats.host.joules, fmtE)}` +
        ` · mean power ${formatStat(stats.host.watts, formatPowerRef)}`)
    );
    box.append(
      el('div', 'jp-EnergyPanel-benchKernel', stats.scope
        ? `kernel energy ${formatStat(stats.scope.joules, fmtE)} (estimated, attributed)` +
          formatInterval(stats.scope.joules, fmtE)
        : `kernel energy not available: ${r.kernelNote ?? 'energyd gave no kernel figure'}`)
    );
    for (const [id, c] of Object.entries(stats.channels)) {
      box.append(el('div', 'jp-EnergyPanel-benchChannel',
        `${this.model.channelLabel(id)} (${id}): ${formatStat(c.joules, fmtE)}`));
    }
    const table = el('table', 'jp-EnergyPanel-table jp-EnergyPanel-benchRuns');
    const head = el('tr', '');
    for (const h of ['run', 'time', 'energy', 'mean power']) {
      head.append(el('th', '', h));
    }
    table.append(head);
    r.answer.runs.forEach((run, i) => {
      const tr = el('tr', '');
      tr.append(
        el('td', '', String(i + 1)),
        el('td', '', formatDuration(run.seconds)),
        el('td', '', formatEnergy(run.host.joules, unit)),
        el('td', '', formatPower(run.host.watts))
      );
      table.append(tr);
    });
    box.append(table);
    box.dataset.hostMeanJ = String(stats.host.joules.mean);
    box.dataset.hostSdJ = String(stats.host.joules.sd);
    box.dataset.timeMeanS = String(stats.seconds.mean);
    this._bench.replaceChildren(box);
  }


  private _body = el('div', 'jp-EnergyPanel-body');
  private _notebook = el('div', 'jp-EnergyPanel-notebook');
  private _down = el('div', 'jp-EnergyPanel-down');
  private _benchTop = el('div', 'jp-EnergyPanel-benchTop');
  private _liveSpike = el('div', 'jp-EnergyPanel-note jp-EnergyPanel-liveSpike');
  private _procNote = el('div', 'jp-EnergyPanel-note jp-EnergyPanel-procNote');
  private _procs = el('div', 'jp-EnergyPanel-processes');
  private _procScope: 'mine' | 'all' = 'mine';
  private _notebookKey = '';
  private _procAt = 0;
  private _procBusy = false;
  private _sentence = el('p', 'jp-EnergyPanel-sentence');
  private _quality = el('p', 'jp-EnergyPanel-quality');
  private _carbon = el('p', 'jp-EnergyPanel-carbon');
  private _you = el('p', 'jp-EnergyPanel-you');
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
  private _longChart: uPlot | null = null;
  private _longBusy = false;
  private _longtermAt = 0;
  private _kernelAt = 0;
  private _kernelId: string | null = null;
  private _range: Range = 'server';
  private _lastBench: IBenchmarkResult | null = null;
  private _benchUnit: string | null = null;
}
