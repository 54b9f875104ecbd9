/**
 * The generation mix behind the long-term chart: for each step, the grid's generation shares
 * (renewable, fossil, nuclear, storage, other) stacked as a vertical band, as the seed system drew
 * it. Pure functions; the chart draws the bands.
 */

export const MIX_GROUPS = ['renewable', 'nuclear', 'storage', 'fossil', 'other'] as const;
export type MixGroup = (typeof MIX_GROUPS)[number];

/** Colours per group, readable under a line chart in light and dark themes. */
export const MIX_COLORS: { [g in MixGroup]: string } = {
  renewable: '#43a047',
  nuclear: '#8e24aa',
  storage: '#1e88e5',
  fossil: '#6d4c41',
  other: '#9e9e9e'
};

export interface IMixPart {
  group: MixGroup;
  /** Cumulative share below this part, and its own share (0..1). */
  start: number;
  share: number;
}

export interface IMixBand {
  from: number;
  to: number;
  parts: IMixPart[];
}

/** Bands from longterm's `t` (step starts), `step_s` and `mix` (group → shares per step). */
export function mixBands(
  t: number[],
  stepS: number,
  mix: { [group: string]: (number | null)[] } | undefined | null
): IMixBand[] {
  if (!mix) {
    return [];
  }
  const bands: IMixBand[] = [];
  t.forEach((start, i) => {
    let cum = 0;
    const parts: IMixPart[] = [];
    for (const group of MIX_GROUPS) {
      const share = mix[group]?.[i];
      if (typeof share === 'number' && share > 0) {
        parts.push({ group, start: cum, share });
        cum += share;
      }
    }
    if (parts.length) {
      bands.push({ from: start, to: start + stepS, parts });
    }
  });
  return bands;
}
