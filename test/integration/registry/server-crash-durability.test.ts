/**
 * The registry's promise: an admin change that was acknowledged survives a crash. Streams of changes from
 * the client and the CLI run while monitor and worker are killed with SIGKILL; after a restart every
 * acknowledged change is there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegistryClient } from '../../../src/registry/index.js';
import { adminClient, ibmsOk, killGroup, exited, makeRegistryHome, removeHome, runCli, startIbms, stopIbms, waitFor, type IbmsProcess } from './harness.js';

/** Changes per client stream, and client streams; plus one CLI stream. */
const PER_STREAM = 150;
const STREAMS = 3;
const CLI_CHANGES = 40;
/** Kill once this many changes were acknowledged. */
const KILL_AFTER_ACKS = 60;

describe('acknowledged admin changes survive kill -9 of ibms', () => {
  let home: string;
  let ibms: IbmsProcess | undefined;
  before(async () => {
    home = await makeRegistryHome();
  });
  after(async () => {
    if (ibms) killGroup(ibms.child);
    await stopIbms(ibms);
    removeHome(home);
  });

  test('every change acknowledged before SIGKILL of monitor and worker is present after restart', async (t) => {
    ibms = await startIbms(home);
    const admin = adminClient(home, ibms);
    for (let s = 0; s < STREAMS; s++) await admin.admin('POST', 'apply', { action: 'add_node', node: `N${s}` });
    await admin.admin('POST', 'apply', { action: 'add_node', node: 'CLI' });

    const acked = new Set<string>();
    const sent = new Set<string>();
    let stop = false;
    const stream = async (client: RegistryClient, s: number): Promise<void> => {
      for (let i = 0; i < PER_STREAM && !stop; i++) {
        const key = `k${i}`;
        sent.add(`N${s}/${key}`);
        try {
          await client.admin('POST', 'apply', { action: 'add_node_kv', node: `N${s}`, key, value: `v${i}` });
          acked.add(`N${s}/${key}`);
        } catch {
          return; // the registry is gone: this change (and the stream) is not acknowledged
        }
      }
    };
    const cliStream = async (): Promise<void> => {
      for (let i = 0; i < CLI_CHANGES && !stop; i++) {
        sent.add(`CLI/c${i}`);
        const r = await runCli('ibms', ['-a', 'add_node_kv', '--node', 'CLI', '--key', `c${i}`, '--value', `w${i}`], home);
        if (r.code !== 0) return;
        acked.add(`CLI/c${i}`);
      }
    };
    const all = Promise.all([...Array.from({ length: STREAMS }, (_, s) => stream(adminClient(home, ibms!), s)), cliStream()]);
    await waitFor(() => acked.size >= KILL_AFTER_ACKS, `${KILL_AFTER_ACKS} acknowledged changes`, 120_000);
    killGroup(ibms.child);
    await exited(ibms.child);
    stop = true;
    await all;
    const ackedAtKill = acked.size;
    assert.ok(ackedAtKill >= KILL_AFTER_ACKS, `acked ${ackedAtKill}`);
    assert.ok(sent.size > ackedAtKill, `the kill landed while changes were in flight (sent ${sent.size}, acked ${ackedAtKill})`);

    ibms = await startIbms(home);
    const { rows } = await adminClient(home, ibms).admin<{ rows: { node: string; key: string; value: string }[] }>('GET', 'nodes_kv');
    const present = new Map(rows.map((r) => [`${r.node}/${r.key}`, r.value]));
    const lost = [...acked].filter((k) => !present.has(k));
    assert.deepEqual(lost, [], `acknowledged changes lost after the crash (${lost.length} of ${acked.size})`);
    for (const k of acked) {
      const i = k.split('/')[1]!.slice(1);
      assert.equal(present.get(k), k.startsWith('CLI/') ? `w${i}` : `v${i}`, k);
    }
    t.diagnostic(`sent ${sent.size}, acknowledged ${acked.size}, present after restart ${present.size}`);
    const phantom = [...present.keys()].filter((k) => !sent.has(k));
    assert.deepEqual(phantom, [], 'nothing that was never sent appears');
    // the pending set survived too: every node written to is still to be distributed
    const changed = await ibmsOk(home, '-s', 'nodes_changed');
    for (const n of new Set([...acked].map((k) => k.split('/')[0]!))) assert.match(changed, new RegExp(`\\b${n}\\b`));
  });
});
