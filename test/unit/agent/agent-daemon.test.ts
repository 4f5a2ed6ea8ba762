import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, publicEncrypt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AgentDaemon,
  readCurrentSnapshot,
  readIndexVersion,
  writeSnapshot,
  type AgentHeartbeat,
  type AgentRegistryClient,
  type RegistryView,
  type SnapshotSettings,
} from '../../../src/agent/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { ibpHome, type IbpHome } from '../../../src/core/home.js';
import { sampleData, tempDir } from './sample-data.js';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const enc = (s: string): string =>
  s === '' ? '' : publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(s)).toString('base64');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const SETTINGS: SnapshotSettings = { thisNode: 'CORE', ibmsServer: { ip: '127.0.0.1', port: 16001 }, retryConnectTimevalSec: 60, connectingTimeoutSec: 10, minCompressSize: 16 };
const PKG = Buffer.from('export default async function () { return 0; }\n');

/** A view of node CORE (calls ECIF, serves core_local) as the registry sends it. */
function makeView(version: number, o: { kv?: Record<string, string>; node?: string; pkg?: Buffer; ecifKey?: string } = {}): RegistryView {
  const kv = o.kv ?? { region: 'north' };
  return {
    node: o.node ?? 'CORE',
    version,
    nodes: [
      { name: 'CORE', invalid: false, hosts: [{ ip: '127.0.0.3', port: 18001, clientOnly: false, invalid: false }], keyExpEnc: enc('core-key'), oldKeyExpEnc: '', newKeyEnableAt: 0, oldKeyDisableAt: 0, kv },
      { name: 'ECIF', invalid: false, hosts: [{ ip: '127.0.0.2', port: 18001, clientOnly: false, invalid: false }], keyExpEnc: enc(o.ecifKey ?? 'ecif-key'), oldKeyExpEnc: enc('ecif-old'), newKeyEnableAt: 1_700_000_060, oldKeyDisableAt: 1_700_000_120, kv: {} },
    ],
    apps: [
      { app: 'ibp_test_echo', desc: 'echo', bin: 'ibp_test_echo.so', timeout: 50, timeout2: 0, serverNode: 'ECIF', invalid: false },
      { app: 'core_local', desc: 'served by CORE', bin: 'core_local.js', timeout: 10, timeout2: 20, serverNode: '', invalid: false },
    ],
    servedApps: ['core_local'],
    kv,
    packages: [{ app: 'core_local', bin: 'core_local.js', sha256: sha(o.pkg ?? PKG), size: (o.pkg ?? PKG).length }],
  };
}

/** An in-memory registry with the long-poll semantics of GET /v1/view. */
class FakeRegistry implements AgentRegistryClient {
  view: RegistryView | undefined;
  down = false;
  blobs = new Map<string, Buffer>([['core_local.js', PKG]]);
  calls: { index?: number; waitSec?: number; atMs: number }[] = [];
  packageCalls: string[] = [];
  heartbeats: AgentHeartbeat[] = [];
  closed = false;
  #waiters = new Set<() => void>();

  publish(view: RegistryView): void {
    this.view = view;
    this.#wakeAll();
  }
  setDown(down: boolean): void {
    this.down = down;
    this.#wakeAll();
  }
  #wakeAll(): void {
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }
  async getView(index?: number, waitSec?: number): Promise<{ status: 200; view: unknown } | { status: 304 }> {
    this.calls.push({ index, waitSec, atMs: Date.now() });
    if (this.down) throw new IbpError('IBP_ERR_INTERNAL', 'ECONNREFUSED (fake registry down)');
    if (this.view === undefined) throw new IbpError('IBP_ERR_INTERNAL', 'not published');
    if (index !== undefined && this.view.version <= index) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, (waitSec ?? 30) * 1000);
        const waiters = this.#waiters;
        function done(): void {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        this.#waiters.add(done);
      });
      if (this.down) throw new IbpError('IBP_ERR_INTERNAL', 'connection reset (fake registry down)');
      if (this.view.version <= index) return { status: 304 };
    }
    return { status: 200, view: structuredClone(this.view) };
  }
  async getPackage(bin: string): Promise<Uint8Array> {
    this.packageCalls.push(bin);
    if (this.down) throw new IbpError('IBP_ERR_INTERNAL', 'down');
    const b = this.blobs.get(bin);
    if (!b) throw new IbpError('IBP_ERR_INTERNAL', `no package ${bin}`);
    return b;
  }
  async heartbeat(body: AgentHeartbeat): Promise<unknown> {
    if (this.down) throw new IbpError('IBP_ERR_INTERNAL', 'down');
    this.heartbeats.push(body);
    return { ok: true };
  }
  close(): void {
    this.closed = true;
    this.#wakeAll();
  }
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const temps: (() => void)[] = [];
const daemons: AgentDaemon[] = [];
after(() => temps.forEach((c) => c()));
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.close()));
});
function newHome(): IbpHome {
  const t = tempDir('ibp-agent-home-');
  temps.push(t.cleanup);
  const home = ibpHome(t.dir);
  mkdirSync(home.so, { recursive: true });
  return home;
}
function newDaemon(home: IbpHome, reg: FakeRegistry, extra: { heartbeatMs?: number } = {}): AgentDaemon {
  const d = new AgentDaemon({ home, settings: SETTINGS, client: reg, privateKey, host: { ip: '127.0.0.3', port: 18001 }, longPollSec: 30, ...extra });
  daemons.push(d);
  return d;
}

