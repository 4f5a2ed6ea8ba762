import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { defaultIbcmdConfText, IBCMD_DEFAULTS, loadIbcmdConf, parseIbcmdConf } from '../../../src/core/config/index.js';
import {
  CommandAudit, createSecretFile, parseAgentAddress, readSecretFile, resolveRcmdSettings, resolveSecret,
} from '../../../src/rcmd/index.js';
import { IncomingFile, sha256Hex, TEMP_SUFFIX } from '../../../src/rcmd/file-store.js';

const dir = mkdtempSync(join(tmpdir(), 'ibp-rcmd-cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ibcmd.conf', () => {
  test('ibcmd.conf - the default file loads and equals the schema defaults', () => {
    const path = join(dir, 'ibcmd.conf');
    writeFileSync(path, defaultIbcmdConfText({ ip: '127.0.0.5', port: 26001 }));
    const cfg = loadIbcmdConf(path);
    const bare = parseIbcmdConf('{ "ibcmd" : { "server" : { "ip" : "127.0.0.5" , "port" : 26001 } } }', 'bare.conf');
    assert.deepEqual(cfg, bare);
    assert.deepEqual([...cfg.ibcmd.exec.whitelist], [...IBCMD_DEFAULTS.whitelist]);
    assert.equal(cfg.ibcmd.log.audit_output, 'file::log/ibcmd_audit.log');
    assert.equal(cfg.ibcmd.security.secret_file, 'keys/ibcmd.secret');
  });

  test('ibcmd.conf - the default lists compile, allow the operator commands and refuse the shell', () => {
    const c = parseIbcmdConf(defaultIbcmdConfText({ ip: '127.0.0.1', port: 0 }), 'ibcmd.conf').ibcmd.exec;
    const audit = new CommandAudit({ blacklist: c.blacklist, whitelist: c.whitelist, allowNonAscii: c.allow_non_ascii });
    for (const ok of ['ibas -s status', 'ls -l etc', 'tail -n 20 log/event.log', 'df -h', 'date +%F']) assert.equal(audit.check(ok).allowed, true, ok);
    for (const no of ['ibas -s status; id', 'rm -rf etc', 'ls /etc', 'sh']) assert.equal(audit.check(no).allowed, false, no);
  });

  test('ibcmd.conf - lenient style, numbers as strings, and settings resolved against the home', () => {
    const cfg = parseIbcmdConf(`{
      "ibcmd" : { "server" : { "ip" : "0.0.0.0" , "port" : "26001" , } , // trailing comma
        "exec" : { "timeout" : "1.5" , "whitelist" : [ "echo **" ] , "work_dir" : "file" , "allow_non_ascii" : 1 } ,
        "log" : { "main_loglevel" : debug } } }`, 'x.conf');
    const s = resolveRcmdSettings(cfg, '/srv/ibp', '/srv/ibp/etc/ibcmd.conf');
    assert.equal(s.port, 26001);
    assert.equal(s.timeoutMs, 1500);
    assert.equal(s.workDir, '/srv/ibp/file');
    assert.equal(s.secretPath, '/srv/ibp/keys/ibcmd.secret');
    assert.equal(s.auditPath, '/srv/ibp/log/ibcmd_audit.log');
    assert.equal(s.pidPath, '/srv/ibp/run/ibcmd.pid');
    assert.equal(s.allowNonAscii, true);
    assert.equal(s.mainLevel, 'DEBUG');
    assert.deepEqual(s.whitelist, ['echo **']);
    assert.ok(Object.isFrozen(s));
  });

  test('ibcmd.conf - unknown keys and bad values are refused with file:line:col', () => {
    assert.throws(() => parseIbcmdConf('{ "ibcmd" : { "server" : { "ip" : "127.0.0.1" , "port" : 1 } , "exec" : { "whitelst" : [] } } }', 'a.conf'),
      (e: IbpError) => e.code === 'IBP_ERR_CONFIG_UNKNOWN_KEY' && /a\.conf:1:\d+: unknown key ibcmd\.exec\.whitelst/.test(e.message));
    assert.throws(() => parseIbcmdConf('{ "ibcmd" : { "server" : { "ip" : "127.0.0.1" , "port" : 1 } , "exec" : { "whitelist" : "ls" } } }', 'b.conf'),
      (e: IbpError) => e.code === 'IBP_ERR_CONFIG_INVALID' && /ibcmd\.exec\.whitelist/.test(e.message));
    assert.throws(() => parseIbcmdConf('{ "ibcmd" : { "server" : { "ip" : "127.0.0.1" , "port" : 70000 } } }', 'c.conf'), { code: 'IBP_ERR_CONFIG_INVALID' });
    assert.throws(() => parseIbcmdConf('{ "ibcmd" : { } }', 'd.conf'), (e: IbpError) => /ibcmd\.server: missing/.test(e.message));
    assert.throws(() => defaultIbcmdConfText({ ip: 'not an ip!', port: 1 }), { code: 'IBP_ERR_CONFIG_INVALID' });
  });
});

describe('shared secret', () => {
  test('shared secret - init writes 64 hex characters with mode 0600 and never overwrites', () => {
    const p = join(dir, 'keys', 'ibcmd.secret');
    assert.equal(createSecretFile(p), true);
    const text = readFileSync(p, 'utf8');
    assert.match(text, /^[0-9a-f]{64}\n$/);
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.equal(createSecretFile(p), false);
    assert.equal(readFileSync(p, 'utf8'), text);
    assert.equal(readSecretFile(p).toString(), text.trim());
  });

  test('shared secret - a missing, group/other-readable or short secret is refused', () => {
    const p = join(dir, 'weak.secret');
    assert.throws(() => readSecretFile(p), (e: IbpError) => e.code === 'IBP_ERR_RCMD_SECRET' && /no such file/.test(e.message));
    writeFileSync(p, 'x'.repeat(64), { mode: 0o644 });
    chmodSync(p, 0o644);
    assert.throws(() => readSecretFile(p), (e: IbpError) => e.code === 'IBP_ERR_RCMD_SECRET' && /mode 644.*chmod 600/.test(e.message));
    writeFileSync(p, 'short\n');
    chmodSync(p, 0o600);
    assert.throws(() => readSecretFile(p), (e: IbpError) => /at least 32/.test(e.message));
    assert.throws(() => resolveSecret({ secret: 'short' }), { code: 'IBP_ERR_RCMD_SECRET' });
    assert.throws(() => resolveSecret({}), { code: 'IBP_ERR_RCMD_SECRET' });
    assert.equal(resolveSecret({ secret: ` ${'s'.repeat(40)}\n` }).length, 40);
  });

  test('agent address - ip:port, host:port and [v6]:port; anything else is a usage error', () => {
    assert.deepEqual(parseAgentAddress('158.1.0.55:26001'), { host: '158.1.0.55', port: 26001 });
    assert.deepEqual(parseAgentAddress('[::1]:26001'), { host: '::1', port: 26001 });
    for (const bad of ['', '158.1.0.55', ':26001', '158.1.0.55:0', '158.1.0.55:65536', 'h:12x', 'h: 1']) {
      assert.throws(() => parseAgentAddress(bad), { code: 'IBP_ERR_USAGE' }, bad);
    }
  });
});

describe('incoming file', () => {
  test('incoming file - a matching upload replaces the target atomically; no temporary file is left', async () => {
    const target = join(dir, 'target.txt');
    writeFileSync(target, 'old');
    const data = Buffer.from('new content');
    const f = await IncomingFile.open(target, data.length);
    await f.write(data.subarray(0, 4));
    assert.equal(readFileSync(target, 'utf8'), 'old', 'the target is untouched until commit');
    await f.write(data.subarray(4));
    assert.deepEqual(await f.commit(sha256Hex(data)), { size: data.length, sha256: sha256Hex(data) });
    assert.equal(readFileSync(target, 'utf8'), 'new content');
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith(TEMP_SUFFIX)), []);
  });

  test('incoming file - a wrong checksum, a short or a long upload leaves the target as it was', async () => {
    const target = join(dir, 'kept.txt');
    writeFileSync(target, 'keep me');
    const data = Buffer.from('payload');
    const bad = await IncomingFile.open(target, data.length);
    await bad.write(data);
    await assert.rejects(bad.commit(sha256Hex(Buffer.from('other'))), { code: 'IBP_ERR_RCMD_CHECKSUM' });
    await bad.abort();
    const short = await IncomingFile.open(target, data.length + 1);
    await short.write(data);
    await assert.rejects(short.commit(sha256Hex(data)), (e: IbpError) => /received 7 bytes, the sender declared 8/.test(e.message));
    await short.abort();
    const long = await IncomingFile.open(target, 3);
    await assert.rejects(long.write(data), (e: IbpError) => e.code === 'IBP_ERR_RCMD_CHECKSUM' && /more than the declared 3/.test(e.message));
    await long.abort();
    assert.equal(readFileSync(target, 'utf8'), 'keep me');
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith(TEMP_SUFFIX)), []);
    assert.equal(existsSync(join(dir, 'kept.txt')), true);
  });
});
