import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandAudit } from '../../../src/rcmd/index.js';
import { ALLOWED, INJECTIONS, TEST_POLICY } from './injection-corpus.js';

const audit = new CommandAudit(TEST_POLICY);

describe('command audit - injection corpus', () => {
  test('command audit - the corpus holds at least 200 distinct attempts', () => {
    assert.ok(INJECTIONS.length >= 200, `only ${INJECTIONS.length} attempts`);
    assert.equal(new Set(INJECTIONS.map((x) => x.cmd)).size, INJECTIONS.length, 'duplicates in the corpus');
  });

  test('command audit - every injection attempt is refused, each with a stage and a reason', () => {
    const let_through: string[] = [];
    for (const { group, cmd } of INJECTIONS) {
      const v = audit.check(cmd);
      if (v.allowed) {
        let_through.push(`${group}: ${JSON.stringify(cmd)} → ${JSON.stringify(v.argv)}`);
        continue;
      }
      assert.ok(['syntax', 'blacklist', 'whitelist', 'argument'].includes(v.stage), `${JSON.stringify(cmd)}: stage ${v.stage}`);
      assert.ok(v.reason.length >= 5, `${JSON.stringify(cmd)}: reason ${JSON.stringify(v.reason)}`);
    }
    assert.deepEqual(let_through, []);
  });

  test('command audit - shell separators, substitutions and redirections are refused by the built-in rules', () => {
    for (const { group, cmd } of INJECTIONS) {
      if (!['separator', 'substitution', 'redirection'].includes(group)) continue;
      const v = audit.check(cmd);
      assert.equal(v.allowed, false);
      if (!v.allowed) assert.equal(v.stage, 'syntax', `${JSON.stringify(cmd)}: ${v.stage} ${v.reason}`);
    }
  });

  test('command audit - reasons name the offending character and its position', () => {
    const cases: [string, RegExp][] = [
      ['ls; id', /command separator ';' at 2/],
      ['ls | id', /pipe .* at 3/],
      ['ls $(id)', /'\$' .* at 3/],
      ['ls `id`', /command substitution '`' at 3/],
      ['ls > x', /redirection .* '>' at 3/],
      ['ls\nid', /newline .* at 2/],
      ['ls *', /glob '\*' at 3/],
      ['ls %3Bid', /percent-encoded byte '%3B' at 3/],
      ['ls\uFF1Bid', /non-ASCII character U\+FF1B at 2/],
      ['ls\u200Bid', /non-ASCII character U\+200B/],
    ];
    for (const [cmd, re] of cases) {
      const v = audit.check(cmd);
      assert.equal(v.allowed, false, cmd);
      if (!v.allowed) assert.match(v.reason, re, JSON.stringify(cmd));
    }
  });

  test('command audit - argument injection into a whitelisted command names the word and the rule', () => {
    const v = audit.check('sort --output=/etc/passwd x');
    assert.equal(v.allowed, false);
    if (!v.allowed) {
      assert.equal(v.stage, 'argument');
      assert.match(v.reason, /word 1 "--output=\/etc\/passwd": absolute path/);
      assert.equal(v.rule, 'sort **');
    }
    const up = audit.check('ls etc/../../..');
    assert.ok(!up.allowed && up.stage === 'argument' && /parent directory/.test(up.reason));
    const bl = audit.check('find . -delete');
    assert.ok(!bl.allowed && bl.stage === 'blacklist' && bl.rule === '* -delete*');
    const wl = audit.check('sh -c id');
    assert.ok(!wl.allowed && wl.stage === 'whitelist' && /"sh" with these arguments is not in the whitelist/.test(wl.reason));
  });

  test('command audit - non-strings and over-long commands are refused, never thrown', () => {
    for (const bad of [undefined, null, 42, ['ls'], { cmd: 'ls' }]) {
      const v = audit.check(bad);
      assert.equal(v.allowed, false);
    }
    const v = audit.check(`echo ${'a'.repeat(5000)}`);
    assert.ok(!v.allowed && /longer than 4096/.test(v.reason));
  });
});

describe('command audit - whitelisted commands', () => {
  test('command audit - whitelisted commands are allowed and split into argv on spaces', () => {
    for (const [cmd, argv] of ALLOWED) {
      const v = audit.check(cmd);
      assert.equal(v.allowed, true, `${JSON.stringify(cmd)}: ${v.allowed ? '' : `${v.stage}: ${v.reason}`}`);
      if (v.allowed) assert.deepEqual(v.argv, argv);
    }
  });

  test('command audit - the first matching whitelist entry is reported as the rule', () => {
    const v = audit.check('tar -czf backup/etc.tgz etc');
    assert.ok(v.allowed && v.rule === 'tar -czf backup/*.tgz etc');
  });

  test('command audit - whitelist words: * and ? stay inside a word and never cross a /', () => {
    const a = new CommandAudit({ blacklist: [], whitelist: ['cat log/*.log', 'ps ?'], allowNonAscii: false });
    assert.equal(a.check('cat log/x.log').allowed, true);
    assert.equal(a.check('cat log/sub/x.log').allowed, false);
    assert.equal(a.check('cat log/x.log log/y.log').allowed, false, 'one pattern word is one argument');
    assert.equal(a.check('ps a').allowed, true);
    assert.equal(a.check('ps ab').allowed, false);
    assert.equal(a.check('ps').allowed, false);
  });

  test('command audit - a last word ** allows any further words, each checked by the argument rules', () => {
    const a = new CommandAudit({ blacklist: [], whitelist: ['echo **'], allowNonAscii: false });
    assert.equal(a.check('echo').allowed, true);
    assert.equal(a.check('echo a b c d').allowed, true);
    assert.equal(a.check('echo a /etc').allowed, false);
  });

  test('command audit - literal words the operator wrote are trusted, absolute patterns allow absolute paths', () => {
    const a = new CommandAudit({ blacklist: [], whitelist: ['tail -n 50 /var/log/messages', 'cat /var/log/*.log'], allowNonAscii: false });
    assert.equal(a.check('tail -n 50 /var/log/messages').allowed, true);
    assert.equal(a.check('cat /var/log/syslog.log').allowed, true);
    assert.equal(a.check('cat /var/log/...log').allowed, true, '"...log" is a name, not a traversal');
    assert.equal(a.check('cat /var/log/../x.log').allowed, false);
  });

  test('command audit - blacklist patterns match the whole command, * spanning words, and win over the whitelist', () => {
    const a = new CommandAudit({ blacklist: ['ls -?', 'echo *secret*'], whitelist: ['ls **', 'echo **'], allowNonAscii: false });
    assert.equal(a.check('ls -l').allowed, false);
    assert.equal(a.check('ls -la').allowed, true);
    const v = a.check('echo my secret word');
    assert.ok(!v.allowed && v.stage === 'blacklist' && v.rule === 'echo *secret*');
  });

  test('command audit - allow_non_ascii admits letters (Chinese file names) but never symbols or look-alikes', () => {
    const a = new CommandAudit({ blacklist: [], whitelist: ['ls **'], allowNonAscii: true });
    assert.equal(a.check('ls 日志/交易.log').allowed, true);
    assert.equal(a.check('ls café').allowed, true);
    for (const cmd of ['ls\uFF1Bid', 'ls \uFF5C id', 'ls\u200Bid', 'ls\u00A0etc', 'ls \u2474', 'ls\u2028id', 'ls \u202Edi']) {
      const v = a.check(cmd);
      assert.equal(v.allowed, false, JSON.stringify(cmd));
    }
  });
});