describe('agent daemon (fake registry)', () => {
  it('agent daemon - the first view installs the packages, decrypts the keys and writes a snapshot', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(7));
    const ready = await newDaemon(home, reg).start();
    assert.deepEqual(ready, { source: 'registry', snapshotVersion: 1, viewVersion: 7 });
    assert.deepEqual(readFileSync(join(home.so, 'core_local.js')), PKG);
    const snap = readCurrentSnapshot(home.replica);
    assert.equal(snap.thisNode, 'CORE');
    assert.deepEqual(snap.ibmsServer, SETTINGS.ibmsServer);
    assert.equal(snap.nodes[0]!.keyExp, 'core-key');
    assert.equal(snap.nodes[1]!.keyExp, 'ecif-key');
    assert.equal(snap.nodes[1]!.oldKeyExp, 'ecif-old');
    assert.equal(snap.nodes[1]!.oldKeyDisableAt, 1_700_000_120);
    assert.deepEqual(snap.nodes[0]!.kv, { region: 'north' });
    assert.deepEqual(snap.servedApps, ['core_local']);
    assert.equal(JSON.stringify(snap).includes(makeView(7).nodes[1]!.keyExpEnc), false, 'no encrypted key in the snapshot');
  });

  it('agent daemon - a new version reaches the snapshot through the long-poll', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    await waitFor(() => reg.calls.some((c) => c.index === 1), 'a long-poll with index=1');
    assert.equal(reg.calls.find((c) => c.index === 1)?.waitSec, 30);
    reg.publish(makeView(2, { kv: { region: 'south' } }));
    await waitFor(() => readCurrentSnapshot(home.replica).nodes[0]!.kv.region === 'south', 'the new KV in the snapshot');
    assert.equal(readIndexVersion(home.replica), 2);
    assert.equal(d.viewVersion, 2);
  });

  it('agent daemon - a view with the same content does not write a new snapshot', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    reg.publish(makeView(2)); // new version, same content (keys re-encrypted with new randomness)
    await waitFor(() => d.viewVersion === 2, 'view 2 applied');
    assert.equal(readIndexVersion(home.replica), 1);
    assert.equal(reg.packageCalls.length, 1, 'the unchanged package is not downloaded again');
  });

  it('agent daemon - registry down: the last snapshot stays, retries back off, and it resyncs when the registry returns', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    await waitFor(() => reg.calls.some((c) => c.index === 1), 'the long-poll');
    reg.setDown(true);
    const downAt = Date.now();
    await waitFor(() => d.lastError !== undefined, 'the failure to be noticed');
    reg.publish(makeView(2, { kv: { region: 'east' } })); // changed while the agent cannot see it
    await waitFor(() => Date.now() - downAt >= 1500, '1.5 s of outage', 5000);
    const during = reg.calls.filter((c) => c.atMs >= downAt).length;
    assert.ok(during >= 3 && during <= 8, `attempts during 1.5 s down follow 100, 200, 400, 800 ms: ${during}`);
    assert.equal(readIndexVersion(home.replica), 1, 'the last snapshot stays in force');
    assert.equal(d.state, 'retrying');
    reg.setDown(false);
    const upAt = Date.now();
    await waitFor(() => readCurrentSnapshot(home.replica).nodes[0]!.kv.region === 'east', 'the resync', 10_000);
    const resyncMs = Date.now() - upAt;
    assert.ok(resyncMs < 5000, `resynced ${resyncMs} ms after the registry returned`);
    assert.equal(d.lastError, undefined);
    assert.equal(reg.calls.filter((c) => c.atMs >= upAt)[0]?.index, undefined, 'after a failure the whole view is fetched again');
  });

  it('agent daemon - with the registry unreachable, a local snapshot makes it ready at once, and it keeps retrying', async () => {
    const home = newHome();
    const local = writeSnapshot(home.replica, sampleData());
    const reg = new FakeRegistry();
    reg.publish(makeView(5));
    reg.setDown(true);
    const d = newDaemon(home, reg);
    assert.deepEqual(await d.start(), { source: 'local', snapshotVersion: local });
    await waitFor(() => reg.calls.length >= 2, 'a retry');
    reg.setDown(false);
    await waitFor(() => d.viewVersion === 5, 'the sync once the registry is back');
    assert.equal(readIndexVersion(home.replica), local + 1);
  });

  it('agent daemon - without a local snapshot it is not ready until the registry answers', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.setDown(true);
    let ready = false;
    const p = newDaemon(home, reg).start().then((r) => {
      ready = true;
      return r;
    });
    await waitFor(() => reg.calls.length >= 3, 'three attempts');
    assert.equal(ready, false);
    reg.setDown(false);
    reg.publish(makeView(1));
    assert.equal((await p).source, 'registry');
  });

  it('agent daemon - a view for another node is refused and the snapshot kept', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    reg.publish(makeView(2, { node: 'ECIF' }));
    await waitFor(() => d.lastError !== undefined, 'the refusal');
    assert.equal(d.lastError?.code, 'IBP_ERR_AGENT_VIEW');
    assert.equal(readIndexVersion(home.replica), 1);
  });

  it('agent daemon - a key it cannot decrypt is IBP_ERR_AGENT_KEY and the snapshot kept', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    const v2 = makeView(2);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    v2.nodes[1]!.keyExpEnc = publicEncrypt({ key: other, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('x')).toString('base64');
    reg.publish(v2);
    await waitFor(() => d.lastError !== undefined, 'the failure');
    assert.equal(d.lastError?.code, 'IBP_ERR_AGENT_KEY');
    assert.equal(readIndexVersion(home.replica), 1);
  });

  it('agent daemon - a package that fails its checksum does not hold back the config, and is retried', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    const v2pkg = Buffer.from('export default async function () { return 2; }\n');
    reg.publish(makeView(1, { pkg: v2pkg })); // the view announces v2pkg, the registry serves PKG: mismatch
    const d = newDaemon(home, reg);
    const ready = await d.start();
    assert.equal(ready.source, 'registry');
    assert.equal(readIndexVersion(home.replica), 1, 'the config snapshot is written');
    assert.equal(existsSync(join(home.so, 'core_local.js')), false, 'the bad download is not installed');
    await waitFor(() => d.lastError?.code === 'IBP_ERR_AGENT_PACKAGE', 'the package failure');
    reg.blobs.set('core_local.js', v2pkg);
    await waitFor(() => existsSync(join(home.so, 'core_local.js')), 'the package after a retry');
    assert.deepEqual(readFileSync(join(home.so, 'core_local.js')), v2pkg);
    assert.equal(readIndexVersion(home.replica), 1, 'no new snapshot for the same view');
  });

  it('agent daemon - heartbeats carry role ibma, the host, the pid and the view version', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(3));
    const d = newDaemon(home, reg, { heartbeatMs: 50 });
    await d.start();
    await waitFor(() => reg.heartbeats.length >= 3, 'three heartbeats');
    assert.deepEqual(reg.heartbeats.at(-1), { role: 'ibma', host: { ip: '127.0.0.3', port: 18001 }, pid: process.pid, viewVersion: 3 });
  });

  it('agent daemon - without --host, a client-only host of the node is reported with a negative port', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    const v = makeView(3);
    v.nodes[0]!.hosts = [{ ip: '127.0.0.3', port: 18001, clientOnly: true, invalid: false }];
    reg.publish(v);
    const d = new AgentDaemon({ home, settings: SETTINGS, client: reg, privateKey, longPollSec: 30, heartbeatMs: 50 });
    daemons.push(d);
    await d.start();
    await waitFor(() => reg.heartbeats.some((h) => h.viewVersion === 3), 'a heartbeat after the view');
    assert.deepEqual(reg.heartbeats.at(-1)!.host, { ip: '127.0.0.3', port: -18001 });
  });

  it('agent daemon - a package the agent installed is removed once the node no longer serves its app; files put in so/ by hand stay', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    const hand = Buffer.from('an operator tool, not from the registry\n');
    writeFileSync(join(home.so, 'operator_tool.so'), hand);
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    assert.ok(existsSync(join(home.so, 'core_local.js')));
    const v2 = makeView(2);
    v2.servedApps = [];
    v2.packages = [];
    v2.apps = v2.apps.filter((a) => a.app !== 'core_local');
    reg.publish(v2);
    await waitFor(() => d.viewVersion === 2, 'the second view');
    assert.equal(existsSync(join(home.so, 'core_local.js')), false, 'removed with its app');
    assert.deepEqual(readFileSync(join(home.so, 'operator_tool.so')), hand);
    assert.deepEqual(readCurrentSnapshot(home.replica).apps.map((a) => a.app), ['ibp_test_echo']);
  });

  it('agent daemon - a served app whose package the registry does not list (missing on the registry) keeps its installed package', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    const v2 = makeView(2);
    v2.packages = []; // the app is still served: only the registry's copy is missing
    reg.publish(v2);
    await waitFor(() => d.viewVersion === 2, 'the second view');
    assert.deepEqual(readFileSync(join(home.so, 'core_local.js')), PKG);
  });

  it('agent daemon - close() ends a pending long-poll at once and closes the client', async () => {
    const home = newHome();
    const reg = new FakeRegistry();
    reg.publish(makeView(1));
    const d = newDaemon(home, reg);
    await d.start();
    await waitFor(() => d.state === 'polling' && reg.calls.some((c) => c.index === 1), 'the long-poll');
    const t0 = Date.now();
    await d.close();
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(d.state, 'closed');
    assert.equal(reg.closed, true);
    await d.close(); // idempotent
  });
});
