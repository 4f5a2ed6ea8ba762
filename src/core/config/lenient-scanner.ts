/**
 * The character level of the lenient JSON reader: position tracking (line, column), whitespace and
 * comments, strings, numbers, bare words and the `...` elision token.
 */
import { IbpError } from '../errors.js';

/** A place in a config file. `line` and `col` count from 1; a column is one character (a tab counts 1). */
export interface ConfigSourcePos {
  line: number;
  col: number;
  /** Offset in UTF-16 code units from the start of the text. */
  offset: number;
}

const NUMBER_RE = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Builds the syntax error of the config reader: `file:line:col: expected X, got Y`. */
export function configSyntaxError(fileName: string, pos: ConfigSourcePos, expected: string, got: string): IbpError {
  return new IbpError('IBP_ERR_CONFIG_SYNTAX', `${fileName}:${pos.line}:${pos.col}: expected ${expected}, got ${got}`, {
    details: { file: fileName, line: pos.line, col: pos.col, expected, got },
  });
}

export class LenientScanner {
  readonly #text: string;
  readonly #fileName: string;
  #i = 0;
  #line = 1;
  #col = 1;

  constructor(text: string, fileName: string) {
    this.#text = text;
    this.#fileName = fileName;
    if (text.charCodeAt(0) === 0xfeff) this.#i = 1; // a byte-order mark is not part of the content
  }

  static isWordStart(c: string): boolean {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
  }

  static isWordChar(c: string): boolean {
    return LenientScanner.isWordStart(c) || (c >= '0' && c <= '9') || c === '.' || c === '-';
  }

  pos(): ConfigSourcePos {
    return { line: this.#line, col: this.#col, offset: this.#i };
  }

  atEnd(): boolean {
    return this.#i >= this.#text.length;
  }

  /** The current character ('' at the end). */
  peek(offset = 0): string {
    return this.#text.charAt(this.#i + offset);
  }

  /** Moves past one UTF-16 code unit, keeping line and column. */
  advance(): void {
    const code = this.#text.charCodeAt(this.#i);
    this.#i += 1;
    if (code === 0x0a) {
      this.#line += 1;
      this.#col = 1;
    } else if (code === 0x0d) {
      // CRLF counts once (at the LF); a lone CR is a line break of its own
      if (this.#text.charCodeAt(this.#i) !== 0x0a) {
        this.#line += 1;
        this.#col = 1;
      }
    } else if (code >= 0xdc00 && code <= 0xdfff && this.#i >= 2 && isHighSurrogate(this.#text.charCodeAt(this.#i - 2))) {
      // second half of a surrogate pair: same character, same column
    } else {
      this.#col += 1;
    }
  }

  fail(expected: string, got: string): never {
    throw configSyntaxError(this.#fileName, this.pos(), expected, got);
  }

  failAt(pos: ConfigSourcePos, expected: string, got: string): never {
    throw configSyntaxError(this.#fileName, pos, expected, got);
  }

  /** Skips whitespace and comments; true when anything was skipped (a separator for a missing comma). */
  skipSpace(): boolean {
    const start = this.#i;
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
        this.advance();
      } else if (c === '/' && this.peek(1) === '/') {
        while (!this.atEnd() && this.peek() !== '\n' && this.peek() !== '\r') this.advance();
      } else if (c === '/' && this.peek(1) === '*') {
        const open = this.pos();
        this.advance();
        this.advance();
        while (!(this.peek() === '*' && this.peek(1) === '/')) {
          if (this.atEnd()) this.fail(`'*/' to close the comment opened at ${open.line}:${open.col}`, 'end of input');
          this.advance();
        }
        this.advance();
        this.advance();
      } else {
        return this.#i > start;
      }
    }
  }

  atElision(): boolean {
    return this.#text.startsWith('...', this.#i) && this.peek(3) !== '.';
  }

  skipElision(): void {
    for (let k = 0; k < 3; k++) this.advance();
  }

  /** Reads a single- or double-quoted string with JSON escapes (plus `\'`). */
  readString(): string {
    const quote = this.peek();
    const open = this.pos();
    this.advance();
    let out = '';
    let from = this.#i;
    for (;;) {
      if (this.atEnd()) this.fail(`a closing ${quote} for the string opened at ${open.line}:${open.col}`, 'end of input');
      const c = this.peek();
      if (c === quote) {
        out += this.#text.slice(from, this.#i);
        this.advance();
        return out;
      }
      if (c === '\n' || c === '\r') {
        this.fail(`a closing ${quote} for the string opened at ${open.line}:${open.col}`, 'end of line');
      }
      if (c === '\\') {
        out += this.#text.slice(from, this.#i);
        out += this.#readEscape();
        from = this.#i;
        continue;
      }
      if (c < ' ' && c !== '\t') this.fail('a printable character in the string', `control character U+${hex4(c.charCodeAt(0))}`);
      this.advance();
    }
  }

  #readEscape(): string {
    const at = this.pos();
    this.advance(); // '\'
    const e = this.peek();
    const simple = ESCAPES[e];
    if (simple !== undefined) {
      this.advance();
      return simple;
    }
    if (e === 'u') {
      const digits = this.#text.slice(this.#i + 1, this.#i + 5);
      if (/^[0-9a-fA-F]{4}$/.test(digits)) {
        for (let k = 0; k < 5; k++) this.advance();
        return String.fromCharCode(parseInt(digits, 16));
      }
      this.failAt(at, 'four hex digits after \\u', digits.length === 0 ? 'end of input' : JSON.stringify(digits));
    }
    return this.failAt(at, 'an escape (\\" \\\' \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)', this.atEnd() ? 'end of input' : `\\${e}`);
  }

