/**
 * The server computes, the front end displays (docs/jupyter.md, issue 13): labextension/src
 * holds no energy ÷ time (mean power), no power × time (energy) and no mean or standard
 * deviation of its own; those figures are the API's `watts`, `joules` and `runs` statistics.
 * This reads every source file, without comments and string literals, and looks at the two
 * operands of every `/` and `*`.
 */
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { describe, expect, it } from 'vitest';

const SRC = join(__dirname, '..', 'src');

const ENERGY = /joule|\bd?j\b|[a-z]J\b|_j\b|energy|kwh/i;
const POWER = /watt|power|\bd?w\b|[a-z]W\b/;
const TIME = /second|duration|elapsed|\bdt\b|\w_s\b|\bto\b|\bfrom\b|interval|\btime\b/i;
const COUNT = /^\(?\s*(n|n\s*-\s*1|count|[\w.]+\.length)\s*\)?$/;

/** Source text with comments removed and string / template / regex text blanked (template
 * `${…}` expressions kept: they are code). */
export function codeOnly(source: string): string {
  let out = '';
  const stack: string[] = []; // open template literals (`) and ${ braces
  let i = 0;
  let lastSignificant = '';
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    const top = stack[stack.length - 1];
    if (top === '`') {
      if (c === '\\') {
        i += 2;
      } else if (c === '`') {
        stack.pop();
        out += '""';
        i++;
      } else if (c === '$' && next === '{') {
        stack.push('{');
        out += ' (';
        i += 2;
      } else {
        i++;
      }
      continue;
    }
    if (c === '/' && next === '/') {
      while (i < source.length && source[i] !== '\n') {
        i++;
      }
      continue;
    }
    if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 2;
      out += ' ';
      continue;
    }
    // A regular expression literal: a slash where an operand is expected.
    if (c === '/' && (lastSignificant === '' || /[(,=:[!&|?{};]/.test(lastSignificant))) {
      i++;
      let cls = false;
      while (i < source.length && (source[i] !== '/' || cls)) {
        if (source[i] === '\\') {
          i++;
        } else if (source[i] === '[') {
          cls = true;
        } else if (source[i] === ']') {
          cls = false;
        }
        i++;
      }
      i++;
      while (/[a-z]/.test(source[i] ?? '')) {
        i++;
      }
      out += '/re/';
      lastSignificant = '/';
      continue;
    }
    if (c === '"' || c === "'") {
      i++;
      while (i < source.length && source[i] !== c) {
        i += source[i] === '\\' ? 2 : 1;
      }
      i++;
      out += '""';
      lastSignificant = '"';
      continue;
    }
    if (c === '`') {
      stack.push('`');
      i++;
      continue;
    }
    if (c === '{' && stack.length) {
      stack.push('{');
    } else if (c === '}' && top === '{') {
      stack.pop();
      out += ') ';
      i++;
      continue;
    }
    out += c;
    if (!/\s/.test(c)) {
      lastSignificant = c;
    }
    i++;
  }
  return out.replace(/\s+/g, ' ');
}

/** The operand left of position `at` (an identifier chain or a bracketed group). */
function leftOperand(code: string, at: number): string {
  let i = at - 1;
  while (i >= 0 && code[i] === ' ') {
    i--;
  }
  const end = i + 1;
  for (;;) {
    if (i >= 0 && (code[i] === ')' || code[i] === ']')) {
      let depth = 0;
      for (; i >= 0; i--) {
        depth += code[i] === ')' || code[i] === ']' ? 1 : code[i] === '(' || code[i] === '[' ? -1 : 0;
        if (depth === 0) {
          break;
        }
      }
      i--;
    } else if (i >= 0 && /[\w$.!?]/.test(code[i])) {
      i--;
    } else {
      break;
    }
  }
  return code.slice(i + 1, end);
}

