import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO_COMMAND, greeting, ibpMasterSync, killAllMasters, MasterProcess, oneLine, Scratch } from './harness.js';

/** `ibp master … --try-lock` exits `code` (the failure message carries its stderr). */
function assertTryLock(args: string[], cwd: string, code: number): void {
  const r = ibpMasterSync(args, cwd);
  assert.equal(r.status, code, `--try-lock exit ${r.status}, stderr: ${r.stderr}`);
}

/** A python3 service written without any IBP code: a blocking accept loop on fd 3. */
const PYTHON_COMMAND = `python3 -c "import socket,os;s=socket.socket(fileno=3);[(c.sendall(('py %d %s %s %s\\n'%(os.getpid(),os.environ['LISTEN_PID'],os.environ['LISTEN_FDS'],os.environ['LISTEN_FDNAMES'])).encode()),c.close()) for c,a in iter(s.accept,None)]"`;

describe('ibp master: resident services', () => {
  const scratches: Scratch[] = [];
  after(async () => {
    await killAllMasters();
    for (const s of scratches) s.remove();
  });

  test('services get their listen sockets in the LISTEN_FDS convention and answer (Node on TCP + unix, python3 on a blocking socket)', async () => {
    const sc = new Scratch();
    scratches.push(sc);
    sc.write('shared.gcf', 'server-stop-timeout = 10', 'greeting = from-gcf', 'region = north');
    sc.write('echo.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = echo://127.0.0.1:0, side://run/echo.sock', 'server-proc-count = 2', 'greeting = hello');
    sc.write('py.cf', `server-command = ${PYTHON_COMMAND}`, 'server-service = pysvc://127.0.0.1:0', 'server-nonblocking = no');
    const m = await MasterProcess.start(['-C', 'etc/services', '-pid-file', 'run/master.pid'], sc.dir);
    const echoPids = m.logs('service process started', 'echo').map((r) => r.pid);
    assert.equal(echoPids.length, 2, 'server-proc-count processes are started at once');
    const seen = new Set<unknown>();
    for (let i = 0; i < 12; i++) {
      const g = await greeting(m.address('echo'));
      assert.ok(echoPids.includes(g.pid), `answered by a process the master started (${String(g.pid)})`);
      seen.add(g.pid);
      assert.equal(g.listenPid, String(g.pid), 'LISTEN_PID is the service process itself');
      assert.equal(g.listenFds, '2');
      assert.equal(g.listenFdNames, 'echo:side');
      assert.equal(g.listener, 'echo');
      assert.equal(g.masterPid, String(m.pid));
      assert.equal(g.service, 'echo');
      assert.equal(g.greeting, 'hello', 'the .cf overrides the .gcf');
      assert.equal((g.config as Record<string, string>).region, 'north', 'free keys of the .gcf are passed on');
    }
    const viaUnix = await greeting({ path: join(sc.dir, 'run', 'echo.sock') });
    assert.equal(viaUnix.listener, 'side');
    const py = m.logs('service process started', 'py')[0]!.pid;
    for (let i = 0; i < 3; i++) assert.equal(await oneLine(m.address('pysvc')), `py ${py} ${py} 1 pysvc`);
    assert.equal((await m.stop()).code, 0);
    assert.equal(existsSync(join(sc.dir, 'run', 'echo.sock')), false, 'the unix socket file is removed at stop');
  });

  test('pid file lock: --try-lock is 0 while free, 1 while a master runs, 2 on a bad path; a second master is refused', async () => {
    const sc = new Scratch();
    scratches.push(sc);
    sc.write('echo.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = echo://127.0.0.1:0');
    assertTryLock(['-pid-file', 'run/master.pid', '--try-lock'], sc.dir, 0);
    writeFileSync(join(sc.dir, 'plain'), 'x');
    assertTryLock(['-pid-file', 'plain/master.pid', '--try-lock'], sc.dir, 2);
    const m = await MasterProcess.start(['-C', 'etc/services', '-pid-file', 'run/master.pid'], sc.dir);
    assert.equal(readFileSync(sc.pidFile, 'utf8').trim(), String(m.pid));
    assertTryLock(['-pid-file', 'run/master.pid', '--try-lock'], sc.dir, 1);
    const second = ibpMasterSync(['-C', 'etc/services', '-pid-file', sc.pidFile], sc.dir);
    assert.equal(second.status, 1);
    assert.match(second.stderr, new RegExp(`IBP_ERR_MASTER_LOCKED: .*pid ${m.pid}`));
    const st = ibpMasterSync(['--pid-file', 'run/master.pid', '--status'], sc.dir);
    assert.equal(st.status, 0, st.stderr);
    const status = JSON.parse(st.stdout) as { pid: number; services: { name: string; processes: unknown[] }[] };
    assert.equal(status.pid, m.pid);
    assert.deepEqual(status.services.map((s) => [s.name, s.processes.length]), [['echo', 1]]);
    assert.equal((await m.stop()).code, 0);
    assert.equal(existsSync(sc.pidFile), false);
    assertTryLock(['-pid-file', 'run/master.pid', '--try-lock'], sc.dir, 0);
    assert.equal(ibpMasterSync(['-pid-file', 'run/master.pid', '--status'], sc.dir).status, 1);
  });

  test('a bad .cf stops the start with IBP_ERR_MASTER_CONFIG naming file:line and key, and nothing is left locked', async () => {
    const sc = new Scratch();
    scratches.push(sc);
    sc.write('good.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = 127.0.0.1:0');
    sc.write('bad.cf', '# a service', `server-command = ${ECHO_COMMAND}`, 'server-proc-count = many');
    const r = ibpMasterSync(['-C', 'etc/services', '-pid-file', 'run/master.pid'], sc.dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /IBP_ERR_MASTER_CONFIG: etc\/services\/bad\.cf:3: server-proc-count: expected an integer/);
    assertTryLock(['-pid-file', 'run/master.pid', '--try-lock'], sc.dir, 0);
    const usage = ibpMasterSync(['-pid-file', 'run/master.pid'], sc.dir);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /IBP_ERR_USAGE: -C CONFIG_DIR is required/);
  });

  test('server-log: masterlog appends the service output to a file; syslog pipes it through logger(1) with the facility', async () => {
    const sc = new Scratch();
    scratches.push(sc);
    // A stand-in logger(1) on PATH records its arguments and what it is given.
    const bin = join(sc.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'logger'), `#!/bin/sh\necho "args: $*" >> "${join(sc.dir, 'syslog.out')}"\ncat >> "${join(sc.dir, 'syslog.out')}"\n`);
    chmodSync(join(bin, 'logger'), 0o755);
    sc.write('filed.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = filed://127.0.0.1:0', 'server-log = masterlog,log/filed.log');
    sc.write('sys.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = sys://127.0.0.1:0', 'server-log = syslog,local3');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir, { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    const a = await greeting(m.address('filed'));
    const b = await greeting(m.address('sys'));
    assert.equal((await m.stop()).code, 0);
    assert.ok(!m.records.some((r) => r.fixture === 'echo-service'), 'no service output reached the master stderr');
    assert.match(readFileSync(join(sc.dir, 'log', 'filed.log'), 'utf8'), new RegExp(`"pid":${String(a.pid)},"stopped":"soft-stop"`));
    const end = Date.now() + 10_000;
    let sys = '';
    while (Date.now() < end && !sys.includes(`"pid":${String(b.pid)}`)) {
      sys = existsSync(join(sc.dir, 'syslog.out')) ? readFileSync(join(sc.dir, 'syslog.out'), 'utf8') : '';
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(sys, /^args: -t sys -p local3\.info$/m);
    assert.match(sys, new RegExp(`"pid":${String(b.pid)},"stopped":"soft-stop"`));
  });

  test('a resident process that exits normally (max-use) is replaced at once, without throttling', async () => {
    const sc = new Scratch();
    scratches.push(sc);
    sc.write('echo.cf', `server-command = ${ECHO_COMMAND}`, 'server-service = echo://127.0.0.1:0', 'max-use = 1');
    const m = await MasterProcess.start(['-C', 'etc/services'], sc.dir);
    const pids = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      const g = await greeting(m.address('echo'));
      assert.equal(g.served, 1);
      pids.add(g.pid);
    }
    assert.equal(pids.size, 3, 'each process served exactly max-use = 1 connection');
    const exits = await m.waitCount((r) => r.msg === 'service process exited', 2, 'exits');
    for (const e of exits) {
      assert.equal(e.code, 0);
      assert.equal(e.crashed, false);
      assert.equal(e.restartInMs, 0);
    }
    assert.equal((await m.stop()).code, 0);
  });
});
