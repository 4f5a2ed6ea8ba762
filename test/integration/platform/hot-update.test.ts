import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { IbacEnv, type IbacConnection, type IbpError } from '../../../src/client/index.js';
import { REPO_ROOT } from '../../../src/cli/scratch-cluster.js';
import { installPackage } from '../../../src/agent/package-sync.js';
import { FIXTURE_APPS, startTestCluster, waitFor, type TestCluster } from '../../helpers/cluster.js';

const APP = 'ibp_t_ver';
const BIN = 'ibp_t_ver.mjs';
const REPLACEMENTS = 100;
const LONG_LOOPS = 3;
const SHORT_LOOPS = 3;

const pkg = (v: number): Buffer =>
  Buffer.from(`// version ${v}\nexport default function somain(ctx) {\n  ctx.respond({ v: ${v}, url: import.meta.url, pid: process.pid });\n  return 0;\n}\n`);

interface Answer {
  v: number;
  url: string;
  pid: number;
}

/** Where the replacements stand, as the test's own code sees it (the same thread as the client loops). */
const at = { begun: 0, done: 0, window: 0 };

describe('app package hot update under load', () => {
  let c: TestCluster;
  let env: IbacEnv;
  before(async () => {
    c = await startTestCluster({ workers: 2, apps: [...FIXTURE_APPS, { app: APP, source: join(REPO_ROOT, 'test', 'fixtures', 'apps', BIN), timeout: 30 }] });
    env = await IbacEnv.create({ home: c.clientHome });
  });
  after(async () => {
    await env?.close();
    await c?.close();
  });

  test('100 replacements the agent\'s way: no call fails, each answer is the old or the new version, then only the newest', async () => {
    const so = join(c.serverHomes[0]!, 'so');
    const failures: string[] = [];
    const wrongVersion: string[] = [];
    const fromUpdateFile: number[] = [];
    let completed = 0;
    let stop = false;
    const once = async (callFn: () => Promise<Answer>): Promise<void> => {
      const s = { done: at.done, window: at.window };
      let r: Answer;
      try {
        r = await callFn();
      } catch (err) {
        failures.push(`${(err as IbpError).code}/${(err as IbpError).commStatus}: ${(err as Error).message}`);
        return;
      }
      completed++;
      // A call that started after replacement `done` finished sees at least that version; no call sees a
      // version whose replacement had not begun when it ended.
      if (r.v < s.done || r.v > at.begun) wrongVersion.push(`v${r.v} outside [${s.done}, ${at.begun}]`);
      const upd = /\.ibpupd\?v=/.test(r.url);
      if (upd) fromUpdateFile.push(r.v);
      // Started and ended inside one update period (live file unlinked, not yet renamed back): the update-period
      // file must have answered, with the new version.
      if (s.window !== 0 && s.window === at.window && (!upd || r.v !== s.window)) wrongVersion.push(`in the update period of v${s.window}: v${r.v} from ${r.url}`);
    };
    const longConns: IbacConnection[] = await Promise.all(Array.from({ length: LONG_LOOPS }, () => env.connect(c.serverNode)));
    const loops = [
      ...longConns.map(async (conn) => {
        while (!stop) await once(async () => (await conn.call(APP, 'x')).json<Answer>());
      }),
      ...Array.from({ length: SHORT_LOOPS }, async () => {
        while (!stop) await once(async () => (await env.call(APP, 'x')).json<Answer>());
      }),
    ];
    const completions = async (n: number, what: string): Promise<void> => {
      const target = completed + n;
      await waitFor(() => completed >= target || failures.length > 0, what, 20_000);
    };
    try {
      await completions(10, 'the load to run');
      for (let v = 1; v <= REPLACEMENTS; v++) {
        at.begun = v;
        if (v % 2 === 1) {
          // The agent's own code, all three steps at once.
          installPackage(so, BIN, pkg(v));
        } else {
          // The same three steps, with calls let through while the live file is missing.
          const tmp = join(so, `.${BIN}.ibpupd.tmp`);
          const fd = openSync(tmp, 'w', 0o644);
          const bytes = pkg(v);
          writeSync(fd, bytes, 0, bytes.length);
          fsyncSync(fd);
          closeSync(fd);
          renameSync(tmp, join(so, `${BIN}.ibpupd`));
          unlinkSync(join(so, BIN));
          at.window = v;
          await completions(LONG_LOOPS + SHORT_LOOPS, `calls during the update period of v${v}`);
          at.window = 0;
          renameSync(join(so, `${BIN}.ibpupd`), join(so, BIN));
        }
        at.done = v;
        await completions(3, `calls after replacement ${v}`);
      }
      // After the last replacement only the newest answers, on every connection and worker.
      await completions(40, 'calls after the last replacement');
    } finally {
      stop = true;
      await Promise.all(loops);
      await Promise.all(longConns.map((x) => x.close()));
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(wrongVersion, []);
    assert.ok(fromUpdateFile.length > 0, 'some calls were answered from the update-period file');
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const r = (await env.call(APP, 'x')).json<Answer>();
      assert.equal(r.v, REPLACEMENTS);
      // The module may still be the one imported from the update-period file of this same version: renamed back to
      // the live name it is the same file (same inode, size and mtime), so the cache rightly keeps it.
      assert.match(r.url, new RegExp(`/${BIN.replace('.', '\\.')}(\\.ibpupd)?\\?v=`));
      pids.add(r.pid);
    }
    assert.equal(pids.size, 2, 'both workers answered with the newest version');
    assert.ok(completed > REPLACEMENTS * 3, `${completed} calls over ${REPLACEMENTS} replacements`);
  });
});
