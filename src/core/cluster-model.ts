/**
 * The cluster configuration model (the original's ibp_nodes.conf, ibp_apps.conf, ibp_projects.conf),
 * after parsing and validation: numbers are numbers, flags are booleans, lists are arrays.
 * The config reader produces it; the registry edits it; the replica builder derives a node's view from it.
 */

/** One host of a node. A negative port in the files marks a client-only host: `port` keeps the absolute value. */
export interface HostConfig {
  ip: string;
  port: number;
  clientOnly: boolean;
  invalid: boolean;
}

export interface NodeConfig {
  node: string;
  invalid: boolean;
  hosts: HostConfig[];
  /** The node's communication key (`key_exp`), '' when none. */
  keyExp: string;
  /** App-defined key/value config of the node. */
  kv: Record<string, string>;
}

export interface AppConfig {
  app: string;
  desc: string;
  /** The app package file name in so/ (the original's .so name; ours is an ES module). */
  bin: string;
  /** Client communication timeout, seconds. */
  timeout: number;
  /** Server application timeout, seconds; 0 means timeout × 1.5. */
  timeout2: number;
  /** Default server node ('' = none). */
  serverNode: string;
  invalid: boolean;
}

export interface ProjectConfig {
  project: string;
  serverNodes: string[];
  clientNodes: string[];
  apps: string[];
}

export interface ClusterConfig {
  nodes: NodeConfig[];
  apps: AppConfig[];
  projects: ProjectConfig[];
}

/** The server application timeout T of an app, in seconds (timeout2, or timeout × 1.5 when timeout2 is 0). */
export function appServerTimeoutSec(app: Pick<AppConfig, 'timeout' | 'timeout2'>): number {
  return app.timeout2 > 0 ? app.timeout2 : app.timeout * 1.5;
}
