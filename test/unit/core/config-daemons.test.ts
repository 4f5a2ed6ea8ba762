import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IbpError, type ErrorCode } from '../../../src/core/errors.js';
import {
  loadIbasConf, loadIbmaConf, loadIbmsConf, parseIbasConf, parseIbmaConf, parseIbmsConf,
} from '../../../src/core/config/index.js';

const SEED = fileURLToPath(new URL('../../../../test/fixtures/config/seed/', import.meta.url));

/** Asserts a coded config error whose message contains every fragment. */
function configError(fn: () => unknown, code: ErrorCode, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IbpError, String(err));
    assert.equal(err.code, code, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `${err.message}\nshould include: ${f}`);
    return true;
  });
}

const ibas = (server: string, rest = '') => `{ "ibas" : { "server" : { ${server} } ${rest} } }`;
const MIN_IBAS = ibas('"ip" : "127.0.0.1" , "port" : 0');

test('ibas.conf - the seed example loads verbatim with the original names and nesting', () => {
  const cfg = loadIbasConf(join(SEED, 'ibas.conf'));
  assert.equal(cfg.ibas.server.ip, '158.1.0.56');
  assert.equal(cfg.ibas.server.port, 18001);
  assert.equal(cfg.ibas.mpm.mode, 'STATIC_WORKERPOOL');
  assert.equal(cfg.ibas.mpm.max_count, 10);
  assert.deepEqual({ ...cfg.ibas.mpm.DYNAMIC_WORKERPOOL }, {
    min_idle_count: 1, max_idle_count: 5, create_interval: 1, destroy_interval: 10, adjust_interval: 1, max_process_count: 10000,
  });
  assert.deepEqual({ ...cfg.ibas.security }, { sign_flag: true, compress_flag: true, encrypt_flag: true });
  assert.equal(cfg.ibas.app.max_so_cache_count, 1000);
  assert.equal(cfg.ibas.log.main_loglevel, 'DEBUG');
  assert.equal(cfg.ibas.log.worker_output, 'file::log/ibas_158.1.0.56-18001_worker_%d.log');
  assert.equal(cfg.ibas.log.app_output, 'file::log/app_%s.log');
  assert.equal('iblog_server' in cfg.ibas.log, false, 'the deprecated iblog_server is dropped');
  assert.equal(cfg.ibma.config_filename, 'ibma.conf');
});

test('ibas.conf - defaults fill everything but the listen address, extensions included', () => {
  const cfg = parseIbasConf(MIN_IBAS, 'ibas.conf');
  assert.deepEqual({ ...cfg.ibas.server }, {
    ip: '127.0.0.1', port: 0, read_timeout: 10, idle_timeout: 120, max_body_size: 16 * 1024 * 1024, max_file_size: 1024 ** 3, max_conn_tx: 0,
  });
  assert.equal(cfg.ibas.mpm.mode, 'STATIC_WORKERPOOL');
  assert.equal(cfg.ibas.mpm.max_process_count, 10000);
  assert.equal(cfg.ibas.mpm.accept_queue_count, 1024);
  assert.equal(cfg.ibas.mpm.accept_queue_timeout, 10);
  assert.deepEqual({ ...cfg.ibas.security }, { sign_flag: false, compress_flag: true, encrypt_flag: false });
  assert.equal(cfg.ibas.log.event_output, 'file::log/event.log');
  assert.equal(cfg.ibas.log.main_output, 'file::log/ibas_127.0.0.1-0_main.log');
  assert.equal(cfg.ibas.log.monitor_loglevel, 'INFO');
  assert.equal(cfg.ibma.config_filename, 'ibma.conf');
});

