// After tsc: make the CLI entry points executable.
import { chmodSync, readdirSync } from 'node:fs';
const dir = 'dist/src/cli';
try {
  for (const f of readdirSync(dir)) if (f.endsWith('.js')) chmodSync(`${dir}/${f}`, 0o755);
} catch { /* nothing built yet */ }
