import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IbpError } from '../../../src/core/errors.js';
import { parseLenientDocument, parseLenientJson } from '../../../src/core/config/index.js';

const SEED = new URL('../../../../test/fixtures/config/seed/', import.meta.url);
const seed = (name: string) => readFileSync(new URL(name, SEED), 'utf8');

/** Asserts a syntax error at line:col whose message contains `fragment`. */
function syntaxError(text: string, line: number, col: number, fragment: string): void {
  assert.throws(() => parseLenientJson(text, 'x.conf'), (err: unknown) => {
    assert.ok(err instanceof IbpError, String(err));
    assert.equal(err.code, 'IBP_ERR_CONFIG_SYNTAX');
    assert.ok(err.message.startsWith(`x.conf:${line}:${col}: expected `), err.message);
    assert.ok(err.message.includes(fragment), `${err.message} should include ${fragment}`);
    assert.deepEqual([err.details?.line, err.details?.col], [line, col]);
    return true;
  });
}

test('lenient json - plain JSON reads as JSON.parse does', () => {
  const text = '{"a": [1, -2.5e3, "x\\u4e2d\\n", true, false, null, {}], "b": {"c": []}}';
  assert.deepEqual(parseLenientJson(text, 'x.conf'), JSON.parse(text));
});

test('lenient json - line and block comments are skipped', () => {
  const text = '// head\n{ /* a\n multi-line */ "a" : 1 , // tail\n "b" /* mid */ : 2 }\n// end';
  assert.deepEqual(parseLenientJson(text, 'x.conf'), { a: 1, b: 2 });
});

test('lenient json - trailing commas in objects and arrays are accepted', () => {
  assert.deepEqual(parseLenientJson('{ "a" : [ 1 , 2 , ] , }', 'x.conf'), { a: [1, 2] });
});

test('lenient json - a comma missing between members on separate lines is forgiven', () => {
  const text = '{\n "connecting_timeout" : 10 // comment\n "retry_connect_timeval" : 60 ,\n}';
  assert.deepEqual(parseLenientJson(text, 'x.conf'), { connecting_timeout: 10, retry_connect_timeval: 60 });
  assert.deepEqual(parseLenientJson('[ 1 2\n"x" {"a":1} ]', 'x.conf'), [1, 2, 'x', { a: 1 }]);
});

test('lenient json - a missing comma with nothing in between is an error', () => {
  syntaxError('{ "a" : 1"b" : 2 }', 1, 10, "expected ',' or '}', got string \"b\"");
  syntaxError('[ "a""b" ]', 1, 6, "expected ',' or ']'");
});

test('lenient json - bare words become strings; true/false/null keep their meaning', () => {
  assert.deepEqual(parseLenientJson('{ "l" : DEBUG , "m" : STATIC_WORKERPOOL , "n" : ibma.conf , "t" : true , "z" : null }', 'x.conf'),
    { l: 'DEBUG', m: 'STATIC_WORKERPOOL', n: 'ibma.conf', t: true, z: null });
});

test('lenient json - numbers written as strings stay strings', () => {
  assert.deepEqual(parseLenientJson('{ "timeout" : "50" , "port" : -18001 }', 'x.conf'), { timeout: '50', port: -18001 });
});

test('lenient json - single-quoted strings with escapes', () => {
  assert.deepEqual(parseLenientJson(`{ 'k' : 'it\\'s "q" \\t \\u0041' }`, 'x.conf'), { k: 'it\'s "q" \t A' });
});

test('lenient json - the ... elision is ignored and may leave the enclosing array unclosed', () => {
  assert.deepEqual(parseLenientJson('{ "nodes" : [ { "n" : 1 } , ... }', 'x.conf'), { nodes: [{ n: 1 }] });
  assert.deepEqual(parseLenientJson('{ "p" : [ 1 , ... ] }', 'x.conf'), { p: [1] });
  assert.deepEqual(parseLenientJson('{ "a" : 1 , ... }', 'x.conf'), { a: 1 });
});

