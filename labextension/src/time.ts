/**
 * Kernel message timestamps. Kernels put ISO 8601 dates with microseconds in message headers
 * ("2026-11-22T00:30:00.123456Z"); Date.parse keeps milliseconds at best, so the fraction is
 * parsed separately to keep sub-millisecond precision.
 */
export function parseKernelDate(value: string | undefined | null): number | null {
  if (!value) {
    return null;
  }
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/.exec(value.trim());
  if (!m) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms / 1000;
  }
  const zone = m[3] ?? 'Z';
  const whole = Date.parse(m[1] + zone);
  if (Number.isNaN(whole)) {
    return null;
  }
  return whole / 1000 + (m[2] ? parseFloat(m[2]) : 0);
}
