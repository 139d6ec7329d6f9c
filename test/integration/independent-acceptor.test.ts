/**
 * Issue "Must show 2": against an independent SPNEGO acceptor (Apache httpd + mod_auth_gssapi, not
 * the project's own Node `kerberos` test server) that follows docs/endpoint.md, every
 * command of docs/cli.md's getsecret/revokesecret sections behaves as specified, exit codes
 * 0, 2, 3, 4, 5, 6, 7 included. The built CLI runs as a subprocess (`node bin/ozs3`), stdin a
 * pipe (never a terminal), in a throwaway MIT realm.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRealm, withEnv, type Realm } from '../support/realm.js';
import { startApacheGateway, type ApacheGateway } from '../support/apache-gateway.js';
import { STACK_TRACE } from '../support/run-cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ozs3');
const DIST_MAIN = join(ROOT, 'dist', 'main.js');
const RUN_TIMEOUT_MS = 15_000;

const ALICE = 'alice@OZS3.TEST';
const HEX64 = /^[0-9a-f]{64}$/;
/** A SPNEGO token on stderr: "Negotiate " followed by base64 (the redacted form is "Negotiate <redacted>"). */
const TOKEN_TEXT = /Negotiate\s+[A-Za-z0-9+/]{12,}/;

interface RunResult {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

let realm: Realm;
let gw: ApacheGateway;
let aliceCcache: string;
let adminCcache: string;
let svcKeytab: string;
const runs: RunResult[] = [];

type As = 'alice' | 'admin' | 'none';
interface RunOptions {
  /** Whose ticket cache (KRB5CCNAME); 'none' leaves KRB5CCNAME unset. Default alice. */
  as?: As;
  /** Extra env; a value of null removes the variable. */
  env?: Record<string, string | null>;
  /** Written to stdin (a pipe either way: never a terminal). */
  input?: string;
  /** Do not add --endpoint <Apache>. */
  noEndpoint?: boolean;
}

function cliEnv(o: RunOptions = {}): Record<string, string> {
  const as = o.as ?? 'alice';
  const env: Record<string, string> = withEnv(
    realm,
    as === 'none' ? {} : { KRB5CCNAME: as === 'alice' ? aliceCcache : adminCcache },
  );
  if (as === 'none') delete env['KRB5CCNAME'];
  // The realm env points KRB5_CLIENT_KTNAME at a (nonexistent) client keytab so /etc is never read;
  // ozs3 treats that variable as "log in from this keytab" (docs/cli.md), which would replace the
  // ticket cache in every run. Only the --keytab runs below log in from a keytab.
  delete env['KRB5_CLIENT_KTNAME'];
  for (const [key, value] of Object.entries(o.env ?? {})) {
    if (value === null) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Runs the built CLI: `node bin/ozs3 <args> --endpoint <Apache>`, stdin a pipe, with a deadline. */
function run(args: string[], o: RunOptions = {}): Promise<RunResult> {
  const fullArgs = o.noEndpoint ? args : [...args, '--endpoint', gw.url];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...fullArgs], {
      env: cliEnv(o),
      cwd: realm.dir,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (stdout += c));
    child.stderr.on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { args: fullArgs, code, signal, stdout, stderr, ms: Date.now() - started };
      runs.push(result);
      // As runCli: no run may print a Node stack trace or an internal error.
      if (STACK_TRACE.test(stderr)) reject(new Error(`a stack trace on stderr:\n${show(result)}`));
      else resolve(result);
    });
    child.stdin.end(o.input ?? '');
  });
}

function show(r: RunResult): string {
  return `ozs3 ${r.args.join(' ')}\n→ exit ${r.code}${r.signal ? ` (${r.signal})` : ''} in ${r.ms} ms\n[stdout]\n${r.stdout}[stderr]\n${r.stderr}`;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/**
 * An error as docs/cli.md "Errors" describes it: the exit code, nothing on stdout, one
 * `ozs3: …` line, then at most one `hint:` line (required when `hint` is given), no stack trace.
 */
function expectError(r: RunResult, exitCode: number, message: RegExp, hint?: RegExp | 'optional'): void {
  expect(r.code, show(r)).toBe(exitCode);
  expect(r.stdout, show(r)).toBe('');
  const errLines = lines(r.stderr);
  expect(errLines[0], show(r)).toMatch(/^ozs3: /);
  expect(errLines[0], show(r)).toMatch(message);
  if (hint === undefined) {
    expect(errLines, show(r)).toHaveLength(1);
  } else if (hint === 'optional') {
    expect(errLines.length, show(r)).toBeLessThanOrEqual(2);
    if (errLines.length === 2) expect(errLines[1], show(r)).toMatch(/^hint: /);
  } else {
    expect(errLines, show(r)).toHaveLength(2);
    expect(errLines[1], show(r)).toMatch(/^hint: /);
    expect(errLines[1], show(r)).toMatch(hint);
  }
  expect(r.stderr, show(r)).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.stderr, show(r)).not.toMatch(TOKEN_TEXT);
}

