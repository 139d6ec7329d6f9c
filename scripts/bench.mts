/**
 * `npm run bench`: a reproducible benchmark of ozs3 against its floors (bare Node, curl --negotiate),
 * on a throwaway MIT realm, the local test gateway (REST, SPNEGO) and the Java OM test server (OM
 * RPC, SASL/GSSAPI with privacy). A report, never a timed test: it exits 0 on a MISS and non-zero
 * only when a run fails. Servers start before the timed rounds; only the client processes are timed.
 *
 *   npx tsx scripts/bench.mts [--rounds N] [--users N] [--batch-rounds N] [--warmup N] [--json]
 *
 * Rounds are interleaved (every case once per round, start case rotating) so drift and noise hit
 * all cases alike. Wall time is hrtime around spawn→exit; peak RSS comes from GNU time's %M. Every
 * process, the floors included, runs under the same `/usr/bin/time` wrapper and the same env.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, type as osType } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRealm, withEnv, type Realm } from '../test/support/realm.js';
import { startGateway, type Gateway } from '../test/support/gateway.js';
import { startOmServer, type OmServer } from '../test/support/om-server.js';

const BIN = fileURLToPath(new URL('../bin/ozs3', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const GNU_TIME = '/usr/bin/time';
const RUN_TIMEOUT_MS = 60_000;
const BENCH_USER = 'bench';

// ---------------------------------------------------------------- options

interface BenchOptions {
  rounds: number;
  batchRounds: number;
  users: number;
  warmup: number;
  json: boolean;
}

const USAGE = `usage: tsx scripts/bench.mts [options]
  --rounds N        interleaved rounds of the single-process cases (default 25)
  --users N         users in the batch cases (default 40)
  --batch-rounds N  rounds of the batch cases, spread over the rounds (default max(5, ceil(rounds/3)), at most rounds)
  --warmup N        untimed warm-up rounds (default 2; the batch cases warm up once)
  --json            print the results as JSON instead of a table
  -h, --help        this text`;

function parseArgs(argv: string[]): BenchOptions {
  let rounds = 25;
  let users = 40;
  let warmup = 2;
  let batchRounds: number | undefined;
  let json = false;
  const intArg = (flag: string, value: string | undefined, min: number, max: number): number => {
    if (value === undefined || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      usageError(`${flag} needs a whole number from ${min} to ${max}`);
    }
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--rounds':
        rounds = intArg(flag, value(), 1, 10_000);
        break;
      case '--users':
        users = intArg(flag, value(), 1, 10_000);
        break;
      case '--batch-rounds':
        batchRounds = intArg(flag, value(), 1, 10_000);
        break;
      case '--warmup':
        warmup = intArg(flag, value(), 0, 100);
        break;
      case '--json':
        json = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        return process.exit(0);
      default:
        usageError(`unknown argument '${arg}'`);
    }
  }
  batchRounds = Math.min(rounds, batchRounds ?? Math.max(5, Math.ceil(rounds / 3)));
  return { rounds, batchRounds, users, warmup, json };
}

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- preflight

class BenchFailure extends Error {}

async function capture(file: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.once('error', () => resolve({ code: null, out }));
    child.once('close', (code) => resolve({ code, out }));
  });
}

/** Fails with the package to install rather than half-running. */
async function preflight(): Promise<{ curlVersion: string }> {
  const gnuTime = existsSync(GNU_TIME) ? await capture(GNU_TIME, ['--version']) : { code: null, out: '' };
  if (!/GNU/i.test(gnuTime.out)) {
    throw new BenchFailure(
      `GNU time is required at ${GNU_TIME} to measure peak RSS: install the Debian package 'time' (apt-get install time)`,
    );
  }
  const curl = await capture('curl', ['-V']);
  if (curl.code !== 0) throw new BenchFailure(`curl not found: install the Debian package 'curl'`);
  if (!/^Features:.*\bSPNEGO\b/m.test(curl.out)) {
    throw new BenchFailure(
      `this curl has no SPNEGO support (curl -V lists no SPNEGO feature): install Debian's 'curl'`,
    );
  }
  if (!existsSync(DIST_MAIN))
    throw new BenchFailure(`${DIST_MAIN} is missing: run 'npm run build' first (npm run bench does)`);
  return { curlVersion: curl.out.split('\n')[0]!.split(' ').slice(0, 2).join(' ') };
}

