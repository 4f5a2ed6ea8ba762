/**
 * Commented default config files in the original's style, as `ibas -a init`, `ibma -a init` and
 * `ibms -a init` write them. Each loads with its loader (a unit test keeps that true).
 */
import { IbpError } from '../errors.js';
import { isHostText, nodeNameProblem } from './fields.js';
import { IBAS_DEFAULTS, IBMA_DEFAULTS, IBMS_DEFAULTS } from './schemas.js';

const s = (v: string) => JSON.stringify(v);
const flag = (b: boolean) => (b ? 1 : 0);

function checkAddress(what: string, ip: string, port: number, allowZero: boolean): void {
  if (typeof ip !== 'string' || !isHostText(ip)) {
    throw new IbpError('IBP_ERR_CONFIG_INVALID', `${what} ip: got ${JSON.stringify(ip)}, expected an IP address or host name`);
  }
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new IbpError('IBP_ERR_CONFIG_INVALID', `${what} port: got ${String(port)}, expected an integer from ${allowZero ? 0 : 1} to 65535`);
  }
}

/** Options of {@link defaultIbasConfText}. */
export interface DefaultIbasConfOptions {
  ip: string;
  port: number;
  /** The node this platform serves; only used in log file names and the header comment. */
  name?: string;
}

/** The default `etc/ibas.conf` for a platform listening on ip:port. */
export function defaultIbasConfText(opts: DefaultIbasConfOptions): string {
  checkAddress('ibas.server', opts.ip, opts.port, true);
  if (opts.name !== undefined && nodeNameProblem(opts.name) !== undefined) {
    throw new IbpError('IBP_ERR_CONFIG_INVALID', `name: got ${JSON.stringify(opts.name)}, ${nodeNameProblem(opts.name)}`);
  }
  const d = IBAS_DEFAULTS;
  const stem = `file::log/ibas_${opts.name !== undefined ? `${opts.name}_` : ''}${opts.ip}-${opts.port}`;
  return `// ibas.conf: communication server platform${opts.name !== undefined ? ` of node ${opts.name}` : ''} (written by ibas -a init)
// Lenient JSON: comments, trailing commas and bare words such as INFO are fine. "(ext)" marks IBP for TypeScript extensions.
{
	"ibas" :
	{
		"server" : // listen address
		{
			"ip" : ${s(opts.ip)} , // listen IP
			"port" : ${opts.port} , // listen PORT (0: any free port)
			"read_timeout" : ${d.read_timeout} , // (ext) seconds a peer may take to send a started message
			"idle_timeout" : ${d.idle_timeout} , // (ext) seconds an idle long connection is kept (0: no limit)
			"max_body_size" : ${d.max_body_size} , // (ext) largest request or response message, bytes
			"max_file_size" : ${d.max_file_size} , // (ext) largest attached file, bytes
			"max_conn_tx" : ${d.max_conn_tx} // (ext) transactions on one connection before the server moves it on (GOAWAY), so load spreads again (0: never)
		} ,
		"mpm" : // worker processes
		{
			"mode" : ${s(d.mode)} , /* FORK,STATIC_WORKERPOOL,DYNAMIC_WORKERPOOL */
			"max_count" : ${d.max_count} , // maximum workers (dynamic pool), or the fixed pool size (static pool)
			"max_process_count" : ${d.max_process_count} , // (ext) transactions a worker runs before it is recycled, every mode (0: never)
			"accept_queue_count" : ${d.accept_queue_count} , // (ext) connections that may wait for an idle worker
			"accept_queue_timeout" : ${d.accept_queue_timeout} , // (ext) seconds a connection may wait for an idle worker
			"DYNAMIC_WORKERPOOL" :
			{
				"min_idle_count" : ${d.min_idle_count} , // minimum idle workers (dynamic pool only)
				"max_idle_count" : ${d.max_idle_count} , // maximum idle workers (dynamic pool only)
				"create_interval" : ${d.create_interval} , // most workers created per adjustment cycle
				"destroy_interval" : ${d.destroy_interval} // most workers destroyed per adjustment cycle
			}
		} ,
		"security" : // proposed to the client in the handshake
		{
			"sign_flag" : ${flag(d.sign_flag)} , // sign business messages (needs the node's key)
			"compress_flag" : ${flag(d.compress_flag)} , // compress business messages
			"encrypt_flag" : ${flag(d.encrypt_flag)} // encrypt business messages (needs the node's key)
		} ,
		"app" : // app packages
		{
			"max_so_cache_count" : ${d.max_so_cache_count} // loaded app packages kept per worker (LRU)
		} ,
		"log" :
		{
			"event_output" : "file::log/event.log" ,
			"main_output" : ${s(`${stem}_main.log`)} ,
			"main_loglevel" : INFO ,
			"monitor_output" : ${s(`${stem}_monitor.log`)} ,
			"monitor_loglevel" : INFO ,
			"worker_output" : ${s(`${stem}_worker_%d.log`)} , // %d: worker index
			"worker_loglevel" : INFO ,
			"app_output" : "file::log/app_%s.log" , // %s: app code
			"app_loglevel" : INFO
		}
	} ,

	"ibma" :
	{
		"config_filename" : ${s(d.ibma_config_filename)} // the local agent's config, for the config replica
	}
}
`;
}

