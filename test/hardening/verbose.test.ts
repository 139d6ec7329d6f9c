/**
 * --verbose traces the HTTP exchange and the Kerberos steps on stderr, and KRB5_TRACE passes
 * through; neither ever shows a secret, a Negotiate token or a cookie value, nor server text raw.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, withEnv, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { BIN, STACK_TRACE, assertBuilt, runCli } from '../support/run-cli.js';
import {
  GOOD_OUTPUT,
  GOOD_SECRET,
  respondWith,
  respondWithSecret,
  startHostileServer,
} from '../support/hostile-server.js';

let realm: Realm;
let gw: Gateway;
let adminEnv: Record<string, string>;
let aliceEnv: Record<string, string>;

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  for (const user of ['admin', 'alice']) await realm.addPrincipal(user, { password: `pw-${user}` });
  adminEnv = withEnv(realm, {
    KRB5CCNAME: await realm.kinit('admin', { password: 'pw-admin', ccache: 'cc-admin' }),
    KRB5_CLIENT_KTNAME: '',
  });
  aliceEnv = withEnv(realm, {
    KRB5CCNAME: await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-alice' }),
    KRB5_CLIENT_KTNAME: '',
  });
  gw = await startGateway(realm, { admins: ['admin'] });
});

afterAll(async () => {
  await gw?.close();
  await realm?.stop();
});

/**
 * The CLI with stderr appended to a file, as `2>>file` in a shell. Not runCli(): Node's stdio pipes
 * are socketpairs, and /dev/stderr cannot be opened on a socket (ENXIO), so KRB5_TRACE=/dev/stderr
 * would write nothing there. Appending keeps MIT's writes and ozs3's from overwriting each other.
 */
async function runWithStderrFile(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ozs3-verbose-'));
  try {
    const errFile = join(dir, 'stderr');
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        'bash',
        ['-c', 'exec "$@" 2>>"$ERR_FILE"', 'bash', process.execPath, BIN, ...args],
        { env: { ...env, ERR_FILE: errFile }, timeout: 20_000 },
        (error, out) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout: out }),
      );
    });
    const stderr = readFileSync(errFile, 'utf8');
    expect(stderr, 'a stack trace on stderr').not.toMatch(STACK_TRACE);
    return { code, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const TOKEN = /Negotiate [A-Za-z0-9+/=_-]{8,}/;

describe('--verbose against a real SPNEGO gateway, with KRB5_TRACE', () => {
  it('shows the exchange and the Kerberos steps, and no secret, token or cookie value', async () => {
    const r = await runWithStderrFile(
      ['getsecret', '-v', '-u', 'bob', '-u', 'carol', '--json', '--concurrency', '1', '--endpoint', gw.url],
      { ...adminEnv, KRB5_TRACE: '/dev/stderr' },
    );
    expect(r.code, r.stderr).toBe(0);
    // stdout is data only: one JSON line per user.
    const lines = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { awsSecret: string });
    expect(lines).toHaveLength(2);

    // The HTTP exchange and the Kerberos steps...
    expect(r.stderr).toMatch(
      /^\* kerberos: service principal HTTP\/localhost \(realm from krb5.conf \[domain_realm\]\)$/m,
    );
    expect(r.stderr).toMatch(/^\* > PUT http:\/\/localhost:\d+\/secret\/bob$/m);
    expect(r.stderr).toMatch(/^\* > authorization: Negotiate <redacted>$/m);
    expect(r.stderr).toMatch(/^\* < 200 OK$/m);
    expect(r.stderr).toMatch(/^\* < www-authenticate: Negotiate <redacted>$/m);
    expect(r.stderr).toMatch(/^\* kerberos: mutual authentication verified$/m);
    expect(r.stderr).toMatch(/^\* < set-cookie: hadoop\.auth=<redacted>/m);
    expect(r.stderr).toMatch(/^\* > authorization: \(none\); cookie: hadoop\.auth=<redacted>$/m);
    // ...and MIT's own trace, passed through.
    expect(r.stderr).toMatch(/Getting credentials admin@OZS3\.TEST -> HTTP\/localhost@OZS3\.TEST/);

    // Never a secret, a token or the cookie.
    for (const { awsSecret } of lines) expect(r.stderr).not.toContain(awsSecret);
    expect(r.stderr).not.toMatch(TOKEN);
    const requests = await gw.requests();
    const cookie = String(requests[1]?.headers.cookie ?? '');
    expect(cookie).toMatch(/^hadoop\.auth=".+"$/);
    expect(r.stderr).not.toContain(cookie.slice('hadoop.auth='.length));
    expect(r.stderr).not.toMatch(/hadoop\.auth="?u=/);
  });
});

describe('--verbose against a hostile server', () => {
  it('sanitizes server text in the trace and redacts its cookie', async () => {
    await using server = await startHostileServer(
      respondWithSecret('alice@OZS3.TEST', GOOD_SECRET, {
        'set-cookie': 'hadoop.auth="u=alice&p=alice@OZS3.TEST&t=kerberos&e=9999999999999&s=SIGNATURE-VALUE"; HttpOnly',
        // llhttp refuses C0 controls in header values; C1 (here CSI, 0x9b) gets through.
        server: 'Jetty\u009b31m(9.4)',
      }),
    );
    const r = await runCli(['getsecret', '-v', '--no-mutual-auth', '--endpoint', server.url], { env: aliceEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
    expect(r.stderr).toMatch(/^\* < server: Jetty ?31m\(9\.4\)$/m);
    expect(r.stderr).not.toMatch(CONTROL);
    expect(r.stderr).not.toContain('SIGNATURE-VALUE');
    expect(r.stderr).not.toContain(GOOD_SECRET);
    expect(r.stderr).not.toMatch(TOKEN);
  });

  it('on failure: the trace, the message and the cause, all clean, no stack trace', async () => {
    await using server = await startHostileServer(
      respondWith({
        status: 503,
        reason: 'Down\u001b]0;pwned\u0007 for maintenance',
        headers: { via: '1.1 lb\u009b2J' },
      }),
    );
    const r = await runWithStderrFile(['getsecret', '-v', '--endpoint', server.url], {
      ...aliceEnv,
      KRB5_TRACE: '/dev/stderr',
    });
    expect(r.code).toBe(8);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^\* retry 1\/2 after SERVER_ERROR in \d+ ms \(fresh token\)$/m);
    expect(r.stderr).toMatch(/^\* < 503 Down for maintenance$/m);
    expect(r.stderr).toMatch(/^ozs3: the gateway failed: 503 Down for maintenance$/m);
    expect(r.stderr).not.toMatch(CONTROL);
    expect(r.stderr).not.toMatch(TOKEN);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
