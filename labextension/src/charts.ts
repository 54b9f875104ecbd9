/**
 * uPlot charts, themed from JupyterLab's CSS variables so they follow light and dark themes.
 *
 * Colours: the host total in the theme's text colour (black on light, white on dark), the channels
 * from the Okabe–Ito palette without its black and yellow (which vanish on one of the two
 * backgrounds); the six left are told apart with the common colour-vision deficiencies too.
 * The value axis is scaled to a robust maximum (the 99th percentile of what is plotted), so one
 * sample spike cannot flatten everything else; the spike stays readable in the legend's values
 * under the cursor and in the note the caller shows. The time axis asks uPlot for at least the
 * width of one label plus a gap between ticks, so labels never overlap whatever the width.
 */
import uPlot from 'uplot';

import { timeTick } from './format';
import { IMixBand, MIX_COLORS } from './mix';

export const CHANNEL_PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00'];

/** Fill of the "kernel busy" shading: the theme's text colour (grey on either background, a
 * hue no channel uses), faint over the plot with a stronger strip along its top. */
export function busyColor(): string {
  return cssVar('--jp-ui-font-color1', '#212121');
}

export function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

/** Colour of series `i` (0 = the host total, then the channels). */
export function seriesColor(i: number): string {
  return i === 0
    ? cssVar('--jp-ui-font-color1', '#212121')
    : CHANNEL_PALETTE[(i - 1) % CHANNEL_PALETTE.length];
}

/** The q-quantile (0..1) of the finite values, nearest rank; null without any. */
export function quantile(values: (number | null | undefined)[], q: number): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (!v.length) {
    return null;
  }
  v.sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}

/** Upper end of the value axis: the 99th percentile of every plotted value plus 15 % headroom;
 * 1 when nothing is plotted. */
export function robustMax(series: (number | null | undefined)[][]): number {
  const all = series.flat();
  const p99 = quantile(all, 0.99);
  return p99 === null || p99 <= 0 ? 1 : p99 * 1.15;
}

const FONT_PX = 11;
const AXIS_FONT = `${FONT_PX}px sans-serif`;

function axis(): uPlot.Axis {
  const fg = cssVar('--jp-ui-font-color2', '#666');
  const grid = cssVar('--jp-border-color2', '#ddd');
  return {
    stroke: fg,
    font: AXIS_FONT,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1, size: 4 }
  };
}

/** Time ticks: one line each, at least their own width plus 16 px apart. */
function timeAxis(): uPlot.Axis {
  return {
    ...axis(),
    size: 24,
    space: (u: uPlot) => {
      const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
      const ctx = u.ctx;
      ctx.save();
      ctx.font = AXIS_FONT;
      const w = ctx.measureText(timeTick(u.scales.x.max ?? 0, span)).width;
      ctx.restore();
      return w + 16;
    },
    values: (u: uPlot, splits: number[]) => {
      const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
      return splits.map(v => timeTick(v, span));
    }
  };
}

/** Value ticks carry their unit ("20 W"), so no rotated axis title is needed. */
function valueAxis(unit: string): uPlot.Axis {
  return {
    ...axis(),
    size: 52,
    space: FONT_PX * 2.2,
    values: (_u: uPlot, splits: number[]) =>
      splits.map(v => `${Number(v.toPrecision(3))} ${unit}`)
  };
}

export interface ISeriesSpec {
  label: string;
  width?: number;
  dash?: number[];
}

export interface IChartOptions {
  /** [from, to] Unix-second intervals to shade (the kernel's busy times). */
  shade?: () => [number, number][];
  /** Draw steps (energy per step) as bars rather than lines. */
  bars?: boolean;
  /** The grid's generation mix behind the bars. */
  bands?: IMixBand[];
  height?: number;
}

/** A time-series chart; the chart is kept on its root node as `__uplot` for the UI tests. */
export function makeChart(
  target: HTMLElement,
  width: number,
  unit: string,
  series: ISeriesSpec[],
  data: uPlot.AlignedData,
  options: IChartOptions = {}
): uPlot {
  const { shade, bars, bands } = options;
  const opts: uPlot.Options = {
    width,
    height: options.height ?? 160,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true },
      y: {
        range: (u: uPlot) => [0, robustMax(u.data.slice(1) as (number | null)[][])]
      }
    },
    axes: [timeAxis(), valueAxis(unit)],
    series: [
      { value: (u: uPlot, v: number) => (v === null ? '–' : timeTick(v, 0)) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: seriesColor(bars ? 1 : i),
        fill: bars ? seriesColor(1) + '99' : undefined,
        width: s.width ?? 1.5,
        dash: s.dash,
        spanGaps: false,
        value: (_u: uPlot, v: number | null) =>
          v === null || v === undefined ? '–' : `${Number(v.toPrecision(3))} ${unit}`,
        paths: bars
          ? uPlot.paths.bars!({ size: [0.8, 40], align: 1 })
          : undefined,
        points: { show: bars ? false : undefined }
      }))
    ],
    hooks: {
      drawClear: [
        (u: uPlot) => {
          const ctx = u.ctx;
          const { left, top, width, height } = u.bbox;
          if (bands && bands.length) {
            ctx.save();
            ctx.globalAlpha = 0.28;
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
          ctx.save();
          ctx.fillStyle = busyColor();
          const strip = Math.max(3, 3 * devicePixelRatio);
          for (const [a, b] of shade()) {
            const x0 = Math.max(left, u.valToPos(a, 'x', true));
            const x1 = Math.min(left + width, u.valToPos(b, 'x', true));
            if (x1 > x0) {
              ctx.globalAlpha = 0.12;
              ctx.fillRect(x0, top, x1 - x0, height);
              ctx.globalAlpha = 0.6;
              ctx.fillRect(x0, top, x1 - x0, strip);
            }
          }
          ctx.restore();
        }
      ]
    }
  };
  const chart = new uPlot(opts, data, target);
  (chart.root as unknown as { __uplot: uPlot }).__uplot = chart;
  return chart;
}