/** The operand right of position `at` (unary signs, an identifier chain, calls, a group). */
function rightOperand(code: string, at: number): string {
  let i = at + 1;
  while (code[i] === ' ' || code[i] === '-' || code[i] === '+') {
    i++;
  }
  const start = i;
  for (;;) {
    if (code[i] === '(' || code[i] === '[') {
      let depth = 0;
      for (; i < code.length; i++) {
        depth += code[i] === '(' || code[i] === '[' ? 1 : code[i] === ')' || code[i] === ']' ? -1 : 0;
        if (depth === 0) {
          break;
        }
      }
      i++;
    } else if (i < code.length && /[\w$.?]/.test(code[i])) {
      i++;
    } else {
      break;
    }
  }
  return code.slice(start, i);
}

/** Every client-side energy formula in `source`: [what, the expression]. */
export function energyArithmetic(source: string): [string, string][] {
  const code = codeOnly(source);
  const found: [string, string][] = [];
  if (/Math\.sqrt|\bvariance\b|\bstddev\b|\bmeanSd\b/.test(code)) {
    found.push(['standard deviation', (code.match(/Math\.sqrt|\bvariance\b|\bstddev\b|\bmeanSd\b/) ?? [''])[0]]);
  }
  for (let i = 0; i < code.length; i++) {
    const op = code[i];
    if ((op !== '/' && op !== '*') || code[i + 1] === op || code[i - 1] === op || code[i + 1] === '=') {
      continue;
    }
    if (code.slice(i - 1, i + 3) === '/re/' || code.slice(i - 4, i + 1) === '/re/') {
      continue;
    }
    const left = leftOperand(code, i);
    const right = rightOperand(code, i);
    const expr = `${left} ${op} ${right}`;
    if (op === '/' && ENERGY.test(left) && TIME.test(right)) {
      found.push(['energy ÷ time', expr]);
    } else if (op === '*' && ((POWER.test(left) && TIME.test(right)) || (TIME.test(left) && POWER.test(right)))) {
      found.push(['power × time', expr]);
    } else if (op === '/' && COUNT.test(right.trim())) {
      found.push(['mean', expr]);
    }
  }
  return found;
}

describe('no energy arithmetic in labextension/src', () => {
  it('finds the formulas the front end once had (the check can fail)', () => {
    // Earlier model.ts, cellenergy.ts and format.ts, verbatim.
    expect(energyArithmetic('const dt = b.to - a.to;\nconst dj = b.host.joules - a.host.joules;\nreturn dt > 0.2 && dj >= 0 ? dj / dt : null;'))
      .toEqual([['energy ÷ time', 'dj / dt']]);
    expect(energyArithmetic('host_watts:\n  hostJ !== null && answer.to - answer.from > 0 ? hostJ / (answer.to - answer.from) : null,'))
      .toEqual([['energy ÷ time', 'hostJ / (answer.to - answer.from)']]);
    expect(energyArithmetic('const mean = values.reduce((a, b) => a + b, 0) / n;')).toEqual([['mean', 'values.reduce((a, b) => a + b, 0) / n']]);
    expect(energyArithmetic('const variance =\n  values.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (n - 1);\nreturn { n, mean, sd: Math.sqrt(variance) };').map(f => f[0]))
      .toEqual(['standard deviation', 'mean']);
    expect(energyArithmetic('const j = run.watts * run.duration_s;')).toEqual([['power × time', 'run.watts * run.duration_s']]);
    expect(energyArithmetic('x = `${formatEnergy(e.joules / e.seconds)} mean`;')).toEqual([['energy ÷ time', 'e.joules / e.seconds']]);
    expect(energyArithmetic('const avg = total / rows.length;')).toEqual([['mean', 'total / rows.length']]);
  });
  it('leaves unit conversions, shares and formatting alone', () => {
    expect(energyArithmetic('return joules / JOULES_PER_WH; // per second / hour')).toEqual([]);
    expect(energyArithmetic("const s = '/ seconds * watts'; const r = /J\\/s/.test(s);")).toEqual([]);
    expect(energyArithmetic('Math.round(seconds * 1000); (y.share * 100).toFixed(1)')).toEqual([]);
  });
  it('finds none in the sources', () => {
    const files = readdirSync(SRC).filter(f => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    const found = files.flatMap(f =>
      energyArithmetic(readFileSync(join(SRC, f), 'utf8')).map(([what, expr]) => `${f}: ${what}: ${expr}`)
    );
    expect(found).toEqual([]);
  });
});
