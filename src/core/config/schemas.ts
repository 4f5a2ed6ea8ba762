/**
 * Schemas of the daemons' main config files, `ibas.conf`, `ibma.conf` and `ibms.conf`, with the original's
 * option names and nesting, defaults, and our extensions (marked "ext"; see docs/config.md).
 * Listen and peer addresses have no default; everything else does.
 */
import { z } from 'zod';
import {
  addressOrEmptyField, enumField, flagField, hostField, intField, NODE_NAME, portField, secondsField, textField,
} from './fields.js';
import { logSectionSchema, resolveLogSection } from './log-section.js';

/** Server modes of `ibas.mpm.mode`. */
export const IBAS_MPM_MODES = ['FORK', 'STATIC_WORKERPOOL', 'DYNAMIC_WORKERPOOL'] as const;
export type IbasMpmMode = (typeof IBAS_MPM_MODES)[number];

/** Defaults of ibas.conf (the original's example values, and ours for the extensions). */
export const IBAS_DEFAULTS = {
  read_timeout: 10,
  idle_timeout: 120,
  max_body_size: 16 * 1024 * 1024,
  max_file_size: 1024 * 1024 * 1024,
  max_conn_tx: 0,
  mode: 'STATIC_WORKERPOOL' as IbasMpmMode,
  max_count: 10,
  max_process_count: 10000,
  accept_queue_count: 1024,
  accept_queue_timeout: 10,
  min_idle_count: 1,
  max_idle_count: 5,
  create_interval: 1,
  destroy_interval: 10,
  adjust_interval: 1,
  sign_flag: false,
  compress_flag: true,
  encrypt_flag: false,
  max_so_cache_count: 1000,
  ibma_config_filename: 'ibma.conf',
} as const;

const MAX_WORKERS = 10000;
const MAX_BODY = 2 ** 31 - 1;

const configFileName = () => textField({ minLength: 1, maxLength: 255, pattern: { re: /^[^/\\\0]+$/, text: 'without a path (it is looked up in $IBP_HOME/etc)' } });

const ibasServer = z.strictObject({
  ip: hostField(),
  port: portField(true),
  read_timeout: secondsField(0, { exclusiveMin: true }).default(IBAS_DEFAULTS.read_timeout), // ext
  idle_timeout: secondsField(0).default(IBAS_DEFAULTS.idle_timeout), // ext
  max_body_size: intField(1, MAX_BODY).default(IBAS_DEFAULTS.max_body_size), // ext
  max_file_size: intField(1).default(IBAS_DEFAULTS.max_file_size), // ext
  max_conn_tx: intField(0).default(IBAS_DEFAULTS.max_conn_tx), // ext: move a long connection on after this many transactions (Tcn); 0 = never
});

const ibasDynamicPool = z.strictObject({
  min_idle_count: intField(0, MAX_WORKERS).default(IBAS_DEFAULTS.min_idle_count),
  max_idle_count: intField(1, MAX_WORKERS).default(IBAS_DEFAULTS.max_idle_count),
  create_interval: intField(1, MAX_WORKERS).default(IBAS_DEFAULTS.create_interval),
  destroy_interval: intField(1, MAX_WORKERS).default(IBAS_DEFAULTS.destroy_interval),
  adjust_interval: secondsField(0, { exclusiveMin: true }).default(IBAS_DEFAULTS.adjust_interval), // ext: adjustment cycle
  max_process_count: intField(0).optional(),
});

const ibasMpm = z.strictObject({
  mode: enumField(IBAS_MPM_MODES).default(IBAS_DEFAULTS.mode),
  max_count: intField(1, MAX_WORKERS).default(IBAS_DEFAULTS.max_count),
  max_process_count: intField(0).optional(), // ext: also at mpm level, where it wins
  accept_queue_count: intField(0, 1_000_000).default(IBAS_DEFAULTS.accept_queue_count), // ext
  accept_queue_timeout: secondsField(0, { exclusiveMin: true }).default(IBAS_DEFAULTS.accept_queue_timeout), // ext
  DYNAMIC_WORKERPOOL: ibasDynamicPool.prefault({}),
}).transform((mpm, ctx) => {
  const dyn = mpm.DYNAMIC_WORKERPOOL;
  if (dyn.min_idle_count > dyn.max_idle_count) {
    ctx.addIssue({ code: 'custom', path: ['DYNAMIC_WORKERPOOL', 'min_idle_count'], message: `at most max_idle_count (${dyn.max_idle_count})`, params: { kind: 'invalid' } });
  }
  if (mpm.mode === 'DYNAMIC_WORKERPOOL' && dyn.min_idle_count > mpm.max_count) {
    ctx.addIssue({ code: 'custom', path: ['DYNAMIC_WORKERPOOL', 'min_idle_count'], message: `at most max_count (${mpm.max_count})`, params: { kind: 'invalid' } });
  }
  // one recycle count for every mode: the mpm-level key wins over the DYNAMIC_WORKERPOOL one
  const maxProcessCount = mpm.max_process_count ?? dyn.max_process_count ?? IBAS_DEFAULTS.max_process_count;
  return {
    mode: mpm.mode,
    max_count: mpm.max_count,
    max_process_count: maxProcessCount,
    accept_queue_count: mpm.accept_queue_count,
    accept_queue_timeout: mpm.accept_queue_timeout,
    DYNAMIC_WORKERPOOL: { ...dyn, max_process_count: maxProcessCount },
  };
});