test('lenient json - an array may be left unclosed only after an elision', () => {
  syntaxError('{ "a" : [ 1 , 2 }', 1, 17, "expected ',' or ']', got '}'");
  syntaxError('[ 1 , ... }', 1, 11, "expected ',' or ']' or '}', got '}'");
});

test('lenient json - errors give file:line:col with what was expected and what came', () => {
  syntaxError('{\n  "a" : 1 ,\n  b : 2 }', 3, 3, "expected a quoted key or '}', got word b");
  syntaxError('{ "a" : 0x10 }', 1, 9, 'expected a number, got "0x10"');
  syntaxError('{ "a" : "abc\n" }', 1, 13, 'got end of line');
  syntaxError('{ "a" : 1 } x', 1, 13, 'expected end of input, got word x');
  syntaxError('{ "a" : 1 ,, }', 1, 12, "got ','");
  syntaxError('{ "a" 1 }', 1, 7, "expected ':' after key \"a\", got number 1");
  syntaxError('{ "a" : "x\\q" }', 1, 11, 'got \\q');
  syntaxError('', 1, 1, 'expected a value, got end of input');
  syntaxError('{ "a" : [ 1 ', 1, 13, 'got end of input');
  syntaxError('{ "a" : 调试 }', 1, 9, "got '调'");
  syntaxError('/* never closed', 1, 16, "expected '*/' to close the comment opened at 1:1");
});

test('lenient json - columns count characters, tabs and CJK text as one each; CRLF is one line break', () => {
  syntaxError('{\r\n\t"测试" : ?\r\n}', 2, 9, "got '?'");
});

test('lenient json - a duplicate key names the key and both positions', () => {
  syntaxError('{\n  "port" : 1 ,\n  "port" : 2\n}', 3, 3, 'duplicate key "port" (first at 2:3)');
});

test('lenient json - "__proto__" is an ordinary key and does not change the prototype', () => {
  const v = parseLenientJson('{ "__proto__" : { "polluted" : 1 } }', 'x.conf') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('lenient json - nesting deeper than the limit is refused, not a stack overflow', () => {
  syntaxError('['.repeat(5000), 1, 129, 'expected at most 128 nested levels');
});

test('lenient json - a byte-order mark at the start is ignored', () => {
  assert.deepEqual(parseLenientJson('\ufeff{ "a" : 1 }', 'x.conf'), { a: 1 });
});

test('lenient json - the document locates keys and values of a path', () => {
  const doc = parseLenientDocument('{\n  "a" : {\n    "b" : [ 10 ,\n      20 ]\n  }\n}', 'x.conf');
  const hit = doc.locate(['a', 'b', 1]);
  assert.equal(hit.found, true);
  assert.equal(hit.value, 20);
  assert.deepEqual([hit.pos.line, hit.pos.col], [4, 7]);
  const key = doc.locate(['a', 'b']);
  assert.deepEqual([key.keyPos?.line, key.keyPos?.col], [3, 5]);
  const miss = doc.locate(['a', 'nope']);
  assert.equal(miss.found, false);
  assert.deepEqual([miss.pos.line, miss.pos.col], [2, 9]);
});

test('lenient json - both logpipe.conf examples of the seed parse', () => {
  const collector = parseLenientJson(seed('logpipe-collector.conf'), 'logpipe.conf') as { outputs: { rotate_size: number }[] };
  assert.equal(collector.outputs[0]?.rotate_size, 10000000);
  const shipper = parseLenientJson(seed('logpipe-shipper.conf'), 'logpipe.conf') as { inputs: { exec_after_rotating: string }[] };
  assert.equal(shipper.inputs[0]?.exec_after_rotating, 'rm -f ${LOGPIPE_ROTATING_NEW_FILENAME}');
});

test('lenient json - every seed config example parses', () => {
  for (const name of ['ibp_nodes.conf', 'ibp_apps.conf', 'ibp_projects.conf', 'ibms.conf', 'ibma.conf', 'ibas.conf']) {
    const v = parseLenientJson(seed(name), name);
    assert.equal(typeof v, 'object', name);
  }
});