test('ibas.conf - max_process_count at mpm level wins over the DYNAMIC_WORKERPOOL one', () => {
  const both = parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "mpm" : { "max_process_count" : 5 , "DYNAMIC_WORKERPOOL" : { "max_process_count" : 7 } }'), 'ibas.conf');
  assert.equal(both.ibas.mpm.max_process_count, 5);
  assert.equal(both.ibas.mpm.DYNAMIC_WORKERPOOL.max_process_count, 5);
  const dynOnly = parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "mpm" : { "mode" : FORK , "DYNAMIC_WORKERPOOL" : { "max_process_count" : 7 } }'), 'ibas.conf');
  assert.equal(dynOnly.ibas.mpm.max_process_count, 7);
  assert.equal(dynOnly.ibas.mpm.mode, 'FORK');
});

test('ibas.conf - numbers written as strings and 0/1 flags are coerced', () => {
  const cfg = parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : "18001" , "read_timeout" : "0.5"',
    ', "mpm" : { "max_count" : "4" } , "security" : { "sign_flag" : "1" , "compress_flag" : 0 , "encrypt_flag" : true }'), 'ibas.conf');
  assert.equal(cfg.ibas.server.port, 18001);
  assert.equal(cfg.ibas.server.read_timeout, 0.5);
  assert.equal(cfg.ibas.mpm.max_count, 4);
  assert.deepEqual({ ...cfg.ibas.security }, { sign_flag: true, compress_flag: false, encrypt_flag: true });
});

test('ibas.conf - log levels are case-insensitive and NOTICE reads as INFO; other roles pass through', () => {
  const cfg = parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1',
    ', "log" : { "iblog_server" : "" , "main_loglevel" : debug , "worker_loglevel" : Notice , "comm_output" : "file::log/comm.log" }'), 'ibas.conf');
  assert.equal(cfg.ibas.log.main_loglevel, 'DEBUG');
  assert.equal(cfg.ibas.log.worker_loglevel, 'INFO');
  assert.equal(cfg.ibas.log.comm_output, 'file::log/comm.log');
  assert.equal(cfg.ibas.log.comm_loglevel, 'INFO');
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "log" : { "main_loglevel" : LOUD }'), 'ibas.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibas.log.main_loglevel: got "LOUD", expected one of DEBUG, INFO, WARN, ERROR, FATAL');
});

test('ibas.conf - an unknown key is named with its full path and file:line:col', () => {
  const text = '{\n  "ibas" : {\n    "server" : { "ip" : "127.0.0.1" , "port" : 1 ,\n      "prot" : 2 }\n  }\n}';
  configError(() => parseIbasConf(text, 'etc/ibas.conf'), 'IBP_ERR_CONFIG_UNKNOWN_KEY', 'etc/ibas.conf:4:7: unknown key ibas.server.prot');
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "log" : { "main_outptu" : "x" }'), 'ibas.conf'),
    'IBP_ERR_CONFIG_UNKNOWN_KEY', 'unknown key ibas.log.main_outptu');
  configError(() => parseIbasConf(`{ "ibas" : { "server" : { "ip" : "1.2.3.4" , "port" : 1 } } , "extra" : 1 }`, 'ibas.conf'),
    'IBP_ERR_CONFIG_UNKNOWN_KEY', 'ibas.conf:1:63: unknown key extra');
});

test('ibas.conf - a misspelt key is reported as unknown before the missing key it causes', () => {
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "prot" : 1'), 'ibas.conf'),
    'IBP_ERR_CONFIG_UNKNOWN_KEY', 'unknown key ibas.server.prot\n', 'ibas.server.port: missing, expected an integer from 0 to 65535');
});

