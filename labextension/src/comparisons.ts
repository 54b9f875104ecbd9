/**
 * Everyday comparisons that make an amount of energy tangible. Each value is in joules and is
 * either computed here from physics (the arithmetic is in the comment) or cited (the source is in
 * the comment). `chooseComparison` picks the one nearest on a logarithmic scale, so the multiplier
 * in the sentence stays small ("enough to boil 1 litre of water 3 times").
 */

export interface IComparison {
  /** Joules it takes. */
  joules: number;
  emoji: string;
  /** A verb phrase that follows "enough to …". */
  action: string;
}

const G = 9.81; // m/s², standard gravity
const WATER_J_PER_KG_K = 4186; // specific heat of liquid water, J/(kg·K)
const KCAL = 4184; // J per kilocalorie (thermochemical calorie, by definition)
const WH = 3600; // J per watt-hour

export const COMPARISONS: IComparison[] = [
  // A key press: about 0.5 N over 4 mm of travel (typical membrane/mechanical switch) = 2 mJ.
  { joules: 0.5 * 0.004, emoji: '⌨️', action: 'press a keyboard key' },
  // A 1 g paper clip lifted 1 m: m·g·h = 0.001 × 9.81 × 1 = 9.8 mJ.
  { joules: 0.001 * G * 1, emoji: '📎', action: 'lift a paper clip by 1 m' },
  // A 7.5 g coin (one euro) lifted 1 m: 0.0075 × 9.81 × 1 = 74 mJ.
  { joules: 0.0075 * G * 1, emoji: '🪙', action: 'lift a coin by 1 m' },
  // A 100 g apple lifted 1 m: 0.1 × 9.81 × 1 = 0.98 J (the classic "one joule").
  { joules: 0.1 * G * 1, emoji: '🍎', action: 'lift an apple by 1 m' },
  // One heartbeat: stroke volume 70 mL against a mean arterial pressure of ~13.3 kPa
  // (100 mmHg) is 70e-6 m³ × 13.3e3 Pa ≈ 0.93 J of work by the left ventricle.
  { joules: 70e-6 * 13.3e3, emoji: '❤️', action: 'power one heartbeat' },
  // A 1 L bottle of water (1 kg) lifted 50 cm: 1 × 9.81 × 0.5 = 4.9 J.
  { joules: 1 * G * 0.5, emoji: '🍼', action: 'lift a litre bottle of water by 50 cm' },
  // A phone idling for a minute at ~0.5 W (typical smartphone screen-off drain): 30 J.
  { joules: 0.5 * 60, emoji: '📵', action: 'keep an idle phone on for a minute' },
  // A tennis serve: 57 g ball at 50 m/s (180 km/h), ½mv² = 0.5 × 0.057 × 50² = 71 J.
  { joules: 0.5 * 0.057 * 50 * 50, emoji: '🎾', action: 'serve a tennis ball at 180 km/h' },
  // A baseball pitch: 145 g ball at 40 m/s (144 km/h), ½mv² = 116 J.
  { joules: 0.5 * 0.145 * 40 * 40, emoji: '⚾', action: 'pitch a baseball at 144 km/h' },
  // A push-up: ~60% of a 70 kg body raised 0.3 m: 0.6 × 70 × 9.81 × 0.3 = 124 J.
  { joules: 0.6 * 70 * G * 0.3, emoji: '💪', action: 'do one push-up' },
  // A 3 W torch for 3 minutes: 3 × 180 = 540 J.
  { joules: 3 * 180, emoji: '🔦', action: 'run a torch for 3 minutes' },
  // A flight of stairs: 70 kg person climbing 3 m, m·g·h = 2.06 kJ.
  { joules: 70 * G * 3, emoji: '🪜', action: 'carry a person up one flight of stairs' },
  // A Google search: 0.0003 kWh = 1.08 kJ (Google Official Blog, "Powering a Google search",
  // 2009-01-11).
  { joules: 0.3 * WH, emoji: '🔎', action: 'answer a web search' },
  // Warming 1 kg of water by 1 °C: one kilocalorie, 4184 J by definition.
  { joules: KCAL, emoji: '🌡️', action: 'warm 1 litre of water by 1 °C' },
  // An alkaline AA cell: ~2.5 Ah × 1.2 V mean ≈ 3 Wh = 10.8 kJ (Energizer E91 datasheet).
  { joules: 3 * WH, emoji: '🔋', action: 'drain an AA battery' },
  // Cycling 1 km at 20 km/h: ~100 W at the pedals for 180 s = 18 kJ (mechanical work).
  { joules: 100 * 180, emoji: '🚲', action: 'pedal a bicycle for 1 km' },
  // A 10 W LED bulb for an hour: 36 kJ.
  { joules: 10 * WH, emoji: '💡', action: 'light an LED bulb for an hour' },
  // A full smartphone charge: ~3.2 Ah × 3.85 V ≈ 12.3 Wh ≈ 44 kJ (typical 2020s phone battery).
  { joules: 3.2 * 3.85 * WH, emoji: '📱', action: 'charge a smartphone' },
  // A 15 W laptop for an hour: 54 kJ.
  { joules: 15 * WH, emoji: '💻', action: 'run a laptop for an hour' },
  // A microwave oven for a minute: ~1.2 kW drawn from the wall for 800 W of microwaves: 72 kJ.
  { joules: 1200 * 60, emoji: '🍿', action: 'run a microwave oven for a minute' },
  // A cup of tea: 250 g of water from 20 °C to 100 °C, 0.25 × 4186 × 80 = 84 kJ.
  { joules: 0.25 * WATER_J_PER_KG_K * 80, emoji: '☕', action: 'boil water for a cup of tea' },
  // Walking 1 km: ~0.5 kcal per kg per km (ACSM metabolic equations) × 70 kg = 35 kcal = 146 kJ.
  { joules: 0.5 * 70 * KCAL, emoji: '🚶', action: 'fuel a 1 km walk' },
  // An hour of video streaming: 0.077 kWh (IEA, "The carbon footprint of streaming video",
  // 2020) = 277 kJ.
  { joules: 0.077 * 3.6e6, emoji: '🎬', action: 'stream an hour of video' },
  // Boiling 1 litre of water from 20 °C: 1 × 4186 × 80 = 335 kJ.
  { joules: 1 * WATER_J_PER_KG_K * 80, emoji: '🫖', action: 'boil 1 litre of water' },
  // A medium banana: 105 kcal (USDA FoodData Central, banana, raw, 118 g) = 439 kJ.
  { joules: 105 * KCAL, emoji: '🍌', action: 'equal the food energy of a banana' },
  // A hair dryer for 5 minutes at 1.8 kW: 540 kJ.
  { joules: 1800 * 300, emoji: '💇', action: 'run a hair dryer for 5 minutes' },
  // An electric car for 1 km: ~17 kWh/100 km (US EPA fueleconomy.gov, mid-size EVs) = 612 kJ.
  { joules: 0.17 * 3.6e6, emoji: '🚙', action: 'drive an electric car for 1 km' },
  // A 50 g chocolate bar: ~250 kcal (nutrition labels of common milk-chocolate bars) = 1.05 MJ.
  { joules: 250 * KCAL, emoji: '🍫', action: 'equal the food energy of a chocolate bar' },
  // A pot of pasta water: 4 L from 20 °C to 100 °C, 4 × 4186 × 80 = 1.34 MJ.
  { joules: 4 * WATER_J_PER_KG_K * 80, emoji: '🍝', action: 'boil a pot of pasta water' },
  // A petrol car for 1 km: 7 L/100 km × 34.2 MJ/L (lower heating value of petrol) = 2.39 MJ.
  { joules: 0.07 * 34.2e6, emoji: '🚗', action: 'drive a petrol car for 1 km' },
  // A fridge for a day: ~300 kWh a year (EU energy label, 300 L class) / 365 = 0.82 kWh = 2.96 MJ.
  { joules: (300 / 365) * 3.6e6, emoji: '🧊', action: 'run a fridge for a day' },
  // A washing-machine cycle at 40 °C: ~0.9 kWh (EU energy label figures) = 3.24 MJ.
  { joules: 0.9 * 3.6e6, emoji: '🧺', action: 'run a washing machine cycle' },
  // A 10-minute hot shower: 8 L/min × 10 min, heated by 25 K: 80 × 4186 × 25 = 8.4 MJ.
  { joules: 80 * WATER_J_PER_KG_K * 25, emoji: '🚿', action: 'heat a 10-minute shower' },
  // A day of food for an adult: 2000 kcal (US FDA daily-value reference) = 8.4 MJ.
  { joules: 2000 * KCAL, emoji: '🍽️', action: 'feed an adult for a day' },
  // A household for a day: ~3,600 kWh a year per EU household (Eurostat/Odyssee-Mure, 2020s)
  // / 365 = 9.9 kWh = 35.5 MJ.
  { joules: (3600 / 365) * 3.6e6, emoji: '🏠', action: 'power a household for a day' },
  // A petrol car for 100 km: 7 L × 34.2 MJ/L = 239 MJ.
  { joules: 7 * 34.2e6, emoji: '🛣️', action: 'drive a petrol car for 100 km' },
  // A lightning bolt: about 1 GJ (NOAA National Severe Storms Laboratory, order of magnitude).
  { joules: 1e9, emoji: '🌩️', action: 'match a lightning bolt' }
];

