/**
 * Protocol sniffing: the first bytes of a connection say which adapter serves it.
 * `IB2` → IB2, `IB1` → IB1, an HTTP method token followed by a space → HTTP, anything else → refused.
 */
import type { ProtocolName } from './types.js';

const CANDIDATES: Array<{ prefix: Buffer; protocol: ProtocolName }> = [
  { prefix: Buffer.from('IB2'), protocol: 'IB2' },
  { prefix: Buffer.from('IB1'), protocol: 'IB1' },
  ...['GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH'].map((m) => ({ prefix: Buffer.from(`${m} `), protocol: 'HTTP' as const })),
];

/** The most bytes sniffing ever needs ("OPTIONS "). */
export const SNIFF_MAX_BYTES = Math.max(...CANDIDATES.map((c) => c.prefix.length));

/**
 * Decides from the bytes received so far: a protocol, `'more'` (a candidate still fits: wait for more
 * bytes) or `'bad'` (no candidate can match).
 */
export function sniffProtocol(bytes: Buffer): ProtocolName | 'more' | 'bad' {
  let more = false;
  for (const c of CANDIDATES) {
    const n = Math.min(bytes.length, c.prefix.length);
    if (bytes.compare(c.prefix, 0, n, 0, n) !== 0) continue;
    if (n === c.prefix.length) return c.protocol;
    more = true;
  }
  return more ? 'more' : 'bad';
}
