/**
 * Turns schema issues and validation findings into one coded error whose message lines read
 * `file:line:col: <key path>: got <value>, expected <what>` (or `unknown key <path>`).
 */
import type { z } from 'zod';
import { IbpError } from '../errors.js';
import type { IssueKind } from './fields.js';
import type { ConfigSourcePos, LenientDocument } from './lenient-json.js';

export type ConfigProblemCode = 'IBP_ERR_CONFIG_INVALID' | 'IBP_ERR_CONFIG_UNKNOWN_KEY';

/** One thing wrong with a config file. */
export interface ConfigProblem {
  code: ConfigProblemCode;
  /** Key path inside the file (keys and array indexes). */
  path: (string | number)[];
  /** The line of the error message (with the file position in front when known). */
  message: string;
  file?: string;
  pos?: ConfigSourcePos;
}

/** How a key path reads in messages: `ibas.server.port`, `nodes[0].hosts[1].port`. */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out === '' ? '(top level)' : out;
}

/** A raw value as messages show it. */
export function showConfigValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' && v !== null) return 'an object';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function at(file: string | undefined, pos: ConfigSourcePos | undefined): string {
  if (file === undefined) return '';
  return pos === undefined ? `${file}: ` : `${file}:${pos.line}:${pos.col}: `;
}

function expectedOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.expected === 'nonoptional') return 'a value';
  if (issue.code === 'invalid_type') return issue.expected === 'array' || issue.expected === 'object' ? `an ${issue.expected}` : issue.expected;
  return issue.message;
}

/** Maps zod issues on a parsed document to problems located in the source. */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[], doc: LenientDocument): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const file = doc.fileName;
  for (const issue of issues) {
    const base = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    const kind = issue.code === 'custom' ? (issue.params?.kind as IssueKind | undefined) : undefined;
    if (issue.code === 'unrecognized_keys' || kind === 'unknown_key') {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...base, k]) : [base];
      for (const path of keys) {
        const loc = doc.locate(path);
        const pos = loc.keyPos ?? loc.pos;
        out.push({ code: 'IBP_ERR_CONFIG_UNKNOWN_KEY', path, file, pos, message: `${at(file, pos)}unknown key ${formatConfigPath(path)}` });
      }
      continue;
    }
    const loc = doc.locate(base);
    const expected = expectedOf(issue);
    const text = loc.found
      ? `${formatConfigPath(base)}: got ${showConfigValue(loc.value)}, expected ${expected}`
      : `${formatConfigPath(base)}: missing, expected ${expected}`;
    out.push({ code: 'IBP_ERR_CONFIG_INVALID', path: base, file, pos: loc.pos, message: `${at(file, loc.pos)}${text}` });
  }
  return out;
}

/** A problem found by a validation step (no zod issue): `text` follows the key path. */
export function locatedProblem(doc: LenientDocument | undefined, path: (string | number)[], text: string): ConfigProblem {
  if (doc === undefined) return { code: 'IBP_ERR_CONFIG_INVALID', path, message: text };
  const loc = doc.locate(path);
  return { code: 'IBP_ERR_CONFIG_INVALID', path, file: doc.fileName, pos: loc.pos, message: `${at(doc.fileName, loc.pos)}${text}` };
}

/**
 * One error for a list of problems: unknown keys first (a misspelt key often explains the other problems),
 * then the rest, each group in source order. Its code is the first problem's, its message has one line per
 * problem, and `details.problems` lists them as data.
 */
export function problemsToError(problems: readonly ConfigProblem[]): IbpError {
  const fileOrder = new Map<string, number>();
  for (const p of problems) if (!fileOrder.has(p.file ?? '')) fileOrder.set(p.file ?? '', fileOrder.size);
  const rank = (p: ConfigProblem) => (p.code === 'IBP_ERR_CONFIG_UNKNOWN_KEY' ? 0 : 1);
  const sorted = [...problems].sort((a, b) =>
    rank(a) - rank(b)
    || (fileOrder.get(a.file ?? '') ?? 0) - (fileOrder.get(b.file ?? '') ?? 0)
    || (a.pos?.offset ?? Infinity) - (b.pos?.offset ?? Infinity));
  const first = sorted[0];
  if (first === undefined) return new IbpError('IBP_ERR_INTERNAL', 'problemsToError called without problems');
  return new IbpError(first.code, sorted.map((p) => p.message).join('\n'), {
    details: {
      problems: sorted.map((p) => ({
        code: p.code,
        path: formatConfigPath(p.path),
        message: p.message,
        ...(p.file !== undefined ? { file: p.file } : {}),
        ...(p.pos !== undefined ? { line: p.pos.line, col: p.pos.col } : {}),
      })),
    },
  });
}
