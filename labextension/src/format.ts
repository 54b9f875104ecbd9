/**
 * Number formatting for power, energy and time. Pure functions: no JupyterLab imports, so the
 * unit tests run them directly.
 */
import type { IStat, IYou } from './api';

/** The energy units the user can choose (settings `unit`, panel switch). */
export type EnergyUnit = 'J' | 'Wh' | 'kWh';

export const ENERGY_UNITS: EnergyUnit[] = ['J', 'Wh', 'kWh'];

export const JOULES_PER_WH = 3600;
export const JOULES_PER_KWH = 3.6e6;

/** A compact number: 0 decimals from 100, 1 decimal from 1, 2 significant digits below. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) {
    return '–';
  }
  const a = Math.abs(x);
  if (a === 0) {
    return '0';
  }
  if (a >= 100) {
    return x.toFixed(0);
  }
  if (a >= 1) {
    return x.toFixed(1);
  }
  if (a >= 0.9995) {
    return x.toFixed(1); // rounds up to 1.0
  }
  return String(Number(x.toPrecision(2)));
}

const SI_PREFIXES: [number, string][] = [
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
  [1, ''],
  [1e-3, 'm']
];

/** The SI scale for a magnitude: switches at 999.5 of the smaller prefix so that rounding
 * never prints "1000 W"; below 1 uses milli. */
function siScale(magnitude: number): [number, string] {
  for (const [scale, prefix] of SI_PREFIXES) {
    if (magnitude >= scale * 0.9995) {
      return [scale, prefix];
    }
  }
  return [1e-3, 'm'];
}

/** `value` with the SI prefix chosen for `reference` (so "1.2 J ± 0.2 J" shares one prefix). */
function withPrefix(value: number, unit: string, reference: number = value): string {
  if (reference === 0 && value === 0) {
    return `0 ${unit}`;
  }
  const [scale, prefix] = siScale(Math.abs(reference));
  return `${formatNumber(value / scale)} ${prefix}${unit}`;
}

/** Power in watts, SI-prefixed: "12.3 W", "1.2 kW", "850 mW". */
export function formatPower(watts: number | null | undefined): string {
  if (watts === null || watts === undefined || !Number.isFinite(watts)) {
    return '– W';
  }
  return withPrefix(watts, 'W');
}

/** Energy in the chosen unit: 'J' is SI-prefixed joules (J, kJ, MJ), 'Wh' and 'kWh' are fixed. */
export function formatEnergy(
  joules: number | null | undefined,
  unit: EnergyUnit = 'J',
  reference?: number
): string {
  if (joules === null || joules === undefined || !Number.isFinite(joules)) {
    return `– ${unit}`;
  }
  switch (unit) {
    case 'Wh':
      return `${formatNumber(joules / JOULES_PER_WH)} Wh`;
    case 'kWh':
      return `${formatNumber(joules / JOULES_PER_KWH)} kWh`;
    default:
      return withPrefix(joules, 'J', reference ?? joules);
  }
}

/** Converts joules to the value of a unit (for chart axes). */
export function joulesTo(joules: number, unit: EnergyUnit): number {
  return unit === 'Wh'
    ? joules / JOULES_PER_WH
    : unit === 'kWh'
      ? joules / JOULES_PER_KWH
      : joules;
}

/** The next unit of the J → Wh → kWh cycle (the panel's switch). */
export function nextUnit(unit: EnergyUnit): EnergyUnit {
  return ENERGY_UNITS[(ENERGY_UNITS.indexOf(unit) + 1) % ENERGY_UNITS.length];
}

export function isEnergyUnit(value: unknown): value is EnergyUnit {
  return typeof value === 'string' && (ENERGY_UNITS as string[]).includes(value);
}

/** A duration: "850 ms", "1.2 s", "2 min 05 s", "1 h 02 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '– s';
  }
  const s = Math.abs(seconds);
  if (s < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (s < 60) {
    return `${seconds.toFixed(s < 10 ? 2 : 1)} s`;
  }
  if (s < 3600) {
    const m = Math.floor(s / 60);
    return `${m} min ${String(Math.round(s - m * 60)).padStart(2, '0')} s`;
  }
  const h = Math.floor(s / 3600);
  return `${h} h ${String(Math.round((s - h * 3600) / 60)).padStart(2, '0')} min`;
}

/** "measured" or "estimated", as every figure must say. */
export function qualityLabel(measured: boolean | null | undefined): string {
  return measured ? 'measured' : 'estimated';
}

/** `mean ± sd` of an API statistic, both with the mean's prefix; the mean alone for one run. */
export function formatStat(
  s: IStat,
  format: (x: number, reference: number) => string
): string {
  if (s.mean === null) {
    return '–';
  }
  if (s.sd === null) {
    return `${format(s.mean, s.mean)} (one run)`;
  }
  return `${format(s.mean, s.mean)} ± ${format(s.sd, s.mean)}`;
}

