import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError } from '../../../src/core/errors.js';
import { cfEnvName, inheritedListenFds, listenFdsFromEnv } from '../../../src/master/index.js';

const MASTER_INDEX = fileURLToPath(new URL('../../../src/master/index.js', import.meta.url));

test('listen fds - LISTEN_FDS/LISTEN_FDNAMES give fds 3.. with their names', () => {
  assert.deepEqual(inheritedListenFds({ LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'web:admin' }, 42), [
    { fd: 3, name: 'web' },
    { fd: 4, name: 'admin' },
  ]);
  assert.deepEqual(inheritedListenFds({ LISTEN_FDS: '1' }, 42), [{ fd: 3, name: 'unknown' }], 'no LISTEN_PID: taken as ours, default name');
});

test('listen fds - none when LISTEN_FDS is unset or LISTEN_PID names another process', () => {
  assert.deepEqual(inheritedListenFds({}, 42), []);
  assert.deepEqual(inheritedListenFds({ LISTEN_FDS: '2', LISTEN_PID: '41' }, 42), []);
  const env: NodeJS.ProcessEnv = { LISTEN_FDS: '1', LISTEN_PID: '1' };
  assert.deepEqual(listenFdsFromEnv({ env }), []);
  assert.equal(env.LISTEN_FDS, undefined, 'the variables are removed so children do not inherit them');
});

test('listen fds - malformed variables are IBP_ERR_MASTER_LISTEN_FDS', () => {
  for (const env of [{ LISTEN_FDS: 'two' }, { LISTEN_FDS: '1', LISTEN_PID: 'me' }, { LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b:c' }, { LISTEN_FDS: '99999' }]) {
    assert.throws(() => inheritedListenFds(env, 42), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_MASTER_LISTEN_FDS', JSON.stringify(env));
  }
});

test('listen fds - an inherited fd that is not a socket is a coded error, not a crash', () => {
  // A child gets a plain file at fd 3 and is told it is a listen socket.
  const dir = mkdtempSync(join(tmpdir(), 'ibp-master-fds-'));
  const fd = openSync(join(dir, 'not-a-socket'), 'w');
  try {
    const script = `const { listenFdsFromEnv } = await import(${JSON.stringify(MASTER_INDEX)});
      try { listenFdsFromEnv(); console.log('no error'); } catch (e) { console.log(e.code, e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      env: { ...process.env, LISTEN_FDS: '1', LISTEN_FDNAMES: 'web' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^IBP_ERR_MASTER_LISTEN_FDS inherited fd 3 \(web\) is not a listening socket/);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listen fds - free keys reach the service as IBP_CF_<KEY>', () => {
  assert.equal(cfEnvName('max-idle'), 'IBP_CF_MAX_IDLE');
  assert.equal(cfEnvName('db.url'), 'IBP_CF_DB_URL');
});
