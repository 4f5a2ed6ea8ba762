/**
 * `server-service`: the comma list of a service's listen addresses (lib-zc's forms, SPEC §8.1 #106) or one
 * trigger interval. Forms:
 *
 * - `name://ip:port`, `name://0:port` (0 = every IPv4 address), `name://[::1]:port`
 * - `name://path/of/unix/socket` (anything after `name://` that is not `host:port`)
 * - bare `ip:port`, `0:port`, `:port`, or a bare path holding a `/` (named after the service)
 * - `trigger:SECONDS` (alone): run `server-command` every SECONDS (decimals allowed)
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';

/** A TCP listen address. `key` identifies the socket across reloads (same key = same socket kept). */
export interface TcpListenAddress {
  kind: 'tcp';
  /** The name the service sees in LISTEN_FDNAMES. */
  name: string;
  host: string;
  /** 0 = an ephemeral port chosen at bind time. */
  port: number;
  family: 4 | 6;
  key: string;
  /** The entry as written. */
  text: string;
}

/** A unix-domain stream socket address; `path` is absolute (relative paths are taken from the master's cwd). */
export interface UnixListenAddress {
  kind: 'unix';
  name: string;
  path: string;
  key: string;
  text: string;
}

export type ListenAddress = TcpListenAddress | UnixListenAddress;

/** What a `server-service` value describes. */
export type ServiceEndpoints =
  | { kind: 'listen'; addresses: ListenAddress[] }
  | { kind: 'trigger'; intervalMs: number };

/** Shortest trigger interval accepted (50 ms): a smaller one is a config mistake, not a timer. */
export const MIN_TRIGGER_INTERVAL_MS = 50;
const NAME_RE = /^[A-Za-z0-9_.@-]+$/;
const HOST_PORT_RE = /^(\[[^\]]*\]|[^:/[\]]*):([^:/]*)$/;

/**
 * Parses a `server-service` value. Throws a plain `Error` whose message says which entry is wrong and what
 * was expected; the config reader turns it into IBP_ERR_MASTER_CONFIG with file:line and key.
 * @param defaultName the name of entries written without `name://` (the service name).
 * @param cwd the directory relative unix socket paths are taken from.
 */
export function parseServiceEndpoints(text: string, defaultName: string, cwd: string = process.cwd()): ServiceEndpoints {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  const trigger = entries.filter((e) => /^trigger:/i.test(e));
  if (trigger.length > 0) {
    if (entries.length !== 1) throw new Error(`a trigger (${trigger[0]}) must be the only entry of server-service`);
    return { kind: 'trigger', intervalMs: parseTriggerInterval(trigger[0]!) };
  }
  const addresses = entries.map((e) => parseListenAddress(e, defaultName, cwd));
  const seen = new Map<string, string>();
  for (const a of addresses) {
    const before = seen.get(a.key);
    if (before !== undefined) throw new Error(`${a.text} is the same address as ${before}`);
    seen.set(a.key, a.text);
  }
  return { kind: 'listen', addresses };
}

function parseTriggerInterval(entry: string): number {
  const s = entry.slice('trigger:'.length).trim();
  const secs = /^\d+(\.\d+)?$/.test(s) ? Number(s) : Number.NaN;
  const ms = Math.round(secs * 1000);
  if (!Number.isFinite(ms) || ms < MIN_TRIGGER_INTERVAL_MS) {
    throw new Error(`${entry}: expected trigger:SECONDS with SECONDS a number >= ${MIN_TRIGGER_INTERVAL_MS / 1000}`);
  }
  return ms;
}

/** Parses one listen entry (see the module comment for the forms). */
export function parseListenAddress(entry: string, defaultName: string, cwd: string = process.cwd()): ListenAddress {
  let name = defaultName;
  let rest = entry;
  const sep = entry.indexOf('://');
  if (sep >= 0) {
    name = entry.slice(0, sep);
    rest = entry.slice(sep + 3);
    if (!NAME_RE.test(name)) throw new Error(`${entry}: the name before :// must be letters, digits, _ . @ -`);
    if (rest.length === 0) throw new Error(`${entry}: expected an address after ${name}://`);
  }
  if (name.includes(':')) throw new Error(`${entry}: a name may not hold ':' (it separates LISTEN_FDNAMES)`);
  const hp = HOST_PORT_RE.exec(rest);
  if (hp) return tcpAddress(entry, name, hp[1]!, hp[2]!);
  if (sep >= 0 || rest.includes('/')) {
    if (rest.includes('\0')) throw new Error(`${entry}: a unix socket path may not hold NUL`);
    const path = resolve(cwd, rest);
    if (Buffer.byteLength(path) > 107) throw new Error(`${entry}: unix socket path ${path} is longer than 107 bytes`);
    return { kind: 'unix', name, path, key: `unix:${path}`, text: entry };
  }
  throw new Error(`${entry}: expected name://ip:port, name://path, ip:port, 0:port or trigger:SECONDS`);
}

function tcpAddress(entry: string, name: string, hostText: string, portText: string): TcpListenAddress {
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new Error(`${entry}: port ${JSON.stringify(portText)} is not a number in 0..65535`);
  }
  const port = Number(portText);
  let host = hostText;
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (host === '' || host === '0') host = '0.0.0.0';
  const family = isIP(host);
  if (family === 0) throw new Error(`${entry}: ${JSON.stringify(hostText)} is not an IP address (or 0 for all addresses)`);
  if (hostText.startsWith('[') && family !== 6) throw new Error(`${entry}: [${host}] is not an IPv6 address`);
  // Port 0 addresses are each their own socket, so they get a key of their own per entry text.
  const key = port === 0 ? `tcp:0:${name}:${entry}` : `tcp:${family === 6 ? `[${host}]` : host}:${port}`;
  return { kind: 'tcp', name, host, port, family: family as 4 | 6, key, text: entry };
}

/** How an address reads in logs: `127.0.0.1:8080`, `[::1]:8080` or the socket path. */
export function formatListenAddress(a: ListenAddress, boundPort?: number): string {
  if (a.kind === 'unix') return a.path;
  const port = boundPort ?? a.port;
  return a.family === 6 ? `[${a.host}]:${port}` : `${a.host}:${port}`;
}
