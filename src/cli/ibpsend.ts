#!/usr/bin/env node
/** `ibpsend node app req_msg_file [file1 [file2 [file3 [file4]]]]`: send one transaction (feature #102). */
import { readFileSync } from 'node:fs';
import { IbpError } from '../core/errors.js';
import { IbacEnv } from '../client/index.js';
import { parseCommandLine, runCli } from './args.js';

const USAGE = `usage: ibpsend [--home DIR] [--timeout SEC] node app req_msg_file [req_file1 .. req_file4]
  sends req_msg_file's content as the request of transaction <app> to server node <node> over a short
  connection, with up to 4 request files; prints the response message and the response files' paths.
  exit code: 0 ok, 1 failed and NOT in doubt, 3 failed and IN DOUBT (ON_SENDING), 2 usage`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { home: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, USAGE);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length < 3 || positionals.length > 7) throw new IbpError('IBP_ERR_USAGE', `expected node, app, req_msg_file and at most 4 files\n\n${USAGE}`);
  const [node, app, msgFile, ...files] = positionals as [string, string, string, ...string[]];
  let msg: Buffer;
  try {
    msg = readFileSync(msgFile);
  } catch (err) {
    throw new IbpError('IBP_ERR_USAGE', `cannot read request message file ${msgFile}: ${(err as Error).message}`);
  }
  const timeoutSec = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutSec !== undefined && !(timeoutSec > 0)) throw new IbpError('IBP_ERR_USAGE', `--timeout ${values.timeout}: expected seconds > 0`);
  const env = await IbacEnv.create(values.home === undefined ? {} : { home: values.home });
  const started = performance.now();
  try {
    const r = await env.call(app, msg, { node, files, ...(timeoutSec === undefined ? {} : { timeoutSec }) });
    const ms = (performance.now() - started).toFixed(1);
    process.stdout.write(`${r.text()}\n`);
    process.stderr.write(`ok: ${app} on ${r.host.node} ${r.host.ip}:${r.host.port} in ${ms} ms, jnlsno ${r.jnlsno}, server load ${r.load.busy}/${r.load.total}\n`);
    for (const f of r.files) process.stderr.write(`response file: ${f}\n`);
    return 0;
  } catch (err) {
    if (err instanceof IbpError) {
      const doubt = err.commStatus === 'ON_SENDING';
      process.stderr.write(`${err.code}: ${err.message}\ncomm status: ${err.commStatus ?? 'NOT_SENT'}${doubt ? ' (IN DOUBT: check the outcome on the server before retrying)' : ' (not in doubt)'}\n`);
      return doubt ? 3 : 1;
    }
    throw err;
  } finally {
    await env.close();
  }
}

void runCli(() => main(process.argv.slice(2)));
