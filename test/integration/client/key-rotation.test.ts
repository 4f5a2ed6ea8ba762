/**
 * Key rotation under load (docs/protocol.md §Security, SPEC §3.3): a real platform with sign, compress and encrypt
 * on, client loops (short calls and a long connection) running all the time, and the replica snapshots of every
 * home rewritten with a new key whose enable and disable times lie a few seconds ahead. Initiators switch at the
 * enable time, the processor accepts both keys until the disable time: not one call may fail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, IbpError } from '../../../src/client/index.js';
import { readCurrentSnapshot, writeSnapshot } from '../../../src/agent/index.js';
import { startPlatform } from '../../../src/cli/scratch-cluster.js';
import { Ib2Connection, type NodeKeys } from '../../../src/protocol/index.js';
import { startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const APP = 'ibp_test_echo';

/** Rewrites the current snapshot of `home` with the server node's keys changed. */
function setKeys(home: string, node: string, keys: NodeKeys): void {
  const dir = join(home, 'run', 'ibma');
  const { format: _f, version: _v, ...data } = readCurrentSnapshot(dir);
  void _f;
  void _v;
  writeSnapshot(dir, {
    ...data,
    createdAtMs: Date.now(),
    nodes: data.nodes.map((n) => (n.name === node ? { ...n, keyExp: keys.keyExp, oldKeyExp: keys.oldKeyExp ?? '', newKeyEnableAt: keys.newKeyEnableAt, oldKeyDisableAt: keys.oldKeyDisableAt } : n)),
  });
}

describe('key rotation under continuous load', () => {
  let cluster: TestCluster;
  let homes: string[];
  before(async () => {
    cluster = await startTestCluster({ start: false, workers: 2 });
    homes = [cluster.clientHome, ...cluster.serverHomes];
    for (const h of homes) setKeys(h, cluster.serverNode, { keyExp: 'rotation-key-1', newKeyEnableAt: 0, oldKeyDisableAt: 0 });
    for (const h of cluster.serverHomes) {
      const p = join(h, 'etc', 'ibas.conf');
      const text = readFileSync(p, 'utf8');
      const on = text.replace('"sign_flag" : 0 , "compress_flag" : 0 , "encrypt_flag" : 0', '"sign_flag" : 1 , "compress_flag" : 1 , "encrypt_flag" : 1');
      assert.notEqual(on, text, 'ibas.conf security line found');
      writeFileSync(p, on);
      cluster.platforms.push(await startPlatform(h));
    }
  });
  after(() => cluster.close());

  it('rotating the server node key while clients call gives zero failed transactions', { timeout: 120_000 }, async () => {
    const env = await IbacEnv.create({ home: cluster.clientHome });
    const calls: Array<{ at: number; ok: boolean; error?: string }> = [];
    let stop = false;
    const loop = async (i: number, long: boolean): Promise<void> => {
      const conn = long ? await env.connect(cluster.serverNode) : undefined;
      try {
        for (let n = 0; !stop; n++) {
          const msg = { loop: i, n, pad: 'x'.repeat(64) };
          try {
            const r = conn ? await conn.call(APP, msg) : await env.call(APP, msg);
            assert.deepEqual(JSON.parse(r.body.toString()), msg);
            calls.push({ at: Date.now() / 1000, ok: true });
          } catch (err) {
            calls.push({ at: Date.now() / 1000, ok: false, error: err instanceof IbpError ? `${err.code}: ${err.message}` : String(err) });
          }
        }
      } finally {
        await conn?.close();
      }
    };
    const loops = [loop(0, false), loop(1, true), loop(2, true)];
    try {
      assert.equal((await env.call(APP, 'first')).body.toString(), 'first');
      await waitFor(() => calls.filter((c) => c.ok).length >= 20, 'calls with the first key', 30_000);
      const now = Date.now() / 1000;
      const rotation: NodeKeys = { keyExp: 'rotation-key-2', oldKeyExp: 'rotation-key-1', newKeyEnableAt: Math.ceil(now) + 2, oldKeyDisableAt: Math.ceil(now) + 4 };
      // Whole epoch seconds (the replica's unit). The server homes first, then the client's: for a moment a server knows a key its clients do not use yet.
      for (const h of [...cluster.serverHomes, cluster.clientHome]) setKeys(h, cluster.serverNode, rotation);
      await waitFor(() => Date.now() / 1000 > rotation.oldKeyDisableAt + 1.5 && calls.filter((c) => c.at > rotation.oldKeyDisableAt + 0.5).length >= 10,
        'calls after the old key was disabled', 60_000);
      stop = true;
      await Promise.all(loops);
      const failed = calls.filter((c) => !c.ok);
      assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${calls.length} calls failed`);
      const inPhase = (a: number, b: number): number => calls.filter((c) => c.at >= a && c.at < b).length;
      assert.ok(inPhase(now, rotation.newKeyEnableAt) > 0, 'calls before the enable time');
      assert.ok(inPhase(rotation.newKeyEnableAt, rotation.oldKeyDisableAt) > 0, 'calls between enable and disable');
      assert.ok(inPhase(rotation.oldKeyDisableAt, Infinity) > 0, 'calls after the disable time');

      // The rotation really happened on the server: the old key is refused now, the new one accepted.
      const port = cluster.ports[0]!;
      const direct = await Ib2Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: 5000, fileDir: join(cluster.clientHome, 'file') });
      try {
        const base = { clientNode: cluster.clientNode, app: APP, jnlsno: 'ROT', timeoutMs: 10_000, node: cluster.serverNode, body: Buffer.from('"k"') };
        assert.equal((await direct.call({ ...base, keys: { keyExp: 'rotation-key-2', newKeyEnableAt: 0, oldKeyDisableAt: 0 } })).body.toString(), '"k"');
        const e = await direct.call({ ...base, keys: { keyExp: 'rotation-key-1', newKeyEnableAt: 0, oldKeyDisableAt: 0 } }).then(() => undefined, (err: unknown) => err);
        assert.ok(e instanceof IbpError);
        assert.equal(e.code, 'IBP_ERR_SEC_UNKNOWN_KEY');
      } finally {
        direct.destroy();
      }
    } finally {
      stop = true;
      await Promise.allSettled(loops);
      await env.close();
    }
  });
});