// ---------------------------------------------------------------- running one process

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  rssKiB: number;
}

/** Process groups still running, so SIGINT and failures can end them (only ours, by pid). */
const liveGroups = new Set<number>();
let benchDir = '';
let rssSeq = 0;

/** One process under GNU time: wall time spawn→exit by hrtime, peak RSS from `-f %M -o FILE`. */
async function runTimed(file: string, args: string[], env: Record<string, string>, wrap = true): Promise<RunResult> {
  const rssFile = join(benchDir, `rss-${++rssSeq}`);
  const [cmd, cmdArgs] = wrap ? [GNU_TIME, ['-f', '%M', '-o', rssFile, file, ...args]] : [file, args];
  const started = process.hrtime.bigint();
  // Own process group: a timeout or Ctrl-C ends time(1) and the command together.
  const child = spawn(cmd, cmdArgs, { env, cwd: benchDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid) liveGroups.add(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  let ended = 0n;
  child.once('exit', () => (ended = process.hrtime.bigint()));
  const timer = setTimeout(() => killGroup(child.pid), RUN_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  if (child.pid) liveGroups.delete(child.pid);
  const ms = Number((ended || process.hrtime.bigint()) - started) / 1e6;
  let rssKiB = Number.NaN;
  if (wrap) {
    // With a non-zero exit GNU time writes "Command exited with non-zero status N" first: %M is the last line.
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    rssKiB = Number(text.trim().split('\n').pop());
    await rm(rssFile, { force: true });
  }
  return { code, signal, stdout, stderr, ms, rssKiB };
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function describeFailure(label: string, what: string, r: RunResult, detail: string): BenchFailure {
  const tail = (s: string, n: number) => (s.length > n ? `…${s.slice(-n)}` : s);
  return new BenchFailure(
    [
      `${label}: ${detail}`,
      `  command: ${what}`,
      `  exit: ${r.code ?? `signal ${r.signal}`} after ${r.ms.toFixed(0)} ms`,
      `  stdout: ${JSON.stringify(tail(r.stdout, 400))}`,
      `  stderr: ${JSON.stringify(tail(r.stderr, 800))}`,
    ].join('\n'),
  );
}

// ---------------------------------------------------------------- cases

interface Sample {
  ms: number;
  rssKiB: number;
}

interface Case {
  id: string;
  label: string;
  command: string;
  batch: boolean;
  /** Untimed setup before the timed part (resets the gateway). */
  prepare?: () => Promise<void>;
  /** Timed part; checks its own result and throws BenchFailure on anything wrong. */
  run: (label: string) => Promise<Sample>;
}

interface BenchContext {
  realm: Realm;
  gateway: Gateway;
  om: OmServer;
  /** host:port of the OM, for --om. */
  omAddress: string;
  env: Record<string, string>;
  principal: string;
  users: string[];
  usersFile: string;
}

const CURL_ARGS = ['-sS', '--negotiate', '-u', ':', '-X', 'PUT', '-w', '\n%{http_code}'];

/** One curl PUT; 200 or a BenchFailure. */
async function curlPut(ctx: BenchContext, url: string, label: string): Promise<RunResult> {
  const r = await runTimed('curl', [...CURL_ARGS, url], ctx.env);
  const status = r.stdout.slice(r.stdout.lastIndexOf('\n') + 1);
  if (r.code !== 0 || status !== '200' || !r.stdout.includes('<awsSecret>')) {
    throw describeFailure(
      label,
      `curl ${CURL_ARGS.join(' ')} ${url}`,
      r,
      `expected exit 0 and HTTP 200 with an S3Secret, got HTTP ${status || '?'}`,
    );
  }
  return r;
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function buildCases(ctx: BenchContext): Case[] {
  const { gateway, env, om, omAddress } = ctx;
  const n = ctx.users.length;
  const reset = () => gateway.reset();
  const secretUrl = `${gateway.url}/secret`;
  /** The OM holds no secret for these access ids, and its logs are empty (the retry cache too). */
  const resetOm = async (accessIds: readonly string[]) => {
    const held = await om.secrets();
    await Promise.all(accessIds.filter((id) => id in held).map((id) => om.setSecret(id, null)));
    await om.reset({ retryCache: true });
  };

  return [
    {
      id: 'node',
      label: 'node -e 0',
      command: `${process.execPath} -e 0`,
      batch: false,
      async run(label) {
        const r = await runTimed(process.execPath, ['-e', '0'], env);
        if (r.code !== 0) throw describeFailure(label, this.command, r, 'expected exit 0');
        return r;
      },
    },
    {
      id: 'help',
      label: 'ozs3 --help',
      command: `${process.execPath} bin/ozs3 --help`,
      batch: false,
      async run(label) {
        const r = await runTimed(process.execPath, [BIN, '--help'], env);
        if (r.code !== 0 || !/^Usage: ozs3/m.test(r.stdout))
          throw describeFailure(label, this.command, r, 'expected exit 0 and a usage text');
        return r;
      },
    },
    {
      id: 'getsecret',
      label: 'ozs3 getsecret',
      command: `${process.execPath} bin/ozs3 getsecret --endpoint ${gateway.url}`,
      batch: false,
      prepare: reset,
      async run(label) {
        const r = await runTimed(process.execPath, [BIN, 'getsecret', '--endpoint', gateway.url], env);
        const m = /^awsAccessKey=(.+)\nawsSecret=(\S+)\n$/.exec(r.stdout);
        if (r.code !== 0 || !m)
          throw describeFailure(label, this.command, r, 'expected exit 0 and the two lines awsAccessKey=…/awsSecret=…');
        const stored = (await gateway.secrets())[ctx.principal];
        if (m[1] !== ctx.principal || m[2] !== stored) {
          throw describeFailure(
            label,
            this.command,
            r,
            `printed key pair is not the one the gateway issued to ${ctx.principal}`,
          );
        }
        return r;
      },
    },
    {
      id: 'curl',
      label: 'curl --negotiate PUT /secret',
      command: `curl ${CURL_ARGS.join(' ')} ${secretUrl}`,
      batch: false,
      prepare: reset,
      async run(label) {
        return curlPut(ctx, secretUrl, label);
      },
    },
    {
      id: 'om-getsecret',
      label: 'ozs3 getsecret --om (privacy)',
      command: `${process.execPath} bin/ozs3 getsecret --om ${omAddress}`,
      batch: false,
      prepare: () => resetOm([ctx.principal]),
      async run(label) {
        const since = Date.now();
        const r = await runTimed(process.execPath, [BIN, 'getsecret', '--om', omAddress], env);
        const m = /^awsAccessKey=(.+)\nawsSecret=(\S+)\n$/.exec(r.stdout);
        if (r.code !== 0 || !m)
          throw describeFailure(label, this.command, r, 'expected exit 0 and the two lines awsAccessKey=…/awsSecret=…');
        const stored = (await om.secrets())[ctx.principal];
        if (m[1] !== ctx.principal || m[2] !== stored) {
          throw describeFailure(
            label,
            this.command,
            r,
            `printed key pair is not the one the OM issued to ${ctx.principal}`,
          );
        }
        await checkOneOmConnection(ctx, label, 1, since);
        return r;
      },
    },
    {
      id: 'batch-ozs3',
      label: `batch: ozs3 --users-file (${n})`,
      command: `${process.execPath} bin/ozs3 getsecret --users-file FILE --json --endpoint ${gateway.url}`,
      batch: true,
      prepare: reset,
      async run(label) {
        const r = await runTimed(
          process.execPath,
          [BIN, 'getsecret', '--users-file', ctx.usersFile, '--json', '--endpoint', gateway.url],
          env,
        );
        if (r.code !== 0) throw describeFailure(label, this.command, r, `expected exit 0 for ${n} users`);
        await checkNdjson(ctx, r, label, this.command, await gateway.secrets(), 'gateway');
        return r;
      },
    },
    {
      id: 'batch-om',
      label: `batch: ozs3 --users-file --om (${n})`,
      command: `${process.execPath} bin/ozs3 getsecret --users-file FILE --json --om ${omAddress}`,
      batch: true,
      prepare: () => resetOm(ctx.users),
      async run(label) {
        const since = Date.now();
        const r = await runTimed(
          process.execPath,
          [BIN, 'getsecret', '--users-file', ctx.usersFile, '--json', '--om', omAddress],
          env,
        );
        if (r.code !== 0) throw describeFailure(label, this.command, r, `expected exit 0 for ${n} users`);
        await checkNdjson(ctx, r, label, this.command, await om.secrets(), 'OM');
        await checkOneOmConnection(ctx, label, n, since);
        return r;
      },
    },
    {
      id: 'batch-curl-seq',
      label: `batch: curl × ${n}, sequential`,
      command: `curl ${CURL_ARGS.join(' ')} ${secretUrl}/<user>, one after another`,
      batch: true,
      prepare: reset,
      async run(label) {
        const started = process.hrtime.bigint();
        let rssKiB = 0;
        for (const user of ctx.users)
          rssKiB = Math.max(rssKiB, (await curlPut(ctx, `${secretUrl}/${encodeURIComponent(user)}`, label)).rssKiB);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        await checkStoreHolds(ctx, label);
        return { ms, rssKiB };
      },
    },
    {
      id: 'batch-curl-par4',
      label: `batch: curl × ${n}, 4-way parallel`,
      command: `curl ${CURL_ARGS.join(' ')} ${secretUrl}/<user>, 4 at a time`,
      batch: true,
      prepare: reset,
      async run(label) {
        const started = process.hrtime.bigint();
        let rssKiB = 0;
        await pool(ctx.users, 4, async (user) => {
          rssKiB = Math.max(rssKiB, (await curlPut(ctx, `${secretUrl}/${encodeURIComponent(user)}`, label)).rssKiB);
        });
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        await checkStoreHolds(ctx, label);
        return { ms, rssKiB };
      },
    },
  ];
}

/** N NDJSON lines, in input order, each user's key pair exactly the one the server issued. */
async function checkNdjson(
  ctx: BenchContext,
  r: RunResult,
  label: string,
  command: string,
  stored: Record<string, string>,
  server: string,
): Promise<void> {
  const lines = r.stdout.split('\n');
  if (lines.pop() !== '') throw describeFailure(label, command, r, 'NDJSON output does not end with a newline');
  if (lines.length !== ctx.users.length)
    throw describeFailure(label, command, r, `expected ${ctx.users.length} NDJSON lines, got ${lines.length}`);
  lines.forEach((line, i) => {
    let parsed: { user?: unknown; awsAccessKey?: unknown; awsSecret?: unknown };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      throw describeFailure(label, command, r, `line ${i + 1} is not JSON`);
    }
    const user = ctx.users[i]!;
    if (parsed.user !== user)
      throw describeFailure(
        label,
        command,
        r,
        `line ${i + 1} is for ${JSON.stringify(parsed.user)}, expected ${user} (input order)`,
      );
    if (parsed.awsAccessKey !== user || typeof parsed.awsSecret !== 'string' || parsed.awsSecret !== stored[user]) {
      throw describeFailure(
        label,
        command,
        r,
        `line ${i + 1}: the key pair for ${user} is not the one the ${server} issued`,
      );
    }
  });
}

/** The run used one OM connection, privacy-wrapped throughout, for all its calls. */
async function checkOneOmConnection(ctx: BenchContext, label: string, calls: number, since: number): Promise<void> {
  // (A connection of an earlier run still closing when the log was reset is not this run's.)
  const connections = (await ctx.om.connections()).filter((x) => x.openedAt >= since);
  const [c] = connections;
  if (connections.length !== 1 || !c || c.calls !== calls || c.qop !== 'auth-conf' || c.plaintextAfterLayer !== 0) {
    throw new BenchFailure(
      `${label}: expected one privacy connection carrying ${calls} call(s), got ${JSON.stringify(
        connections.map((x) => ({ calls: x.calls, qop: x.qop, plaintextAfterLayer: x.plaintextAfterLayer })),
      )}`,
    );
  }
}

async function checkStoreHolds(ctx: BenchContext, label: string): Promise<void> {
  const stored = await ctx.gateway.secrets();
  const missing = ctx.users.filter((u) => typeof stored[u] !== 'string');
  if (missing.length > 0)
    throw new BenchFailure(`${label}: the gateway holds no secret for ${missing.length} user(s), e.g. ${missing[0]}`);
}

// ---------------------------------------------------------------- statistics and report

/** Linear interpolation between closest ranks (R type 7). */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

interface CaseStats {
  id: string;
  label: string;
  command: string;
  runs: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  /** Median over runs of the run's peak RSS (batch curl: the largest single curl process). */
  peakRssKiB: number;
  maxPeakRssKiB: number;
  samplesMs: number[];
}

interface Ratio {
  name: string;
  value: number;
  goal: string;
  pass: boolean;
}

function summarize(c: Case, samples: Sample[]): CaseStats {
  const ms = samples.map((s) => s.ms);
  const rss = samples.map((s) => s.rssKiB);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    id: c.id,
    label: c.label,
    command: c.command,
    runs: samples.length,
    medianMs: round(quantile(ms, 0.5)),
    p10Ms: round(quantile(ms, 0.1)),
    p90Ms: round(quantile(ms, 0.9)),
    peakRssKiB: Math.round(quantile(rss, 0.5)),
    maxPeakRssKiB: Math.max(...rss),
    samplesMs: ms.map(round),
  };
}

function ratios(s: Record<string, CaseStats>): Ratio[] {
  const r = (name: string, value: number, op: '≤' | '≥', goal: number): Ratio => ({
    name,
    value: Math.round(value * 1000) / 1000,
    goal: `${op} ${goal}`,
    pass: op === '≤' ? value <= goal : value >= goal,
  });
  const get = (id: string) => s[id]!;
  return [
    r('--help / node -e 0', get('help').medianMs / get('node').medianMs, '≤', 1.25),
    r(
      'getsecret / (node -e 0 + curl --negotiate), the floor',
      get('getsecret').medianMs / (get('node').medianMs + get('curl').medianMs),
      '≤',
      1.4,
    ),
    r('peak RSS: getsecret / node -e 0', get('getsecret').peakRssKiB / get('node').peakRssKiB, '≤', 1.5),
    r(
      'batch: ozs3 / 4-way parallel curl, the floor',
      get('batch-ozs3').medianMs / get('batch-curl-par4').medianMs,
      '≤',
      1.3,
    ),
    r('batch: sequential curl / ozs3', get('batch-curl-seq').medianMs / get('batch-ozs3').medianMs, '≥', 1.5),
    // The OM transport: no curl-like floor exists for Hadoop RPC (`ozone s3 getsecret` starts a JVM),
    // so it is held to bare Node and to the REST transport: no HTTP stack to load, but SASL round
    // trips, koffi + libgssapi and protobuf instead; a batch is one connection, calls pipelined.
    r('OM: getsecret --om / node -e 0', get('om-getsecret').medianMs / get('node').medianMs, '≤', 4.5),
    r('OM: getsecret --om / getsecret over REST', get('om-getsecret').medianMs / get('getsecret').medianMs, '≤', 1.1),
    r('OM: peak RSS getsecret --om / node -e 0', get('om-getsecret').peakRssKiB / get('node').peakRssKiB, '≤', 1.5),
    r('OM: batch --om / batch over REST', get('batch-om').medianMs / get('batch-ozs3').medianMs, '≤', 1.2),
  ];
}

interface Machine {
  node: string;
  cpus: number;
  cpuModel: string;
  os: string;
  kernel: string;
  curl: string;
  timeWrapperMs: number;
  /** 1-minute load average before and after the timed rounds: other work on the machine shows here. */
  loadAvg: { before: number; after: number };
}

function renderTable(machine: Machine, opts: BenchOptions, stats: CaseStats[], derived: Ratio[]): string {
  const byId = Object.fromEntries(stats.map((s) => [s.id, s]));
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  const pad = (s: string, w: number) => s.padStart(w);
  const out: string[] = [];
  out.push(
    `ozs3 bench: ${opts.rounds} interleaved rounds (batch cases: ${opts.batchRounds} rounds × ${opts.users} users), ${opts.warmup} warm-up`,
  );
  out.push(
    `machine: node ${machine.node} · ${machine.cpus} CPU (${machine.cpuModel}) · ${machine.os} ${machine.kernel} · ${machine.curl}`,
  );
  out.push(
    `load average (1 min): ${machine.loadAvg.before.toFixed(2)} before, ${machine.loadAvg.after.toFixed(2)} after the rounds`,
  );
  out.push(
    `every process runs under ${GNU_TIME} (adds ~${machine.timeWrapperMs.toFixed(2)} ms each, included in all wall times)`,
  );
  out.push('');
  const w = Math.max(...stats.map((s) => s.label.length), 4);
  out.push(
    `${'case'.padEnd(w)}  ${pad('runs', 4)}  ${pad('median', 10)}  ${pad('p10', 10)}  ${pad('p90', 10)}  ${pad('× ref', 6)}  ${pad('peak RSS', 9)}`,
  );
  for (const s of stats) {
    const ref = s.id.startsWith('batch') ? byId['batch-curl-par4'] : byId['node'];
    out.push(
      `${s.label.padEnd(w)}  ${pad(String(s.runs), 4)}  ${pad(ms(s.medianMs), 10)}  ${pad(ms(s.p10Ms), 10)}  ${pad(ms(s.p90Ms), 10)}  ${pad((s.medianMs / ref!.medianMs).toFixed(2), 6)}  ${pad(mib(s.peakRssKiB), 9)}`,
    );
  }
  out.push(
    '(× ref: median over node -e 0; batch rows over the 4-way parallel curl floor. Batch curl RSS: the largest single curl.)',
  );
  out.push('');
  const rw = Math.max(...derived.map((d) => d.name.length));
  out.push(`${'ratio (medians)'.padEnd(rw)}  ${pad('value', 6)}  ${'goal'.padEnd(6)}`);
  for (const d of derived)
    out.push(`${d.name.padEnd(rw)}  ${pad(d.value.toFixed(2), 6)}  ${d.goal.padEnd(6)}  ${d.pass ? 'PASS' : 'MISS'}`);
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- main

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Median cost of the GNU time wrapper per process, so a reader can judge its share. */
async function measureTimeWrapper(env: Record<string, string>): Promise<number> {
  const bare: number[] = [];
  const wrapped: number[] = [];
  for (let i = 0; i < 15; i++) {
    bare.push((await runTimed('/bin/true', [], env, false)).ms);
    wrapped.push((await runTimed('/bin/true', [], env, true)).ms);
  }
  return Math.max(0, quantile(wrapped, 0.5) - quantile(bare, 0.5));
}

let realm: Realm | undefined;
let gateway: Gateway | undefined;
let om: OmServer | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const pid of liveGroups) killGroup(pid);
    liveGroups.clear();
    await gateway?.close().catch(() => {});
    await om?.close().catch(() => {});
    await realm?.stop().catch(() => {});
    if (benchDir) rmSync(benchDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}
let settingUp = false;
process.on('uncaughtException', (error: NodeJS.ErrnoException) => {
  // realm.ts writes each tool's stdin without an 'error' listener; a tool that exits without reading
  // it raises EPIPE there. Harmless (the tool's exit status is still checked), so only during setup.
  if (settingUp && error.code === 'EPIPE' && error.syscall === 'write') return;
  process.stderr.write(`\nbench: FAILED (unexpected error)\n${String(error?.stack ?? error)}\n`);
  void cleanup().finally(() => process.exit(1));
});
process.once('exit', () => {
  for (const pid of liveGroups) killGroup(pid);
  if (benchDir) rmSync(benchDir, { recursive: true, force: true });
});

async function bench(opts: BenchOptions): Promise<void> {
  const { curlVersion } = await preflight();
  benchDir = mkdtempSync(join(tmpdir(), 'ozs3-bench-'));

  progress('starting the realm, the gateway and the OM test server');
  settingUp = true;
  realm = await startRealm();
  const password = 'bench-pw';
  const principal = await realm.addPrincipal(BENCH_USER, { password });
  const ccache = await realm.kinit(BENCH_USER, { password, ccache: join(benchDir, 'ccache') });
  gateway = await startGateway(realm, { admins: [BENCH_USER] });
  // The Java OM test server (JDK 17, protobuf-java; built into .cache/java on first use). Its
  // start-up, and the build, happen here, outside every timed region.
  om = await startOmServer(realm, { protection: 'privacy', admins: [BENCH_USER] }).catch((error: unknown) => {
    throw new BenchFailure(`the OM test server did not start: ${(error as Error).message}`);
  });
  const omAddress = om.nodes[0]!.address;
  // A ticket-cache user: KRB5_CLIENT_KTNAME empty, or ozs3 would log in from the (empty) client keytab.
  const env = withEnv(realm, { KRB5CCNAME: ccache, KRB5_CLIENT_KTNAME: '' });
  const users = Array.from({ length: opts.users }, (_, i) => `user${String(i + 1).padStart(3, '0')}`);
  const usersFile = join(benchDir, 'users.txt');
  await writeFile(usersFile, `${users.join('\n')}\n`);
  const ctx: BenchContext = { realm, gateway, om, omAddress, env, principal, users, usersFile };
  settingUp = false;

  const machine: Machine = {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim().replace(/\s+/g, ' ') ?? 'unknown',
    os: osType(),
    kernel: release(),
    curl: curlVersion,
    timeWrapperMs: Math.round((await measureTimeWrapper(env)) * 100) / 100,
    loadAvg: { before: Math.round(loadavg()[0]! * 100) / 100, after: Number.NaN },
  };

  const cases = buildCases(ctx);
  const samples = new Map<string, Sample[]>(cases.map((c) => [c.id, []]));
  const single = cases.filter((c) => !c.batch);
  const batch = cases.filter((c) => c.batch);
  // Batch rounds spread evenly over the rounds, not bunched at the start or end.
  const batchAt = new Set(
    Array.from({ length: opts.batchRounds }, (_, b) => Math.floor((b * opts.rounds) / opts.batchRounds)),
  );

  const runOnce = async (c: Case, tag: string, record: boolean) => {
    await c.prepare?.();
    const sample = await c.run(`${c.label} [${tag}]`);
    if (record) samples.get(c.id)!.push({ ms: sample.ms, rssKiB: sample.rssKiB });
  };
  const rotate = <T,>(list: T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]!);

  if (opts.warmup > 0) progress(`warming up (${opts.warmup} round(s), batch once)`);
  for (let w = 0; w < opts.warmup; w++) for (const c of single) await runOnce(c, `warm-up ${w + 1}`, false);
  if (opts.warmup > 0) for (const c of batch) await runOnce(c, 'warm-up', false);

  const started = Date.now();
  for (let round = 0; round < opts.rounds; round++) {
    const order = [...rotate(single, round)];
    if (batchAt.has(round)) order.push(...rotate(batch, round));
    for (const c of order) await runOnce(c, `round ${round + 1}`, true);
    if (!opts.json || process.stderr.isTTY) {
      const elapsed = (Date.now() - started) / 1000;
      progress(`round ${round + 1}/${opts.rounds} done (${elapsed.toFixed(1)} s)`);
    }
  }

  machine.loadAvg.after = Math.round(loadavg()[0]! * 100) / 100;
  const stats = cases.map((c) => summarize(c, samples.get(c.id)!));
  const derived = ratios(Object.fromEntries(stats.map((s) => [s.id, s])));
  if (opts.json) {
    const report = {
      machine,
      rounds: opts.rounds,
      batchRounds: opts.batchRounds,
      users: opts.users,
      warmup: opts.warmup,
      cases: stats,
      ratios: derived,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(renderTable(machine, opts, stats, derived));
  }
}

const options = parseArgs(process.argv.slice(2));
try {
  await bench(options);
  await cleanup();
} catch (error) {
  await cleanup();
  process.stderr.write(
    `\nbench: FAILED\n${error instanceof BenchFailure ? error.message : String((error as Error)?.stack ?? error)}\n`,
  );
  process.exit(1);
}
