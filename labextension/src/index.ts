/**
 * Jupyter Energy front end for JupyterLab 4 and Notebook 7: top bar item, panel, per-cell energy
 * and the cell benchmark. Everything reads the server extension under /api/energy/v1/.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { BenchmarkCancelled, benchmarkActiveCell } from './benchmark';
import { CellEnergyTracker } from './cellenergy';
import { isEnergyUnit } from './format';
import { DEFAULT_SETTINGS, EnergyModel, IEnergySettings } from './model';
import { EnergyPanel } from './panel';
import { EnergyTopBar } from './topbar';

const PLUGIN_ID = 'jupyter-energy:plugin';

const boltIcon = new LabIcon({
  name: 'jupyter-energy:bolt',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" d="M13 2 4 14h6l-1 8 9-12h-6z"/></svg>'
});

namespace CommandIDs {
  export const open = 'jupyter-energy:open-panel';
  export const benchmark = 'jupyter-energy:benchmark-cell';
}

function readSettings(s: ISettingRegistry.ISettings): IEnergySettings {
  const c = s.composite as { [key: string]: unknown };
  const num = (v: unknown, d: number): number => (typeof v === 'number' && v > 0 ? v : d);
  return {
    refreshIntervalMs: num(c.refreshIntervalMs, DEFAULT_SETTINGS.refreshIntervalMs),
    unit: isEnergyUnit(c.unit) ? c.unit : DEFAULT_SETTINGS.unit,
    channels: Array.isArray(c.channels) ? c.channels.map(String) : [],
    cellEnergy: c.cellEnergy !== false,
    cellMetadata: c.cellMetadata !== false,
    benchmarkRuns: Math.round(num(c.benchmarkRuns, DEFAULT_SETTINGS.benchmarkRuns))
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Live power and energy from energyd, per-cell energy and cell benchmarks.',
  autoStart: true,
  optional: [INotebookTracker, ISettingRegistry, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null
  ) => {
    const model = new EnergyModel();
    const cells = new CellEnergyTracker(model);
    const panel = new EnergyPanel(model, cells, notebooks);
    panel.title.icon = boltIcon;
    app.shell.add(panel, 'right', { rank: 900 });

    const topbar = new EnergyTopBar(model, () => {
      void app.commands.execute(CommandIDs.open);
    });
    app.shell.add(topbar, 'top', { rank: 900 });

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show Energy Panel',
      caption: 'Power and energy of this machine and this kernel',
      icon: boltIcon,
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });

    app.commands.addCommand(CommandIDs.benchmark, {
      label: 'Benchmark the Selected Cell (energy and time)',
      isEnabled: () => !!notebooks?.currentWidget?.content.activeCell,
      execute: async () => {
        const nb = notebooks?.currentWidget;
        if (!nb) {
          return;
        }
        app.shell.activateById(panel.id);
        let cancel = false;
        try {
          const result = await benchmarkActiveCell(
            nb,
            cells,
            model.settings.benchmarkRuns,
            text =>
              panel.showBenchmarkProgress(text, () => {
                cancel = true;
                panel.showBenchmarkProgress('cancelling');
                // Stop the run in progress too (a long cell would otherwise finish first).
                void nb.sessionContext.session?.kernel?.interrupt();
              }),
            () => cancel
          );
          panel.showBenchmark(result);
        } catch (error) {
          panel.showBenchmarkError(
            error instanceof BenchmarkCancelled
              ? 'Benchmark cancelled.'
              : `Benchmark failed: ${(error as Error).message}`
          );
        }
      }
    });
    palette?.addItem({ command: CommandIDs.open, category: 'Energy' });
    palette?.addItem({ command: CommandIDs.benchmark, category: 'Energy' });
    app.contextMenu.addItem({
      command: CommandIDs.benchmark,
      selector: '.jp-Notebook .jp-CodeCell',
      rank: 100
    });

    notebooks?.widgetAdded.connect((_, nb) => cells.track(nb));
    notebooks?.forEach(nb => cells.track(nb));

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = (): void => model.updateSettings(readSettings(settings));
          apply();
          settings.changed.connect(apply);
          model.changed.connect(() => {
            if (model.settings.unit !== settings.composite.unit) {
              void settings.set('unit', model.settings.unit);
            }
          });
        })
        .catch(reason => console.error('jupyter-energy: settings not loaded', reason));
    }
    model.start();
  }
};

export default plugin;
