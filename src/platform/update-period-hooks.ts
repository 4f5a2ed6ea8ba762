/**
 * Module loader hooks a worker registers (once, on first need) so that it can import an app package's
 * update-period file `so/<bin>.ibpupd` (SPEC #57): Node only knows a module's format by its extension, and
 * `.ibpupd` is none it knows. App packages are ES modules, so the file loads as one. Every other URL passes
 * through untouched. Registered with `module.register()`, which runs hooks on a loader thread: that costs tens
 * of milliseconds once, which is why a worker only pays it while a package is being replaced.
 */
import type { LoadHook } from 'node:module';

/** Suffix of an app package's update-period file (the agent's `UPDATE_PERIOD_SUFFIX`). */
const SUFFIX = '.ibpupd';

export const load: LoadHook = (url, context, nextLoad) => {
  if (url.startsWith('file:') && new URL(url).pathname.endsWith(SUFFIX)) return nextLoad(url, { ...context, format: 'module' });
  return nextLoad(url, context);
};
