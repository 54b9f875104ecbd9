/**
 * Per-cell energy. For every execute_request a notebook sends, the kernel's own status messages
 * (busy, then idle, with the kernel's header dates) bound the execution. Once energyd has samples
 * past the end, the server extension is asked for the machine's energy over that interval and the
 * kernel's attributed share; the result is shown under the cell and stored in its metadata
 * (`energy`), so the notebook keeps its energy record.
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';
import { PanelLayout, Widget } from '@lumino/widgets';

import { IKernelEnergy, requestAPI } from './api';
import {
  formatCost,
  formatDuration,
  formatEmissions,
  formatEnergy,
  formatPower,
  qualityLabel
} from './format';
import { EnergyModel } from './model';
import { addExecution } from './notebookenergy';
import { parseKernelDate } from './time';

/** What is stored in a cell's metadata under `energy` (version 1). */
export interface ICellEnergy {
  version: 1;
  /** Kernel busy → idle, Unix seconds (kernel clock). */
  from: number;
  to: number;
  duration_s: number;
  /** Machine (host total) energy over the interval and its mean power. */
  host_joules: number | null;
  host_watts: number | null;
  measured: boolean;
  coverage: string[];
  channels: { [id: string]: number | null };
  /** The kernel's attributed energy, share and method; null when energyd cannot attribute. */
  kernel_joules: number | null;
  kernel_share: number | null;
  kernel_method: string | null;
  kernel_note: string | null;
  /** Estimated grams CO2eq and cost of the machine's energy (energyd with carbon support). */
  emissions_g?: number | null;
  cost?: number | null;
  currency?: string | null;
}

export interface IBusyInterval {
  kernelId: string;
  from: number;
  to: number | null;
}

interface IPending {
  panel: NotebookPanel;
  cellId: string;
  kernelId: string;
  from: number | null;
}

export interface IMeasured {
  panel: NotebookPanel;
  cellId: string;
  energy: ICellEnergy;
}

/** Delay before asking for an interval's energy, so that energyd has sampled past its end:
 * two and a half sample intervals, at least 400 ms. */
function settleMs(intervalS: number | null): number {
  return Math.max(400, 2500 * (intervalS ?? 0.1));
}

export class CellEnergyTracker {
  constructor(private readonly model: EnergyModel) {
    // The unit switch and the setting reach every line already drawn.
    model.changed.connect(() => {
      const key = `${model.settings.unit}|${model.settings.cellEnergy}`;
      if (key !== this._settingsKey) {
        this._settingsKey = key;
        this._panels.forEach(p => this.renderAll(p));
      }
    });
  }

  /** Emitted after each measured execution (the benchmark waits on it). */
  get measured(): ISignal<this, IMeasured> {
    return this._measured;
  }

  /** Executions of a kernel over the recent past (for the chart's shading). */
  busyIntervals(kernelId: string, since: number): IBusyInterval[] {
    return this._busy.filter(
      b => b.kernelId === kernelId && (b.to === null || b.to >= since)
    );
  }

  track(panel: NotebookPanel): void {
    this._panels.add(panel);
    panel.disposed.connect(() => this._panels.delete(panel));
    const connect = (): void => {
      const kernel = panel.sessionContext.session?.kernel ?? null;
      if (kernel && !this._kernels.has(kernel)) {
        this._kernels.add(kernel);
        kernel.anyMessage.connect((k, args) => this._onMessage(panel, k, args));
        kernel.disposed.connect(() => this._kernels.delete(kernel));
      }
    };
    panel.sessionContext.kernelChanged.connect(connect);
    void panel.sessionContext.ready.then(() => {
      connect();
      this.renderAll(panel);
    });
    panel.content.model?.cells.changed.connect(() => this.renderAll(panel));
  }

  /** (Re)draw the energy line of every cell that has a record. */
  renderAll(panel: NotebookPanel): void {
    for (const cell of panel.content.widgets) {
      const record = cell.model.getMetadata('energy') as ICellEnergy | undefined;
      if (record && record.version === 1) {
        this.render(cell, record);
      }
    }
  }

