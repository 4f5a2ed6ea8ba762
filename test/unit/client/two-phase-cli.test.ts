/**
 * `ibp 2pc status | recover` on bad input: a missing home, a malformed or unknown --xid, an option of the
 * other subcommand. Each is a coded error with its exit code (1: IBP_ERR_HOME_INVALID, 2: IBP_ERR_USAGE),
 * and nothing is written into the home. Also: status --xid shows only that transaction.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecisionLog } from '../../../src/client/index.js';
import { cliPath } from '../../../src/cli/scratch-cluster.js';

function ibp2pc(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath('ibp'), '2pc', ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, IBP_HOME: '/nonexistent-ibp-home' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ibp 2pc - bad input', () => {
  let root: string;
  let home: string;
  let empty: string;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ibp-2pc-cli-'));
    home = join(root, 'coord');
    empty = join(root, 'empty');
    mkdirSync(home);
    mkdirSync(empty);
    const log = DecisionLog.open(home);
    log.writeBegin({ xid: 'X-open', coordinatorNode: 'CORE', participantTimeoutMs: 1000, participants: [{ node: 'BANKA', app: 'ibp_bank_transfer', host: null }] });
    log.writeBegin({ xid: 'X-done', coordinatorNode: 'CORE', participantTimeoutMs: 1000, participants: [] });
    log.decide('X-done', 'commit', [], 'coordinator');
    log.markDone('X-done');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('2pc cli - a missing home is IBP_ERR_HOME_INVALID (exit 1) for status and recover, and nothing is created', () => {
    const missing = join(root, 'no-such-home');
    for (const sub of ['status', 'recover']) {
      const r = ibp2pc([sub, '--home', missing]);
      assert.equal(r.status, 1, `${sub}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^IBP_ERR_HOME_INVALID: /);
    }
    assert.equal(existsSync(missing), false);
  });

  it('2pc cli - a malformed --xid is IBP_ERR_USAGE (exit 2) before anything is read', () => {
    for (const sub of ['status', 'recover']) {
      const r = ibp2pc([sub, '--home', home, '--xid', '../x']);
      assert.equal(r.status, 2, `${sub}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^IBP_ERR_USAGE: --xid must be/);
    }
  });

  it('2pc cli - recover --xid of a transaction not in the decision log is IBP_ERR_USAGE (exit 2); an empty home creates no log', () => {
    const r = ibp2pc(['recover', '--home', home, '--xid', 'X-unknown']);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /^IBP_ERR_USAGE: --xid X-unknown: no such transaction/);
    const e = ibp2pc(['recover', '--home', empty, '--xid', 'X-open']);
    assert.equal(e.status, 2, e.stdout + e.stderr);
    assert.equal(existsSync(join(empty, 'file', '2pc')), false);
  });

  it('2pc cli - recover options given to status, an unknown subcommand and none at all are usage errors (exit 2)', () => {
    const t = ibp2pc(['status', '--home', home, '--attempts', '3']);
    assert.equal(t.status, 2);
    assert.match(t.stderr, /^IBP_ERR_USAGE: --attempts is an option of ibp 2pc recover/);
    const u = ibp2pc(['bogus', '--home', home]);
    assert.equal(u.status, 2);
    assert.match(u.stderr, /^IBP_ERR_USAGE: unknown 2pc command bogus/);
    assert.equal(ibp2pc([]).status, 2);
  });

  it('2pc cli - status --xid shows only that transaction; a home without a log shows none and stays untouched', () => {
    const all = ibp2pc(['status', '--home', home, '--json']);
    assert.equal(all.status, 0, all.stderr);
    assert.deepEqual((JSON.parse(all.stdout) as { coordinator: Array<{ xid: string; state: string }> }).coordinator.map((e) => [e.xid, e.state]), [['X-done', 'committed'], ['X-open', 'preparing']]);
    const one = ibp2pc(['status', '--home', home, '--xid', 'X-open']);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /X-open\s+preparing/);
    assert.doesNotMatch(one.stdout, /X-done/);
    const none = ibp2pc(['status', '--home', empty]);
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stdout, /no transactions/);
    assert.equal(existsSync(join(empty, 'file', '2pc')), false);
  });
});
