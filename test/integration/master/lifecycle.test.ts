import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO_COMMAND, greeting, killAllMasters, LineClient, MasterProcess, Scratch, timeOf, TRIGGER_JOB } from './harness.js';

describe('ibp master: throttle, on-demand, triggers', () => {
  const scratches: Scratch[] = [];
  after(async () => {
    await killAllMasters();
    for (const s of scratches) s.remove();
  });
  const scratch = (): Scratch => {
    const sc = new Scratch();
    scratches.push(sc);
    return sc;
  };

  test('a service crashing right after start is restarted with growing delays, never in a tight loop', async () => {
    const sc = scratch();
    sc.write('crashy.cf', 'server-command = /bin/sh -c "exit 3"', 'server-service = crashy://127.0.0.1:0', 'server-throttle-min = 0.05', 'server-throttle-max = 0.4');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    const isExit = (r: Record<string, unknown>): boolean => r.msg === 'service process exited' && r.service === 'crashy';
    await m.waitCount(isExit, 7, 'crash exits');
    const exits = m.records.filter(isExit).slice(0, 7);
    const starts = m.logs('service process started', 'crashy');
    const delays = exits.map((e) => e.restartInMs as number);
    assert.deepEqual(delays, [50, 100, 200, 400, 400, 400, 400], 'the announced delay doubles up to server-throttle-max');
    for (const e of exits) {
      assert.equal(e.code, 3);
      assert.equal(e.crashed, true);
    }
    // From the master's own timestamps: each restart came no sooner than the delay announced at the crash before.
    for (let i = 0; i < 6; i++) {
      const waited = timeOf(starts[i + 1]!) - timeOf(exits[i]!);
      assert.ok(waited >= delays[i]! - 2, `restart ${i + 1} came ${waited} ms after the crash, announced ${delays[i]} ms`);
    }
    const first7 = timeOf(starts[6]!) - timeOf(starts[0]!);
    assert.ok(first7 >= 50 + 100 + 200 + 400 * 3 - 12, `7 starts took ${first7} ms: no tight loop`);
    assert.equal((await m.stop()).code, 0);
  });

  test('on-demand: no process until a connection waits; that connection starts one; it exits after max-use and the next connection starts another', async () => {
    const sc = scratch();
    sc.write('od.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = od://127.0.0.1:0', 'server-on-demand = yes', 'max-use = 2', 'server-proc-count = 1');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    assert.equal(m.logs('service process started', 'od').length, 0, 'nothing runs before the first connection');
    const first = await greeting(m.address('od'));
    assert.equal(first.served, 1);
    const second = await greeting(m.address('od'));
    assert.equal(second.pid, first.pid, 'the process stays for the next connection');
    assert.equal(second.served, 2);
    const exit = await m.waitLog((r) => r.msg === 'service process exited' && r.pid === first.pid, 'exit after max-use');
    assert.equal(exit.code, 0);
    assert.equal(exit.crashed, false);
    const stopped = await m.waitLog((r) => r.fixture === 'echo-service' && r.pid === first.pid && r.stopped !== undefined, 'fixture stop line');
    assert.equal(stopped.stopped, 'max-use');
    const third = await greeting(m.address('od'));
    assert.notEqual(third.pid, first.pid);
    assert.equal(third.served, 1);
    assert.equal(m.logs('service process started', 'od').length, 2);
    assert.equal((await m.stop()).code, 0);
  });

  test('on-demand: a process exits after max-idle seconds without connections, and a connection waiting in a burst is never lost', async () => {
    const sc = scratch();
    sc.write('od.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = od://127.0.0.1:0', 'server-on-demand = yes', 'max-idle = 0.3', 'max-use = 3');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    const g = await greeting(m.address('od'));
    const stopped = await m.waitLog((r) => r.fixture === 'echo-service' && r.pid === g.pid && r.stopped !== undefined, 'idle exit');
    assert.equal(stopped.stopped, 'max-idle');
    // 7 connections at once: processes of max-use 3 come and go, every connection is answered.
    const all = await Promise.all(Array.from({ length: 7 }, () => greeting(m.address('od'))));
    const byPid = new Map<unknown, number>();
    for (const x of all) byPid.set(x.pid, (byPid.get(x.pid) ?? 0) + 1);
    assert.ok([...byPid.values()].every((n) => n <= 3), `no process served more than max-use: ${JSON.stringify([...byPid])}`);
    assert.ok(byPid.size >= 3);
    assert.equal((await m.stop()).code, 0);
  });

  test('on-demand with server-proc-count 2: a connection left waiting while the first process is stuck starts a second process', async () => {
    const sc = scratch();
    sc.write('od.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = od://127.0.0.1:0', 'server-on-demand = yes', 'server-proc-count = 2', 'server-stop-timeout = 1');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    const c1 = new LineClient(m.address('od'));
    const p1 = JSON.parse(await c1.line()) as Record<string, unknown>;
    c1.send('block 15000');
    assert.equal(await c1.line(), 'blocking', 'the first process is stuck before the second connection arrives');
    const p2 = await greeting(m.address('od'));
    assert.notEqual(p2.pid, p1.pid, 'the waiting connection went to a second process');
    const starts = m.logs('service process started', 'od');
    assert.equal(starts.length, 2);
    assert.ok(timeOf(starts[1]!) - timeOf(starts[0]!) >= 1000, 'a new process first gets GROW_HOLD_MS to accept');
    c1.close();
    assert.equal((await m.stop()).code, 0);
  });

  test('a trigger service runs its command every interval, with no sockets, and skips a run while the last one goes on', async () => {
    const sc = scratch();
    const fast = join(sc.dir, 'fast.out');
    const slow = join(sc.dir, 'slow.out');
    sc.write('fast.cf', `server-command = ${process.execPath} ${TRIGGER_JOB}`, 'server-service = trigger:0.2', `out = ${fast}`);
    sc.write('slow.cf', `server-command = ${process.execPath} ${TRIGGER_JOB}`, 'server-service = trigger:0.1', `out = ${slow}`, 'sleep-ms = 700');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    await m.waitCount((r) => r.msg === 'trigger run finished' && r.service === 'fast', 3, 'fast runs');
    await m.waitCount((r) => String(r.msg).startsWith('trigger run skipped') && r.service === 'slow', 3, 'skipped slow runs');
    await m.waitCount((r) => r.msg === 'trigger run finished' && r.service === 'slow', 2, 'slow runs');
    assert.equal((await m.stop()).code, 0);
    const fastLines = readFileSync(fast, 'utf8').trim().split('\n').map((l) => l.split(' '));
    assert.ok(fastLines.length >= 6);
    assert.ok(fastLines.filter((l) => l[2] === 'start').every((l) => l[3] === '-'), 'a trigger run gets no LISTEN_FDS');
    // The slow job's runs never overlap: its lines alternate start/end of the same pid.
    const slowLines = readFileSync(slow, 'utf8').trim().split('\n').map((l) => l.split(' '));
    for (let i = 0; i + 1 < slowLines.length; i += 2) {
      assert.equal(slowLines[i]![2], 'start');
      assert.equal(slowLines[i + 1]![2], 'end');
      assert.equal(slowLines[i]![0], slowLines[i + 1]![0], 'a run ends before the next one starts');
    }
    const runs = m.logs('trigger run started', 'fast');
    assert.ok(timeOf(runs[0]!) - timeOf(m.logs('service started', 'fast')[0]!) >= 190, 'the first run comes one interval after the start');
  });

  test('SIGHUP: soft restart with the re-read config; a connection in flight finishes on the old process, new ones reach the new config', async () => {
    const sc = scratch();
    const cf = sc.write('echo.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = echo://127.0.0.1:0', 'greeting = v1', 'server-stop-timeout = 30');
    const m = await MasterProcess.start(['-C', 'etc/services', '-pid-file', 'run/master.pid'], sc.dir);
    const addr = m.address('echo');
    const held = new LineClient(addr);
    const old = JSON.parse(await held.line()) as Record<string, unknown>;
    assert.equal(old.greeting, 'v1');
    held.send('hold');
    assert.equal(await held.line(), 'holding');
    // A broken file first: the reload is refused and v1 keeps serving.
    sc.write('broken.cf', 'server-command = x', 'server-proc-count = none');
    m.child.kill('SIGHUP');
    const failed = await m.waitLog((r) => r.msg === 'reload failed; the running services are kept', 'refused reload');
    assert.equal(failed.code, 'IBP_ERR_MASTER_CONFIG');
    assert.equal((await greeting(addr)).greeting, 'v1');
    sc.write('broken.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = extra://run/extra.sock');
    sc.write('echo.cf', readFileSync(cf, 'utf8').replace('greeting = v1', 'greeting = v2'));
    m.child.kill('SIGHUP');
    await m.waitLog((r) => r.msg === 'reload done', 'reload done');
    await m.waitLog((r) => r.fixture === 'echo-service' && r.pid === old.pid && r.sigterm === true, 'the old process stopped accepting');
    const fresh = await greeting(addr);
    assert.equal(fresh.greeting, 'v2', 'the same listen socket now reaches the new generation');
    assert.notEqual(fresh.pid, old.pid);
    assert.equal((await greeting({ path: join(sc.dir, 'run', 'extra.sock') })).service, 'broken', 'an address added by the reload is bound');
    assert.equal(m.logs('listening').filter((r) => r.listener === 'echo').length, 1, 'the kept address was not bound again');
    held.send('release');
    assert.equal(await held.line(), `released by ${String(old.pid)}`, 'the old process finished the connection it had');
    const oldExit = await m.waitLog((r) => r.msg === 'service process exited' && r.pid === old.pid, 'old process exit');
    assert.equal(oldExit.crashed, false);
    assert.equal(oldExit.generation, 1);
    const stopLine = await m.waitLog((r) => r.fixture === 'echo-service' && r.pid === old.pid && r.stopped !== undefined, 'old fixture stop line');
    assert.equal(stopLine.stopped, 'soft-stop');
    held.close();
    assert.equal((await m.stop()).code, 0);
  });

  test('alone mode runs one service in the foreground; command-line keys override its -config file', async () => {
    const sc = scratch();
    const file = sc.write('echo.cf', `server-command = ${ECHO_COMMAND}`, 'greeting = from-file', 'server-service = 127.0.0.1:0');
    const m = await MasterProcess.start(['alone', '-config', file, '-server-service', 'solo://127.0.0.1:0', '-greeting', 'from-flag'], sc.dir);
    const g = await greeting(m.address('solo'));
    assert.equal(g.greeting, 'from-flag');
    assert.equal(g.service, 'echo');
    assert.equal(g.listenFdNames, 'solo');
    m.child.kill('SIGINT');
    assert.equal((await m.exited).code, 0);
  });
});
