/** A worker that cannot start again is restarted with growing delays, and serves again once fixed. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryClient } from '../../../src/registry/index.js';
import { adminClient, alive, makeRegistryHome, removeHome, startIbms, stopIbms, waitFor, type IbmsProcess } from './harness.js';

describe('ibms monitor restart throttle', () => {
  let home: string;
  let ibms: IbmsProcess | undefined;
  let admin: RegistryClient;
  before(async () => {
    home = await makeRegistryHome();
    ibms = await startIbms(home);
    admin = adminClient(home, ibms);
  });
  after(async () => {
    await stopIbms(ibms);
    removeHome(home);
  });

  test('restarts of a worker dying young wait 250 ms, 500 ms, 1 s …; a fixed config brings it back', async () => {
    const confPath = join(home, 'etc', 'ibms.conf');
    const good = readFileSync(confPath, 'utf8');
    writeFileSync(confPath, '{ "ibms" : { oops');
    const monitorLog = join(home, 'log', 'ibms_monitor.log');
    process.kill(ibms!.workerPid, 'SIGKILL');
    await waitFor(() => (readFileSync(monitorLog, 'utf8').match(/restart throttled/g) ?? []).length >= 3, 'three throttled restarts', 60_000);
    const delays = readFileSync(monitorLog, 'utf8')
      .split('\n')
      .filter((l) => l.includes('restart throttled'))
      .map((l) => (JSON.parse(l) as { delayMs: number }).delayMs);
    assert.deepEqual(delays.slice(0, 3), [250, 500, 1000]);
    assert.ok(alive(ibms!.pid), 'the monitor keeps trying');
    writeFileSync(confPath, good);
    await waitFor(() => admin.health().then(() => true, () => false), 'a worker to serve again', 60_000);
    assert.match(readFileSync(join(home, 'log', 'ibms_worker.log'), 'utf8'), /IBP_ERR_CONFIG_SYNTAX/);
  });
});
