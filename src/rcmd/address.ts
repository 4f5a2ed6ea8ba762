/** Agent addresses as the config and `second_config_dump` write them: `ip:port`, `host:port`, `[v6]:port`. */
import { IbpError } from '../core/errors.js';

/**
 * Splits `ip:port`.
 * @throws IbpError IBP_ERR_USAGE naming the text when it is not of that form or the port is not 1..65535.
 * @example parseAgentAddress('158.1.0.55:26001') // { host: '158.1.0.55', port: 26001 }
 */
export function parseAgentAddress(text: string): { host: string; port: number } {
  const at = typeof text === 'string' ? text.lastIndexOf(':') : -1;
  const host = at > 0 ? text.slice(0, at).replace(/^\[(.*)\]$/, '$1') : '';
  const portText = at > 0 ? text.slice(at + 1) : '';
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (host.length === 0 || !(port >= 1 && port <= 65535)) {
    throw new IbpError('IBP_ERR_USAGE', `ibcmd address ${JSON.stringify(text)}: expected "ip:port" with a port from 1 to 65535`);
  }
  return { host, port };
}
