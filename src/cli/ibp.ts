#!/usr/bin/env node
/** `ibp`: the project's general command (subcommands). */
import { IbpError } from '../core/errors.js';
import { runLocalConfig } from './local-config.js';
import { runMasterCommand } from './master-cmd.js';
import { runPing } from './ping.js';
import { runTop } from './top.js';
import { runTwoPhaseCommand } from './twopc-cmd.js';
import { runCli } from './args.js';

const USAGE = `usage: ibp <command> [options]
commands:
  local-config [--home DIR] [--this-node NODE] [-f ibma.conf]
        build this node's local config snapshot (run/ibma/) from etc/ibp_nodes.conf, ibp_apps.conf,
        ibp_projects.conf and etc/ibma.conf (until the registry and agent run)
  ping NODE [--home DIR] [--count N] [--timeout MS]
        IB2 handshake with every host of NODE; per-host latency; exit 0 all answer, 1 some do not
  top [--home DIR] [-f ibas.conf] [--interval MS] [--once]
        live view of this home's platform: worker pool, per-app TPS and latency
  2pc recover|status [--home DIR] [--xid XID] [--json]
        two-phase commit: finish what a crashed coordinator left; show this home's transactions (docs/2pc.md)
  master -C CONFIG_DIR [-pid-file FILE] | -pid-file FILE --try-lock | alone ...
        the generic master: run the services of CONFIG_DIR/*.cf (ibp master --help; docs/master.md)
  help  this text`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'local-config':
      return runLocalConfig(rest);
    case 'master':
      return runMasterCommand(rest);
    case 'ping':
      return runPing(rest);
    case 'top':
      return runTop(rest);
    case '2pc':
      return runTwoPhaseCommand(rest);
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 2 : 0;
    default:
      throw new IbpError('IBP_ERR_USAGE', `unknown command ${cmd}\n\n${USAGE}`);
  }
}

void runCli(() => main(process.argv.slice(2)));
