/**
 * `ibms.misc.second_config_dump` end to end on loopback: a real ibms (registry home) and a real ibcmd (the
 * standby home). Every save_config copies the saved files to the ibcmd without waiting for it; a target that
 * is down never fails the save, and the failure is in the event log and in the next save's reply.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegistryClient } from '../../../src/registry/index.js';
import { makeAgentHome, startAgent, type RunningAgent } from '../rcmd/harness.js';
import { adminClient, ibmsOk, makeRegistryHome, removeHome, startIbms, stopIbms, waitFor, type IbmsProcess } from './harness.js';

const CONFS = ['ibp_nodes.conf', 'ibp_apps.conf', 'ibp_projects.conf'];

interface SaveReply {
  files: string[];
  secondDump?: { address: string; state: string; last?: { state: string; attempts: number; error?: { code: string; message: string } } };
}

/** A port nothing listens on now (bound and released), for an agent that must come back on it. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The event log records of a registry home with `event` = name. */
function events(home: string, name: string): Record<string, unknown>[] {
  const p = join(home, 'log', 'event.log');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter((l) => l.includes(`"event":"${name}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function setSecondDump(regHome: string, address: string): void {
  const p = join(regHome, 'etc', 'ibms.conf');
  writeFileSync(p, readFileSync(p, 'utf8').replace(/"second_config_dump" : "[^"]*"/, `"second_config_dump" : "${address}"`));
}

const sameFiles = (regHome: string, standby: string): boolean =>
  CONFS.every((n) => existsSync(join(standby, 'etc', n)) && readFileSync(join(standby, 'etc', n), 'utf8') === readFileSync(join(regHome, 'etc', n), 'utf8'));

describe('second config dump from a real registry to a real ibcmd', () => {
  let regHome: string;
  const standby = mkdtempSync(join(tmpdir(), 'ibp-standby-'));
  let ibms: IbmsProcess | undefined;
  let agent: RunningAgent | undefined;
  let admin: RegistryClient;
  let port = 0;

  before(async () => {
    port = await freePort();
    makeAgentHome(standby, { port });
    agent = await startAgent(standby);
    regHome = await makeRegistryHome('ibp-reg-dump-');
    setSecondDump(regHome, agent.address);
    const secret = join(regHome, 'keys', 'second_dump.secret');
    copyFileSync(join(standby, 'keys', 'ibcmd.secret'), secret);
    chmodSync(secret, 0o600);
    ibms = await startIbms(regHome);
    admin = adminClient(regHome, ibms);
  });
  after(async () => {
    admin?.close();
    await stopIbms(ibms);
    await agent?.stop();
    removeHome(regHome);
    removeHome(standby);
  });

  test('a save copies the three saved files to the ibcmd, without waiting for it', async () => {
    await admin.admin('POST', 'apply', { action: 'add_node', node: 'ECIF' });
    await admin.admin('POST', 'apply', { action: 'add_node_host', node: 'ECIF', ip: '127.0.0.1', port: '18001' });
    const r = await admin.admin<SaveReply>('POST', 'save_config', {});
    assert.equal(r.files.length, 3);
    assert.deepEqual(r.secondDump, { address: agent!.address, state: 'pending' });
    await waitFor(() => sameFiles(regHome, standby) && events(regHome, 'second_config_dump').length === 1, 'the copy on the standby host');
    assert.match(readFileSync(join(standby, 'etc', 'ibp_nodes.conf'), 'utf8'), /ECIF/);
    const ev = events(regHome, 'second_config_dump')[0]!;
    assert.equal(ev.address, agent!.address);
    assert.equal((ev.files as unknown[]).length, 3);
  });

  test('target down: the save still succeeds; the failure goes to the event log and into the next save reply and CLI line', async () => {
    assert.equal(await agent!.stop(), 0);
    await admin.admin('POST', 'apply', { action: 'add_node', node: 'CORE' });
    const t0 = Date.now();
    const r = await admin.admin<SaveReply>('POST', 'save_config', {});
    assert.ok(Date.now() - t0 < 3000, 'the save did not wait for the retries');
    assert.equal(r.secondDump?.state, 'pending');
    assert.equal(r.secondDump?.last?.state, 'ok');
    assert.match(readFileSync(join(regHome, 'etc', 'ibp_nodes.conf'), 'utf8'), /CORE/, 'saved locally');
    await waitFor(() => events(regHome, 'second_config_dump_failed').length === 1, 'the failure in the event log', 30_000);
    const ev = events(regHome, 'second_config_dump_failed')[0]!;
    assert.equal(ev.level, 'ERROR');
    assert.equal(ev.attempts, 4, 'the first attempt and 3 retries');
    assert.match(JSON.stringify(ev.failed), /IBP_ERR_RCMD_CONNECT/);
    assert.doesNotMatch(readFileSync(join(standby, 'etc', 'ibp_nodes.conf'), 'utf8'), /CORE/);

    // the next save (from the CLI, as an operator would) reports it
    const out = await ibmsOk(regHome, '-a', 'save_config');
    assert.match(out, /saved 3 files/);
    assert.match(out, new RegExp(`second config dump to 127\\.0\\.0\\.1:${port}: pending .*previous copy FAILED .*after 4 attempt\\(s\\): IBP_ERR_RCMD_CONNECT`));
    await waitFor(() => events(regHome, 'second_config_dump_failed').length === 2, 'the second failure', 30_000);
  });

  test('target back: the next save copies the newest files again', async () => {
    agent = await startAgent(standby);
    assert.equal(agent.port, port);
    await admin.admin('POST', 'apply', { action: 'add_node_kv', node: 'CORE', key: 'hsm', value: 'model-7' });
    const r = await admin.admin<SaveReply>('POST', 'save_config', {});
    assert.equal(r.secondDump?.last?.state, 'failed');
    assert.equal(r.secondDump?.last?.error?.code, 'IBP_ERR_RCMD_CONNECT');
    await waitFor(() => sameFiles(regHome, standby), 'the newest files on the standby host', 30_000);
    assert.match(readFileSync(join(standby, 'etc', 'ibp_nodes.conf'), 'utf8'), /model-7/);
    await waitFor(() => events(regHome, 'second_config_dump').length === 2, 'the success in the event log');
  });

  test('with second_config_dump emptied in ibms.conf (read at every save) a save makes no copy', async () => {
    setSecondDump(regHome, '');
    const r = await admin.admin<SaveReply>('POST', 'save_config', {});
    assert.equal(r.secondDump, undefined);
    assert.equal(r.files.length, 3);
  });
});
