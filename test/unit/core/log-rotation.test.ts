import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkLogRotation,
  closeAllLogs,
  createLogger,
  flushAllLogs,
  installLogReopenOnSignal,
  reopenAllLogs,
  watchLogRotation,
} from '../../../src/core/log.js';

let home = '';

function messages(path: string): unknown[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => (JSON.parse(l) as { msg: unknown }).msg);
}

describe('log rotation', () => {
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'ibp-logrot-'));
  });
  afterEach(async () => {
    await closeAllLogs();
    rmSync(home, { recursive: true, force: true });
  });

  it('log rotation - reopenAllLogs after a rename writes to a new file at the original path', async () => {
    const path = join(home, 'log/ibas_main.log');
    const log = createLogger({ homeRoot: home, output: 'file::log/ibas_main.log', level: 'INFO', name: 'ibas' });
    log.info('before');
    await flushAllLogs();
    renameSync(path, `${path}.1`);
    log.info('still old file');
    reopenAllLogs();
    log.info('after');
    await closeAllLogs();
    const old = messages(`${path}.1`);
    const now = messages(path);
    assert.equal(old[0], 'before');
    assert.deepEqual(now.slice(-1), ['after']);
    assert.deepEqual([...old, ...now], ['before', 'still old file', 'after']);
  });

  it('log rotation - SIGUSR1 reopens the log files once the handler is installed', async () => {
    const path = join(home, 'log/ibms_main.log');
    const log = createLogger({ homeRoot: home, output: 'file::log/ibms_main.log', level: 'INFO', name: 'ibms' });
    const uninstall = installLogReopenOnSignal();
    try {
      log.info('before');
      await flushAllLogs();
      renameSync(path, `${path}.bak`);
      // Signal handles do not keep the event loop alive: the bound timer does, and fails the test.
      let bound: NodeJS.Timeout | undefined;
      const delivered = new Promise<void>((resolve, reject) => {
        bound = setTimeout(() => reject(new Error('SIGUSR1 not delivered within 5 s')), 5000);
        process.once('SIGUSR1', () => resolve());
      });
      process.kill(process.pid, 'SIGUSR1');
      await delivered.finally(() => clearTimeout(bound));
      log.info('after');
      await closeAllLogs();
      assert.deepEqual(messages(`${path}.bak`), ['before']);
      assert.deepEqual(messages(path), ['after']);
    } finally {
      uninstall();
    }
    assert.equal(process.listenerCount('SIGUSR1'), 0);
  });

  it('log rotation - checkLogRotation reopens only files that were renamed or deleted', async () => {
    const a = createLogger({ homeRoot: home, output: 'file::log/a.log', level: 'INFO', name: 'a' });
    const b = createLogger({ homeRoot: home, output: 'file::log/b.log', level: 'INFO', name: 'b' });
    const c = createLogger({ homeRoot: home, output: 'file::log/c.log', level: 'INFO', name: 'c' });
    a.info('a1');
    b.info('b1');
    c.info('c1');
    await flushAllLogs();
    assert.equal(await checkLogRotation(), 0);
    renameSync(join(home, 'log/a.log'), join(home, 'log/a.log.1'));
    unlinkSync(join(home, 'log/b.log'));
    assert.equal(await checkLogRotation(), 2);
    a.info('a2');
    b.info('b2');
    c.info('c2');
    await closeAllLogs();
    assert.deepEqual(messages(join(home, 'log/a.log.1')), ['a1']);
    assert.deepEqual(messages(join(home, 'log/a.log')), ['a2']);
    assert.deepEqual(messages(join(home, 'log/b.log')), ['b2']);
    assert.deepEqual(messages(join(home, 'log/c.log')), ['c1', 'c2']);
  });

  it('log rotation - watchLogRotation reopens a moved file on its next tick', async () => {
    const path = join(home, 'log/w.log');
    const log = createLogger({ homeRoot: home, output: 'file::log/w.log', level: 'INFO', name: 'w' });
    log.info('before');
    await flushAllLogs();
    mock.timers.enable({ apis: ['setInterval'] });
    let stop = (): void => undefined;
    try {
      stop = watchLogRotation(1000);
      renameSync(path, `${path}.1`);
      mock.timers.tick(999);
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      assert.equal(existsSync(path), false, 'reopened before the interval elapsed');
      mock.timers.tick(1);
      for (let i = 0; i < 10_000 && !existsSync(path); i++) await new Promise((r) => setImmediate(r));
      assert.equal(existsSync(path), true, 'not reopened after the interval');
    } finally {
      stop();
      mock.timers.reset();
    }
    log.info('after');
    await closeAllLogs();
    assert.deepEqual(messages(`${path}.1`), ['before']);
    assert.deepEqual(messages(path), ['after']);
  });

  it('log rotation - a reopen while records are pending loses none of them', async () => {
    const path = join(home, 'log/busy.log');
    const log = createLogger({ homeRoot: home, output: 'file::log/busy.log', level: 'INFO', name: 'x' });
    for (let i = 0; i < 500; i++) log.info(String(i));
    renameSync(path, `${path}.1`);
    reopenAllLogs();
    for (let i = 500; i < 1000; i++) log.info(String(i));
    await closeAllLogs();
    const all = [...messages(`${path}.1`), ...messages(path)];
    assert.deepEqual(all, Array.from({ length: 1000 }, (_, i) => String(i)));
  });
});
