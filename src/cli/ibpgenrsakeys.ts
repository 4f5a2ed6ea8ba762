#!/usr/bin/env node
/**
 * `ibpgenrsakeys NODE [--home DIR] [--force]`: makes a node's RSA key pair in `keys/`: `NODE.key` (private,
 * PKCS#8 PEM, mode 0600) and `NODE.pub` (public, SPKI PEM). Run it on the registry; copy `NODE.key` to the
 * node's `keys/`. It refuses to replace an existing pair unless `--force`.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { nodeNameProblem } from '../core/config/fields.js';
import { IbpError } from '../core/errors.js';
import { generateNodeKeyPair, NODE_KEY_BITS } from '../registry/index.js';
import { homeFrom, parseCommandLine, runCli } from './args.js';

const USAGE = `usage: ibpgenrsakeys NODE [--home DIR] [--force]
  writes keys/NODE.key (private, mode 0600: copy it to the node's keys/) and keys/NODE.pub (public, stays on the registry)
options: --home DIR (default $IBP_HOME, else $HOME); --force replaces an existing pair`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { home: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new IbpError('IBP_ERR_USAGE', `${positionals.length === 0 ? 'give the node name' : 'give one node name'}\n\n${USAGE}`);
  const node = positionals[0]!;
  const bad = nodeNameProblem(node);
  if (bad !== undefined || node.startsWith('.') || /[/\\]/.test(node)) {
    throw new IbpError('IBP_ERR_USAGE', `node name ${JSON.stringify(node)}: ${bad ?? 'expected a name, not a path'}`);
  }
  const home = homeFrom(values.home);
  mkdirSync(home.keys, { recursive: true });
  const keyPath = join(home.keys, `${node}.key`);
  const pubPath = join(home.keys, `${node}.pub`);
  const existing = [keyPath, pubPath].filter((p) => existsSync(p));
  if (existing.length > 0 && !values.force) {
    throw new IbpError('IBP_ERR_REGISTRY_KEY_EXISTS', `${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: keep them, or pass --force to make a new pair (then copy the new ${node}.key to the node)`);
  }
  const pair = generateNodeKeyPair(NODE_KEY_BITS);
  writeFileAtomic(keyPath, pair.privateKeyPem, { mode: 0o600 });
  writeFileAtomic(pubPath, pair.publicKeyPem, { mode: 0o644 });
  process.stdout.write(`wrote ${keyPath} (private, mode 0600)\nwrote ${pubPath} (public)\nnext: copy ${node}.key to keys/ on every host of node ${node}\n`);
  return 0;
}

void runCli(() => main(process.argv.slice(2)));
