import { describe, expect, it } from 'vitest';

import { chooseComparison, comparisonPhrase, COMPARISONS } from '../src/comparisons';

describe('comparison table', () => {
  it('has at least 25 distinct, positive entries', () => {
    expect(COMPARISONS.length).toBeGreaterThanOrEqual(25);
    expect(new Set(COMPARISONS.map(c => c.emoji)).size).toBe(COMPARISONS.length);
    expect(new Set(COMPARISONS.map(c => c.action)).size).toBe(COMPARISONS.length);
    for (const c of COMPARISONS) {
      expect(c.joules).toBeGreaterThan(0);
    }
  });
  it('holds the computed physics values', () => {
    const kettle = COMPARISONS.find(c => c.emoji === '🫖')!;
    expect(kettle.joules).toBeCloseTo(334880, 0); // 1 kg × 4186 J/(kg·K) × 80 K
    const apple = COMPARISONS.find(c => c.emoji === '🍎')!;
    expect(apple.joules).toBeCloseTo(0.981, 3);
  });
});

describe('chooseComparison', () => {
  it('picks the nearest entry on a log scale', () => {
    expect(chooseComparison(335000)!.comparison.emoji).toBe('🫖');
    expect(chooseComparison(1)!.comparison.emoji).toBe('🍎');
    expect(chooseComparison(36000)!.comparison.emoji).toBe('💡');
  });
  it('every entry chooses itself', () => {
    for (const c of COMPARISONS) {
      expect(chooseComparison(c.joules)!.comparison).toBe(c);
    }
  });
  it('stays within a factor that keeps the sentence short', () => {
    // Neighbouring entries are at most ~a factor 10 apart, so the multiplier stays below ~5.
    for (let e = 0.01; e < 1e9; e *= 1.7) {
      const chosen = chooseComparison(e)!;
      expect(chosen.ratio).toBeLessThan(6);
      expect(chosen.ratio).toBeGreaterThan(1 / 6);
    }
  });
  it('returns null for no energy', () => {
    expect(chooseComparison(0)).toBeNull();
    expect(chooseComparison(-3)).toBeNull();
    expect(chooseComparison(NaN)).toBeNull();
  });
  it('phrases multiples and fractions', () => {
    const kettle = COMPARISONS.find(c => c.emoji === '🫖')!;
    expect(comparisonPhrase(kettle, 1)).toBe('enough to boil 1 litre of water');
    expect(comparisonPhrase(kettle, 3)).toBe('enough to boil 1 litre of water 3 times');
    expect(comparisonPhrase(kettle, 2.46)).toBe('about 2.5 times what it takes to boil 1 litre of water');
    expect(comparisonPhrase(kettle, 2.04)).toBe('enough to boil 1 litre of water twice');
    expect(comparisonPhrase(kettle, 1.05)).toBe('enough to boil 1 litre of water');
    expect(comparisonPhrase(kettle, 14.4)).toBe('enough to boil 1 litre of water 14 times');
    expect(comparisonPhrase(kettle, 0.4)).toBe('about 40% of what it takes to boil 1 litre of water');
  });
});
