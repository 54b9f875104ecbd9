import { describe, expect, it } from 'vitest';

import { mixBands } from '../src/mix';

describe('mixBands', () => {
  it('stacks the groups of each step in a fixed order', () => {
    const bands = mixBands([0, 60, 120], 60, {
      renewable: [0.5, null, 0.2],
      fossil: [0.3, null, 0.7],
      nuclear: [0.2, null, 0.1]
    });
    expect(bands).toHaveLength(2); // the step without a mix has no band
    expect(bands[0]).toEqual({
      from: 0,
      to: 60,
      parts: [
        { group: 'renewable', start: 0, share: 0.5 },
        { group: 'nuclear', start: 0.5, share: 0.2 },
        { group: 'fossil', start: 0.7, share: 0.3 }
      ]
    });
    expect(bands[1].from).toBe(120);
    expect(bands[1].parts.map(p => p.group)).toEqual(['renewable', 'nuclear', 'fossil']);
  });
  it('is empty without a mix', () => {
    expect(mixBands([0, 60], 60, undefined)).toEqual([]);
    expect(mixBands([0, 60], 60, {})).toEqual([]);
  });
});
