import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runningRcmdPid } from '../../../src/rcmd/index.js';
import { auditRecords, ibcmd } from './harness.js';

const base = mkdtempSync(join(tmpdir(), 'ibp-rcmd-cli-'));
const agentHome = join(base, 'agent');
const peerHome = join(base, 'peer');

after(() => {
  // whatever happened, no agent is left running
  const pid = runningRcmdPid(join(agentHome, 'run', 'ibcmd.pid'));
  if (pid !== undefined) process.kill(pid, 'SIGKILL');
  rmSync(base, { recursive: true, force: true });
});

describe('ibcmd command line, as a new user runs it', () => {
  test('ibcmd - no arguments prints the usage and exits 2', () => {
    const r = ibcmd(base, []);
    assert.equal(r.status, 2);
    assert.match(r.stdout, /usage: ibcmd -a init/);
    assert.match(r.stdout, /-a execmd --cmd "CMD"/);
  });

  test('ibcmd - init, start, execmd, putfile, getfile, check, status, stop', () => {
    mkdirSync(agentHome);
    const init = ibcmd(agentHome, ['-a', 'init', '--port', '0']);
    assert.equal(init.status, 0, init.stderr);
    assert.match(init.stdout, /created .*etc\/ibcmd\.conf/);
    assert.match(init.stdout, /created .*keys\/ibcmd\.secret \(mode 0600\)/);
    assert.equal(statSync(join(agentHome, 'keys', 'ibcmd.secret')).mode & 0o777, 0o600);
    assert.match(ibcmd(agentHome, ['-a', 'init']).stdout, /already exists, left as it is/);

    const start = ibcmd(agentHome, ['-a', 'start']);
    assert.equal(start.status, 0, start.stderr);
    const m = /ibcmd started on 127\.0\.0\.1:(\d+) \(pid (\d+)\)/.exec(start.stdout);
    assert.ok(m, start.stdout);
    const port = m[1]!;
    const again = ibcmd(agentHome, ['-a', 'start']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /IBP_ERR_RCMD_ALREADY_RUNNING/);
    const st = ibcmd(agentHome, ['-s', 'status']);
    assert.equal(st.status, 0);
    assert.match(st.stdout, new RegExp(`is running .* on 127\\.0\\.0\\.1:${port}`));

    // the default whitelist: ls is allowed; the exit code and stderr of the remote command come back
    const at = ['--ip', '127.0.0.1', '--port', port];
    const ls = ibcmd(agentHome, [...at, '-a', 'execmd', '--cmd', 'ls etc']);
    assert.equal(ls.status, 0, ls.stderr);
    assert.equal(ls.stdout, 'ibcmd.conf\n');
    const missing = ibcmd(agentHome, [...at, '-a', 'execmd', '--cmd', 'ls no-such-dir']);
    assert.equal(missing.status, 2, 'ls exits 2 for a missing operand');
    assert.match(missing.stderr, /no-such-dir/);
    const local = ibcmd(agentHome, ['-a', 'execmd', '--cmd', 'ls etc']);
    assert.equal(local.status, 0, `without --ip/--port the local agent is used: ${local.stderr}`);
    const refused = ibcmd(agentHome, [...at, '-a', 'execmd', '--cmd', 'ls; id']);
    assert.equal(refused.status, 126);
    assert.match(refused.stderr, /IBP_ERR_RCMD_COMMAND_REFUSED: .*command separator ';'/);
    const check = ibcmd(agentHome, ['-a', 'check', '--cmd', 'ls -l etc']);
    assert.equal(check.status, 0);
    assert.match(check.stdout, /allowed by whitelist entry "ls \*\*": argv \["ls","-l","etc"\]/);
    assert.equal(ibcmd(agentHome, ['-a', 'check', '--cmd', 'cat keys/ibcmd.secret']).status, 126);

    // a peer: its own home, a copy of the agent's secret
    mkdirSync(join(peerHome, 'keys'), { recursive: true });
    copyFileSync(join(agentHome, 'keys', 'ibcmd.secret'), join(peerHome, 'keys', 'ibcmd.secret'));
    chmodSync(join(peerHome, 'keys', 'ibcmd.secret'), 0o600);
    const work = join(base, 'work');
    mkdirSync(join(work, 'file'), { recursive: true });
    writeFileSync(join(work, 'file', 'report.txt'), 'daily report\n');
    const put = ibcmd(peerHome, [...at, '-a', 'putfile', '--file', 'file/report.txt'], work);
    assert.equal(put.status, 0, put.stderr);
    assert.match(put.stdout, /putfile file\/report\.txt -> 127\.0\.0\.1:\d+:file\/report\.txt \(13 bytes, sha256 [0-9a-f]{64}\)/);
    assert.equal(readFileSync(join(agentHome, 'file', 'report.txt'), 'utf8'), 'daily report\n');
    const get = ibcmd(peerHome, [...at, '-a', 'getfile', '--file', 'etc/ibcmd.conf', '--to', 'copy/ibcmd.conf'], work);
    assert.equal(get.status, 1, 'etc/ibcmd.conf is in file.deny');
    assert.match(get.stderr, /IBP_ERR_RCMD_PATH_REFUSED: .*file\.deny/);
    const get2 = ibcmd(peerHome, [...at, '-a', 'getfile', '--file', 'file/report.txt', '--to', 'back/report.txt'], work);
    assert.equal(get2.status, 0, get2.stderr);
    assert.equal(readFileSync(join(work, 'back', 'report.txt'), 'utf8'), 'daily report\n');
    const up = ibcmd(peerHome, [...at, '-a', 'putfile', '--file', 'file/report.txt', '--to', '../escape.txt'], work);
    assert.equal(up.status, 1);
    assert.match(up.stderr, /IBP_ERR_RCMD_PATH_REFUSED: .*parent directory/);

    // a peer with another secret
    writeFileSync(join(peerHome, 'keys', 'ibcmd.secret'), `${'f'.repeat(64)}\n`, { mode: 0o600 });
    const wrong = ibcmd(peerHome, [...at, '-a', 'execmd', '--cmd', 'ls etc']);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /IBP_ERR_RCMD_AUTH_FAILED/);
    chmodSync(join(peerHome, 'keys', 'ibcmd.secret'), 0o644);
    const loose = ibcmd(peerHome, [...at, '-a', 'execmd', '--cmd', 'ls etc']);
    assert.match(loose.stderr, /IBP_ERR_RCMD_SECRET: .*chmod 600/);

    const recs = auditRecords(agentHome);
    assert.ok(recs.some((r) => r.cmd === 'ls etc' && r.verdict === 'allowed' && r.exitCode === 0));
    assert.ok(recs.some((r) => r.cmd === 'ls no-such-dir' && r.exitCode === 2));
    assert.ok(recs.some((r) => r.action === 'putfile' && r.file === 'file/report.txt' && r.verdict === 'allowed'));
    assert.ok(recs.some((r) => r.action === 'auth' && r.verdict === 'refused'));

    const stop = ibcmd(agentHome, ['-a', 'stop']);
    assert.equal(stop.status, 0, stop.stderr);
    assert.match(stop.stdout, /ibcmd stopped \(pid \d+\)/);
    const st2 = ibcmd(agentHome, ['-s', 'status']);
    assert.equal(st2.status, 1);
    assert.match(st2.stdout, /is not running/);
    const stop2 = ibcmd(agentHome, ['-a', 'stop']);
    assert.equal(stop2.status, 1);
    assert.match(stop2.stderr, /IBP_ERR_RCMD_NOT_RUNNING/);
  });

  test('ibcmd - start without a secret file fails with a clear message and leaves nothing running', () => {
    const h = join(base, 'nosecret');
    mkdirSync(h);
    assert.equal(ibcmd(h, ['-a', 'init', '--port', '0']).status, 0);
    rmSync(join(h, 'keys', 'ibcmd.secret'));
    const r = ibcmd(h, ['-a', 'start']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /IBP_ERR_RCMD_SECRET: .*no such file \(ibcmd -a init writes one\)/);
    assert.equal(runningRcmdPid(join(h, 'run', 'ibcmd.pid')), undefined);
  });
});
