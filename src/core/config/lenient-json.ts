/**
 * A hand-written lenient JSON reader for the original's config files (see docs/config.md, "Syntax").
 *
 * On top of JSON it accepts `//` and `/* *\/` comments, trailing commas, a missing comma between two
 * members or elements separated by whitespace, bare-word values (`DEBUG` → the string "DEBUG"),
 * single-quoted strings, and the `...` elision token of the seed examples (ignored; after it the
 * enclosing array may be left unclosed). Numbers written as strings stay strings here: the schemas
 * coerce them. Everything else fails with `IBP_ERR_CONFIG_SYNTAX` and `file:line:col: expected X, got Y`.
 *
 * Every member and element keeps its source position, so schema errors can point at `file:line:col`.
 */
import { describeToken, LenientScanner } from './lenient-scanner.js';
import type { ConfigSourcePos } from './lenient-scanner.js';

export { configSyntaxError } from './lenient-scanner.js';
export type { ConfigSourcePos } from './lenient-scanner.js';

/** Deeper nesting than this is refused (a config file never needs it; it keeps the parser off the stack limit). */
export const MAX_CONFIG_DEPTH = 128;

interface EntryPos {
  /** Where the member's key starts (objects only). */
  key?: ConfigSourcePos;
  /** Where the value starts. */
  value: ConfigSourcePos;
}

interface ContainerPos {
  /** Where the `{` or `[` is. */
  open: ConfigSourcePos;
  entries: Map<string | number, EntryPos>;
}

/** What a path inside a parsed document points at. */
export interface ConfigLocation {
  /** True when the whole path exists in the document. */
  found: boolean;
  /** The value's position when found, else the position of the deepest container on the path. */
  pos: ConfigSourcePos;
  /** The key's position when the path ends at an object member. */
  keyPos?: ConfigSourcePos;
  /** The raw value at the path (undefined when not found). */
  value?: unknown;
}

/** A parsed config file: the plain value plus the source position of everything in it. */
export interface LenientDocument {
  readonly fileName: string;
  readonly value: unknown;
  /** Locates a path (object keys and array indexes, as zod reports them) in the source. */
  locate(path: readonly PropertyKey[]): ConfigLocation;
}

/**
 * Parses lenient JSON to plain values (objects, arrays, strings, numbers, booleans, null).
 * @throws IbpError IBP_ERR_CONFIG_SYNTAX with `fileName:line:col: expected X, got Y`.
 * @example parseLenientJson('{ "level" : DEBUG , }', 'x.conf') // → { level: 'DEBUG' }
 */
export function parseLenientJson(text: string, fileName: string): unknown {
  return parseLenientDocument(text, fileName).value;
}

/** Like {@link parseLenientJson}, keeping source positions for error messages. */
export function parseLenientDocument(text: string, fileName: string): LenientDocument {
  const parser = new LenientParser(text, fileName);
  return parser.parseDocument();
}

class LenientParser {
  readonly #s: LenientScanner;
  readonly #fileName: string;
  readonly #positions = new WeakMap<object, ContainerPos>();

  constructor(text: string, fileName: string) {
    this.#s = new LenientScanner(text, fileName);
    this.#fileName = fileName;
  }

  parseDocument(): LenientDocument {
    const s = this.#s;
    s.skipSpace();
    const rootPos = s.pos();
    const value = this.#parseValue(0, false);
    s.skipSpace();
    if (!s.atEnd()) s.fail('end of input', describeToken(s));
    const positions = this.#positions;
    return {
      fileName: this.#fileName,
      value,
      locate: (path) => locate(value, rootPos, positions, path),
    };
  }

