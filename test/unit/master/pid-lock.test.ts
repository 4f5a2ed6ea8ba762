import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError } from '../../../src/core/errors.js';
import { PidFileLock } from '../../../src/master/index.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-master-lock-'));
after(() => rmSync(base, { recursive: true, force: true }));
const MASTER_INDEX = fileURLToPath(new URL('../../../src/master/index.js', import.meta.url));

test('pid lock - acquire writes the pid file; a second acquire is IBP_ERR_MASTER_LOCKED; release frees it', async () => {
  const pidFile = join(base, 'a', 'run', 'master.pid');
  assert.equal(await PidFileLock.probe(pidFile).catch(() => 'free'), 'free');
  const lock = await PidFileLock.acquire(pidFile, () => ({ pid: process.pid, hello: 'status' }));
  try {
    assert.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
    assert.equal(statSync(`${pidFile}.lock`).mode & 0o777, 0o600, 'the lock token is private');
    assert.equal(await PidFileLock.probe(pidFile), 'held');
    await assert.rejects(PidFileLock.acquire(pidFile), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_MASTER_LOCKED' && e.message.includes(String(process.pid)));
    assert.deepEqual(await PidFileLock.status(pidFile), { pid: process.pid, hello: 'status' });
    assert.equal(await PidFileLock.probe(join(base, 'a', 'run', '..', 'run', 'master.pid')), 'held', 'another spelling of the same path is the same lock');
  } finally {
    await lock.release();
  }
  assert.equal(existsSync(pidFile), false);
  assert.equal(await PidFileLock.probe(pidFile), 'free');
  assert.equal(await PidFileLock.status(pidFile), undefined);
  const again = await PidFileLock.acquire(pidFile);
  await again.release();
});

test('pid lock - probing a pid file no master ever used says free and creates nothing; an unusable path is IBP_ERR_MASTER_PID_FILE', async () => {
  const pidFile = join(base, 'never', 'master.pid');
  assert.equal(await PidFileLock.probe(join(base, 'master.pid')), 'free');
  assert.equal(existsSync(join(base, 'master.pid.lock')), false);
  assert.equal(await PidFileLock.probe(pidFile), 'free', 'a missing directory holds no lock');
  assert.equal(existsSync(join(base, 'never')), false);
  writeFileSync(join(base, 'afile'), 'x');
  await assert.rejects(PidFileLock.acquire(join(base, 'afile', 'x.pid')), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_MASTER_PID_FILE');
});

test('pid lock - held across processes, and freed by the kernel when the holder is SIGKILLed (no stale lock)', async () => {
  const pidFile = join(base, 'x', 'master.pid');
  const script = `const { PidFileLock } = await import(${JSON.stringify(MASTER_INDEX)});
    await PidFileLock.acquire(process.argv[1]); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, pidFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
    });
    assert.equal(await PidFileLock.probe(pidFile), 'held');
    await assert.rejects(PidFileLock.acquire(pidFile), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_MASTER_LOCKED' && e.message.includes(String(child.pid)));
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  assert.equal(readFileSync(pidFile, 'utf8').trim(), String(child.pid), 'the dead holder left its pid file behind');
  assert.equal(await PidFileLock.probe(pidFile), 'free');
  const lock = await PidFileLock.acquire(pidFile);
  assert.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
  await lock.release();
});