  render(cell: Cell, energy: ICellEnergy): void {
    if (!this.model.settings.cellEnergy) {
      this._lines.get(cell)?.dispose();
      return;
    }
    this._latest.set(cell, energy);
    if (!this._built.has(cell)) {
      // JupyterLab 4 builds a cell's header, input, output and footer lazily (cell.ready); a
      // widget added before that would land above the input, i.e. under the previous cell.
      // Every render before then only updates the record; the line is placed once built.
      if (!this._waiting.has(cell)) {
        this._waiting.add(cell);
        void cell.ready.then(() => {
          this._built.add(cell);
          const latest = this._latest.get(cell);
          if (latest && !cell.isDisposed) {
            this.render(cell, latest);
          }
        });
      }
      return;
    }
    const line = this._placeLine(cell);
    const unit = this.model.settings.unit;
    const quality = qualityLabel(energy.measured);
    const covers = energy.coverage.join(' + ') || 'host';
    let kernelPart: string;
    if (energy.kernel_joules !== null) {
      const share =
        energy.kernel_share !== null
          ? ` (${Math.round(energy.kernel_share * 100)}%)`
          : '';
      kernelPart = `kernel ${formatEnergy(energy.kernel_joules, unit)}${share}, estimated by ${energy.kernel_method ?? 'attribution'}`;
    } else {
      kernelPart = 'kernel share not available';
    }
    let extra = '';
    if (energy.emissions_g !== null && energy.emissions_g !== undefined) {
      extra += ` · ≈ ${formatEmissions(energy.emissions_g)} (estimated)`;
    }
    if (energy.cost !== null && energy.cost !== undefined) {
      extra += ` · ${formatCost(energy.cost, energy.currency)}`;
    }
    line.node.textContent =
      `⚡ ${formatEnergy(energy.host_joules, unit)} in ${formatDuration(energy.duration_s)}` +
      ` · ${formatPower(energy.host_watts)} mean · machine, ${quality} (${covers}) · ${kernelPart}` +
      extra;
    line.node.title =
      'Energy of this cell’s execution, from the kernel’s busy to idle messages. ' +
      `Machine figure: ${quality}, covering ${covers}. ` +
      (energy.kernel_note ? `Kernel: ${energy.kernel_note}` : '');
    line.node.dataset.cellId = cell.model.id;
    line.node.dataset.unit = unit;
    line.node.dataset.joules = String(energy.host_joules ?? '');
    line.node.dataset.durationS = String(energy.duration_s);
    line.node.dataset.measured = String(energy.measured);
  }

  /** The cell's energy line, placed right after its output area (after the input for cells
   * without outputs), i.e. above the cell's footer: inside its own cell whatever order the
   * cell's parts were built in, and visible when the outputs are collapsed. */
  private _placeLine(cell: Cell): Widget {
    let line = this._lines.get(cell);
    if (!line || line.isDisposed) {
      line = new Widget();
      line.addClass('jp-EnergyCellLine');
      this._lines.set(cell, line);
    }
    const layout = cell.layout as PanelLayout;
    // A code cell's output area sits in its output wrapper (with the collapser); other cells
    // have the input wrapper only.
    const outputs = (cell as Cell & { outputArea?: Widget | null }).outputArea;
    const anchor = outputs?.parent ?? cell.inputArea?.parent ?? null;
    const widgets = Array.from(layout.widgets);
    const at = anchor ? widgets.indexOf(anchor) : -1;
    const want = at >= 0 ? at + 1 : widgets.length;
    const current = widgets.indexOf(line);
    if (current < 0) {
      layout.insertWidget(want, line);
    } else if (current !== want && current !== want - 1) {
      layout.insertWidget(want > current ? want - 1 : want, line);
    }
    return line;
  }