/** The default output: exactly `awsAccessKey=…` and `awsSecret=…`. */
function parseOzoneOutput(r: RunResult): { awsAccessKey: string; awsSecret: string } {
  const m = /^awsAccessKey=(.+)\nawsSecret=(.+)\n$/.exec(r.stdout);
  expect(m, show(r)).not.toBeNull();
  return { awsAccessKey: m![1]!, awsSecret: m![2]! };
}

async function accessLogSince(mark: number): Promise<string[]> {
  return (await gw.accessLog()).slice(mark);
}

function freeClosedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Every file under dir (relative paths) with size and mtime, skipping `skip` subtrees and logs. */
function snapshotTree(dir: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (skip.includes(path)) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.log'))
        continue; // the KDC logs every AS/TGS request
      else {
        const s = statSync(path);
        out.set(relative(dir, path), `${s.size}:${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

function snapshotTmpCcaches(): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync('/tmp')) {
    if (!/^krb5cc/.test(name)) continue;
    try {
      const s = statSync(join('/tmp', name));
      out.set(name, `${s.size}:${s.mtimeMs}`);
    } catch {
      // vanished meanwhile
    }
  }
  return out;
}

beforeAll(async () => {
  if (!existsSync(DIST_MAIN)) {
    throw new Error(
      `${DIST_MAIN} is missing: build the CLI first (npx tsc -p tsconfig.json, or npm test which builds)`,
    );
  }
  realm = await startRealm();
  await realm.addPrincipal('alice', { password: 'pw-alice' });
  await realm.addPrincipal('admin', { password: 'pw-admin' });
  await realm.addPrincipal('bob', { password: 'pw-bob' });
  await realm.addPrincipal('svc', { randkey: true });
  // Known to the KDC, absent from Apache's keytab: the acceptor must reject tickets for it.
  await realm.addPrincipal('HTTP/otherhost', { randkey: true });
  svcKeytab = await realm.writeKeytab(['svc'], 'svc.keytab');
  aliceCcache = await realm.kinit('alice', { ccache: 'alice.ccache' });
  adminCcache = await realm.kinit('admin', { ccache: 'admin.ccache' });
  // HTTP/localhost@OZS3.TEST is created by startApacheGateway and keytab'd for Apache only.
  gw = await startApacheGateway(realm, { admins: ['admin'] });
});

afterAll(async () => {
  await gw?.stop();
  await realm?.stop();
});

/** curl --negotiate (curl's own GSS-API client), to check the acceptor itself, independently of ozs3. */
function curl(args: string[], as: As = 'alice'): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-i', '--negotiate', '-u', ':', ...args], {
      env: cliEnv({ as }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`curl could not run (${error.message}); install the Debian package curl`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The final response of a curl -i transcript (after the 401 challenge). */
function finalResponse(out: string): { statusLine: string; headers: string; body: string } {
  const blocks = out.split(/\r?\n\r?\n/);
  let i = 0;
  while (i < blocks.length - 1 && / 401 /.test(blocks[i]!.split(/\r?\n/)[0]!) && /^HTTP\//.test(blocks[i + 1] ?? ''))
    i += 2;
  const head = blocks[i] ?? '';
  const [statusLine = '', ...rest] = head.split(/\r?\n/);
  return { statusLine, headers: rest.join('\n'), body: blocks.slice(i + 1).join('\n\n') };
}

describe('the Apache acceptor itself follows spec/ozone-endpoint.md (checked with curl --negotiate)', () => {
  beforeEach(async () => {
    await gw.setSecrets({});
  });

  it('PUT → 200 JAXB XML + mutual-auth token; again → "400 S3_SECRET_ALREADY_EXISTS"; DELETE ?username=bob revokes the caller; again → "404 S3_SECRET_NOT_FOUND"; /secret/bob as non-admin → 403', async () => {
    const put = finalResponse((await curl(['-X', 'PUT', `${gw.url}/secret`])).out);
    expect(put.statusLine).toBe('HTTP/1.1 200 OK');
    expect(put.headers).toMatch(/^WWW-Authenticate: Negotiate [A-Za-z0-9+/=]{20,}$/im);
    expect(put.headers).toMatch(/^Content-Type: application\/xml/im);
    const secret = (await gw.secrets())[ALICE]!;
    expect(secret).toMatch(HEX64);
    expect(put.body).toBe(
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><S3Secret><awsAccessKey>${ALICE}</awsAccessKey><awsSecret>${secret}</awsSecret></S3Secret>`,
    );
    expect(finalResponse((await curl(['-X', 'PUT', `${gw.url}/secret`])).out).statusLine).toBe(
      'HTTP/1.1 400 S3_SECRET_ALREADY_EXISTS',
    );
    await gw.setSecrets({ [ALICE]: secret, bob: 'b'.repeat(64) });
    expect(finalResponse((await curl(['-X', 'DELETE', `${gw.url}/secret?username=bob`])).out).statusLine).toBe(
      'HTTP/1.1 200 OK',
    );
    expect(await gw.secrets()).toEqual({ bob: 'b'.repeat(64) });
    expect(finalResponse((await curl(['-X', 'DELETE', `${gw.url}/secret`])).out).statusLine).toBe(
      'HTTP/1.1 404 S3_SECRET_NOT_FOUND',
    );
    expect(finalResponse((await curl(['-X', 'DELETE', `${gw.url}/secret/bob`])).out).statusLine).toBe(
      'HTTP/1.1 403 Forbidden',
    );
    expect(finalResponse((await curl(['-X', 'PUT', `${gw.url}/secret/carol`], 'admin')).out).statusLine).toBe(
      'HTTP/1.1 200 OK',
    );
    expect(Object.keys(await gw.secrets()).sort()).toEqual(['bob', 'carol']);
  });

  it('without a token: 401 with a bare WWW-Authenticate: Negotiate challenge', async () => {
    const res = await fetch(`${gw.url.replace('localhost', '127.0.0.1')}/secret`, { method: 'PUT' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Negotiate');
    await res.arrayBuffer();
  });
});

