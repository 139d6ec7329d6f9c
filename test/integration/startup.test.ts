/**
 * Start-up stays lean: `--help`, `--version` and usage errors load neither Kerberos nor the HTTP
 * stack (nor chalk), checked by what the process actually loaded.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, assertBuilt } from '../support/run-cli.js';

const hook = join(mkdtempSync(join(tmpdir(), 'ozs3-startup-')), 'report-loaded.mjs');
writeFileSync(
  hook,
  `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const natives = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const cjs = Object.keys(require('node:module')._cache);
  process.stderr.write('\\nLOADED ' + JSON.stringify({ natives, cjs }) + '\\n');
});
`,
);

function loaded(args: string[]): Promise<{ code: number; natives: string[]; cjs: string[]; stdout: string }> {
  assertBuilt();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', hook, BIN, ...args],
      { env: { PATH: process.env.PATH ?? '' } },
      (error, stdout, stderr) => {
        const report = JSON.parse(/\nLOADED (.*)\n/.exec(stderr)?.[1] ?? '{"natives":[],"cjs":[]}');
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, ...report });
      },
    );
  });
}

describe('start-up', () => {
  it.each([
    [['--help']],
    [['--version']],
    [['getsecret', '--help']],
    [['help', 'revokesecret']],
    [['getsecret', '--bogus']],
    [['revokesecret', '-e']],
  ])('%j loads neither Kerberos, undici, chalk nor node:http/tls', async (args) => {
    const r = await loaded(args);
    expect([0, 2]).toContain(r.code);
    expect(r.cjs.filter((f) => /kerberos|undici|chalk/.test(f))).toEqual([]);
    // (node:net itself is loaded for piped stdio, so it says nothing about ozs3.)
    expect(r.natives.filter((m) => ['http', 'https', 'tls', 'http2', '_http_client'].includes(m))).toEqual([]);
  });

  it('serves --help from the pre-rendered text, identical to what commander renders', async () => {
    const fast = await loaded(['getsecret', '--help']);
    // `getsecret -h --verbose` misses the fast path, so commander renders it live.
    const live = await loaded(['getsecret', '--verbose', '-h']);
    expect(fast.stdout).toBe(live.stdout);
    expect(fast.cjs.some((f) => f.includes('commander'))).toBe(false);
  });

  it('loads Kerberos only when a command runs, and then nothing an http request does not need', async () => {
    const r = await loaded(['getsecret', '--endpoint', 'http://localhost:1', '--retries', '0']);
    expect(r.cjs.some((f) => /kerberos/.test(f))).toBe(true);
    // HTTP/2 is stubbed out of undici, child_process out of commander; names need no crypto.
    expect(r.natives.filter((m) => ['http2', 'child_process', 'dgram', 'crypto', 'tls'].includes(m))).toEqual([]);
  });

  it.each([[['--help']], [['--version']], [['getsecret', '--help']], [['completion', 'bash']]])(
    '%j into a full disk or a closed pipe: one line on stderr, exit 9, no stack trace',
    (args) => {
      assertBuilt();
      const full = spawnSync(BIN, args, { stdio: ['ignore', openSync('/dev/full', 'w'), 'pipe'], encoding: 'utf8' });
      expect(full.stderr).toBe('ozs3: cannot write to stdout (ENOSPC: no space left on the device)\n');
      expect(full.status).toBe(9);
      // The reader is gone before ozs3 writes: EPIPE (SIGPIPE is ignored by Node).
      const piped = spawnSync('sh', ['-c', `(sleep 0.3; exec "$@") | true`, 'sh', BIN, ...args], {
        encoding: 'utf8',
      });
      expect(piped.stderr).toMatch(/^ozs3: cannot write to stdout \(EPIPE: the reading end of the pipe is closed\)\n$/);
    },
  );
});