/** ", 95 % interval a – b" of an API statistic, or nothing when energyd gives none. */
export function formatInterval(
  s: IStat,
  format: (x: number, reference: number) => string
): string {
  if (s.ci95_low === null || s.ci95_high === null || s.mean === null) {
    return '';
  }
  return `, 95 % interval ${format(s.ci95_low, s.mean)} – ${format(s.ci95_high, s.mean)}`;
}

/** Power with a given reference for its prefix (for formatStat). */
export function formatPowerRef(watts: number, reference: number): string {
  return Number.isFinite(watts) ? withPrefix(watts, 'W', reference) : '– W';
}

/** An API statistic of durations: see formatDurationMeanSd. */
export function formatDurationStat(s: IStat): string {
  if (s.mean === null) {
    return '– s';
  }
  return s.sd === null ? `${formatDuration(s.mean)} (one run)` : formatDurationMeanSd(s.mean, s.sd);
}

/** Mean ± sd of durations in one unit with enough digits that a small sd is not "± 0 ms". */
export function formatDurationMeanSd(mean: number, sd: number): string {
  if (!Number.isFinite(mean) || !Number.isFinite(sd)) {
    return '– s';
  }
  if (Math.abs(mean) < 1) {
    const digits = sd * 1000 >= 10 ? 0 : sd * 1000 >= 0.1 ? 1 : 2;
    return `${(mean * 1000).toFixed(digits)} ms ± ${(sd * 1000).toFixed(digits)} ms`;
  }
  const digits = sd >= 0.1 ? 2 : 3;
  return `${mean.toFixed(digits)} s ± ${sd.toFixed(digits)} s`;
}

/** Grams of CO2 equivalent, SI-prefixed: "12.3 g CO₂e", "940 mg CO₂e", "1.2 kg CO₂e". */
export function formatEmissions(grams: number | null | undefined): string {
  if (grams === null || grams === undefined || !Number.isFinite(grams)) {
    return '– g CO₂e';
  }
  return `${withPrefix(grams, 'g')} CO₂e`;
}

/** Money in the currency's own notation (Intl.NumberFormat, the browser's language): two
 * decimals from 0.01 ("€0.12"), two significant digits below ("€0.0031", "€0.000067"), and
 * "< €0.000001" for less, rather than an exponent. An unknown currency code is printed after
 * the number. */
export function formatCost(
  cost: number | null | undefined,
  currency: string | null | undefined,
  locale?: string
): string {
  if (cost === null || cost === undefined || !Number.isFinite(cost)) {
    return '–';
  }
  const tiny = 1e-6;
  const a = Math.abs(cost);
  const options: Intl.NumberFormatOptions =
    a >= 0.01 || a === 0
      ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
      : { maximumSignificantDigits: 2 };
  const value = a > 0 && a < tiny ? tiny : cost;
  const prefix = a > 0 && a < tiny ? '< ' : '';
  if (currency) {
    try {
      const f = new Intl.NumberFormat(locale, { style: 'currency', currency, ...options });
      return prefix + f.format(value);
    } catch {
      // not an ISO 4217 code: the number, then the code as energyd gave it
    }
  }
  const n = new Intl.NumberFormat(locale, options).format(value);
  return prefix + (currency ? `${n} ${currency}` : n);
}

/** Time ticks on one line, as precise as the visible span needs (the narrow side bar has no
 * room for uPlot's two-line default). */
export function timeTick(t: number, spanS: number): string {
  const d = new Date(t * 1000);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (spanS <= 600) {
    return `${hm}:${pad(d.getSeconds())}`;
  }
  if (spanS <= 2 * 86400) {
    return hm;
  }
  return `${d.getMonth() + 1}/${d.getDate()}`;
}

/** The user's share ("you") in one sentence, every figure as the `you` answer gives it;
 * `error` says why there is none. */
export function youText(you: IYou | null, error: string | null, unit: EnergyUnit = 'J'): string {
  if (!you || you.you.joules === null) {
    return `Your share is not available${error ? `: ${error}` : ' yet'}.`;
  }
  const y = you.you;
  const share = y.share !== null ? `, ${(y.share * 100).toFixed(1)}% of the machine’s ${formatEnergy(you.machine.joules, unit)}` : '';
  // The API's label says what the figure is ("estimate: this user's CPU-time share of …").
  const what = /^estimate/i.test(y.label) ? y.label : `an estimate: ${y.label || y.method}`;
  let text =
    `You (${y.name}, all your processes): ${formatEnergy(y.joules, unit)} since the server started${share}` +
    ` — ${what}.`;
  if (y.emissions_g !== null && y.emissions_g !== undefined) {
    text += ` ≈ ${formatEmissions(y.emissions_g)}`;
    if (y.cost !== null && y.cost !== undefined) {
      text += `, ${formatCost(y.cost, y.currency)}`;
    }
    text += ' (estimated).';
  }
  return text;
}
