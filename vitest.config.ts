import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: Kerberos reads KRB5_* env at first use, so realms must not mix.
    pool: 'forks',
    isolate: true,
    // Most of a test file's time is spent waiting on KDCs, JVMs and subprocesses, not on a core:
    // three files at once on CI's two cores halve the wall time.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
