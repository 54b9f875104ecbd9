import { describe, expect, it } from 'vitest';

import {
  formatDuration,
  formatCost,
  formatDurationMeanSd,
  formatEmissions,
  formatEnergy,
  formatDurationStat,
  formatInterval,
  formatPowerRef,
  formatStat,
  formatNumber,
  formatPower,
  isEnergyUnit,
  joulesTo,
  nextUnit,
  qualityLabel,
  timeTick,
  youText
} from '../src/format';
import { parseKernelDate } from '../src/time';

describe('formatNumber', () => {
  it('uses 0 decimals from 100, 1 from 1, 2 significant digits below', () => {
    expect(formatNumber(123.456)).toBe('123');
    expect(formatNumber(12.345)).toBe('12.3');
    expect(formatNumber(4.5)).toBe('4.5');
    expect(formatNumber(0.012345)).toBe('0.012');
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(NaN)).toBe('–');
  });
});

describe('formatPower', () => {
  it('prefixes watts', () => {
    expect(formatPower(12.34)).toBe('12.3 W');
    expect(formatPower(1234)).toBe('1.2 kW');
    expect(formatPower(0.85)).toBe('850 mW');
    expect(formatPower(0)).toBe('0 W');
    expect(formatPower(null)).toBe('– W');
  });
  it('never prints 1000 of a smaller prefix', () => {
    expect(formatPower(999.7)).toBe('1.0 kW');
    expect(formatPower(999.4)).toBe('999 W');
  });
});

describe('formatEnergy and unit switching', () => {
  it('J is SI-prefixed', () => {
    expect(formatEnergy(4500, 'J')).toBe('4.5 kJ');
    expect(formatEnergy(10000)).toBe('10.0 kJ');
    expect(formatEnergy(21.3, 'J')).toBe('21.3 J');
    expect(formatEnergy(2.5e6, 'J')).toBe('2.5 MJ');
  });
  it('Wh and kWh are fixed units', () => {
    expect(formatEnergy(3600, 'Wh')).toBe('1.0 Wh');
    expect(formatEnergy(36, 'Wh')).toBe('0.01 Wh');
    expect(formatEnergy(3.6e6, 'kWh')).toBe('1.0 kWh');
    expect(formatEnergy(10000, 'kWh')).toBe('0.0028 kWh');
    expect(formatEnergy(undefined, 'kWh')).toBe('– kWh');
  });
  it('converts for chart axes', () => {
    expect(joulesTo(7200, 'Wh')).toBe(2);
    expect(joulesTo(7.2e6, 'kWh')).toBe(2);
    expect(joulesTo(5, 'J')).toBe(5);
  });
  it('cycles J → Wh → kWh → J', () => {
    expect(nextUnit('J')).toBe('Wh');
    expect(nextUnit('Wh')).toBe('kWh');
    expect(nextUnit('kWh')).toBe('J');
  });
  it('validates unit settings', () => {
    expect(isEnergyUnit('Wh')).toBe(true);
    expect(isEnergyUnit('cal')).toBe(false);
    expect(isEnergyUnit(3)).toBe(false);
  });
});

