/**
 * Helpers for running the built CLI against the Java OM test server (test/support/om-server.ts):
 * peers that are not an OM (a closed port, an HTTP server), the one-line failure shape, the AWS
 * files read back by the AWS SDK, and a run that reports every module it loaded.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromIni } from '@aws-sdk/credential-providers';
import { loadSharedConfigFiles } from '@smithy/shared-ini-file-loader';
import { expect } from 'vitest';
import { BIN, STACK_TRACE, assertBuilt, type CliResult, type RunOptions } from './run-cli.js';

/** A loopback port nothing listens on (connections are refused). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface HttpPeer extends AsyncDisposable {
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** A plain HTTP server (Node's): what sits on a web port someone took for the OM's. */
export async function startHttpPeer(): Promise<HttpPeer> {
  const server = createHttpServer((_req, res) => res.end('hello\n'));
  const sockets = new Set<Socket>();
  let count = 0;
  server.on('connection', (socket) => {
    count++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  const close = () => closeServer(server, sockets);
  return { port, connections: () => count, close, [Symbol.asyncDispose]: close };
}

async function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A failure as every ozs3 failure looks: nothing on stdout, `ozs3: …` on one line, at most a hint line. */
export function expectCleanFailure(r: CliResult, code: number, message: RegExp, hint?: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^ozs3: /);
  expect(lines[0]).toMatch(message);
  if (hint) expect(lines[1]).toMatch(/^hint: /);
  if (hint) expect(lines[1]).toMatch(hint);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
}

/** The key pair the AWS SDK for JavaScript v3 resolves for a profile (its own INI parser, not ozs3's). */
export async function awsKeyPair(
  home: string,
  profile: string,
): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const { accessKeyId, secretAccessKey } = await fromIni({
    profile,
    filepath: join(home, '.aws', 'credentials'),
    configFilepath: join(home, '.aws', 'config'),
    ignoreCache: true,
  })();
  return { accessKeyId, secretAccessKey };
}

/** A profile's sections in ~/.aws/config and ~/.aws/credentials as the AWS SDK parses them ({} when absent). */
export async function awsSections(
  home: string,
  profile: string,
): Promise<{ config: Record<string, unknown>; credentials: Record<string, unknown> }> {
  const { configFile, credentialsFile } = await loadSharedConfigFiles({
    filepath: join(home, '.aws', 'credentials'),
    configFilepath: join(home, '.aws', 'config'),
    ignoreCache: true,
  });
  return { config: { ...configFile[profile] }, credentials: { ...credentialsFile[profile] } };
}

// ---------------------------------------------------------------- what a run loads

let hookDir: string | undefined;

/** The hook files, written on first use (into a temp dir removeLoadRecorder() deletes). */
function loadRecorder(): { dir: string; register: string } {
  const dir = (hookDir ??= mkdtempSync(join(tmpdir(), 'ozs3-om-loaded-')));
  const register = join(dir, 'register.mjs');
  const hooks = join(dir, 'hooks.mjs');
  if (existsSync(register)) return { dir, register };
  // Module hooks append each URL they load, synchronously, so nothing is lost when ozs3 calls
  // process.exit: in-thread module.registerHooks where Node has it (22.15+; register() is deprecated
  // from 25), else module.register's hooks thread. CommonJS and built-ins: as startup.test.ts reads them.
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) {
  appendFileSync(file, 'module ' + url + '\\n');
  return next(url, context);
}
`,
  );
  writeFileSync(
    register,
    `import module, { createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
const file = process.env.OZS3_TEST_LOADED_FILE;
if (typeof module.registerHooks === 'function') {
  module.registerHooks({
    load(url, context, next) {
      appendFileSync(file, 'module ' + url + '\\n');
      return next(url, context);
    },
  });
} else {
  module.register(${JSON.stringify(new URL(`file://${hooks}`).href)}, { data: { file } });
}
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const natives = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const cjs = Object.keys(require('node:module')._cache);
  appendFileSync(file, natives.map((m) => 'native ' + m + '\\n').join('') + cjs.map((f) => 'cjs ' + f + '\\n').join(''));
});
`,
  );
  return { dir, register };
}

/** Removes the hook files and records (call it in afterAll: a vitest worker may end without 'exit'). */
export function removeLoadRecorder(): void {
  if (hookDir) rmSync(hookDir, { recursive: true, force: true });
  hookDir = undefined;
}

export interface LoadedRun extends CliResult {
  /** Modules the load hook saw (ESM; with registerHooks CommonJS too), as file paths or node: names. */
  modules: string[];
  cjs: string[];
  natives: string[];
  /** The dist/ files among them, with their contents. */
  distFiles: { path: string; text: string }[];
}

let loadedCount = 0;

/** Runs the built CLI with a module-load recorder; fails on a stack trace like runCli. */
export async function runCliLoaded(args: string[], opts: RunOptions): Promise<LoadedRun> {
  assertBuilt();
  const { dir, register } = loadRecorder();
  const file = join(dir, `loaded-${process.pid}-${++loadedCount}.txt`);
  writeFileSync(file, '');
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', register, BIN, ...args], {
    env: { ...opts.env, OZS3_TEST_LOADED_FILE: file },
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
  if (STACK_TRACE.test(stderr) || STACK_TRACE.test(stdout)) {
    throw new Error(`ozs3 ${args.join(' ')} printed a stack trace or an internal error:\n${stderr}${stdout}`);
  }
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const of = (kind: string) => lines.filter((l) => l.startsWith(`${kind} `)).map((l) => l.slice(kind.length + 1));
  const modules = of('module').map((u) => (u.startsWith('file:') ? fileURLToPath(u) : u));
  const distDir = fileURLToPath(new URL('../../dist/', import.meta.url));
  const distFiles = modules
    .filter((p) => p.startsWith(distDir))
    .map((path) => ({ path: path.slice(distDir.length), text: readFileSync(path, 'utf8') }));
  return {
    code,
    signal,
    stdout,
    stderr,
    ms: performance.now() - started,
    modules,
    cjs: of('cjs'),
    natives: of('native'),
    distFiles,
  };
}
