/**
 * uPlot charts, themed from JupyterLab's CSS variables so they follow light and dark themes.
 */
import uPlot from 'uplot';

import { timeTick } from './format';
import { IMixBand, MIX_COLORS } from './mix';

const PALETTE = ['--jp-brand-color1', '--jp-warn-color1', '--jp-success-color1',
  '--jp-error-color1', '--jp-accent-color1', '--jp-brand-color3', '--jp-warn-color3'];

export function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

export function seriesColor(i: number): string {
  return cssVar(PALETTE[i % PALETTE.length], ['#1976d2', '#f57c00', '#388e3c', '#d32f2f'][i % 4]);
}

function axis(label: string): uPlot.Axis {
  const fg = cssVar('--jp-ui-font-color2', '#666');
  const grid = cssVar('--jp-border-color2', '#ddd');
  return { label, stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

function timeAxis(): uPlot.Axis {
  return {
    ...axis(''),
    values: (u: uPlot, splits: number[]) => {
      const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
      return splits.map(v => timeTick(v, span));
    }
  };
}

export interface ISeriesSpec {
  label: string;
  width?: number;
  dash?: number[];
}

/** A time-series chart; `shade` returns [from, to] Unix-second intervals to shade. */
export function makeChart(
  target: HTMLElement,
  width: number,
  yLabel: string,
  series: ISeriesSpec[],
  data: uPlot.AlignedData,
  shade?: () => [number, number][],
  stepped = false,
  bands?: IMixBand[]
): uPlot {
  const opts: uPlot.Options = {
    width,
    height: 180,
    legend: { show: true, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max * 1.1, 1e-9)] } },
    axes: [timeAxis(), axis(yLabel)],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: seriesColor(i),
        width: s.width ?? 1.5,
        dash: s.dash,
        spanGaps: false,
        paths: stepped ? uPlot.paths.stepped!({ align: 1 }) : undefined
      }))
    ],
    hooks: {
      drawClear: [
        (u: uPlot) => {
          if (bands && bands.length) {
            const ctx = u.ctx;
            ctx.save();
            ctx.globalAlpha = 0.28;
            const { left, top, width, height } = u.bbox;
            for (const b of bands) {
              const x0 = Math.max(left, u.valToPos(b.from, 'x', true));
              const x1 = Math.min(left + width, u.valToPos(b.to, 'x', true));
              if (x1 <= x0) {
                continue;
              }
              for (const p of b.parts) {
                ctx.fillStyle = MIX_COLORS[p.group];
                const yBottom = top + height * (1 - p.start);
                ctx.fillRect(x0, yBottom - height * p.share, x1 - x0, height * p.share);
              }
            }
            ctx.restore();
          }
          if (!shade) {
            return;
          }
          const ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = cssVar('--jp-warn-color2', '#ffb74d');
          ctx.globalAlpha = 0.3;
          for (const [a, b] of shade()) {
            const x0 = u.valToPos(a, 'x', true);
            const x1 = u.valToPos(b, 'x', true);
            const left = Math.max(u.bbox.left, x0);
            const right = Math.min(u.bbox.left + u.bbox.width, x1);
            if (right > left) {
              ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
            }
          }
          ctx.restore();
        }
      ]
    }
  };
  return new uPlot(opts, data, target);
}
