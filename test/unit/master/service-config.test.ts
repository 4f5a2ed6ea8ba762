import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { loadAloneService, loadServiceDir, parseServiceEndpoints, splitCommandLine } from '../../../src/master/index.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-master-cf-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** A fresh config dir holding `files`. */
function dir(files: Record<string, string>): string {
  const d = join(base, `d${++n}`);
  mkdirSync(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

/** Asserts IBP_ERR_MASTER_CONFIG whose message starts with `where` and mentions `what`. */
function assertCfError(fn: () => unknown, where: string, what: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof IbpError, String(e));
    assert.equal(e.code, 'IBP_ERR_MASTER_CONFIG');
    assert.ok(e.message.includes(where), `${e.message} should name ${where}`);
    assert.match(e.message, what);
    return true;
  });
}

describe('master service config', () => {
  test('service config - the seed imapd.cf loads: addresses by form, free keys kept, defaults applied', () => {
    const d = dir({
      'imapd.cf': `# 服务程序
server-command = bin/imapd
server-service = imapd://0:143, imapd-ssl://0:993, imapd://127.0.0.1:1143,  imapd://./var/socket/imapd, 0:12143
server-proc-count = 1
server-log = syslog,mail

abc = xxx
host = linuxmail.cn
`,
    });
    const [s] = loadServiceDir(d, '/srv/mail');
    assert.ok(s);
    assert.equal(s.name, 'imapd');
    assert.deepEqual(s.command, ['bin/imapd']);
    assert.equal(s.endpoints.kind, 'listen');
    if (s.endpoints.kind !== 'listen') return;
    const brief = s.endpoints.addresses.map((a) => (a.kind === 'tcp' ? `${a.name} ${a.host}:${a.port}` : `${a.name} unix ${a.path}`));
    assert.deepEqual(brief, [
      'imapd 0.0.0.0:143',
      'imapd-ssl 0.0.0.0:993',
      'imapd 127.0.0.1:1143',
      'imapd unix /srv/mail/var/socket/imapd',
      'imapd 0.0.0.0:12143',
    ]);
    assert.deepEqual(s.log, { kind: 'syslog', facility: 'mail' });
    assert.equal(s.keys.abc, 'xxx');
    assert.equal(s.keys.host, 'linuxmail.cn');
    assert.equal(s.procCount, 1);
    assert.equal(s.onDemand, false);
    assert.equal(s.nonBlocking, true);
    assert.equal(s.stopTimeoutMs, 3_600_000);
    assert.ok(Object.isFrozen(s));
  });

  test('service config - the seed\'s "0;993" typo is an error naming file:line and server-service', () => {
    const d = dir({ 'imapd.cf': 'server-command = bin/imapd\n\nserver-service = imapd://0:143, 0;993\n' });
    assertCfError(() => loadServiceDir(d), `${join(d, 'imapd.cf')}:3: server-service:`, /0;993/);
  });

  test('service config - *.gcf settings are shared, a .cf overrides them, an error in a .gcf names the .gcf line', () => {
    const d = dir({
      'a.gcf': 'server-proc-count = 3\nserver-stop-timeout = 7\nregion = north\n',
      'one.cf': 'server-command = /bin/true\nserver-proc-count = 2\n',
      'two.cf': 'server-command = /bin/true\n',
    });
    const [one, two] = loadServiceDir(d);
    assert.equal(one!.procCount, 2);
    assert.equal(two!.procCount, 3);
    assert.equal(two!.stopTimeoutMs, 7000);
    assert.equal(one!.keys.region, 'north');
    const bad = dir({ 'a.gcf': '\nserver-proc-count = lots\n', 'one.cf': 'server-command = /bin/true\n' });
    assertCfError(() => loadServiceDir(bad), `${join(bad, 'a.gcf')}:2: server-proc-count:`, /integer/);
  });

  test('service config - bad lines and values are coded errors with file:line and key', () => {
    const cases: [string, string, RegExp][] = [
      ['server-command = x\nthis line has no equals\n', ':2:', /key = value/],
      ['server-command = x\nserver-procs = 2\n', ':2: server-procs:', /unknown master key/],
      ['server-command = x\nserver-proc-count = 0\n', ':2: server-proc-count:', /1\.\.10000/],
      ['server-command = "x\n', ':1: server-command:', /unclosed "/],
      ['server-command = x\nserver-on-demand = maybe\n', ':2: server-on-demand:', /yes or no/],
      ['server-command = x\nserver-ready = sometimes\n', ':2: server-ready:', /start or notify/],
      ['server-command = x\nserver-ready-timeout = 0\n', ':2: server-ready-timeout:', /seconds >= 0\.001/],
      ['server-command = x\nserver-on-demand = yes\n', ':2: server-on-demand:', /needs listen addresses/],
      ['server-command = x\nserver-service = trigger:5, 0:80\n', ':2: server-service:', /only entry/],
      ['server-command = x\nserver-service = trigger:0.001\n', ':2: server-service:', /trigger:SECONDS/],
      ['server-command = x\nserver-service = localhost:80\n', ':2: server-service:', /not an IP/],
      ['server-command = x\nserver-service = 0:70000\n', ':2: server-service:', /0\.\.65535/],
      ['server-command = x\nserver-service = a://127.0.0.1:80, b://127.0.0.1:80\n', ':2: server-service:', /same address/],
      ['server-command = x\nserver-log = file,/tmp/x\n', ':2: server-log:', /syslog,FACILITY or masterlog,PATH/],
      ['server-command = x\nserver-log = syslog,nosuch\n', ':2: server-log:', /FACILITY/],
      ['server-command = x\nmax-idle = soon\n', ':2: max-idle:', /seconds/],
      ['server-command = x\nserver-throttle-min = 2\nserver-throttle-max = 1\n', ':3: server-throttle-max:', /server-throttle-min/],
    ];
    for (const [text, where, what] of cases) {
      const d = dir({ 's.cf': text });
      assertCfError(() => loadServiceDir(d), `${join(d, 's.cf')}${where}`, what);
    }
    const missing = dir({ 's.cf': 'server-service = 0:80\n' });
    assertCfError(() => loadServiceDir(missing), `${join(missing, 's.cf')}: server-command:`, /missing/);
    const empty = dir({ 'a.gcf': 'x = 1\n' });
    assertCfError(() => loadServiceDir(empty), empty, /no \*\.cf/);
  });

  test('service config - server-command is split into argv without a shell', () => {
    assert.deepEqual(splitCommandLine(`python3 -c "print('a b')"  x\\ y 'q"q' "a\\"b"`), ['python3', '-c', "print('a b')", 'x y', 'q"q', 'a"b']);
    assert.deepEqual(splitCommandLine('a $HOME `x` ;|&'), ['a', '$HOME', '`x`', ';|&']);
    assert.deepEqual(splitCommandLine(`sh -c ""`), ['sh', '-c', '']);
    assert.throws(() => splitCommandLine("a 'b"), /unclosed '/);
  });

  test('service config - trigger, on-demand and IPv6 forms', () => {
    assert.deepEqual(parseServiceEndpoints('trigger:1.5', 's'), { kind: 'trigger', intervalMs: 1500 });
    const e = parseServiceEndpoints('web://[::1]:8080, :9090, ./x.sock', 'svc', '/base');
    assert.equal(e.kind, 'listen');
    if (e.kind !== 'listen') return;
    assert.deepEqual(
      e.addresses.map((a) => [a.kind, a.name, a.kind === 'tcp' ? `${a.host}/${a.port}/${a.family}` : a.path]),
      [
        ['tcp', 'web', '::1/8080/6'],
        ['tcp', 'svc', '0.0.0.0/9090/4'],
        ['unix', 'svc', '/base/x.sock'],
      ],
    );
    const d = dir({ 'od.cf': 'server-command = x\nserver-service = 127.0.0.1:0\nserver-on-demand = yes\nmax-idle = 2.5\nmax-use = 10\n' });
    const [s] = loadServiceDir(d);
    assert.equal(s!.onDemand, true);
    assert.equal(s!.maxIdleSec, 2.5);
    assert.equal(s!.maxUse, 10);
  });

  test('service config - alone mode: later files override earlier ones and command-line keys override files', () => {
    const d = dir({ 'g.gcf': 'greeting = gcf\nserver-proc-count = 4\n', 'echo.cf': 'server-command = /bin/cat\ngreeting = cf\n' });
    const s = loadAloneService([
      { kind: 'key', key: 'greeting', value: 'flag', position: 2 },
      { kind: 'config-path', dir: d },
      { kind: 'config', file: join(d, 'echo.cf') },
      { kind: 'key', key: 'server-service', value: 'echo://127.0.0.1:0', position: 6 },
    ]);
    assert.equal(s.name, 'echo');
    assert.equal(s.keys.greeting, 'flag');
    assert.equal(s.procCount, 4);
    assert.deepEqual(s.command, ['/bin/cat']);
    assertCfError(() => loadAloneService([{ kind: 'key', key: 'server-command', value: 'x', position: 2 }, { kind: 'key', key: 'server-proc-count', value: '-1', position: 4 }]), '(command line):4: server-proc-count:', /integer/);
  });
  test('service config - server-ready: start by default, notify with its timeout', () => {
    const [plain] = loadServiceDir(dir({ 'a.cf': 'server-command = x\n' }));
    assert.equal(plain!.readyNotify, false);
    assert.equal(plain!.readyTimeoutMs, 60_000);
    const [notify] = loadServiceDir(dir({ 'b.cf': 'server-command = x\nserver-ready = notify\nserver-ready-timeout = 2.5\n' }));
    assert.equal(notify!.readyNotify, true);
    assert.equal(notify!.readyTimeoutMs, 2500);
  });
});
