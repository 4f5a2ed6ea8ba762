/**
 * The registry's cluster in memory: nodes, apps and projects by name (in file order), with the reverse
 * indexes a change needs so that checking and applying one command costs O(what it touches), not O(cluster):
 * host address → node, node → projects (as server / as client), app → projects, package file → apps.
 *
 * Records are replaced whole, never edited in place, so a record handed out (a view, the `cluster` arrays)
 * stays what it was. Indexes are keyed by name and tolerate names that are not (yet) defined: a journal
 * replay passes through such states and the whole cluster is checked once at its end.
 */
import { isIP } from 'node:net';
import type { AppConfig, ClusterConfig, HostConfig, NodeConfig, ProjectConfig } from '../../core/cluster-model.js';

interface Entry<T> {
  rec: T;
  /** Insertion rank: the record's place in file order (a replaced record keeps it). */
  ord: number;
}

/** The key of a host address, as the cluster check compares them (`ip:port`, `[v6]:port`). */
export function hostAddress(h: Pick<HostConfig, 'ip' | 'port'>): string {
  return isIP(h.ip) === 6 ? `[${h.ip}]:${h.port}` : `${h.ip}:${h.port}`;
}

const EMPTY: readonly string[] = Object.freeze([]);

export class ClusterState {
  #nodes = new Map<string, Entry<NodeConfig>>();
  #apps = new Map<string, Entry<AppConfig>>();
  #projects = new Map<string, Entry<ProjectConfig>>();
  #ord = 0;
  /** address → nodes having it (more than one only while a replay passes through an inconsistent state). */
  #hostOwners = new Map<string, string[]>();
  #serverOf = new Map<string, Set<string>>();
  #clientOf = new Map<string, Set<string>>();
  /** app → projects listing it; built on first use, then kept up to date. */
  #appProjects: Map<string, string[]> | undefined;
  /** bin → apps using it; built on first use, then kept up to date. */
  #binApps: Map<string, string[]> | undefined;
  /** server node → apps naming it; built on first use, then kept up to date. */
  #serverNodeApps: Map<string, string[]> | undefined;
  #lists: { nodes?: NodeConfig[]; apps?: AppConfig[]; projects?: ProjectConfig[] } = {};
  #projectEntries = new WeakMap<ProjectConfig, Entry<AppConfig>[]>();

