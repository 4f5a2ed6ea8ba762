import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError } from '../../../src/core/errors.js';
import { HomePaths } from '../../../src/rcmd/index.js';
import { IBCMD_DEFAULTS } from '../../../src/core/config/index.js';

/** Path-traversal attempts, all refused as text (no file system needed). `H` is replaced by the home root. */
const TRAVERSALS = [
  '../x', '..', '.', '', '/', './etc/x', 'a/../../x', 'etc/../../x', 'etc/..', 'file/../..', '../../../../etc/passwd',
  '/etc/passwd', '//etc/passwd', '/tmp/x', 'H/../x', 'H/etc/../../x', 'H', 'H/', 'Hx/etc/a', 'a//b', 'a/./b', 'a/b/',
  'etc/', '\\..\\..\\x', '..\\x', 'a\\b', '%2e%2e/x', '%2E%2E%2Fx', '..%2fx', '%2e%2e%5cx', '%252e%252e/x', 'a%00b',
  'a\0b', 'a\nb', 'a\rb', 'a\tb', '\uFF0E\uFF0E/x', '\u2025/x', 'a\u2215..', '\uFE52\uFE52/x', 'a\u200B/b', '\u202Ex',
  '~/x', '~root/.ssh/id_rsa', '$HOME/x', '`id`', '$(id)', 'a;b', 'a|b', 'a>b', 'a*', 'a?', '[ab]', '{a,b}', "a'b", 'a"b',
  ' etc/x', 'etc/x ', 'etc/ x', 'x'.repeat(256), `${'a/'.repeat(2100)}x`, 'etc/ibcmd.conf', 'keys/ibcmd.secret',
  'keys/node.key', 'run/ibcmd.pid', 'run/ibma/index', 'log/ibcmd_audit.log', 'log/ibcmd_main.log',
];

describe('home paths - traversal corpus', () => {
  let base: string;
  let home: string;
  let paths: HomePaths;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'ibp-rcmd-paths-'));
    home = join(base, 'home');
    mkdirSync(join(home, 'etc'), { recursive: true });
    mkdirSync(join(home, 'file'), { recursive: true });
    mkdirSync(join(base, 'outside'));
    writeFileSync(join(base, 'outside', 'secret.txt'), 'outside');
    writeFileSync(join(home, 'etc', 'a.conf'), 'a');
    symlinkSync(join(base, 'outside'), join(home, 'file', 'out'));
    symlinkSync(join(base, 'outside', 'secret.txt'), join(home, 'file', 'secret-link.txt'));
    symlinkSync(join(home, 'etc'), join(home, 'file', 'etc-link'));
    writeFileSync(join(home, 'file', 'plain'), 'plain');
    paths = new HomePaths(home, IBCMD_DEFAULTS.file_deny);
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('home paths - every traversal attempt is refused as text, with the rule in the message', () => {
    assert.ok(TRAVERSALS.length >= 60);
    const accepted: string[] = [];
    for (const t of TRAVERSALS) {
      const p = t.replace(/^H/, paths.root);
      try {
        const r = paths.check(p);
        accepted.push(`${JSON.stringify(t)} → ${r.rel}`);
      } catch (err) {
        assert.ok(err instanceof IbpError, JSON.stringify(t));
        assert.equal(err.code, 'IBP_ERR_RCMD_PATH_REFUSED', JSON.stringify(t));
        assert.match(err.message, /refused: .{4,}/);
      }
    }
    assert.deepEqual(accepted, []);
  });

  test('home paths - relative paths and absolute paths inside the home are accepted as home-relative', () => {
    assert.deepEqual(paths.check('etc/ibp_nodes.conf').rel, 'etc/ibp_nodes.conf');
    assert.deepEqual(paths.check(`${paths.root}/etc/ibp_nodes.conf`).rel, 'etc/ibp_nodes.conf');
    assert.deepEqual(paths.check('file/交易 2024.txt').rel, 'file/交易 2024.txt');
    assert.deepEqual(paths.check('so/app-1.0_b+c@d=e,f:g.mjs').rel, 'so/app-1.0_b+c@d=e,f:g.mjs');
    assert.deepEqual(paths.check('file/...').rel, 'file/...', '"..." is a name');
  });

  test('home paths - reading through a symlink is refused, even one pointing inside the home', async () => {
    for (const p of ['file/out/secret.txt', 'file/secret-link.txt', 'file/etc-link/a.conf']) {
      await assert.rejects(paths.forRead(p), (e: IbpError) => e.code === 'IBP_ERR_RCMD_PATH_REFUSED' && /symbolic link/.test(e.message), p);
    }
    assert.equal(await paths.forRead('file/plain'), join(paths.root, 'file', 'plain'));
  });

  test('home paths - a missing file or a directory is FILE_NOT_FOUND for reading', async () => {
    await assert.rejects(paths.forRead('file/none'), { code: 'IBP_ERR_RCMD_FILE_NOT_FOUND' });
    await assert.rejects(paths.forRead('file/plain/x'), { code: 'IBP_ERR_RCMD_PATH_REFUSED' });
    await assert.rejects(paths.forRead('etc'), { code: 'IBP_ERR_RCMD_FILE_NOT_FOUND' });
  });

  test('home paths - writing through or onto a symlink is refused and creates nothing outside', async () => {
    for (const p of ['file/out/new.txt', 'file/secret-link.txt', 'file/etc-link/b.conf', 'file/out/sub/dir/x']) {
      await assert.rejects(paths.forWrite(p), (e: IbpError) => e.code === 'IBP_ERR_RCMD_PATH_REFUSED', p);
    }
    assert.equal(existsSync(join(base, 'outside', 'new.txt')), false);
    assert.equal(existsSync(join(base, 'outside', 'sub')), false);
  });

  test('home paths - writing creates missing directories inside the home; a directory target is refused', async () => {
    assert.equal(await paths.forWrite('file/a/b/c.txt'), join(paths.root, 'file', 'a', 'b', 'c.txt'));
    assert.equal(existsSync(join(paths.root, 'file', 'a', 'b')), true);
    await assert.rejects(paths.forWrite('etc'), { code: 'IBP_ERR_RCMD_PATH_REFUSED' });
    await assert.rejects(paths.forWrite('file/plain/x'), { code: 'IBP_ERR_RCMD_PATH_REFUSED' });
  });
});
