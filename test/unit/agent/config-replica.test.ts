import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigReplica, pruneSnapshots, snapshotFileName, writeSnapshot } from '../../../src/agent/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { sampleData, tempDir } from './sample-data.js';

const temps: (() => void)[] = [];
after(() => temps.forEach((c) => c()));
function replicaDir(): string {
  const t = tempDir();
  temps.push(t.cleanup);
  return join(t.dir, 'run', 'ibma');
}

describe('config replica', () => {
  it('config replica - open without a snapshot fails with IBP_ERR_REPLICA_NO_SNAPSHOT', () => {
    assert.throws(() => ConfigReplica.open(replicaDir()), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REPLICA_NO_SNAPSHOT');
  });

  it('config replica - open on a corrupt snapshot fails with IBP_ERR_REPLICA_CORRUPT', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    writeFileSync(join(dir, snapshotFileName(1)), 'IBPSNAP 1 1 2 0000\n{}');
    assert.throws(() => ConfigReplica.open(dir), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REPLICA_CORRUPT');
  });

  it('config replica - lookups by node, host, app and KV answer from the snapshot', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const replica = ConfigReplica.open(dir);
    const s = replica.snapshot;
    assert.equal(s.version, 1);
    assert.equal(s.thisNode, 'CORE');
    assert.equal(s.thisNodeConfig().name, 'CORE');
    assert.equal(s.nodeCount, 2);
    assert.deepEqual([...s.nodes()].map((n) => n.name), ['CORE', 'ECIF']);
    const ecif = s.node('ECIF');
    assert.equal(ecif?.keyExp, 'ecif-key');
    assert.equal(ecif?.oldKeyExp, 'ecif-old');
    assert.equal(ecif?.newKeyEnableAt, 1_700_000_060);
    assert.equal(ecif?.oldKeyDisableAt, 1_700_000_120);
    assert.equal(s.thisNodeConfig().oldKeyExp, '', 'absent oldKeyExp reads as empty');
    assert.equal(s.node('NOPE'), undefined);
    assert.equal(s.host('ECIF', '127.0.0.2', 18002)?.invalid, true);
    assert.equal(s.host('CORE', '127.0.0.3', -18001)?.clientOnly, true, 'a negative port finds the client-only host');
    assert.equal(s.host('ECIF', '127.0.0.2', 18003), undefined);
    assert.equal(s.host('CORE', '127.0.0.2', 18001), undefined, 'a host is looked up within its node');
    assert.equal(s.app('ibp_test_echo')?.serverNode, 'ECIF');
    assert.equal(s.app('nope'), undefined);
    assert.equal(s.appCount, 2);
    assert.deepEqual([...s.apps()].map((a) => a.app), ['ibp_test_echo', 'core_local']);
    assert.equal(s.servesApp('core_local'), true);
    assert.equal(s.servesApp('ibp_test_echo'), false);
    assert.deepEqual(s.servedApps(), ['core_local']);
    assert.equal(s.kv('db.url'), 'pg://core');
    assert.equal(s.kv('nope'), undefined);
    assert.deepEqual(new Map(s.kvs()), new Map([['db.url', 'pg://core'], ['region', 'north']]));
    assert.equal(s.retryConnectTimevalSec, 60);
    assert.equal(s.connectingTimeoutSec, 10);
    assert.equal(s.minCompressSize, 16);
    assert.deepEqual(s.ibmsServer, { ip: '127.0.0.1', port: 16001 });
    replica.close();
  });

  it('config replica - a KV key named __proto__ survives writing and loading', () => {
    const dir = replicaDir();
    const data = sampleData();
    Object.defineProperty(data.nodes[0]!.kv, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
    writeSnapshot(dir, data);
    const s = ConfigReplica.open(dir).snapshot;
    assert.equal(s.kv('__proto__'), 'p');
    assert.equal(s.kv('region'), 'north');
  });

  it('config replica - the snapshot and everything it returns is frozen', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const s = ConfigReplica.open(dir).snapshot;
    assert.ok(Object.isFrozen(s));
    assert.ok(Object.isFrozen(s.node('ECIF')));
    assert.ok(Object.isFrozen(s.node('ECIF')?.hosts[0]));
    assert.ok(Object.isFrozen(s.app('ibp_test_echo')));
    assert.ok(Object.isFrozen(s.thisNodeConfig().kv));
    assert.throws(() => {
      (s.node('ECIF') as { keyExp: string }).keyExp = 'x';
    }, TypeError);
  });

  it('config replica - refresh is false while the index is unchanged and switches when it changes', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const replica = ConfigReplica.open(dir);
    const first = replica.snapshot;
    assert.equal(replica.refresh(), false);
    assert.equal(replica.refresh(), false);
    writeSnapshot(dir, sampleData({ minCompressSize: 1024 }));
    assert.equal(replica.refresh(), true);
    assert.equal(replica.snapshot.version, 2);
    assert.equal(replica.snapshot.minCompressSize, 1024);
    assert.equal(first.minCompressSize, 16, 'a snapshot a caller holds does not change under it');
    assert.equal(replica.refresh(), false);
  });

  it('config replica - a corrupt new snapshot is ignored and reported once; a later good one is taken', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const errors: IbpError[] = [];
    const replica = ConfigReplica.open(dir, { onError: (e) => errors.push(e) });
    writeSnapshot(dir, sampleData({ minCompressSize: 2 }));
    const p2 = join(dir, snapshotFileName(2));
    const buf = readFileSync(p2);
    buf[buf.length - 3] = buf[buf.length - 3]! ^ 0xff;
    writeFileSync(p2, buf);
    assert.equal(replica.refresh(), false);
    assert.equal(replica.snapshot.version, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'IBP_ERR_REPLICA_CORRUPT');
    assert.equal(replica.refresh(), false);
    assert.equal(errors.length, 1, 'the same bad index is not retried on every refresh');
    writeSnapshot(dir, sampleData({ minCompressSize: 3 }));
    assert.equal(replica.refresh(), true);
    assert.equal(replica.snapshot.minCompressSize, 3);
  });

  it('config replica - keeps working from its snapshot when the files are gone (agent down, dir wiped)', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    writeSnapshot(dir, sampleData());
    const replica = ConfigReplica.open(dir);
    pruneSnapshots(dir, 0);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(replica.refresh(), false);
    assert.equal(replica.snapshot.node('ECIF')?.name, 'ECIF');
  });

  it('config replica - a throwing onError does not break refresh; close stops refreshing', () => {
    const dir = replicaDir();
    writeSnapshot(dir, sampleData());
    const replica = ConfigReplica.open(dir, { onError: () => { throw new Error('boom'); } });
    writeSnapshot(dir, sampleData());
    rmSync(join(dir, snapshotFileName(2)));
    assert.equal(replica.refresh(), false);
    writeSnapshot(dir, sampleData());
    replica.close();
    replica.close();
    assert.equal(replica.refresh(), false);
    assert.equal(replica.snapshot.version, 1);
  });
});