export interface IChosenComparison {
  comparison: IComparison;
  /** joules / comparison.joules */
  ratio: number;
  /** The sentence's tail: "enough to boil 1 litre of water 3 times". */
  phrase: string;
}

/** The comparison nearest to `joules` on a log scale (null for zero or invalid energy). */
export function chooseComparison(
  joules: number,
  table: IComparison[] = COMPARISONS
): IChosenComparison | null {
  if (!Number.isFinite(joules) || joules <= 0 || table.length === 0) {
    return null;
  }
  let best = table[0];
  let bestDistance = Infinity;
  for (const c of table) {
    const d = Math.abs(Math.log(joules / c.joules));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const ratio = joules / best.joules;
  return { comparison: best, ratio, phrase: comparisonPhrase(best, ratio) };
}

/** "enough to X", "enough to X twice", "enough to X 3 times", "about 2.5 times what it takes
 * to X", "about 40% of what it takes to X": a count only where it is a whole number, so that
 * no sentence ends in "… by 1 °C 1.5 times". */
export function comparisonPhrase(c: IComparison, ratio: number): string {
  if (ratio < 0.95) {
    return `about ${Math.round(ratio * 100)}% of what it takes to ${c.action}`;
  }
  if (ratio < 1.1) {
    return `enough to ${c.action}`;
  }
  const whole = Math.round(ratio);
  if (ratio >= 10 || Math.abs(ratio - whole) < 0.1) {
    return whole === 2 ? `enough to ${c.action} twice` : `enough to ${c.action} ${whole} times`;
  }
  return `about ${ratio.toFixed(1)} times what it takes to ${c.action}`;
}
