/** A real ibms daemon and node-signed clients: views, long-polls, packages, heartbeats, sessions, immediate mode. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { decryptViewKeys, RegistryClient, signNodeRequest, type WireView } from '../../../src/registry/index.js';
import { adminClient, ibmsOk, makeRegistryHome, nodeClient, removeHome, runCli, startIbms, stopIbms, type IbmsProcess } from './harness.js';

const pkg = (tag: string): Buffer => Buffer.from(`// ${tag}\nexport default async function run(ctx) { return ctx; }\n${'// filler line\n'.repeat(200)}`);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('ibms node API on a real daemon', () => {
  let home: string;
  let ibms: IbmsProcess | undefined;
  let admin: RegistryClient;
  let ecif: RegistryClient;
  let core: RegistryClient;
  before(async () => {
    home = await makeRegistryHome();
    const confPath = join(home, 'etc', 'ibms.conf');
    writeFileSync(confPath, readFileSync(confPath, 'utf8').replace('"auto_download_bin_enable" : 0', '"auto_download_bin_enable" : 1'));
    for (const n of ['ECIF', 'CORE']) await runCli('ibpgenrsakeys', [n], home);
    writeFileSync(join(home, 'so', 'ABCD0001.mjs'), pkg('v1'));
    ibms = await startIbms(home);
    admin = adminClient(home, ibms);
    ecif = nodeClient(home, ibms, 'ECIF');
    core = nodeClient(home, ibms, 'CORE');
    const apply = (cmd: Record<string, string>) => admin.admin('POST', 'apply', cmd);
    await apply({ action: 'add_node', node: 'ECIF', key_exp: 'ecif-key-0001' });
    await apply({ action: 'add_node', node: 'CORE' });
    await apply({ action: 'add_node_host', node: 'ECIF', ip: '127.0.0.2', port: '18001' });
    await apply({ action: 'add_node_host', node: 'CORE', ip: '127.0.0.3', port: '-10601' });
    await apply({ action: 'add_app', app: 'ABCD0001', desc: 'd', bin: 'ABCD0001.mjs', timeout: '60' });
  });
  after(async () => {
    await stopIbms(ibms);
    removeHome(home);
  });

  test('a node never distributed to gets 404 IBP_ERR_REGISTRY_NOT_PUBLISHED', async () => {
    await assert.rejects(ecif.getView(), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_NOT_PUBLISHED' && /distribute_config/.test(e.message));
  });

  test('after distribute a view carries the packages it serves and peer keys only the requesting node can decrypt', async () => {
    await admin.admin('POST', 'apply', { action: 'add_project', project: 'P1', server_nodes: 'ECIF', client_nodes: 'CORE', apps: 'ABCD0001' });
    await admin.admin('POST', 'distribute_config', {});
    const e = await ecif.getView();
    assert.equal(e.status, 200);
    const ev = (e as { view: WireView }).view;
    assert.deepEqual(ev.servedApps, ['ABCD0001']);
    assert.deepEqual(ev.packages.map((p) => [p.bin, p.sha256]), [['ABCD0001.mjs', sha(pkg('v1'))]]);
    const c = await core.getView();
    const cv = (c as { view: WireView }).view;
    assert.equal(JSON.stringify(cv).includes('ecif-key-0001'), false);
    const plain = decryptViewKeys(cv, readFileSync(join(home, 'keys', 'CORE.key'), 'utf8'));
    assert.equal(plain.nodes.find((n) => n.name === 'ECIF')?.keyExp, 'ecif-key-0001');
    assert.throws(() => decryptViewKeys(cv, readFileSync(join(home, 'keys', 'ECIF.key'), 'utf8')), { code: 'IBP_ERR_REGISTRY_AUTH' });
  });

  test('a parked long-poll returns at once after distribute, and 304 when its wait runs out', async () => {
    const first = await core.getView();
    const v = (first as { view: WireView }).view.version;
    const parked = core.getView(v, 60);
    await new Promise((r) => setTimeout(r, 200));
    await admin.admin('POST', 'apply', { action: 'add_node_kv', node: 'CORE', key: 'hsm', value: 'on' });
    const t0 = Date.now();
    await admin.admin('POST', 'distribute_config', {});
    const r = await parked;
    assert.ok(Date.now() - t0 < 5_000, `woken at once (${Date.now() - t0} ms)`);
    assert.equal(r.status, 200);
    const nv = (r as { view: WireView }).view;
    assert.ok(nv.version > v);
    assert.equal(nv.kv.hsm, 'on');
    const t1 = Date.now();
    assert.equal((await core.getView(nv.version, 1)).status, 304);
    assert.ok(Date.now() - t1 >= 900);
  });

  test('a package of the view downloads byte for byte; a package not in the view is refused', async () => {
    assert.deepEqual(await ecif.getPackage('ABCD0001.mjs'), pkg('v1'));
    await assert.rejects(core.getPackage('ABCD0001.mjs'), { code: 'IBP_ERR_REGISTRY_PACKAGE' });
  });

  test('a bad token and a bad signature are refused', async () => {
    const wrong = new RegistryClient({ ip: ibms!.ip, port: ibms!.port, adminToken: 'not-the-token' });
    await assert.rejects(wrong.admin('GET', 'nodes'), { code: 'IBP_ERR_REGISTRY_AUTH' });
    const forged = new RegistryClient({ ip: ibms!.ip, port: ibms!.port, node: 'ECIF', nodeKeyPem: readFileSync(join(home, 'keys', 'CORE.key'), 'utf8') });
    await assert.rejects(forged.getView(), (e: unknown) => e instanceof IbpError && e.code === 'IBP_ERR_REGISTRY_AUTH' && /bad signature/.test(e.message));
    const res = await fetch(`http://${ibms!.ip}:${ibms!.port}/v1/view`, { headers: signNodeRequest('ECIF', readFileSync(join(home, 'keys', 'ECIF.key'), 'utf8'), 'GET', '/v1/view', Date.now() - 400_000) });
    assert.equal(res.status, 401);
  });

  test('-s sessions lists a heartbeating platform with its load', async () => {
    await ecif.heartbeat({ role: 'ibas', host: { ip: '127.0.0.2', port: 18001 }, pid: 31337, load: { busy: 3, total: 10 }, viewVersion: 1 });
    const out = await ibmsOk(home, '-s', 'sessions');
    assert.match(out, /^role\s+node\s+host\s+pid\s+since\s+last_seen\s+view\s+load/);
    assert.match(out, /ibas\s+ECIF\s+127\.0\.0\.2:18001\s+31337 .* 3\/10/);
  });

  test('immediate mode: a package copied into so/ is pushed to the nodes serving it; a file no app names is ignored', async () => {
    const cur = (await ecif.getView()) as { view: WireView };
    const parked = ecif.getView(cur.view.version, 60);
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(join(home, 'so', 'ABCD0001.mjs'), pkg('v2'));
    const r = await parked;
    assert.equal(r.status, 200);
    const v = (r as { view: WireView }).view;
    assert.equal(v.packages[0]!.sha256, sha(pkg('v2')));
    assert.deepEqual(await ecif.getPackage('ABCD0001.mjs'), pkg('v2'));
    // a second change of the same package is pushed as well
    const again = ecif.getView(v.version, 60);
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(join(home, 'so', 'ABCD0001.mjs'), pkg('v3'));
    const r3 = await again;
    assert.equal(r3.status, 200);
    const v3 = (r3 as { view: WireView }).view;
    assert.equal(v3.packages[0]!.sha256, sha(pkg('v3')));
    const quiet = ecif.getView(v3.version, 2);
    writeFileSync(join(home, 'so', 'NOAPP.mjs'), pkg('stray'));
    assert.equal((await quiet).status, 304);
  });
});
