/**
 * The top bar item: host power now (energyd's, from the live stream) and host energy since the
 * Jupyter server started, with the emoji of the nearest everyday comparison; marked "est." when
 * the figures are estimated. Its tooltip adds the user's own share ("you").
 */
import { Widget } from '@lumino/widgets';

import { chooseComparison } from './comparisons';
import { formatEmissions, formatEnergy, formatPower, qualityLabel, youText } from './format';
import { EnergyModel } from './model';

export class EnergyTopBar extends Widget {
  constructor(
    private readonly model: EnergyModel,
    onClick: () => void
  ) {
    super({ node: document.createElement('button') });
    this.id = 'jp-energy-topbar';
    this.addClass('jp-EnergyTopBar');
    this.node.setAttribute('type', 'button');
    this.node.addEventListener('click', onClick);
    model.changed.connect(this.update, this);
    this.update();
  }

  protected onUpdateRequest(): void {
    this.render();
  }

  update(): void {
    this.render();
  }

  private render(): void {
    const m = this.model;
    const node = this.node;
    if (m.error) {
      node.textContent = '⚡ energy n/a';
      node.title = `${m.error.message}${m.error.hint ? `\n${m.error.hint}` : ''}`;
      node.dataset.state = 'error';
      return;
    }
    if (!m.now) {
      node.textContent = '⚡ …';
      node.title = 'Waiting for energyd';
      node.dataset.state = 'loading';
      return;
    }
    const host = m.now.host;
    const joules = m.sinceServer?.host.joules ?? null;
    const measured = host.measured && (m.sinceServer?.host.measured ?? true);
    const chosen = joules !== null ? chooseComparison(joules) : null;
    node.replaceChildren();
    const watts = document.createElement('span');
    watts.className = 'jp-EnergyTopBar-watts';
    watts.textContent = `⚡ ${formatPower(host.watts)}`;
    const energy = document.createElement('span');
    energy.className = 'jp-EnergyTopBar-joules';
    energy.textContent = ` · ${formatEnergy(joules, m.settings.unit)}`;
    node.append(watts, energy);
    if (chosen) {
      const emoji = document.createElement('span');
      emoji.className = 'jp-EnergyTopBar-emoji';
      emoji.textContent = ` ${chosen.comparison.emoji}`;
      node.append(emoji);
    }
    if (!measured) {
      const est = document.createElement('span');
      est.className = 'jp-EnergyTopBar-estimated';
      est.textContent = 'est.';
      node.append(est);
    }
    node.dataset.state = measured ? 'measured' : 'estimated';
    // What is shown, for the tests: the stream sample's time and watts, the energy answer's end.
    node.dataset.watts = String(host.watts ?? '');
    node.dataset.time = String(m.now.time);
    node.dataset.joules = String(joules ?? '');
    node.dataset.energyTo = String(m.sinceServer?.to ?? '');
    node.dataset.youJoules = String(m.you?.you.joules ?? '');
    const covers = host.coverage.join(' + ') || 'host';
    node.title =
      `Machine power now (energyd's mean over the last second) and energy since this Jupyter server started, ${qualityLabel(measured)}` +
      ` (covers ${covers}).` +
      (chosen ? `\nThat is ${chosen.phrase}.` : '') +
      (typeof m.sinceServer?.host.emissions_g === 'number'
        ? `\n≈ ${formatEmissions(m.sinceServer.host.emissions_g)} (estimated).`
        : '') +
      `\n${youText(m.you, m.youError?.message ?? null, m.settings.unit)}` +
      '\nClick for details.';
  }
}