  /** `inObject`: the value is an object member (only then may an elided array be left unclosed). */
  #parseValue(depth: number, inObject: boolean): unknown {
    const s = this.#s;
    const c = s.peek();
    if (c === '{') return this.#parseObject(depth + 1);
    if (c === '[') return this.#parseArray(depth + 1, inObject);
    if (c === '"' || c === "'") return s.readString();
    if (c === '-' || (c >= '0' && c <= '9')) return s.readNumber();
    if (LenientScanner.isWordStart(c)) {
      const word = s.readWord();
      if (word === 'true') return true;
      if (word === 'false') return false;
      if (word === 'null') return null;
      return word;
    }
    return s.fail('a value', describeToken(s));
  }

  #enter(depth: number): void {
    if (depth > MAX_CONFIG_DEPTH) this.#s.fail(`at most ${MAX_CONFIG_DEPTH} nested levels`, 'a deeper one');
  }

  #parseObject(depth: number): Record<string, unknown> {
    const s = this.#s;
    this.#enter(depth);
    const open = s.pos();
    s.advance(); // '{'
    const obj: Record<string, unknown> = {};
    const entries = new Map<string | number, EntryPos>();
    this.#positions.set(obj, { open, entries });
    let needSeparator = false;
    for (;;) {
      const spaced = s.skipSpace();
      const c = s.peek();
      if (c === '}') {
        s.advance();
        return obj;
      }
      if (needSeparator) {
        if (c === ',') {
          s.advance();
          needSeparator = false;
          continue;
        }
        // a missing comma is forgiven when whitespace or a comment separates the two members
        if (!(spaced && (c === '"' || c === "'" || s.atElision()))) s.fail("',' or '}'", describeToken(s));
      }
      if (s.atElision()) {
        s.skipElision();
        needSeparator = true;
        continue;
      }
      if (c !== '"' && c !== "'") s.fail(needSeparator ? "',' or '}'" : "a quoted key or '}'", describeToken(s));
      const keyPos = s.pos();
      const key = s.readString();
      s.skipSpace();
      if (s.peek() !== ':') s.fail(`':' after key ${JSON.stringify(key)}`, describeToken(s));
      s.advance();
      s.skipSpace();
      const valuePos = s.pos();
      const value = this.#parseValue(depth, true);
      const first = entries.get(key);
      if (first !== undefined) {
        const at = first.key ?? first.value;
        s.failAt(keyPos, 'a key not used before in this object',
          `duplicate key ${JSON.stringify(key)} (first at ${at.line}:${at.col})`);
      }
      // defineProperty: a key such as "__proto__" must stay a plain own property
      Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
      entries.set(key, { key: keyPos, value: valuePos });
      needSeparator = true;
    }
  }

  #parseArray(depth: number, inObject: boolean): unknown[] {
    const s = this.#s;
    this.#enter(depth);
    const open = s.pos();
    s.advance(); // '['
    const arr: unknown[] = [];
    const entries = new Map<string | number, EntryPos>();
    this.#positions.set(arr, { open, entries });
    let needSeparator = false;
    let elided = false;
    for (;;) {
      const spaced = s.skipSpace();
      const c = s.peek();
      if (c === ']') {
        s.advance();
        return arr;
      }
      // after `...` the seed examples close the enclosing object without the array's ']'
      if (c === '}' && elided && inObject) return arr;
      if (needSeparator) {
        if (c === ',') {
          s.advance();
          needSeparator = false;
          continue;
        }
        if (!(spaced && startsValue(c, s))) s.fail(elided ? "',' or ']' or '}'" : "',' or ']'", describeToken(s));
      }
      if (s.atElision()) {
        s.skipElision();
        elided = true;
        needSeparator = true;
        continue;
      }
      if (s.atEnd() || c === ',' || c === '}') s.fail("a value or ']'", describeToken(s));
      const valuePos = s.pos();
      const value = this.#parseValue(depth, false);
      entries.set(arr.length, { value: valuePos });
      arr.push(value);
      needSeparator = true;
    }
  }
}

function startsValue(c: string, s: LenientScanner): boolean {
  return c === '{' || c === '[' || c === '"' || c === "'" || c === '-' || (c >= '0' && c <= '9')
    || LenientScanner.isWordStart(c) || s.atElision();
}

function locate(
  root: unknown,
  rootPos: ConfigSourcePos,
  positions: WeakMap<object, ContainerPos>,
  path: readonly PropertyKey[],
): ConfigLocation {
  let value: unknown = root;
  let pos = rootPos;
  let keyPos: ConfigSourcePos | undefined;
  for (const seg of path) {
    const info = typeof value === 'object' && value !== null ? positions.get(value) : undefined;
    const key = typeof seg === 'number' || typeof seg === 'string' ? seg : String(seg);
    const entry = info?.entries.get(Array.isArray(value) ? Number(key) : String(key));
    if (info === undefined || entry === undefined) return { found: false, pos };
    value = (value as Record<string | number, unknown>)[key];
    pos = entry.value;
    keyPos = entry.key;
  }
  const loc: ConfigLocation = { found: true, pos, value };
  if (keyPos !== undefined) loc.keyPos = keyPos;
  return loc;
}
