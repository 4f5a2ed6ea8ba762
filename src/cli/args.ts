/** Small helpers shared by the command lines: argument parsing with coded usage errors, home and config paths. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isAbsolute, join } from 'node:path';
import { IbpError } from '../core/errors.js';
import { ibpHome, resolveHomeRoot, type IbpHome } from '../core/home.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
type ParsedCommandLine<T extends OptionSpec> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;

/** Parses argv, turning node's parse errors into IBP_ERR_USAGE with the usage text. */
export function parseCommandLine<T extends OptionSpec>(argv: string[], options: T, usage: string): ParsedCommandLine<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true as const });
  } catch (err) {
    throw new IbpError('IBP_ERR_USAGE', `${(err as Error).message}\n\n${usage}`);
  }
}

/** The home for a command: --home, else $IBP_HOME, else $HOME. */
export function homeFrom(home: string | undefined, env: NodeJS.ProcessEnv = process.env): IbpHome {
  return ibpHome(home ?? resolveHomeRoot(env));
}

/** A config file name as the original takes it: a bare name is in $HOME/etc, a path is used as given. */
export function configPath(home: IbpHome, name: string): string {
  return isAbsolute(name) || name.includes('/') ? name : join(home.etc, name);
}

/**
 * A host given on a command line as `IP:PORT`. For a node's host (`ibma --host`) a negative port marks a
 * client-only host, as in `ibms -a add_node_host --port -18001`; with `clientOnly: false` (an address to
 * connect to, `--ibms`) it is refused. The port's absolute value must be 1..65535 (0 is refused).
 * @throws IbpError IBP_ERR_USAGE naming the option and the value.
 */
export function parseHostArg(text: string, what: string, o: { clientOnly?: boolean } = {}): { ip: string; port: number } {
  const clientOnly = o.clientOnly ?? true;
  const m = /^(.+):(-?\d{1,6})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port === 0 || Math.abs(port) > 65535 || (port < 0 && !clientOnly)) {
    const want = clientOnly ? 'a port from 1 to 65535, or from -65535 to -1 for a client-only host' : 'a port from 1 to 65535';
    throw new IbpError('IBP_ERR_USAGE', `${what} ${text}: expected IP:PORT with ${want}`);
  }
  return { ip: m[1]!, port };
}

/** Prints rows as an aligned table (header first). */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Runs a CLI main: prints IbpErrors as `CODE: message` and returns the exit code. */
export async function runCli(main: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    if (err instanceof IbpError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      code = err.code === 'IBP_ERR_USAGE' ? 2 : 1;
    } else {
      process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
      code = 1;
    }
  }
  process.exit(code);
}