  /**
   * A state holding `c` (records are taken as they are, not copied). A name defined twice keeps one record
   * and is listed in `duplicates` (as `nodes`/`apps`/`projects` + name) for the caller to report.
   */
  static from(c: ClusterConfig): ClusterState {
    const s = new ClusterState();
    for (const n of c.nodes) {
      if (s.#nodes.has(n.node)) s.duplicates.push(`node ${JSON.stringify(n.node)}`);
      s.putNode(n);
    }
    for (const a of c.apps) {
      if (s.#apps.has(a.app)) s.duplicates.push(`app ${JSON.stringify(a.app)}`);
      else s.#apps.set(a.app, { rec: a, ord: s.#ord++ }); // the fast path of putApp: no index is built yet
    }
    for (const p of c.projects) {
      if (s.#projects.has(p.project)) s.duplicates.push(`project ${JSON.stringify(p.project)}`);
      s.putProject(p);
    }
    return s;
  }

  /** Names defined more than once in the cluster given to `from`. */
  readonly duplicates: string[] = [];

  get nodeCount(): number { return this.#nodes.size; }
  get appCount(): number { return this.#apps.size; }
  get projectCount(): number { return this.#projects.size; }

  getNode(name: string): NodeConfig | undefined { return this.#nodes.get(name)?.rec; }
  getApp(name: string): AppConfig | undefined { return this.#apps.get(name)?.rec; }
  getProject(name: string): ProjectConfig | undefined { return this.#projects.get(name)?.rec; }
  /** A node / app with its file-order rank (for sorting a subset). Do not modify. */
  nodeEntry(name: string): Readonly<Entry<NodeConfig>> | undefined { return this.#nodes.get(name); }
  appEntry(name: string): Readonly<Entry<AppConfig>> | undefined { return this.#apps.get(name); }

  /** The node that has a host at this address (`hostAddress`). */
  hostOwner(address: string): string | undefined { return this.#hostOwners.get(address)?.[0]; }
  /** Projects listing `node` among their server nodes. */
  serverProjectsOf(node: string): ReadonlySet<string> { return this.#serverOf.get(node) ?? new Set(); }
  /** Projects listing `node` among their client nodes. */
  clientProjectsOf(node: string): ReadonlySet<string> { return this.#clientOf.get(node) ?? new Set(); }

  /**
   * The app entries (record + file-order rank) of a project's apps that exist, in the project's order. Kept
   * per project record while every app resolves: a project record is replaced, never edited, when its list
   * changes, removing an app forgets them all, and an app's entry keeps its identity when the app record is
   * replaced (`rec` is read through it). Do not modify.
   */
  projectAppEntries(p: ProjectConfig): readonly Readonly<Entry<AppConfig>>[] {
    let entries = this.#projectEntries.get(p);
    if (entries === undefined) {
      entries = [];
      for (const a of p.apps) {
        const e = this.#apps.get(a);
        if (e !== undefined) entries.push(e);
      }
      if (entries.length === p.apps.length) this.#projectEntries.set(p, entries);
    }
    return entries;
  }

  /** Projects listing `app`. */
  projectsOfApp(app: string): readonly string[] {
    return this.#appIndex().get(app) ?? EMPTY;
  }

  /** Apps whose package file is `bin`. */
  appsOfBin(bin: string): readonly string[] {
    return this.#binIndex().get(bin) ?? EMPTY;
  }

  /** Every package file name an app uses. */
  bins(): string[] {
    return [...this.#binIndex().keys()];
  }

  /** Apps naming `node` as their default server node. */
  appsWithServerNode(node: string): readonly string[] {
    if (!this.#serverNodeApps) {
      const m = new Map<string, string[]>();
      for (const { rec } of this.#apps.values()) if (rec.serverNode !== '') addTo(m, rec.serverNode, rec.app);
      this.#serverNodeApps = m;
    }
    return this.#serverNodeApps.get(node) ?? EMPTY;
  }

  /** The nodes that serve `app`: the server nodes of every project listing it. */
  servingNodes(app: string): Set<string> {
    const out = new Set<string>();
    for (const p of this.projectsOfApp(app)) for (const n of this.getProject(p)?.serverNodes ?? []) out.add(n);
    return out;
  }

  putNode(rec: NodeConfig): void {
    const old = this.#nodes.get(rec.node);
    if (old) for (const h of old.rec.hosts) removeFrom(this.#hostOwners, hostAddress(h), rec.node);
    for (const h of rec.hosts) addTo(this.#hostOwners, hostAddress(h), rec.node);
    if (old) old.rec = rec;
    else this.#nodes.set(rec.node, { rec, ord: this.#ord++ });
    this.#lists.nodes = undefined;
  }

  delNode(name: string): void {
    const old = this.#nodes.get(name);
    if (!old) return;
    for (const h of old.rec.hosts) removeFrom(this.#hostOwners, hostAddress(h), name);
    this.#nodes.delete(name);
    this.#lists.nodes = undefined;
  }

  putApp(rec: AppConfig): void {
    const old = this.#apps.get(rec.app);
    if (old) {
      if (old.rec.bin !== rec.bin && this.#binApps) {
        removeFrom(this.#binApps, old.rec.bin, rec.app);
        addTo(this.#binApps, rec.bin, rec.app);
      }
      if (old.rec.serverNode !== rec.serverNode && this.#serverNodeApps) {
        if (old.rec.serverNode !== '') removeFrom(this.#serverNodeApps, old.rec.serverNode, rec.app);
        if (rec.serverNode !== '') addTo(this.#serverNodeApps, rec.serverNode, rec.app);
      }
      old.rec = rec;
    } else {
      this.#apps.set(rec.app, { rec, ord: this.#ord++ });
      if (this.#binApps) addTo(this.#binApps, rec.bin, rec.app);
      if (this.#serverNodeApps && rec.serverNode !== '') addTo(this.#serverNodeApps, rec.serverNode, rec.app);
    }
    this.#lists.apps = undefined;
  }

  delApp(name: string): void {
    const old = this.#apps.get(name);
    if (!old) return;
    if (this.#binApps) removeFrom(this.#binApps, old.rec.bin, name);
    if (this.#serverNodeApps && old.rec.serverNode !== '') removeFrom(this.#serverNodeApps, old.rec.serverNode, name);
    this.#apps.delete(name);
    this.#lists.apps = undefined;
    this.#projectEntries = new WeakMap(); // rare; a replay may delete an app a project still lists
  }

  putProject(rec: ProjectConfig): void {
    const old = this.#projects.get(rec.project);
    if (old) {
      this.#unindexProject(old.rec);
      old.rec = rec;
    } else {
      this.#projects.set(rec.project, { rec, ord: this.#ord++ });
    }
    this.#indexProject(rec);
    this.#lists.projects = undefined;
  }

  delProject(name: string): void {
    const old = this.#projects.get(name);
    if (!old) return;
    this.#unindexProject(old.rec);
    this.#projects.delete(name);
    this.#lists.projects = undefined;
  }

  /** The nodes, in file order (cached until the next node change; do not modify). */
  nodeList(): NodeConfig[] {
    return (this.#lists.nodes ??= Array.from(this.#nodes.values(), (e) => e.rec));
  }

  appList(): AppConfig[] {
    return (this.#lists.apps ??= Array.from(this.#apps.values(), (e) => e.rec));
  }

  projectList(): ProjectConfig[] {
    return (this.#lists.projects ??= Array.from(this.#projects.values(), (e) => e.rec));
  }

  /** The whole cluster as arrays (shared records: treat as read-only). */
  toCluster(): ClusterConfig {
    return { nodes: this.nodeList(), apps: this.appList(), projects: this.projectList() };
  }

  #indexProject(p: ProjectConfig): void {
    for (const n of p.serverNodes) setAdd(this.#serverOf, n, p.project);
    for (const n of p.clientNodes) setAdd(this.#clientOf, n, p.project);
    if (this.#appProjects) for (const a of p.apps) addTo(this.#appProjects, a, p.project);
  }

  #unindexProject(p: ProjectConfig): void {
    for (const n of p.serverNodes) setDelete(this.#serverOf, n, p.project);
    for (const n of p.clientNodes) setDelete(this.#clientOf, n, p.project);
    if (this.#appProjects) for (const a of p.apps) removeFrom(this.#appProjects, a, p.project);
  }

  #appIndex(): Map<string, string[]> {
    if (!this.#appProjects) {
      const m = new Map<string, string[]>();
      for (const { rec } of this.#projects.values()) for (const a of rec.apps) addTo(m, a, rec.project);
      this.#appProjects = m;
    }
    return this.#appProjects;
  }

  #binIndex(): Map<string, string[]> {
    if (!this.#binApps) {
      const m = new Map<string, string[]>();
      for (const { rec } of this.#apps.values()) addTo(m, rec.bin, rec.app);
      this.#binApps = m;
    }
    return this.#binApps;
  }
}

function addTo(m: Map<string, string[]>, key: string, v: string): void {
  const list = m.get(key);
  if (list === undefined) m.set(key, [v]);
  else if (!list.includes(v)) list.push(v);
}

function removeFrom(m: Map<string, string[]>, key: string, v: string): void {
  const list = m.get(key);
  if (list === undefined) return;
  const i = list.indexOf(v);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) m.delete(key);
}

function setAdd(m: Map<string, Set<string>>, key: string, v: string): void {
  let s = m.get(key);
  if (s === undefined) m.set(key, (s = new Set()));
  s.add(v);
}

function setDelete(m: Map<string, Set<string>>, key: string, v: string): void {
  const s = m.get(key);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(key);
}