  /** Reads a JSON number (a leading '-' allowed: negative ports mark client-only hosts). */
  readNumber(): number {
    const start = this.pos();
    let j = this.#i;
    while (j < this.#text.length && isNumberChar(this.#text.charAt(j))) j += 1;
    const token = this.#text.slice(this.#i, j);
    if (!NUMBER_RE.test(token)) this.failAt(start, 'a number', JSON.stringify(token));
    const n = Number(token);
    if (!Number.isFinite(n)) this.failAt(start, 'a finite number', token);
    while (this.#i < j) this.advance();
    return n;
  }

  /** Reads a bare word: a letter or '_', then letters, digits, '_', '.', '-'. */
  readWord(): string {
    const from = this.#i;
    while (!this.atEnd() && LenientScanner.isWordChar(this.peek())) this.advance();
    return this.#text.slice(from, this.#i);
  }

  /** A short description of what is at the current position, for "got ..." in messages. */
  describeHere(): string {
    if (this.atEnd()) return 'end of input';
    const c = this.peek();
    if (c === '"' || c === "'") {
      const end = this.#text.indexOf(c, this.#i + 1);
      const nl = this.#text.slice(this.#i + 1, end < 0 ? undefined : end);
      if (end >= 0 && !/[\r\n]/.test(nl)) return `string ${truncate(this.#text.slice(this.#i, end + 1))}`;
      return `${c}`;
    }
    if (this.atElision()) return "'...'";
    if (LenientScanner.isWordStart(c)) {
      let j = this.#i;
      while (j < this.#text.length && LenientScanner.isWordChar(this.#text.charAt(j))) j += 1;
      return `word ${truncate(this.#text.slice(this.#i, j))}`;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      let j = this.#i;
      while (j < this.#text.length && isNumberChar(this.#text.charAt(j))) j += 1;
      return `number ${truncate(this.#text.slice(this.#i, j))}`;
    }
    if (c === '\n' || c === '\r') return 'end of line';
    const cp = this.#text.codePointAt(this.#i) ?? 0;
    if (cp < 0x20 || cp === 0x7f) return `control character U+${hex4(cp)}`;
    return `'${String.fromCodePoint(cp)}'`;
  }
}

/** "got ..." for the token at the scanner's position. */
export function describeToken(s: LenientScanner): string {
  return s.describeHere();
}

function isNumberChar(c: string): boolean {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '.' || c === '-' || c === '+' || c === '_';
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

function truncate(s: string, max = 40): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