  private _onMessage(
    panel: NotebookPanel,
    kernel: Kernel.IKernelConnection,
    args: Kernel.IAnyMessageArgs
  ): void {
    const msg = args.msg;
    if (args.direction === 'send') {
      if (msg.header.msg_type === 'execute_request') {
        const cellId = (msg.metadata as { cellId?: string }).cellId;
        if (cellId) {
          this._pending.set(msg.header.msg_id, {
            panel,
            cellId,
            kernelId: kernel.id,
            from: null
          });
        }
      }
      return;
    }
    if (msg.channel !== 'iopub' || !KernelMessage.isStatusMsg(msg as KernelMessage.IIOPubMessage)) {
      return;
    }
    const parentId = (msg.parent_header as { msg_id?: string }).msg_id;
    const pending = parentId ? this._pending.get(parentId) : undefined;
    if (!pending || !parentId) {
      return;
    }
    const state = (msg as KernelMessage.IStatusMsg).content.execution_state;
    const at = parseKernelDate(msg.header.date) ?? Date.now() / 1000;
    if (state === 'busy') {
      pending.from = at;
      this._busy.push({ kernelId: pending.kernelId, from: at, to: null });
      this._pruneBusy();
    } else if (state === 'idle' && pending.from !== null) {
      this._pending.delete(parentId);
      const from = pending.from;
      const busy = this._busy.find(
        b => b.kernelId === pending.kernelId && b.from === from
      );
      if (busy) {
        busy.to = at;
      }
      window.setTimeout(
        () => void this._measure(pending, from, at, true),
        settleMs(this.model.intervalS)
      );
    }
  }

  private async _measure(
    pending: IPending,
    from: number,
    to: number,
    mayRetry: boolean
  ): Promise<void> {
    let answer: IKernelEnergy;
    try {
      answer = await requestAPI<IKernelEnergy>(`kernels/${pending.kernelId}/energy`, {
        from: from.toFixed(6),
        to: to.toFixed(6)
      });
    } catch (error) {
      console.warn('jupyter-energy: cell energy not available:', error);
      return;
    }
    if (mayRetry && typeof answer.to === 'number' && answer.to < to - 0.001) {
      // energyd had not sampled past the end yet and clamped the interval: ask once more.
      window.setTimeout(
        () => void this._measure(pending, from, to, false),
        settleMs(this.model.intervalS)
      );
      return;
    }
    const duration = Math.max(0, to - from);
    const hostJ = answer.host?.joules ?? null;
    const channels: { [id: string]: number | null } = {};
    for (const [id, c] of Object.entries(answer.channels ?? {})) {
      channels[id] = c.joules;
    }
    const energy: ICellEnergy = {
      version: 1,
      from,
      to,
      duration_s: duration,
      host_joules: hostJ,
      // energyd's mean power over the interval it answered (null from an older energyd).
      host_watts: answer.host?.watts ?? null,
      measured: !!answer.host?.measured,
      coverage: answer.host?.coverage ?? [],
      channels,
      kernel_joules: answer.kernel ? answer.kernel.joules : null,
      kernel_share: answer.kernel ? answer.kernel.share : null,
      kernel_method: answer.kernel ? answer.kernel.method : null,
      kernel_note: answer.kernel_note,
      emissions_g: answer.host?.emissions_g ?? null,
      cost: answer.host?.cost ?? null,
      currency: answer.host?.currency ?? null
    };
    const cell = pending.panel.content.widgets.find(c => c.model.id === pending.cellId);
    if (cell) {
      if (this.model.settings.cellMetadata) {
        cell.model.setMetadata('energy', energy);
      }
      this.render(cell, energy);
    }
    // The notebook's own record counts every execution, of cells since deleted too.
    const notebook = pending.panel.content.model;
    if (notebook && this.model.settings.cellMetadata) {
      notebook.setMetadata('energy', addExecution(notebook.getMetadata('energy'), energy));
    }
    this._measured.emit({ panel: pending.panel, cellId: pending.cellId, energy });
  }

  private _pruneBusy(): void {
    const cutoff = Date.now() / 1000 - 600;
    this._busy = this._busy.filter(b => b.to === null || b.to > cutoff).slice(-500);
  }

  private _pending = new Map<string, IPending>();
  private _panels = new Set<NotebookPanel>();
  private _settingsKey = '';
  private _busy: IBusyInterval[] = [];
  private _kernels = new Set<Kernel.IKernelConnection>();
  private _lines = new WeakMap<Cell, Widget>();
  private _waiting = new WeakSet<Cell>();
  private _built = new WeakSet<Cell>();
  private _latest = new WeakMap<Cell, ICellEnergy>();
  private _measured = new Signal<this, IMeasured>(this);
}