/** Schema of `ibas.conf` (the server platform). */
export const ibasConfSchema = z.strictObject({
  ibas: z.strictObject({
    server: ibasServer,
    mpm: ibasMpm.prefault({}),
    security: z.strictObject({
      sign_flag: flagField().default(IBAS_DEFAULTS.sign_flag),
      compress_flag: flagField().default(IBAS_DEFAULTS.compress_flag),
      encrypt_flag: flagField().default(IBAS_DEFAULTS.encrypt_flag),
    }).prefault({}),
    app: z.strictObject({
      max_so_cache_count: intField(1, 1_000_000).default(IBAS_DEFAULTS.max_so_cache_count),
    }).prefault({}),
    log: logSectionSchema().default({}),
  }),
  ibma: z.strictObject({
    config_filename: configFileName().default(IBAS_DEFAULTS.ibma_config_filename),
  }).prefault({}),
}).transform((c) => {
  const stem = `file::log/ibas_${c.ibas.server.ip}-${c.ibas.server.port}`;
  return {
    ibas: {
      ...c.ibas,
      log: resolveLogSection(c.ibas.log, {
        main: { output: `${stem}_main.log` },
        monitor: { output: `${stem}_monitor.log` },
        worker: { output: `${stem}_worker_%d.log` },
        app: { output: 'file::log/app_%s.log' },
      }),
    },
    ibma: c.ibma,
  };
});

/** Defaults of ibma.conf. */
export const IBMA_DEFAULTS = {
  min_compress_size: 16,
  connecting_timeout: 10,
  retry_connect_timeval: 60,
} as const;

/** Schema of `ibma.conf` (the agent; also read by the client library and the platform). */
export const ibmaConfSchema = z.strictObject({
  ibma: z.strictObject({
    this_node: textField(NODE_NAME),
    comm: z.strictObject({
      min_compress_size: intField(0).default(IBMA_DEFAULTS.min_compress_size),
    }).prefault({}),
    log: logSectionSchema().default({}),
  }),
  ibac: z.strictObject({
    connecting_timeout: secondsField(0, { exclusiveMin: true }).default(IBMA_DEFAULTS.connecting_timeout),
    retry_connect_timeval: secondsField(0).default(IBMA_DEFAULTS.retry_connect_timeval),
  }).prefault({}),
  ibms: z.strictObject({
    server: z.strictObject({ ip: hostField(), port: portField(false) }),
  }),
}).transform((c) => {
  const stem = `file::log/ibma_${c.ibma.this_node}`;
  return {
    ibma: {
      ...c.ibma,
      log: resolveLogSection(c.ibma.log, { main: { output: `${stem}_main.log` }, worker: { output: `${stem}_worker.log` } }),
    },
    ibac: c.ibac,
    ibms: c.ibms,
  };
});

/** Defaults of ibms.conf. */
export const IBMS_DEFAULTS = {
  nodes_conf: 'ibp_nodes.conf',
  apps_conf: 'ibp_apps.conf',
  projects_conf: 'ibp_projects.conf',
  old_key_disable_elapse: 120,
  new_key_enable_elapse: 60,
  auto_download_bin_enable: false,
  second_config_dump: '',
} as const;

/** Schema of `ibms.conf` (the registry centre). */
export const ibmsConfSchema = z.strictObject({
  ibms: z.strictObject({
    server: z.strictObject({ ip: hostField(), port: portField(true) }),
    config: z.strictObject({
      nodes_conf: configFileName().default(IBMS_DEFAULTS.nodes_conf),
      apps_conf: configFileName().default(IBMS_DEFAULTS.apps_conf),
      projects_conf: configFileName().default(IBMS_DEFAULTS.projects_conf),
    }).prefault({}),
    security: z.strictObject({
      old_key_disable_elapse: secondsField(0, { exclusiveMin: true }).default(IBMS_DEFAULTS.old_key_disable_elapse),
      new_key_enable_elapse: secondsField(0).default(IBMS_DEFAULTS.new_key_enable_elapse),
    }).prefault({}).transform((s, ctx) => {
      // a rotation never fails a call only if every node has the new key before the old one stops working
      if (s.new_key_enable_elapse >= s.old_key_disable_elapse) {
        ctx.addIssue({ code: 'custom', path: ['new_key_enable_elapse'], message: `less than old_key_disable_elapse (${s.old_key_disable_elapse})`, params: { kind: 'invalid' } });
      }
      return s;
    }),
    misc: z.strictObject({
      auto_download_bin_enable: flagField().default(IBMS_DEFAULTS.auto_download_bin_enable),
      second_config_dump: addressOrEmptyField().default(IBMS_DEFAULTS.second_config_dump),
    }).prefault({}),
    log: logSectionSchema().default({}),
  }),
}).transform((c) => ({
  ibms: {
    ...c.ibms,
    log: resolveLogSection(c.ibms.log, {
      main: { output: 'file::log/ibms_main.log' },
      monitor: { output: 'file::log/ibms_monitor.log' },
      worker: { output: 'file::log/ibms_worker.log' },
    }),
  },
}));
