import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ECHO_COMMAND, greeting, killAllMasters, MasterProcess, Scratch, timeOf } from './harness.js';

describe('ibp master: server-ready = notify', () => {
  const scratches: Scratch[] = [];
  after(async () => {
    await killAllMasters();
    for (const s of scratches) s.remove();
  });

  test('SIGHUP keeps the old generation until the new one writes READY=1; a new one that fails first is gone and the old one keeps serving', async () => {
    const sc = new Scratch();
    scratches.push(sc);
    const cf = sc.write(
      'echo.cf',
      `server-command = ${ECHO_COMMAND}`,
      'server-service = echo://127.0.0.1:0',
      'server-ready = notify',
      'server-ready-timeout = 20',
      'ready-delay-ms = 600',
      'greeting = v1',
    );
    const text = readFileSync(cf, 'utf8');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    const addr = m.address('echo');
    const v1 = await greeting(addr);
    assert.equal(v1.greeting, 'v1');

    // A new generation that fails before READY=1: the reload fails with its STATUS= line; v1 was never stopped.
    sc.write('echo.cf', text.replace('greeting = v1', 'greeting = v2\nfail-before-ready = yes'));
    m.child.kill('SIGHUP');
    const failed = await m.waitLog((r) => typeof r.msg === 'string' && r.msg.startsWith('reload failed: the new generation did not become ready'), 'failed reload');
    assert.equal(failed.code, 'IBP_ERR_MASTER_START');
    assert.match(JSON.stringify(failed.err), /exited \(code 4\) before it was ready: broken on purpose/);
    assert.equal(m.records.filter((r) => r.fixture === 'echo-service' && r.pid === v1.pid && r.sigterm === true).length, 0, 'the old process got no SIGTERM');
    assert.equal((await greeting(addr)).pid, v1.pid);

    // A good new generation, ready 600 ms after its start: the old one is stopped only after that.
    sc.write('echo.cf', text.replace('greeting = v1', 'greeting = v3'));
    m.child.kill('SIGHUP');
    await m.waitLog((r) => r.msg === 'reload done', 'reload done');
    const ready = m.records.find((r) => r.msg === 'service process ready' && r.generation === 3)!;
    const started = m.records.find((r) => r.msg === 'service process started' && r.generation === 3)!;
    const softStop = m.records.find((r) => r.msg === 'soft stop' && r.generation === 1)!;
    assert.ok(timeOf(ready) - timeOf(started) >= 550, 'READY=1 came after the fixture delay');
    assert.ok(timeOf(softStop) >= timeOf(ready), 'the old generation was soft-stopped once the new one was ready');
    await m.waitLog((r) => r.fixture === 'echo-service' && r.pid === v1.pid && r.stopped !== undefined, 'old process stopped');
    assert.equal((await greeting(addr)).greeting, 'v3');
    assert.equal((await m.stop()).code, 0);
  });
});
