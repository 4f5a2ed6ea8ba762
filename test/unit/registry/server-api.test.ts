/** The registry HTTP API in-process, over a stand-in store: auth, long-poll, packages, heartbeats, errors. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { defaultIbmsConfText, parseIbmsConf } from '../../../src/core/config/index.js';
import { IbpError } from '../../../src/core/errors.js';
import { closeAllLogs, createLogger } from '../../../src/core/log.js';
import { decryptViewKeys, generateNodeKeyPair, RegistryClient, resolveRegistrySettings, signNodeRequest } from '../../../src/registry/index.js';
import { RegistryServer } from '../../../src/registry/registry-server.js';
import type { AdminCommand, PublishedView, RegistryStore } from '../../../src/registry/store/index.js';

const ECIF = generateNodeKeyPair(1024);
const CORE = generateNodeKeyPair(1024);
const PACKAGE = Buffer.from(`export default async function run() { return 'x'; }\n${'// padding\n'.repeat(300)}`);

/** The store's surface the server uses, in memory. */
class StandInStore {
  nodes = new Set(['ECIF', 'CORE']);
  pending = new Set<string>();
  views = new Map<string, PublishedView>();
  version = 0;
  seq = 0;
  get cluster() {
    return {
      nodes: [...this.nodes].map((n) => ({ node: n, invalid: false, hosts: [{ ip: '127.0.0.2', port: 18001, clientOnly: false, invalid: false }], keyExp: `key-${n}`, kv: { hsm: '1' } })),
      apps: [{ app: 'ibp_a', desc: 'd', bin: 'ibp_a.mjs', timeout: 50, timeout2: 0, serverNode: '', invalid: false }],
      projects: [{ project: 'P', serverNodes: ['ECIF'], clientNodes: ['CORE'], apps: ['ibp_a'] }],
    };
  }
  apply(cmd: AdminCommand) {
    if (cmd.node === undefined) throw new IbpError('IBP_ERR_CONFIG_INVALID', `${cmd.action}: --node is missing`);
    this.nodes.add(cmd.node);
    this.pending.add(cmd.node);
    return { changedNodes: [cmd.node], seq: ++this.seq };
  }
  pendingNodes() {
    return [...this.pending].sort();
  }
  distribute() {
    const nodes = this.pendingNodes();
    this.version += 1;
    for (const n of nodes) this.views.set(n, this.#view(n));
    this.pending.clear();
    return { nodes, version: this.version };
  }
  downloadConfig(node: string) {
    this.version += 1;
    this.views.set(node, this.#view(node));
    return { version: this.version };
  }
  published(node: string) {
    return this.views.get(node);
  }
  saveConfig() {
    return ['etc/ibp_nodes.conf'];
  }
  buildConfig() {
    return ['etc/ibp_nodes.conf.bin'];
  }
  refreshPackages() {
    return [];
  }
  close() {}
  #view(node: string): PublishedView {
    return {
      node, version: this.version, apps: [], servedApps: ['ibp_a'], kv: {},
      nodes: [{ name: node, invalid: false, hosts: [], keyExp: `key-${node}`, oldKeyExp: '', newKeyEnableAt: 0, oldKeyDisableAt: 0, kv: {} }],
      packages: [{ app: 'ibp_a', bin: 'ibp_a.mjs', sha256: createHash('sha256').update(PACKAGE).digest('hex'), size: PACKAGE.length }],
    };
  }
}

/** A raw request: status, headers and body as received. */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const errorCode = (r: { body: Buffer }): string => (JSON.parse(r.body.toString()) as { error: { code: string } }).error.code;

describe('registry API over HTTP (stand-in store)', () => {
  let home: string;
  let store: StandInStore;
  let server: RegistryServer;
  let port: number;
  let admin: RegistryClient;
  let ecif: RegistryClient;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'ibp-reg-api-'));
    for (const d of ['keys', 'so', 'log']) mkdirSync(join(home, d));
    writeFileSync(join(home, 'keys', 'ibms.admin.token'), 'secret-token\n');
    writeFileSync(join(home, 'keys', 'ECIF.pub'), ECIF.publicKeyPem);
    writeFileSync(join(home, 'keys', 'CORE.pub'), CORE.publicKeyPem);
    writeFileSync(join(home, 'so', 'ibp_a.mjs'), PACKAGE);
    const conf = parseIbmsConf(defaultIbmsConfText({ ip: '127.0.0.1', port: 0 }), 'ibms.conf');
    const settings = resolveRegistrySettings(conf, home, join(home, 'etc', 'ibms.conf'));
    store = new StandInStore();
    const log = createLogger({ homeRoot: home, output: 'file::log/ibms_worker.log', level: 'DEBUG', name: 'ibms-worker' });
    server = new RegistryServer({ settings: { ...settings, maxAdminBodyBytes: 4096 }, store: store as unknown as RegistryStore, log });
    port = (await server.listen('127.0.0.1', 0)).port;
    admin = new RegistryClient({ ip: '127.0.0.1', port, adminToken: 'secret-token' });
    ecif = new RegistryClient({ ip: '127.0.0.1', port, node: 'ECIF', nodeKeyPem: ECIF.privateKeyPem });
  });
  after(async () => {
    await server.close(1000);
    await closeAllLogs();
    rmSync(home, { recursive: true, force: true });
  });

  test('health answers without auth', async () => {
    const h = await new RegistryClient({ ip: '127.0.0.1', port }).health();
    assert.equal(h.ok, true);
    assert.equal(h.pid, process.pid);
  });

  test('admin calls without the right token are refused 401 with a coded error', async () => {
    const r = await raw(port, 'GET', '/v1/admin/nodes', { authorization: 'Bearer wrong' });
    assert.equal(r.status, 401);
    assert.equal(errorCode(r), 'IBP_ERR_REGISTRY_AUTH');
    await assert.rejects(new RegistryClient({ ip: '127.0.0.1', port, adminToken: 'x' }).admin('GET', 'nodes'), { code: 'IBP_ERR_REGISTRY_AUTH' });
  });

  test('a view is 404 NOT_PUBLISHED until the node is distributed to', async () => {
    await assert.rejects(ecif.getView(undefined, 0), { code: 'IBP_ERR_REGISTRY_NOT_PUBLISHED' });
  });

  test('apply marks nodes pending, distribute wakes a parked long-poll at once, and keys arrive encrypted for the node', async () => {
    const applied = await admin.admin<{ changedNodes: string[]; seq: number }>('POST', 'apply', { action: 'add_node', node: 'ECIF' });
    assert.deepEqual(applied.changedNodes, ['ECIF']);
    const changed = await admin.admin<{ rows: { node: string }[] }>('GET', 'nodes_changed');
    assert.deepEqual(changed.rows, [{ node: 'ECIF' }]);
    const d1 = await admin.admin<{ nodes: string[]; version: number }>('POST', 'distribute_config', {});
    const first = await ecif.getView(undefined, 30);
    assert.equal(first.status, 200);
    if (first.status !== 200) return;
    assert.equal(first.view.version, d1.version);
    assert.equal(JSON.stringify(first.view).includes('key-ECIF'), false, 'no key in clear on the wire');
    assert.equal(decryptViewKeys(first.view, ECIF.privateKeyPem).nodes[0]!.keyExp, 'key-ECIF');
    const t0 = Date.now();
    const parked = ecif.getView(first.view.version, 30);
    await admin.admin('POST', 'apply', { action: 'set_node', node: 'ECIF' });
    await new Promise((r) => setTimeout(r, 50));
    const d2 = await admin.admin<{ nodes: string[]; version: number }>('POST', 'distribute_config', {});
    const next = await parked;
    assert.equal(next.status, 200);
    assert.ok(Date.now() - t0 < 10_000, 'answered on distribute, not after the wait');
    if (next.status === 200) assert.equal(next.view.version, d2.version);
  });

  test('a long-poll with nothing newer is answered 304 after its wait', async () => {
    await store.downloadConfig('ECIF');
    const v = store.version;
    const t0 = Date.now();
    const r = await ecif.getView(v, 1);
    assert.equal(r.status, 304);
    assert.ok(Date.now() - t0 >= 900);
  });

  test('download_config force-publishes one node; an unknown field in the body is a 400', async () => {
    const r = await admin.admin<{ version: number }>('POST', 'download_config', { node: 'CORE' });
    assert.equal(r.version, store.version);
    await assert.rejects(admin.admin('POST', 'download_config', { node: 'CORE', extra: 1 }), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_HTTP' && /extra|unrecognized/i.test(e.message));
  });

  test('bad signature, unknown node key and a stale clock are refused 401', async () => {
    const forged = signNodeRequest('ECIF', CORE.privateKeyPem, 'GET', '/v1/view');
    const r1 = await raw(port, 'GET', '/v1/view', forged);
    assert.equal(r1.status, 401);
    assert.match(JSON.parse(r1.body.toString()).error.message, /bad signature/);
    const r2 = await raw(port, 'GET', '/v1/view', signNodeRequest('NOKEY', CORE.privateKeyPem, 'GET', '/v1/view'));
    assert.equal(r2.status, 401);
    assert.match(JSON.parse(r2.body.toString()).error.message, /no public key for node NOKEY/);
    const r3 = await raw(port, 'GET', '/v1/view', signNodeRequest('ECIF', ECIF.privateKeyPem, 'GET', '/v1/view', Date.now() - 600_000));
    assert.equal(r3.status, 401);
  });

  test('a package of the view downloads with its sha256, gzip-compressed when accepted; others are 404', async () => {
    store.downloadConfig('ECIF');
    const bytes = await ecif.getPackage('ibp_a.mjs');
    assert.deepEqual(bytes, PACKAGE);
    const path = '/v1/packages/ibp_a.mjs';
    const r = await raw(port, 'GET', path, { ...signNodeRequest('ECIF', ECIF.privateKeyPem, 'GET', path), 'accept-encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.ok(r.body.length < PACKAGE.length);
    await assert.rejects(ecif.getPackage('other.mjs'), { code: 'IBP_ERR_REGISTRY_PACKAGE' });
    await assert.rejects(ecif.getPackage('../etc/ibms.conf'), { code: 'IBP_ERR_REGISTRY_PACKAGE' });
  });

  test('heartbeats show in sessions with their load; a bad heartbeat is a 400 naming the field', async () => {
    await ecif.heartbeat({ role: 'ibas', host: { ip: '127.0.0.2', port: 18001 }, pid: 4242, load: { busy: 2, total: 8 } });
    const { rows } = await admin.admin<{ rows: { role: string; node: string; pid: number; load?: { busy: number } }[] }>('GET', 'sessions');
    const row = rows.find((x) => x.role === 'ibas');
    assert.equal(row?.node, 'ECIF');
    assert.equal(row?.pid, 4242);
    assert.equal(row?.load?.busy, 2);
    assert.ok(rows.some((x) => x.role === 'admin'), 'the admin client is listed too');
    await assert.rejects(ecif.heartbeat({ role: 'ibas', host: { ip: '127.0.0.2', port: 18001 }, pid: -1 }), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_HTTP' && /pid/.test(e.message));
  });

  test('bad JSON, bad gzip, an oversized body, an unknown path and a store error are coded errors; the server keeps serving', async () => {
    const auth = { authorization: 'Bearer secret-token', 'content-type': 'application/json' };
    const bad = await raw(port, 'POST', '/v1/admin/apply', auth, '{"action": ');
    assert.equal(bad.status, 400);
    assert.equal(errorCode(bad), 'IBP_ERR_REGISTRY_HTTP');
    const badGz = await raw(port, 'POST', '/v1/admin/apply', { ...auth, 'content-encoding': 'gzip' }, 'not gzip');
    assert.equal(badGz.status, 400);
    const big = await raw(port, 'POST', '/v1/admin/apply', auth, JSON.stringify({ action: 'add_node', node: 'N', desc: 'x'.repeat(5000) }));
    assert.equal(big.status, 413);
    const bomb = await raw(port, 'POST', '/v1/admin/apply', { ...auth, 'content-encoding': 'gzip' }, gzipSync(Buffer.alloc(100_000, 32)));
    assert.equal(bomb.status, 413);
    const gz = await raw(port, 'POST', '/v1/admin/apply', { ...auth, 'content-encoding': 'gzip' }, gzipSync(JSON.stringify({ action: 'add_node', node: 'GZ' })));
    assert.equal(gz.status, 200);
    const unknown = await raw(port, 'GET', '/v1/nothing');
    assert.equal(unknown.status, 404);
    const badAction = await raw(port, 'POST', '/v1/admin/apply', auth, JSON.stringify({ action: 'drop_everything' }));
    assert.equal(badAction.status, 400);
    await assert.rejects(admin.admin('POST', 'apply', { action: 'add_node' }), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_CONFIG_INVALID');
    const garbage = await raw(port, 'GET', '/v1/view?index=abc', signNodeRequest('ECIF', ECIF.privateKeyPem, 'GET', '/v1/view?index=abc'));
    assert.equal(garbage.status, 400);
    assert.equal((await admin.health()).ok, true);
  });

  test('garbage instead of HTTP gets a 400 and a closed connection; the server keeps serving', async () => {
    for (const junk of ['\x00\x01\x02garbage\r\n\r\n', 'GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', `GET /${'a'.repeat(100_000)} HTTP/1.1\r\n\r\n`]) {
      const reply = await new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.end(junk));
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
      });
      assert.match(reply, /^HTTP\/1\.1 4\d\d /, JSON.stringify(junk.slice(0, 40)));
    }
    assert.equal((await admin.health()).ok, true);
  });

  test('shows return rows for every -s name; big replies are gzip-compressed', async () => {
    for (const s of ['nodes', 'apps', 'projects', 'nodes_kv', 'sessions', 'nodes_changed']) {
      const r = await admin.admin<{ rows: unknown[] }>('GET', s);
      assert.ok(Array.isArray(r.rows), s);
    }
    for (let i = 0; i < 40; i++) store.nodes.add(`NODE_${i}`);
    const r = await raw(port, 'GET', '/v1/admin/nodes', { authorization: 'Bearer secret-token', 'accept-encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    const apps = await admin.admin<{ rows: { packageSize: number | null }[] }>('GET', 'apps');
    assert.equal(apps.rows[0]!.packageSize, PACKAGE.length);
  });

  test('close answers parked long-polls 304 at once', async () => {
    const parked = ecif.getView(store.version, 60);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await server.close(5000);
    const r = await parked;
    assert.equal(r.status, 304);
    assert.ok(Date.now() - t0 < 5000);
  });
});
