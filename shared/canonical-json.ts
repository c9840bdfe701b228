// One JSON text per value, whatever the key order it arrived in: keys sorted, undefined members
// dropped. What request hashes and fingerprints are computed over, so a client that re-sends the
// same request with other whitespace or key order is recognised. Kept free of Node imports.

/**
 * `value` as canonical JSON. A bare `undefined` (or a function) becomes `null`, as it does inside
 * an array: the services' idempotency hashes were first computed that way and must not change.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