describe('getsecret against Apache httpd + mod_auth_gssapi', () => {
  beforeEach(async () => {
    await gw.setSecrets({});
  });

  it('prints exactly awsAccessKey=<principal> / awsSecret=<secret> and exits 0; the secret is the one the server stored', async () => {
    const mark = (await gw.accessLog()).length;
    const r = await run(['getsecret']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr, show(r)).toBe('');
    const out = parseOzoneOutput(r);
    expect(out.awsAccessKey).toBe(ALICE);
    expect(out.awsSecret).toMatch(HEX64);
    expect(await gw.secrets()).toEqual({ [ALICE]: out.awsSecret });
    // One PUT to /secret (no query, no user segment), authenticated by mod_auth_gssapi as alice.
    expect((await accessLogSince(mark)).filter((l) => !/ 401 /.test(l))).toEqual([`PUT /secret 200 ${ALICE}`]);
  });

  it('a second getsecret exits 6 with S3_SECRET_ALREADY_EXISTS and a hint; nothing on stdout; the secret is unchanged', async () => {
    const first = parseOzoneOutput(await run(['getsecret']));
    const r = await run(['getsecret']);
    expectError(r, 6, /S3_SECRET_ALREADY_EXISTS/, /rotate|revoke/);
    expect(await gw.secrets()).toEqual({ [ALICE]: first.awsSecret });
  });

  it('--if-exists skip exits 0 and prints no secret; --if-exists rotate exits 0 with a different secret', async () => {
    const first = parseOzoneOutput(await run(['getsecret']));

    const skip = await run(['getsecret', '--if-exists', 'skip']);
    expect(skip.code, show(skip)).toBe(0);
    expect(skip.stdout, show(skip)).toBe('');
    expect(skip.stderr).not.toContain(first.awsSecret);
    expect(await gw.secrets()).toEqual({ [ALICE]: first.awsSecret });

    const mark = (await gw.accessLog()).length;
    const rotate = await run(['getsecret', '--if-exists', 'rotate']);
    expect(rotate.code, show(rotate)).toBe(0);
    const second = parseOzoneOutput(rotate);
    expect(second.awsAccessKey).toBe(ALICE);
    expect(second.awsSecret).toMatch(HEX64);
    expect(second.awsSecret).not.toBe(first.awsSecret);
    expect(await gw.secrets()).toEqual({ [ALICE]: second.awsSecret });
    // rotate = PUT (already exists) → DELETE → PUT.
    expect((await accessLogSince(mark)).filter((l) => !/ 401 /.test(l))).toEqual([
      `PUT /secret 400 ${ALICE}`,
      `DELETE /secret 200 ${ALICE}`,
      `PUT /secret 200 ${ALICE}`,
    ]);
  });

  it('-e: eval "$(ozs3 getsecret -e)" in bash sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY to the server strings', async () => {
    const script = `eval "$("${process.execPath}" "${BIN}" getsecret -e --endpoint "${gw.url}")" || exit 99
printf '%s\\n%s\\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"`;
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('/bin/bash', ['-c', script], {
        env: cliEnv(),
        cwd: realm.dir,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        runs.push({ args: ['(bash eval) getsecret -e'], code, signal: null, stdout, stderr, ms: 0 });
        resolve({ code, stdout, stderr });
      });
      child.stdin.end();
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const stored = await gw.secrets();
    expect(result.stdout).toBe(`${ALICE}\n${stored[ALICE]}\n`);
    expect(stored[ALICE]).toMatch(HEX64);
  });

  it('-e prints two export lines, single-quoted', async () => {
    const r = await run(['getsecret', '-e']);
    expect(r.code, show(r)).toBe(0);
    const stored = await gw.secrets();
    expect(r.stdout).toBe(`export AWS_ACCESS_KEY_ID='${ALICE}'\nexport AWS_SECRET_ACCESS_KEY='${stored[ALICE]}'\n`);
    expect(r.stderr).toBe('');
  });

  it('--json prints {"awsAccessKey":…,"awsSecret":…} on one line', async () => {
    const r = await run(['getsecret', '--json']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    const stored = await gw.secrets();
    expect(r.stdout).toBe(`${JSON.stringify({ awsAccessKey: ALICE, awsSecret: stored[ALICE] })}\n`);
  });

  it("an S3 admin gets another user's secret with -u bob (PUT /secret/bob → 200, awsAccessKey bob)", async () => {
    const mark = (await gw.accessLog()).length;
    const r = await run(['getsecret', '-u', 'bob'], { as: 'admin' });
    expect(r.code, show(r)).toBe(0);
    const out = parseOzoneOutput(r);
    expect(out.awsAccessKey).toBe('bob');
    expect(await gw.secrets()).toEqual({ bob: out.awsSecret });
    expect((await accessLogSince(mark)).filter((l) => !/ 401 /.test(l))).toEqual([
      'PUT /secret/bob 200 admin@OZS3.TEST',
    ]);
  });

  it('a plain user with -u bob gets exit 4 (403) with a hint, and nothing is created', async () => {
    const r = await run(['getsecret', '-u', 'bob']);
    expectError(r, 4, /forbidden|403|administrator/i, /administrators|admin/i);
    expect(await gw.secrets()).toEqual({});
  });

  it('several users as admin (-u bob -u carol --json): NDJSON in input order, each with "user"', async () => {
    const r = await run(['getsecret', '-u', 'bob', '-u', 'carol', '--json'], { as: 'admin' });
    expect(r.code, show(r)).toBe(0);
    const stored = await gw.secrets();
    expect(lines(r.stdout).map((l) => JSON.parse(l))).toEqual([
      { user: 'bob', awsAccessKey: 'bob', awsSecret: stored['bob'] },
      { user: 'carol', awsAccessKey: 'carol', awsSecret: stored['carol'] },
    ]);
    expect(stored['bob']).toMatch(HEX64);
    expect(stored['carol']).toMatch(HEX64);
    expect(r.stderr).not.toContain(stored['bob']!);
  });

  it('several users with one failure: its NDJSON line carries the error code; exit is the first failure (6)', async () => {
    await gw.setSecrets({ carol: 'c'.repeat(64) });
    const r = await run(['getsecret', '-u', 'bob', '-u', 'carol', '-u', 'dave', '--json'], { as: 'admin' });
    expect(r.code, show(r)).toBe(6);
    const got = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const stored = await gw.secrets();
    expect(got.map((o) => o['user'])).toEqual(['bob', 'carol', 'dave']);
    expect(got[0]).toEqual({ user: 'bob', awsAccessKey: 'bob', awsSecret: stored['bob'] });
    expect(got[1]).toMatchObject({ user: 'carol', error: { code: 'S3_SECRET_ALREADY_EXISTS' } });
    expect(got[1]).not.toHaveProperty('awsSecret');
    expect(got[2]).toEqual({ user: 'dave', awsAccessKey: 'dave', awsSecret: stored['dave'] });
    expect(stored['carol']).toBe('c'.repeat(64));
  });

  it('--users-file - reads users from stdin, # comments and blank lines ignored', async () => {
    const r = await run(['getsecret', '--users-file', '-', '--json'], { as: 'admin', input: '# team\nbob\n\ncarol\n' });
    expect(r.code, show(r)).toBe(0);
    expect(lines(r.stdout).map((l) => (JSON.parse(l) as { user: string }).user)).toEqual(['bob', 'carol']);
    expect(Object.keys(await gw.secrets()).sort()).toEqual(['bob', 'carol']);
  });

  it('--write-aws writes the profile and prints no secret; revokesecret --write-aws removes the revoked key', async () => {
    const home = join(realm.dir, 'home-aws');
    await mkdir(home, { recursive: true, mode: 0o700 });
    const env = { HOME: home };
    const r = await run(['getsecret', '--write-aws', '--profile', 'ozone', '--s3-endpoint', 'http://localhost:9878'], {
      env,
    });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('');
    const stored = await gw.secrets();
    const secret = stored[ALICE]!;
    expect(secret).toMatch(HEX64);
    expect(r.stderr).not.toContain(secret);
    const credentials = await readFile(join(home, '.aws', 'credentials'), 'utf8');
    expect(credentials).toBe(`[ozone]\naws_access_key_id = ${ALICE}\naws_secret_access_key = ${secret}\n`);
    expect(statSync(join(home, '.aws', 'credentials')).mode & 0o777).toBe(0o600);
    const config = await readFile(join(home, '.aws', 'config'), 'utf8');
    expect(config).toMatch(/^\[profile ozone\]$/m);
    expect(config).toMatch(/^region = us-west-1$/m);
    expect(config).toMatch(/^endpoint_url = http:\/\/localhost:9878$/m);
    expect(config).toMatch(/^s3 =\n\s+signature_version = s3v4$/m);

    const revoke = await run(['revokesecret', '--yes', '--write-aws', '--profile', 'ozone'], { env });
    expect(revoke.code, show(revoke)).toBe(0);
    expect(revoke.stdout).toBe('');
    expect(await gw.secrets()).toEqual({});
    const after = await readFile(join(home, '.aws', 'credentials'), 'utf8');
    expect(after).not.toContain(secret);
    expect(after).not.toContain(ALICE);
  });
});

describe('revokesecret against Apache httpd + mod_auth_gssapi', () => {
  beforeEach(async () => {
    await gw.setSecrets({});
  });

  it('without --yes and without a terminal: exit 2, and no request is sent', async () => {
    await gw.setSecrets({ [ALICE]: 'a'.repeat(64) });
    const mark = (await gw.accessLog()).length;
    const r = await run(['revokesecret']);
    expectError(r, 2, /confirm|terminal|not revok/i, /--yes/);
    expect(await gw.secrets()).toEqual({ [ALICE]: 'a'.repeat(64) });
    expect(await accessLogSince(mark)).toEqual([]);
  });

  it('on a terminal, answering no sends nothing (exit 2)', async () => {
    await gw.setSecrets({ [ALICE]: 'a'.repeat(64) });
    const mark = (await gw.accessLog()).length;
    // util-linux script(1) gives the CLI a pseudo-terminal on stdin; we answer "n".
    const command = `"${process.execPath}" "${BIN}" revokesecret --endpoint "${gw.url}"`;
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
        env: cliEnv(),
        cwd: realm.dir,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (/\[y\/N\]/.test(out) && !child.stdin.writableEnded) child.stdin.end('n\n');
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
    expect(r.out).toMatch(/Revoke the S3 secret for .+\? \[y\/N\]/);
    expect(r.code, r.out).toBe(2);
    expect(await gw.secrets()).toEqual({ [ALICE]: 'a'.repeat(64) });
    expect(await accessLogSince(mark)).toEqual([]);
  });

  it("--yes revokes the caller's own secret (exit 0); again → S3_SECRET_NOT_FOUND, exit 5", async () => {
    await gw.setSecrets({ [ALICE]: 'a'.repeat(64), bob: 'b'.repeat(64) });
    const mark = (await gw.accessLog()).length;
    const r = await run(['revokesecret', '--yes']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('');
    expect(await gw.secrets()).toEqual({ bob: 'b'.repeat(64) });

    const again = await run(['revokesecret', '-y']);
    expectError(again, 5, /S3_SECRET_NOT_FOUND/, 'optional');
    expect(await gw.secrets()).toEqual({ bob: 'b'.repeat(64) });
    expect((await accessLogSince(mark)).filter((l) => !/ 401 /.test(l))).toEqual([
      `DELETE /secret 200 ${ALICE}`,
      `DELETE /secret 404 ${ALICE}`,
    ]);
  });

  it('an S3 admin revokes another user with -u bob --yes: DELETE /secret/bob, never the ?username= form', async () => {
    await gw.setSecrets({ 'admin@OZS3.TEST': 'd'.repeat(64), bob: 'b'.repeat(64) });
    const mark = (await gw.accessLog()).length;
    const r = await run(['revokesecret', '-u', 'bob', '--yes'], { as: 'admin' });
    expect(r.code, show(r)).toBe(0);
    expect(await gw.secrets()).toEqual({ 'admin@OZS3.TEST': 'd'.repeat(64) });
    expect((await accessLogSince(mark)).filter((l) => !/ 401 /.test(l))).toEqual([
      'DELETE /secret/bob 200 admin@OZS3.TEST',
    ]);
  });

  it('Must show 3: a non-admin `revokesecret -u bob --yes` exits 4 and never revokes their own secret', async () => {
    await gw.setSecrets({ [ALICE]: 'a'.repeat(64), bob: 'b'.repeat(64) });
    const mark = (await gw.accessLog()).length;
    const r = await run(['revokesecret', '-u', 'bob', '--yes']);
    expectError(r, 4, /forbidden|403|administrator/i, /administrators|admin/i);
    expect(await gw.secrets()).toEqual({ [ALICE]: 'a'.repeat(64), bob: 'b'.repeat(64) });
    const sent = (await accessLogSince(mark)).filter((l) => !/ 401 /.test(l));
    expect(sent).toEqual([`DELETE /secret/bob 403 ${ALICE}`]);
  });
});

describe('Kerberos, network and usage failures against Apache', () => {
  beforeEach(async () => {
    await gw.setSecrets({});
  });

  it('no ticket (KRB5CCNAME names an empty/nonexistent cache): exit 3, hint mentions kinit, no request sent', async () => {
    const mark = (await gw.accessLog()).length;
    const r = await run(['getsecret'], { env: { KRB5CCNAME: `FILE:${join(realm.dir, 'no-such.ccache')}` } });
    expectError(r, 3, /ticket|credential|Kerberos/i, /kinit/);
    expect(await accessLogSince(mark)).toEqual([]);
    expect(existsSync(join(realm.dir, 'no-such.ccache'))).toBe(false);
  });

  it('--keytab <svc keytab> --principal svc@OZS3.TEST works with no ticket cache and writes no ccache file', async () => {
    const realmBefore = snapshotTree(realm.dir, [gw.dir]);
    const tmpBefore = snapshotTmpCcaches();
    const r = await run(['getsecret', '--keytab', svcKeytab, '--principal', 'svc@OZS3.TEST'], { as: 'none' });
    expect(r.code, show(r)).toBe(0);
    const out = parseOzoneOutput(r);
    expect(out.awsAccessKey).toBe('svc@OZS3.TEST');
    expect(await gw.secrets()).toEqual({ 'svc@OZS3.TEST': out.awsSecret });
    expect(snapshotTree(realm.dir, [gw.dir])).toEqual(realmBefore);
    expect(snapshotTmpCcaches()).toEqual(tmpBefore);
    expect(existsSync(realm.env['KRB5CCNAME']!.replace(/^FILE:/, ''))).toBe(false);
  });

  it('a service principal the KDC does not know (--spn HTTP@unknownhost): exit 3, no request sent', async () => {
    const mark = (await gw.accessLog()).length;
    const r = await run(['getsecret', '--spn', 'HTTP@unknownhost']);
    expectError(r, 3, /unknownhost/, /--spn|host/);
    expect(await accessLogSince(mark)).toEqual([]);
    expect(await gw.secrets()).toEqual({});
  });

  it('a service principal Apache has no key for (--spn HTTP/otherhost@OZS3.TEST): the acceptor rejects the token, exit 3', async () => {
    const mark = (await gw.accessLog()).length;
    const cgiMark = (await gw.cgiLog()).length;
    const r = await run(['getsecret', '--spn', 'HTTP/otherhost@OZS3.TEST']);
    // mod_auth_gssapi's 401 carries the KRB-ERROR that says why: KRB_AP_ERR_NOT_US.
    expectError(r, 3, /holds no key for HTTP\/otherhost@OZS3\.TEST \(KRB_AP_ERR_NOT_US\)/, /--spn/);
    expect(await gw.secrets()).toEqual({});
    // The token did reach Apache, and mod_auth_gssapi (not the CGI) refused it.
    const sent = await accessLogSince(mark);
    expect(sent.length).toBeGreaterThan(0);
    for (const line of sent) expect(line).toMatch(/^PUT \/secret 401 -$/);
    expect((await gw.cgiLog()).slice(cgiMark)).toEqual([]);
  });

  it('an unreachable endpoint (closed loopback port): exit 7 within a few seconds', async () => {
    const port = await freeClosedPort();
    const r = await run(['getsecret', '--endpoint', `http://localhost:${port}`, '--retries', '0', '--timeout', '5'], {
      noEndpoint: true,
    });
    expectError(r, 7, /.+/, 'optional');
    expect(r.ms).toBeLessThan(5_000);
  });

  it('usage errors exit 2 with one ozs3: line (+ hint), no stack trace, no request', async () => {
    const mark = (await gw.accessLog()).length;
    const bogus = await run(['getsecret', '--bogus']);
    expectError(bogus, 2, /--bogus/, /help/);
    const both = await run(['getsecret', '-e', '--json']);
    expectError(both, 2, /-e|--export|--json/, 'optional');
    const revokeBogus = await run(['revokesecret', '--bogus', '--yes']);
    expectError(revokeBogus, 2, /--bogus/, /help/);
    expect(await accessLogSince(mark)).toEqual([]);
  });

  it('--verbose traces the exchange (mutual authentication verified) without secrets or tokens on stderr', async () => {
    const get = await run(['getsecret', '--verbose']);
    expect(get.code, show(get)).toBe(0);
    const secret = (await gw.secrets())[ALICE]!;
    expect(get.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${secret}\n`);
    expect(get.stderr).toMatch(/PUT http:\/\/localhost:\d+\/secret/);
    expect(get.stderr).toMatch(/mutual authentication verified/);
    expect(get.stderr).not.toContain(secret);
    expect(get.stderr).not.toMatch(TOKEN_TEXT);

    const exists = await run(['getsecret', '-v']);
    expect(exists.code, show(exists)).toBe(6);
    expect(exists.stderr).not.toContain(secret);
    expect(exists.stderr).not.toMatch(TOKEN_TEXT);

    const rotate = await run(['getsecret', '-v', '--if-exists', 'rotate', '--json']);
    expect(rotate.code, show(rotate)).toBe(0);
    const rotated = (await gw.secrets())[ALICE]!;
    expect(rotate.stderr).not.toContain(secret);
    expect(rotate.stderr).not.toContain(rotated);
    expect(rotate.stderr).not.toMatch(TOKEN_TEXT);

    const revoke = await run(['revokesecret', '-v', '--yes']);
    expect(revoke.code, show(revoke)).toBe(0);
    expect(revoke.stderr).not.toContain(rotated);
    expect(revoke.stderr).not.toMatch(TOKEN_TEXT);
  });

  it('no run in this file put a secret or a Negotiate token on stderr', () => {
    const secrets = new Set<string>();
    for (const r of runs) for (const m of r.stdout.matchAll(/[0-9a-f]{64}/g)) secrets.add(m[0]);
    expect(runs.length).toBeGreaterThan(20);
    expect(secrets.size).toBeGreaterThan(5);
    for (const r of runs) {
      expect(r.stderr, show(r)).not.toMatch(TOKEN_TEXT);
      for (const s of secrets) expect(r.stderr.includes(s), `${show(r)}\nleaks ${s}`).toBe(false);
    }
  });
});