describe('formatDuration', () => {
  it('picks ms, s, min, h', () => {
    expect(formatDuration(0.85)).toBe('850 ms');
    expect(formatDuration(1.234)).toBe('1.23 s');
    expect(formatDuration(12.34)).toBe('12.3 s');
    expect(formatDuration(125)).toBe('2 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
  });
});

describe('formatDurationMeanSd', () => {
  it('keeps a small sd visible in the mean’s unit', () => {
    expect(formatDurationMeanSd(0.3042, 0.0004)).toBe('304.2 ms ± 0.4 ms');
    expect(formatDurationMeanSd(0.3042, 0.02)).toBe('304 ms ± 20 ms');
    expect(formatDurationMeanSd(1.0123, 0.0031)).toBe('1.012 s ± 0.003 s');
    expect(formatDurationMeanSd(12.3, 0.5)).toBe('12.30 s ± 0.50 s');
  });
});

describe('labels and statistics', () => {
  it('says measured or estimated', () => {
    expect(qualityLabel(true)).toBe('measured');
    expect(qualityLabel(false)).toBe('estimated');
    expect(qualityLabel(undefined)).toBe('estimated');
  });
  it('formats the statistics energyd gives, one prefix for mean, sd and interval', () => {
    const s = { n: 3, mean: 1.2, sd: 0.2, rel_sd: 0.1667, ci95_low: 0.7032, ci95_high: 1.6968 };
    const fmt = (x: number, ref: number) => formatEnergy(x, 'J', ref);
    expect(formatStat(s, fmt)).toBe('1.2 J ± 0.2 J');
    expect(formatInterval(s, fmt)).toBe(', 95 % interval 0.7 J – 1.7 J');
    expect(formatStat({ ...s, mean: 1500, sd: 20 }, fmt)).toBe('1.5 kJ ± 0.02 kJ');
    expect(formatStat({ ...s, mean: 25.04, sd: 0.5 }, formatPowerRef)).toBe('25.0 W ± 0.5 W');
    const one = { n: 1, mean: 2, sd: null, rel_sd: null, ci95_low: null, ci95_high: null };
    expect(formatStat(one, fmt)).toBe('2.0 J (one run)');
    expect(formatInterval(one, fmt)).toBe('');
    expect(formatDurationStat({ ...s, mean: 0.3012, sd: 0.0021 })).toBe('301.2 ms ± 2.1 ms');
    expect(formatDurationStat(one)).toBe('2.00 s (one run)');
  });
});

describe('parseKernelDate', () => {
  it('keeps microseconds and honours the zone', () => {
    expect(parseKernelDate('2026-11-22T00:30:00.123456Z')).toBeCloseTo(1795307400.123456, 6);
    expect(parseKernelDate('2026-11-22T01:30:00.5+01:00')).toBeCloseTo(1795307400.5, 6);
    expect(parseKernelDate('2026-11-22T00:30:00')).toBe(1795307400);
    expect(parseKernelDate('')).toBeNull();
    expect(parseKernelDate('yesterday')).toBeNull();
  });
});

describe('emissions and cost', () => {
  it('prefixes grams of CO2e', () => {
    expect(formatEmissions(12.34)).toBe('12.3 g CO₂e');
    expect(formatEmissions(0.00094)).toBe('0.94 mg CO₂e');
    expect(formatEmissions(1234)).toBe('1.2 kg CO₂e');
    expect(formatEmissions(null)).toBe('– g CO₂e');
  });
  it('shows small costs with two significant digits', () => {
    expect(formatCost(1.234, 'EUR', 'en-GB')).toBe('€1.23');
    expect(formatCost(1234.5, 'EUR', 'de-DE')).toBe('1.234,50\u00a0€');
    expect(formatCost(0.0031, 'EUR', 'en-GB')).toBe('€0.0031');
    // The figure the issue found printed as "6.7e-8 EUR".
    expect(formatCost(6.7e-8, 'EUR', 'en-GB')).toBe('< €0.000001');
    expect(formatCost(6.7e-5, 'USD', 'en-US')).toBe('$0.000067');
    expect(formatCost(0.5, 'XYZW', 'en-GB')).toBe('0.50 XYZW'); // not a currency code
    expect(formatCost(0, null, 'en-GB')).toBe('0.00');
    expect(formatCost(null, 'EUR')).toBe('–');
  });
});

describe('timeTick', () => {
  it('is as precise as the span needs, on one line', () => {
    const t = new Date(2026, 10, 22, 9, 5, 7).getTime() / 1000; // local time
    expect(timeTick(t, 100)).toBe('09:05:07');
    expect(timeTick(t, 86400)).toBe('09:05');
    expect(timeTick(t, 7 * 86400)).toBe('11/22');
  });
});

describe('youText (the user share)', () => {
  const you = (joules: number | null, emissions: number | null, cost: number | null) => ({
    from: 0, to: 10,
    machine: { joules: 1000, measured: true, coverage: ['rapl:package-0'], emissions_g: 0.1, cost: 0.01, currency: 'EUR' },
    you: {
      uid: 1000, name: 'ada', scope: 'user:1000', joules, share: joules === null ? null : 0.25,
      emissions_g: emissions, cost, currency: 'EUR', method: 'cpu-time-share', measured: false as const,
      label: "estimate: this user's CPU-time share of the machine's measured total"
    }
  });
  it('gives the API figures as they are and says it is an estimate', () => {
    const t = youText(you(250, 0.025, 0.0025), null, 'J');
    expect(t).toContain('You (ada, all your processes): 250 J since the server started, 25.0% of the machine’s 1.0 kJ');
    expect(t).toContain("— estimate: this user's CPU-time share of the machine's measured total.");
    expect(t).toContain('≈ 25.0 mg CO₂e, ');
    expect(t).toContain('0.0025');
    expect(t).toContain('(estimated)');
  });
  it('leaves out emissions the API does not give and says why a share is missing', () => {
    expect(youText(you(250, null, null), null)).not.toContain('CO₂e');
    const other = you(250, null, null);
    other.you.label = 'share by cpu-time-share';
    expect(youText(other, null)).toContain('— an estimate: share by cpu-time-share.');
    expect(youText(null, 'energyd attributes after two scans')).toBe('Your share is not available: energyd attributes after two scans.');
    expect(youText(you(null, null, null), null)).toBe('Your share is not available yet.');
  });
});
