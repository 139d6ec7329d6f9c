/**
 * Runs the built CLI as a user would: a subprocess, no terminal, a controlled env.
 * The suite's `npm test` builds first; a missing build fails loudly.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const BIN = fileURLToPath(new URL('../../bin/ozs3', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env: Record<string, string>;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  /** The few tests that provoke an internal error on purpose (with --verbose, which prints its stack). */
  allowStackTrace?: boolean;
}

/** What a Node stack trace or an ozs3 internal error looks like: no user ever sees one. */
export const STACK_TRACE = /^\s+at .+[(:]\d+|node:internal|^Error: |internal error/m;

export function assertBuilt(): void {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run 'npm run build' (npm test does it first)`);
}

export async function runCli(args: string[], opts: RunOptions): Promise<CliResult> {
  assertBuilt();
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  // Every run of the built CLI in the suite is checked: a stack trace fails the test that made it.
  if (!opts.allowStackTrace && (STACK_TRACE.test(stderr) || STACK_TRACE.test(stdout))) {
    throw new Error(`ozs3 ${args.join(' ')} printed a stack trace or an internal error:\n${stderr}${stdout}`);
  }
  return { code, signal, stdout, stderr, ms: performance.now() - started };
}

/** One check of `ozs3 doctor`'s report: `status name: detail` and the `fix:` line under it. */
export function doctorLine(r: CliResult, name: string): { status: string; detail: string; fix?: string } {
  const lines = r.stdout.split('\n');
  const at = lines.findIndex((l) => new RegExp(`^(ok {2}|warn|fail|skip) ${name}: `).test(l));
  expect(at, `${name} in\n${r.stdout}`).toBeGreaterThanOrEqual(0);
  const [, status, detail] = /^(\S+)\s+[^:]+: (.*)$/.exec(lines[at]!)!;
  const fix = /^ {2}fix: (.*)$/.exec(lines[at + 1] ?? '')?.[1];
  return { status: status!, detail: detail!, fix };
}
