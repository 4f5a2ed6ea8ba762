// ibp_test_file: sends every request file back as a response file (the original's test file service),
// and answers with a JSON list of what it received.
import { copyFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';

export default function somain(ctx) {
  const received = [];
  for (const path of ctx.requestFiles) {
    const fileId = basename(path).split('_')[0];
    const copy = ctx.createTempFile(fileId);
    copyFileSync(path, copy);
    ctx.putResponseFile(copy);
    received.push({ name: basename(path), size: statSync(path).size });
  }
  ctx.respond({ app: ctx.app, node: ctx.thisNode, client: ctx.clientNode, jnlsno: ctx.jnlsno, received });
  return 0;
}
