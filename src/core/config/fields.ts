/**
 * The value types of the config schemas. Each is `z.unknown()` plus a conversion that either returns the
 * typed value or reports "expected ...", so every message is ours and names what was expected. The
 * conversions carry the original's leniency: numbers written as strings, 0/1 flags, case-insensitive levels.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/** Marks the custom issues the error formatter treats specially. */
export type IssueKind = 'missing' | 'invalid' | 'unknown_key';

type Converted<T> = { ok: true; value: T } | { ok: false };

const ok = <T>(value: T): Converted<T> => ({ ok: true, value });
const bad = { ok: false } as const;

/**
 * A field whose raw value goes through `convert`. Missing (undefined) is reported as a missing required key;
 * add `.default(...)` or `.optional()` to make it optional.
 */
export function field<T>(expected: string, convert: (v: unknown) => Converted<T>) {
  return z.unknown().transform((v, ctx): T => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: expected, params: { kind: 'missing' satisfies IssueKind } });
      return z.NEVER;
    }
    const r = convert(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: expected, params: { kind: 'invalid' satisfies IssueKind } });
      return z.NEVER;
    }
    return r.value;
  });
}

const INT_RE = /^\s*[+-]?[0-9]+\s*$/;
const NUM_RE = /^\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*$/;

/** A number, or a string holding one (the original writes `"timeout" : "50"`). */
function toNumber(v: unknown, integer: boolean): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && (!integer || Number.isInteger(v)) ? v : undefined;
  if (typeof v === 'string' && (integer ? INT_RE : NUM_RE).test(v)) {
    const n = Number(v.trim());
    return Number.isFinite(n) && (!integer || Number.isSafeInteger(n)) ? n : undefined;
  }
  return undefined;
}

function rangeText(min: number, max: number): string {
  if (max >= Number.MAX_SAFE_INTEGER) return `>= ${min}`;
  return `from ${min} to ${max}`;
}

/** An integer in [min, max] (strings of digits are coerced). */
export function intField(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return field<number>(`an integer ${rangeText(min, max)}`, (v) => {
    const n = toNumber(v, true);
    return n !== undefined && n >= min && n <= max ? ok(n) : bad;
  });
}

/** A duration in seconds; fractions allowed. `min` is exclusive when `exclusiveMin` (e.g. "> 0"). */
export function secondsField(min: number, opts: { exclusiveMin?: boolean; max?: number } = {}) {
  const max = opts.max ?? 31_536_000; // a year: anything longer is a typo
  const lower = opts.exclusiveMin === true ? `> ${min}` : `>= ${min}`;
  return field<number>(`a number of seconds ${lower} and <= ${max}`, (v) => {
    const n = toNumber(v, false);
    if (n === undefined || n > max) return bad;
    return (opts.exclusiveMin === true ? n > min : n >= min) ? ok(n) : bad;
  });
}

/** Any finite number (range checks are left to a later validation step). */
export function numberField() {
  return field<number>('a number', (v) => {
    const n = toNumber(v, false);
    return n === undefined ? bad : ok(n);
  });
}

/** A 0/1 flag: 0, 1, "0", "1", true, false, "true", "false". */
export function flagField() {
  return field<boolean>('0 or 1', (v) => {
    if (v === true || v === 1 || v === '1' || v === 'true') return ok(true);
    if (v === false || v === 0 || v === '0' || v === 'false') return ok(false);
    return bad;
  });
}

export interface TextOptions {
  minLength?: number;
  maxLength?: number;
  /** What the text must match, with its description for the message. */
  pattern?: { re: RegExp; text: string };
}

/** A string (a number written bare is taken as its decimal text). */
export function textField(opts: TextOptions = {}) {
  const min = opts.minLength ?? 0;
  const max = opts.maxLength ?? 4096;
  const parts = [min > 0 ? 'a non-empty string' : 'a string'];
  if (opts.maxLength !== undefined) parts.push(`of at most ${max} characters`);
  if (opts.pattern) parts.push(opts.pattern.text);
  return field<string>(parts.join(' '), (v) => {
    const s = typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
    if (s === undefined || s.length < min || s.length > max) return bad;
    if (opts.pattern && !opts.pattern.re.test(s)) return bad;
    return ok(s);
  });
}

/** One of fixed words, matched case-insensitively and returned as written in `values`. */
export function enumField<const T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}) {
  const byUpper = new Map<string, T>(values.map((x) => [x.toUpperCase(), x]));
  for (const [alias, target] of Object.entries(aliases)) byUpper.set(alias.toUpperCase(), target);
  const words = [...values, ...Object.keys(aliases)];
  return field<T>(`one of ${words.join(', ')}`, (v) => {
    const hit = typeof v === 'string' ? byUpper.get(v.trim().toUpperCase()) : undefined;
    return hit === undefined ? bad : ok(hit);
  });
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for an IPv4/IPv6 address or a host name. */
export function isHostText(s: string): boolean {
  return isIP(s) !== 0 || HOSTNAME_RE.test(s);
}

/** An IP address (or host name). */
export function hostField() {
  return field<string>('an IP address or host name', (v) => (typeof v === 'string' && isHostText(v) ? ok(v) : bad));
}

/** A TCP port; 0 (any free port) only where `allowZero`. */
export function portField(allowZero: boolean) {
  return intField(allowZero ? 0 : 1, 65535);
}

/** `ip:port`, or '' for none (ibms.misc.second_config_dump). */
export function addressOrEmptyField() {
  return field<string>('"" or an address "ip:port"', (v) => {
    if (v === '') return ok('');
    if (typeof v !== 'string') return bad;
    const at = v.lastIndexOf(':');
    if (at <= 0) return bad;
    const host = v.slice(0, at).replace(/^\[(.*)\]$/, '$1');
    const port = Number(v.slice(at + 1));
    return isHostText(host) && Number.isInteger(port) && port >= 1 && port <= 65535 ? ok(v) : bad;
  });
}

/** Node names: what the projects' node lists can hold (no whitespace, no comma), 1-32 characters. */
export const NODE_NAME = { minLength: 1, maxLength: 32, pattern: { re: /^[^\s,]+$/, text: 'without spaces or commas' } };
/** App codes (transaction codes): no whitespace (projects list them space-separated), 1-32 characters. */
export const APP_CODE = { minLength: 1, maxLength: 32, pattern: { re: /^\S+$/, text: 'without spaces' } };

/** Why a node name is not acceptable, or undefined when it is (for validating models built in code). */
export function nodeNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length < 1 || name.length > 32 || !NODE_NAME.pattern.re.test(name)) {
    return 'expected a non-empty string of at most 32 characters without spaces or commas';
  }
  return undefined;
}

/** Why an app code is not acceptable, or undefined when it is. */
export function appCodeProblem(code: unknown): string | undefined {
  if (typeof code !== 'string' || code.length < 1 || code.length > 32 || !APP_CODE.pattern.re.test(code)) {
    return 'expected a non-empty string of at most 32 characters without spaces';
  }
  return undefined;
}
