import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { parseLogOutput, toPinoLevel } from '../../../src/core/log.js';

const HOME = '/home/ecif';

function assertCoded(fn: () => unknown, code: string, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IbpError, `expected IbpError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.ok(err.message.includes(mentions), `message ${JSON.stringify(err.message)} should name ${mentions}`);
    return true;
  });
}

describe('log output parsing', () => {
  it('log output - file:: path is taken from the home root', () => {
    assert.deepEqual(parseLogOutput('file::log/ibas_main.log', HOME), {
      kind: 'file',
      path: join(HOME, 'log/ibas_main.log'),
    });
  });

  it('log output - an absolute file:: path is kept', () => {
    assert.deepEqual(parseLogOutput('file::/var/log/ibp/x.log', HOME), { kind: 'file', path: '/var/log/ibp/x.log' });
  });

  it('log output - %d becomes the worker index and %s the app code', () => {
    const out = parseLogOutput('file::log/ibas_158.1.0.56-18001_worker_%d.log', HOME, { d: 7 });
    assert.deepEqual(out, { kind: 'file', path: join(HOME, 'log/ibas_158.1.0.56-18001_worker_7.log') });
    const app = parseLogOutput('file::log/app_%s.log', HOME, { s: 'ECIF_QUERY_CUST' });
    assert.deepEqual(app, { kind: 'file', path: join(HOME, 'log/app_ECIF_QUERY_CUST.log') });
    const both = parseLogOutput('file::log/w%d_%s_100%%.log', HOME, { d: '2', s: 'A1' });
    assert.deepEqual(both, { kind: 'file', path: join(HOME, 'log/w2_A1_100%.log') });
  });

  it('log output - stdout and stderr in any case are our extension', () => {
    assert.deepEqual(parseLogOutput('stdout', HOME), { kind: 'stdout' });
    assert.deepEqual(parseLogOutput(' STDERR ', HOME), { kind: 'stderr' });
  });

  it('log output - anything else is IBP_ERR_LOG_OUTPUT naming the value', () => {
    assertCoded(() => parseLogOutput('log/ibas_main.log', HOME), 'IBP_ERR_LOG_OUTPUT', '"log/ibas_main.log"');
    assertCoded(() => parseLogOutput('file:log/x.log', HOME), 'IBP_ERR_LOG_OUTPUT', '"file:log/x.log"');
    assertCoded(() => parseLogOutput('file::', HOME), 'IBP_ERR_LOG_OUTPUT', 'empty');
    assertCoded(() => parseLogOutput('', HOME), 'IBP_ERR_LOG_OUTPUT', '""');
    assertCoded(() => parseLogOutput('console', HOME), 'IBP_ERR_LOG_OUTPUT', '"console"');
    assertCoded(() => parseLogOutput(42 as unknown as string, HOME), 'IBP_ERR_LOG_OUTPUT', '42');
  });

  it('log output - a %d or %s with no value is IBP_ERR_LOG_OUTPUT', () => {
    assertCoded(() => parseLogOutput('file::log/w_%d.log', HOME), 'IBP_ERR_LOG_OUTPUT', 'worker index');
    assertCoded(() => parseLogOutput('file::log/app_%s.log', HOME, { d: 1 }), 'IBP_ERR_LOG_OUTPUT', 'app code');
  });

  it('log output - a variable that would leave the directory is refused', () => {
    assertCoded(() => parseLogOutput('file::log/app_%s.log', HOME, { s: '../../etc/x' }), 'IBP_ERR_LOG_OUTPUT', '../../etc/x');
    assertCoded(() => parseLogOutput('file::log/%s', HOME, { s: '..' }), 'IBP_ERR_LOG_OUTPUT', '".."');
    assertCoded(() => parseLogOutput('file::log/w_%d.log', HOME, { d: -1 }), 'IBP_ERR_LOG_OUTPUT', '-1');
    assertCoded(() => parseLogOutput('file::log/w_%d.log', HOME, { d: 1.5 }), 'IBP_ERR_LOG_OUTPUT', '1.5');
  });
});

describe('log levels', () => {
  it('log level - the original names map to pino levels in any case', () => {
    assert.equal(toPinoLevel('DEBUG'), 'debug');
    assert.equal(toPinoLevel('info'), 'info');
    assert.equal(toPinoLevel('Warn'), 'warn');
    assert.equal(toPinoLevel('ERROR'), 'error');
    assert.equal(toPinoLevel('FATAL'), 'fatal');
  });

  it('log level - NOTICE is INFO and NOLOG is silent', () => {
    assert.equal(toPinoLevel('NOTICE'), 'info');
    assert.equal(toPinoLevel('nolog'), 'silent');
  });

  it('log level - an unknown level is IBP_ERR_CONFIG_INVALID naming it', () => {
    assertCoded(() => toPinoLevel('VERBOSE'), 'IBP_ERR_CONFIG_INVALID', '"VERBOSE"');
    assertCoded(() => toPinoLevel('trace'), 'IBP_ERR_CONFIG_INVALID', '"trace"');
    assertCoded(() => toPinoLevel('toString'), 'IBP_ERR_CONFIG_INVALID', '"toString"');
    assertCoded(() => toPinoLevel(''), 'IBP_ERR_CONFIG_INVALID', '""');
  });
});