test('ibas.conf - wrong types and ranges name the key path, the value and what was expected', () => {
  const text = '{ "ibas" : {\n "server" : { "ip" : "127.0.0.1" , "port" : "http" } } }';
  configError(() => parseIbasConf(text, 'ibas.conf'), 'IBP_ERR_CONFIG_INVALID', 'ibas.conf:2:45: ibas.server.port: got "http", expected an integer from 0 to 65535');
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 70000'), 'ibas.conf'), 'IBP_ERR_CONFIG_INVALID', 'got 70000');
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "mpm" : { "mode" : THREADS }'), 'ibas.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibas.mpm.mode: got "THREADS", expected one of FORK, STATIC_WORKERPOOL, DYNAMIC_WORKERPOOL');
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "security" : { "sign_flag" : 2 }'), 'ibas.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibas.security.sign_flag: got 2, expected 0 or 1');
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1 , "read_timeout" : 0'), 'ibas.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibas.server.read_timeout: got 0, expected a number of seconds > 0');
  configError(() => parseIbasConf(ibas('"ip" : "not an ip!" , "port" : 1'), 'ibas.conf'), 'IBP_ERR_CONFIG_INVALID', 'ibas.server.ip');
  configError(() => parseIbasConf('{ "ibas" : { "server" : [] } }', 'ibas.conf'), 'IBP_ERR_CONFIG_INVALID', 'ibas.server: got an array, expected an object');
});

test('ibas.conf - the dynamic pool bounds must agree', () => {
  configError(() => parseIbasConf(ibas('"ip" : "127.0.0.1" , "port" : 1', ', "mpm" : { "DYNAMIC_WORKERPOOL" : { "min_idle_count" : 6 , "max_idle_count" : 5 } }'), 'ibas.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibas.mpm.DYNAMIC_WORKERPOOL.min_idle_count: got 6, expected at most max_idle_count (5)');
});

test('ibas.conf - missing required keys are named at the enclosing object', () => {
  configError(() => parseIbasConf('{\n "ibas" : {\n  "server" : { "port" : 1 } } }', 'ibas.conf'), 'IBP_ERR_CONFIG_INVALID', 'ibas.conf:3:14: ibas.server.ip: missing');
  configError(() => parseIbasConf('{ }', 'ibas.conf'), 'IBP_ERR_CONFIG_INVALID', 'ibas: missing, expected an object');
});

test('ibas.conf - every problem is listed, one per line, and carried in details', () => {
  assert.throws(() => parseIbasConf(ibas('"ip" : 5 , "port" : -1', ', "app" : { "max_so_cache_count" : 0 }'), 'ibas.conf'), (err: unknown) => {
    assert.ok(err instanceof IbpError);
    assert.equal(err.message.split('\n').length, 3, err.message);
    const problems = err.details?.problems as { path: string }[];
    assert.deepEqual(problems.map((p) => p.path), ['ibas.server.ip', 'ibas.server.port', 'ibas.app.max_so_cache_count']);
    return true;
  });
});

test('ibas.conf - a validated config is deeply frozen', () => {
  const cfg = parseIbasConf(MIN_IBAS, 'ibas.conf');
  assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.ibas.mpm.DYNAMIC_WORKERPOOL) && Object.isFrozen(cfg.ibas.log));
  assert.throws(() => { (cfg.ibas.server as { port: number }).port = 9; }, TypeError);
});

test('ibma.conf - the seed example, with its missing comma, loads verbatim', () => {
  const cfg = loadIbmaConf(join(SEED, 'ibma.conf'));
  assert.equal(cfg.ibma.this_node, 'ECIF');
  assert.equal(cfg.ibma.comm.min_compress_size, 16);
  assert.equal(cfg.ibac.connecting_timeout, 10);
  assert.equal(cfg.ibac.retry_connect_timeval, 60);
  assert.equal(cfg.ibms.server.ip, '127.0.0.1');
  assert.equal(cfg.ibms.server.port, 16001);
  assert.equal(cfg.ibma.log.main_output, 'file::log/ibma_ECIF_127.0.0.1:18111_main.log');
});

