/**
 * The `*.cf` / `*.gcf` file format of lib-zc's master (SPEC §8.1): one `key = value` per line, `#` starts a
 * comment line, blank lines are skipped, surrounding blanks are trimmed, a later setting of a key overrides an
 * earlier one. Every setting remembers where it was made so an error can name `file:line` and the key.
 */
import { readFileSync } from 'node:fs';
import { IbpError } from '../core/errors.js';

/** One `key = value` and where it was set. */
export interface CfSetting {
  key: string;
  value: string;
  /** The file (or `(command line)`). */
  file: string;
  /** 1-based line (or argument position). */
  line: number;
}

/** Settings merged in order: later layers override earlier ones. */
export type CfLayers = readonly (readonly CfSetting[])[];

const KEY_RE = /^[A-Za-z0-9_.-]+$/;

/** The IBP_ERR_MASTER_CONFIG error for a setting (or a file when `at` has no line). */
export function cfError(at: { file: string; line?: number; key?: string }, problem: string, cause?: unknown): IbpError {
  const where = at.line !== undefined && at.line > 0 ? `${at.file}:${at.line}` : at.file;
  const key = at.key !== undefined ? ` ${at.key}:` : '';
  return new IbpError('IBP_ERR_MASTER_CONFIG', `${where}:${key} ${problem}`, {
    cause,
    details: { file: at.file, line: at.line ?? 0, key: at.key },
  });
}

/**
 * Parses the text of a `.cf` or `.gcf` file.
 * @throws IbpError IBP_ERR_MASTER_CONFIG for a line that is not `key = value` or a key with odd characters.
 */
export function parseCfText(text: string, file: string): CfSetting[] {
  const out: CfSetting[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw cfError({ file, line: i + 1 }, `expected key = value, got ${JSON.stringify(truncate(line))}`);
    const key = line.slice(0, eq).trim();
    if (!KEY_RE.test(key)) {
      throw cfError({ file, line: i + 1 }, `expected a key of letters, digits, _ . - before =, got ${JSON.stringify(truncate(key))}`);
    }
    out.push({ key, value: line.slice(eq + 1).trim(), file, line: i + 1 });
  }
  return out;
}

/**
 * Reads and parses a `.cf` or `.gcf` file.
 * @throws IbpError IBP_ERR_MASTER_CONFIG (unreadable file or bad line).
 */
export function readCfFile(file: string): CfSetting[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw cfError({ file }, `cannot read: ${(err as Error).message}`, err);
  }
  return parseCfText(text, file);
}

/** Merges layers into one map, key → the last setting made. */
export function mergeCfLayers(layers: CfLayers): Map<string, CfSetting> {
  const merged = new Map<string, CfSetting>();
  for (const layer of layers) for (const s of layer) merged.set(s.key, s);
  return merged;
}

/**
 * Splits a command line into argv the way a shell would split words, without running a shell or expanding
 * anything: blanks separate words, `'…'` is literal, `"…"` allows `\"` and `\\`, a backslash outside quotes
 * takes the next character literally.
 * @example splitCommandLine(`python3 -c "print('hi')"`) // ['python3', '-c', "print('hi')"]
 * @throws Error on an unclosed quote or a trailing backslash.
 */
export function splitCommandLine(text: string): string[] {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed ' in ${JSON.stringify(truncate(text))}`);
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) j++;
        word += text[j];
      }
      if (j >= text.length) throw new Error(`unclosed " in ${JSON.stringify(truncate(text))}`);
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new Error(`trailing \\ in ${JSON.stringify(truncate(text))}`);
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (inWord) argv.push(word);
  return argv;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
