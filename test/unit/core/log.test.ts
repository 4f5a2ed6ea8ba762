import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError } from '../../../src/core/errors.js';
import {
  appLoggerFactory,
  closeAllLogs,
  closeLogger,
  createLogger,
  flushAllLogs,
} from '../../../src/core/log.js';

let home = '';

function records(path: string): Record<string, unknown>[] {
  const text = readFileSync(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('logger', () => {
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'ibp-log-'));
  });
  afterEach(async () => {
    await closeAllLogs();
    rmSync(home, { recursive: true, force: true });
  });

  it('logger - creates the log directory and file in the home at once', () => {
    const path = join(home, 'log', 'ibas_main.log');
    assert.equal(existsSync(join(home, 'log')), false);
    createLogger({ homeRoot: home, output: 'file::log/ibas_main.log', level: 'DEBUG', name: 'ibas' });
    assert.equal(existsSync(path), true);
  });

  it('logger - the level filters lower records out', async () => {
    const log = createLogger({ homeRoot: home, output: 'file::log/m.log', level: 'warn', name: 'ibas' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    await closeAllLogs();
    const got = records(join(home, 'log/m.log')).map((r) => [r.level, r.msg]);
    assert.deepEqual(got, [
      ['WARN', 'w'],
      ['ERROR', 'e'],
      ['FATAL', 'f'],
    ]);
  });

  it('logger - records are NDJSON with level, ISO time, pid, hostname, name, base and child fields', async () => {
    const log = createLogger({
      homeRoot: home,
      output: 'file::log/f.log',
      level: 'DEBUG',
      name: 'ibas',
      base: { component: 'platform', node: 'ECIF' },
    });
    log.child({ worker: 2 }).child({ tx: 'J0001' }).info({ app: 'Q1' }, 'called');
    await closeAllLogs();
    const [r] = records(join(home, 'log/f.log'));
    assert.equal(r.level, 'INFO');
    assert.match(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(r.pid, process.pid);
    assert.equal(typeof r.hostname, 'string');
    assert.equal(r.name, 'ibas');
    assert.equal(r.component, 'platform');
    assert.equal(r.node, 'ECIF');
    assert.equal(r.worker, 2);
    assert.equal(r.tx, 'J0001');
    assert.equal(r.app, 'Q1');
    assert.equal(r.msg, 'called');
  });

  it('logger - an IbpError is logged under err with its code and cause', async () => {
    const log = createLogger({ homeRoot: home, output: 'file::log/e.log', level: 'INFO', name: 'ibac' });
    const err = new IbpError('IBP_ERR_CLIENT_TIMEOUT', 'no response in 3000 ms', {
      commStatus: 'ON_SENDING',
      cause: new Error('socket idle'),
    });
    log.error({ err }, 'call failed');
    log.error(new IbpError('IBP_ERR_SERVER_BUSY', 'no idle worker'));
    await closeAllLogs();
    const [a, b] = records(join(home, 'log/e.log'));
    const ea = a.err as Record<string, unknown>;
    assert.equal(ea.code, 'IBP_ERR_CLIENT_TIMEOUT');
    assert.equal(ea.commStatus, 'ON_SENDING');
    assert.equal(ea.type, 'IbpError');
    assert.match(String(ea.message), /no response in 3000 ms.*socket idle/);
    assert.equal((b.err as Record<string, unknown>).code, 'IBP_ERR_SERVER_BUSY');
  });

  it('logger - %d in the output becomes the worker index given by the platform', async () => {
    const log = createLogger({
      homeRoot: home,
      output: 'file::log/ibas_worker_%d.log',
      level: 'INFO',
      name: 'ibas.worker',
      vars: { d: 3 },
    });
    log.info('hello');
    await closeAllLogs();
    assert.equal(records(join(home, 'log/ibas_worker_3.log'))[0].msg, 'hello');
  });

  it('logger - loggers on one file share it and nothing is lost when many records are written', async () => {
    const a = createLogger({ homeRoot: home, output: 'file::log/event.log', level: 'INFO', name: 'a' });
    const b = createLogger({ homeRoot: home, output: 'file::./log/../log/event.log', level: 'INFO', name: 'b' });
    for (let i = 0; i < 2000; i++) (i % 2 === 0 ? a : b).info({ i }, 'r');
    await closeLogger(a);
    b.info({ i: 2000 }, 'after a closed');
    await closeLogger(b);
    await closeLogger(b);
    const got = records(join(home, 'log/event.log'));
    assert.equal(got.length, 2001);
    assert.deepEqual(
      got.map((r) => r.i),
      Array.from({ length: 2001 }, (_, i) => i),
    );
  });

  it('logger - a record logged after close is dropped, not thrown', async () => {
    const log = createLogger({ homeRoot: home, output: 'file::log/late.log', level: 'INFO', name: 'x' });
    log.info('kept');
    await closeAllLogs();
    log.info('late');
    log.child({ a: 1 }).error('late too');
    await flushAllLogs();
    assert.deepEqual(
      records(join(home, 'log/late.log')).map((r) => r.msg),
      ['kept'],
    );
  });

  it('logger - flushAllLogs resolves once the records are in the file', async () => {
    const log = createLogger({ homeRoot: home, output: 'file::log/fl.log', level: 'INFO', name: 'x' });
    for (let i = 0; i < 100; i++) log.info({ i }, 'r');
    await flushAllLogs();
    assert.equal(records(join(home, 'log/fl.log')).length, 100);
  });

  it('logger - a file that cannot be opened is IBP_ERR_LOG_OPEN naming the path', () => {
    writeFileSync(join(home, 'log'), 'a file where the log dir should be');
    assert.throws(
      () => createLogger({ homeRoot: home, output: 'file::log/x.log', level: 'INFO', name: 'x' }),
      (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_LOG_OPEN' && err.message.includes(join(home, 'log/x.log')),
    );
  });

  it('logger - a bad output or level is a coded error before anything is opened', () => {
    assert.throws(
      () => createLogger({ homeRoot: home, output: 'log/x.log', level: 'INFO', name: 'x' }),
      (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_LOG_OUTPUT',
    );
    assert.throws(
      () => createLogger({ homeRoot: home, output: 'file::log/x.log', level: 'LOUD', name: 'x' }),
      (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_INVALID' && err.message.includes('LOUD'),
    );
    assert.equal(existsSync(join(home, 'log')), false);
  });
});

describe('standard stream outputs', () => {
  const LOG_JS = fileURLToPath(new URL('../../../src/core/log.js', import.meta.url));

  function runChild(code: string): { stdout: string; stderr: string; status: number | null } {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 10_000,
      env: { ...process.env, LOG_JS },
    });
    return { stdout: r.stdout, stderr: r.stderr, status: r.status };
  }

  it('stdout/stderr outputs - records reach the stream even when the process exits at once', () => {
    const r = runChild(`
      const { createLogger } = await import(process.env.LOG_JS);
      const out = createLogger({ homeRoot: '/nonexistent', output: 'stdout', level: 'INFO', name: 'o' });
      const err = createLogger({ homeRoot: '/nonexistent', output: 'STDERR', level: 'INFO', name: 'e' });
      for (let i = 0; i < 300; i++) out.info({ i }, 'to stdout');
      err.warn('to stderr');
      process.exit(3);
    `);
    assert.equal(r.status, 3, r.stderr);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, 300);
    assert.deepEqual([out[0].name, out[0].msg, out[299].i], ['o', 'to stdout', 299]);
    const err = JSON.parse(r.stderr.trim()) as Record<string, unknown>;
    assert.deepEqual([err.level, err.name, err.msg], ['WARN', 'e', 'to stderr']);
  });

  it('stdout/stderr outputs - closeAllLogs leaves the standard streams usable', () => {
    const r = runChild(`
      const { createLogger, closeAllLogs } = await import(process.env.LOG_JS);
      const out = createLogger({ homeRoot: '/nonexistent', output: 'stdout', level: 'INFO', name: 'o' });
      out.info('logged');
      await closeAllLogs();
      process.stdout.write('plain line\\n');
    `);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal((JSON.parse(lines[0]) as { msg: string }).msg, 'logged');
    assert.equal(lines[1], 'plain line');
  });
});

describe('app loggers', () => {
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'ibp-log-'));
  });
  afterEach(async () => {
    await closeAllLogs();
    rmSync(home, { recursive: true, force: true });
  });

  it('app logger - one cached logger and file per app code, records carry app', async () => {
    const appLog = appLoggerFactory({ homeRoot: home, output: 'file::log/app_%s.log', level: 'INFO', base: { node: 'N1' } });
    const q = appLog('QUERY');
    assert.equal(appLog('QUERY'), q);
    q.info('one');
    appLog('QUERY').info('two');
    appLog('PAY').debug('filtered');
    appLog('PAY').warn('three');
    await closeAllLogs();
    const query = records(join(home, 'log/app_QUERY.log'));
    assert.deepEqual(query.map((r) => [r.app, r.node, r.msg]), [
      ['QUERY', 'N1', 'one'],
      ['QUERY', 'N1', 'two'],
    ]);
    assert.deepEqual(records(join(home, 'log/app_PAY.log')).map((r) => r.msg), ['three']);
  });

  it('app logger - a bad output or level fails when the factory is made', () => {
    assert.throws(
      () => appLoggerFactory({ homeRoot: home, output: 'app_%s.log', level: 'INFO' }),
      (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_LOG_OUTPUT',
    );
    assert.throws(
      () => appLoggerFactory({ homeRoot: home, output: 'file::log/app_%s.log', level: 'LOUD' }),
      (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_INVALID',
    );
  });

  it('app logger - an app code unusable in a file name is refused', () => {
    const appLog = appLoggerFactory({ homeRoot: home, output: 'file::log/app_%s.log', level: 'INFO' });
    assert.throws(
      () => appLog('../../etc/passwd'),
      (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_LOG_OUTPUT',
    );
  });
});