/** Options of {@link defaultIbmaConfText}. */
export interface DefaultIbmaConfOptions {
  thisNode: string;
  /** Registry address (default 127.0.0.1:16001). */
  ibmsIp?: string;
  ibmsPort?: number;
}

/** The default `etc/ibma.conf` of a host of node `thisNode`. */
export function defaultIbmaConfText(opts: DefaultIbmaConfOptions): string {
  const problem = nodeNameProblem(opts.thisNode);
  if (problem !== undefined) throw new IbpError('IBP_ERR_CONFIG_INVALID', `thisNode: got ${JSON.stringify(opts.thisNode)}, ${problem}`);
  const ip = opts.ibmsIp ?? '127.0.0.1';
  const port = opts.ibmsPort ?? 16001;
  checkAddress('ibms.server', ip, port, false);
  const stem = `file::log/ibma_${opts.thisNode}`;
  return `// ibma.conf: registry agent of node ${opts.thisNode} (written by ibma -a init); also read by the client library and ibas
{
	"ibma" :
	{
		"this_node" : ${s(opts.thisNode)} , // this node's name

		"comm" :
		{
			"min_compress_size" : ${IBMA_DEFAULTS.min_compress_size} // compress HTTP bodies of at least this many bytes
		} ,

		"log" :
		{
			"event_output" : "file::log/event.log" ,
			"main_output" : ${s(`${stem}_main.log`)} ,
			"main_loglevel" : INFO ,
			"worker_output" : ${s(`${stem}_worker.log`)} ,
			"worker_loglevel" : INFO
		}
	} ,

	"ibac" :
	{
		"connecting_timeout" : ${IBMA_DEFAULTS.connecting_timeout} , // client connect timeout, seconds
		"retry_connect_timeval" : ${IBMA_DEFAULTS.retry_connect_timeval} // a host whose connect failed is skipped this long, seconds
	} ,

	"ibms" :
	{
		"server" :
		{
			"ip" : ${s(ip)} , // registry IP
			"port" : ${port} // registry PORT
		}
	}
}
`;
}

/** The default `etc/ibms.conf` of a registry listening on ip:port. */
export function defaultIbmsConfText(opts: { ip: string; port: number }): string {
  checkAddress('ibms.server', opts.ip, opts.port, true);
  const d = IBMS_DEFAULTS;
  return `// ibms.conf: registry centre (written by ibms -a init)
{
	"ibms" :
	{
		"server" : // listen address
		{
			"ip" : ${s(opts.ip)} ,
			"port" : ${opts.port}
		} ,

		"config" : // cluster config files, in etc/
		{
			"nodes_conf" : ${s(d.nodes_conf)} , // nodes
			"apps_conf" : ${s(d.apps_conf)} , // apps (transaction codes)
			"projects_conf" : ${s(d.projects_conf)} // projects
		} ,

		"security" : // key rotation windows
		{
			"old_key_disable_elapse" : ${d.old_key_disable_elapse} , // seconds until the old key stops working
			"new_key_enable_elapse" : ${d.new_key_enable_elapse} // seconds until the new key is used (must be less)
		} ,

		"misc" :
		{
			"auto_download_bin_enable" : ${flag(d.auto_download_bin_enable)} , // 1: push app packages as soon as they change in so/
			"second_config_dump" : ${s(d.second_config_dump)} // ibcmd address "ip:port" that receives a copy of the saved config
		} ,

		"log" :
		{
			"event_output" : "file::log/event.log" ,
			"main_output" : "file::log/ibms_main.log" ,
			"main_loglevel" : INFO ,
			"monitor_output" : "file::log/ibms_monitor.log" ,
			"monitor_loglevel" : INFO ,
			"worker_output" : "file::log/ibms_worker.log" ,
			"worker_loglevel" : INFO
		}
	}
}
`;
}