test('ibma.conf - defaults, and this_node plus the registry address are required', () => {
  const cfg = parseIbmaConf('{ "ibma" : { "this_node" : "CORE" } , "ibms" : { "server" : { "ip" : "10.0.0.1" , "port" : "16001" } } }', 'ibma.conf');
  assert.equal(cfg.ibma.comm.min_compress_size, 16);
  assert.equal(cfg.ibac.connecting_timeout, 10);
  assert.equal(cfg.ibac.retry_connect_timeval, 60);
  assert.equal(cfg.ibma.log.worker_output, 'file::log/ibma_CORE_worker.log');
  assert.equal(cfg.ibms.server.port, 16001);
  configError(() => parseIbmaConf('{ "ibma" : { } , "ibms" : { "server" : { "ip" : "10.0.0.1" , "port" : 1 } } }', 'ibma.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibma.this_node: missing');
  configError(() => parseIbmaConf('{ "ibma" : { "this_node" : "A B" } , "ibms" : { "server" : { "ip" : "10.0.0.1" , "port" : 1 } } }', 'ibma.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibma.this_node: got "A B"');
  configError(() => parseIbmaConf('{ "ibma" : { "this_node" : "A" } }', 'ibma.conf'), 'IBP_ERR_CONFIG_INVALID', 'ibms: missing');
  configError(() => parseIbmaConf('{ "ibma" : { "this_node" : "A" } , "ibac" : { "timeout" : 1 } , "ibms" : { "server" : { "ip" : "10.0.0.1" , "port" : 1 } } }', 'ibma.conf'),
    'IBP_ERR_CONFIG_UNKNOWN_KEY', 'unknown key ibac.timeout');
});

test('ibms.conf - the seed example loads verbatim', () => {
  const cfg = loadIbmsConf(join(SEED, 'ibms.conf'));
  assert.equal(cfg.ibms.server.ip, '158.1.0.54');
  assert.equal(cfg.ibms.server.port, 16001);
  assert.deepEqual({ ...cfg.ibms.config }, { nodes_conf: 'ibp_nodes.conf', apps_conf: 'ibp_apps.conf', projects_conf: 'ibp_projects.conf' });
  assert.deepEqual({ ...cfg.ibms.security }, { old_key_disable_elapse: 120, new_key_enable_elapse: 60 });
  assert.deepEqual({ ...cfg.ibms.misc }, { auto_download_bin_enable: false, second_config_dump: '158.1.0.55:26001' });
  assert.equal(cfg.ibms.log.main_loglevel, 'DEBUG');
  assert.equal(cfg.ibms.log.worker_output, 'file::log/ibms_worker.log');
});

test('ibms.conf - the new key must be enabled before the old one is disabled', () => {
  configError(() => parseIbmsConf('{ "ibms" : { "server" : { "ip" : "1.2.3.4" , "port" : 1 } , "security" : { "new_key_enable_elapse" : 200 } } }', 'ibms.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibms.security.new_key_enable_elapse: got 200, expected less than old_key_disable_elapse (120)');
});

test('ibms.conf - second_config_dump is empty or ip:port', () => {
  const ok = parseIbmsConf('{ "ibms" : { "server" : { "ip" : "1.2.3.4" , "port" : 1 } } }', 'ibms.conf');
  assert.equal(ok.ibms.misc.second_config_dump, '');
  configError(() => parseIbmsConf('{ "ibms" : { "server" : { "ip" : "1.2.3.4" , "port" : 1 } , "misc" : { "second_config_dump" : "host-without-port" } } }', 'ibms.conf'),
    'IBP_ERR_CONFIG_INVALID', 'ibms.misc.second_config_dump: got "host-without-port", expected "" or an address "ip:port"');
});

test('loaders - a missing file is IBP_ERR_CONFIG_READ naming the path; syntax errors name the path as given', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibp-config-'));
  try {
    configError(() => loadIbasConf(join(dir, 'nope.conf')), 'IBP_ERR_CONFIG_READ', join(dir, 'nope.conf'), 'no such file');
    const bad = join(dir, 'ibas.conf');
    writeFileSync(bad, '{\n  "ibas" : {\n    "server" : { "ip" : 1.2.3.4 }\n  }\n}\n');
    configError(() => loadIbasConf(bad), 'IBP_ERR_CONFIG_SYNTAX', `${bad}:3:25: expected a number, got "1.2.3.4"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
