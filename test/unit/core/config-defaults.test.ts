import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import {
  defaultIbasConfText, defaultIbmaConfText, defaultIbmsConfText, loadIbasConf, loadIbmaConf, loadIbmsConf,
  parseIbasConf, parseIbmaConf, parseIbmsConf,
} from '../../../src/core/config/index.js';

test('default ibas.conf - loads with loadIbasConf and holds the given address and the schema defaults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-defaults-'));
  try {
    const path = join(dir, 'ibas.conf');
    writeFileSync(path, defaultIbasConfText({ ip: '127.0.0.2', port: 18001, name: 'ECIF' }));
    const cfg = loadIbasConf(path);
    assert.equal(cfg.ibas.server.ip, '127.0.0.2');
    assert.equal(cfg.ibas.server.port, 18001);
    assert.equal(cfg.ibas.log.main_output, 'file::log/ibas_ECIF_127.0.0.2-18001_main.log');
    // everything else equals what the schema gives a file that says nothing
    const bare = parseIbasConf('{ "ibas" : { "server" : { "ip" : "127.0.0.2" , "port" : 18001 } } }', 'bare.conf');
    assert.deepEqual({ ...cfg.ibas, log: {} }, { ...bare.ibas, log: {} });
    assert.deepEqual(cfg.ibma, bare.ibma);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('default ibas.conf - without a name the log names follow the original (ibas_<ip>-<port>)', () => {
  const cfg = parseIbasConf(defaultIbasConfText({ ip: '0.0.0.0', port: 0 }), 'ibas.conf');
  assert.equal(cfg.ibas.log.worker_output, 'file::log/ibas_0.0.0.0-0_worker_%d.log');
  assert.equal(cfg.ibas.server.port, 0);
});

test('default ibas.conf - is written in the original style: comments and bare-word levels', () => {
  const text = defaultIbasConfText({ ip: '127.0.0.1', port: 18001 });
  assert.match(text, /"main_loglevel" : INFO ,/);
  assert.match(text, /"mode" : "STATIC_WORKERPOOL" , \/\* FORK,STATIC_WORKERPOOL,DYNAMIC_WORKERPOOL \*\//);
  assert.match(text, /\/\/ \(ext\)/);
});

test('default ibma.conf - loads with loadIbmaConf; the registry address defaults to 127.0.0.1:16001', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-defaults-'));
  try {
    const path = join(dir, 'ibma.conf');
    writeFileSync(path, defaultIbmaConfText({ thisNode: 'CORE', ibmsIp: '127.0.0.9', ibmsPort: 26001 }));
    const cfg = loadIbmaConf(path);
    assert.equal(cfg.ibma.this_node, 'CORE');
    assert.deepEqual({ ...cfg.ibms.server }, { ip: '127.0.0.9', port: 26001 });
    const plain = parseIbmaConf(defaultIbmaConfText({ thisNode: 'CORE' }), 'ibma.conf');
    assert.deepEqual({ ...plain.ibms.server }, { ip: '127.0.0.1', port: 16001 });
    const bare = parseIbmaConf('{ "ibma" : { "this_node" : "CORE" } , "ibms" : { "server" : { "ip" : "127.0.0.1" , "port" : 16001 } } }', 'b');
    assert.deepEqual(plain, bare);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('default ibms.conf - loads with loadIbmsConf and equals the schema defaults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-defaults-'));
  try {
    const path = join(dir, 'ibms.conf');
    writeFileSync(path, defaultIbmsConfText({ ip: '127.0.0.1', port: 16001 }));
    const cfg = loadIbmsConf(path);
    const bare = parseIbmsConf('{ "ibms" : { "server" : { "ip" : "127.0.0.1" , "port" : 16001 } } }', 'b');
    assert.deepEqual(cfg, bare);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('default texts - bad options are refused with IBP_ERR_CONFIG_INVALID', () => {
  const invalid = (fn: () => unknown, fragment: string) => assert.throws(fn, (err: unknown) =>
    err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_INVALID' && err.message.includes(fragment));
  invalid(() => defaultIbasConfText({ ip: '127.0.0.1', port: 70000 }), 'port: got 70000');
  invalid(() => defaultIbasConfText({ ip: 'a b', port: 1 }), 'ip: got "a b"');
  invalid(() => defaultIbmaConfText({ thisNode: 'has space' }), 'thisNode: got "has space"');
  invalid(() => defaultIbmaConfText({ thisNode: 'A', ibmsPort: 0 }), 'port: got 0');
});

test('docs/config.md - the example loads, and its misspelt-key message is what the docs show', () => {
  const doc = readFileSync(new URL('../../../../docs/config.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Example'));
  const blocks = [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const [example = '', message = ''] = blocks;
  const cfg = parseIbasConf(example, 'etc/ibas.conf');
  assert.equal(cfg.ibas.mpm.mode, 'DYNAMIC_WORKERPOOL');
  assert.equal(cfg.ibas.mpm.max_count, 20);
  assert.equal(cfg.ibas.mpm.DYNAMIC_WORKERPOOL.max_process_count, 5000);
  assert.throws(() => parseIbasConf(example.replace('"max_count"', '"max_cuont"'), 'etc/ibas.conf'),
    (err: unknown) => err instanceof IbpError && err.code === 'IBP_ERR_CONFIG_UNKNOWN_KEY' && err.message.split('\n')[0] === message.trim());
});
