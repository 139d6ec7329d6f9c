import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, GATEWAY_SERVER_PATH, type Gateway } from './support/gateway.js';
import { startRealm, withEnv, type Realm } from './support/realm.js';

interface CurlResponse {
  status: number;
  reason: string;
  headers: Record<string, string[]>;
  body: string;
  /** Every status line curl saw (the Negotiate round trip shows the 401 first). */
  statusLines: string[];
}

function header(res: CurlResponse, name: string): string | undefined {
  return res.headers[name.toLowerCase()]?.[0];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let realm: Realm;
let gateway: Gateway;
let aliceCcache: string;
let adminCcache: string;
let emptyCcache: string;
let realmStartMs = 0;

/** Runs curl in the realm env with the given ccache and parses the last response of `curl -i`. */
function curl(ccache: string, args: string[]): Promise<CurlResponse> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-s', '-i', '--max-time', '10', ...args],
      { env: withEnv(realm, { KRB5CCNAME: ccache }), encoding: 'latin1' },
      (error, stdout) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(error.message, { cause: error }));
          return;
        }
        const statusLines = [...stdout.matchAll(/^HTTP\/[\d.]+ .*$/gm)].map((m) => m[0].trim());
        const start = stdout.lastIndexOf(statusLines.at(-1) ?? 'HTTP/');
        const rest = stdout.slice(start);
        const split = rest.indexOf('\r\n\r\n');
        const head = split >= 0 ? rest.slice(0, split) : rest;
        const body = split >= 0 ? rest.slice(split + 4) : '';
        const [statusLine = '', ...lines] = head.split('\r\n');
        const m = /^HTTP\/[\d.]+ (\d{3}) ?(.*)$/.exec(statusLine);
        const headers: Record<string, string[]> = {};
        for (const line of lines) {
          const i = line.indexOf(':');
          if (i < 0) continue;
          const key = line.slice(0, i).trim().toLowerCase();
          (headers[key] ??= []).push(line.slice(i + 1).trim());
        }
        resolve({ status: Number(m?.[1] ?? 0), reason: m?.[2] ?? '', headers, body, statusLines });
      },
    );
  });
}

const negotiate = (ccache: string, method: string, url: string, extra: string[] = []) =>
  curl(ccache, ['--negotiate', '-u', ':', '-X', method, ...extra, url]);

/** A fresh SPNEGO token for HTTP@localhost from a subprocess (the kerberos lib reads env at first use). */
function spnegoToken(ccache: string): Promise<string> {
  const script =
    "const k=require('kerberos');k.initializeClient('HTTP@localhost',{mechOID:k.GSS_MECH_OID_SPNEGO,gssFlag:k.GSS_C_MUTUAL_FLAG})" +
    '.then(c=>c.step("")).then(t=>process.stdout.write(t),e=>{console.error(e.message);process.exit(1)})';
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', script],
      { env: withEnv(realm, { KRB5CCNAME: ccache }), cwd: process.cwd() },
      (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout.trim())),
    );
  });
}

beforeAll(async () => {
  const t0 = performance.now();
  realm = await startRealm();
  realmStartMs = performance.now() - t0;
  await realm.addPrincipal('alice', { password: 'alice-pw' });
  await realm.addPrincipal('admin', { password: 'admin-pw' });
  aliceCcache = await realm.kinit('alice', { password: 'alice-pw', ccache: 'alice.cc' });
  adminCcache = await realm.kinit('admin', { ccache: 'admin.cc' });
  emptyCcache = `FILE:${realm.dir}/empty.cc`;
  gateway = await startGateway(realm, { admins: ['admin'] });
});

afterAll(async () => {
  await gateway?.close();
  await realm?.stop();
});

describe('throwaway realm', () => {
  it('starts a KDC on a loopback port quickly, configured only through env', async () => {
    console.info(`realm start: ${realmStartMs.toFixed(0)} ms`);
    expect(realmStartMs).toBeLessThan(5_000);
    expect(realm.name).toBe('OZS3.TEST');
    expect(realm.principal('alice')).toBe('alice@OZS3.TEST');
    expect(realm.env['KRB5CCNAME']).toBe(`FILE:${realm.dir}/ccache`);
    for (const value of Object.values(realm.env)) expect(value).toContain(realm.dir);
    const env = withEnv(realm, { EXTRA: '1' });
    expect(Object.keys(env).sort()).toEqual(['EXTRA', 'HOME', 'LANG', 'PATH', ...Object.keys(realm.env)].sort());
    const klist = await realm.run('klist', ['-c', aliceCcache]);
    expect(klist.stdout).toContain('Default principal: alice@OZS3.TEST');
  });

  it('writes keytabs that kinit can use, and honours lifetimes', async () => {
    await realm.addPrincipal('svc/host1', { randkey: true, maxLife: '2 hours' });
    expect(await realm.hasPrincipal('svc/host1')).toBe(true);
    expect(await realm.hasPrincipal('nobody')).toBe(false);
    const getprinc = await realm.run('kadmin.local', ['-q', 'getprinc svc/host1']);
    expect(getprinc.stdout).toContain('Maximum ticket life: 0 days 02:00:00');
    const keytab = await realm.writeKeytab(['svc/host1']);
    expect(keytab.startsWith(realm.dir)).toBe(true);
    const cc = await realm.kinit('svc/host1', { keytab, ccache: 'svc.cc', lifetime: '10m' });
    const klist = await realm.run('klist', ['-c', cc]);
    expect(klist.stdout).toContain('svc/host1@OZS3.TEST');
    await expect(realm.addPrincipal('alice', { password: 'x' })).rejects.toThrow(/already exists/);
  });
});

describe('Ozone-compatible gateway driven by curl --negotiate', () => {
  it('gives alice her secret once, then refuses with 400 S3_SECRET_ALREADY_EXISTS', async () => {
    const t0 = performance.now();
    const first = await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret`);
    const firstMs = performance.now() - t0;
    console.info(`curl --negotiate PUT /secret (first call): ${firstMs.toFixed(0)} ms`);
    expect(first.status).toBe(200);
    expect(first.body).toMatch(
      /^<\?xml version="1\.0" encoding="UTF-8" standalone="yes"\?><S3Secret><awsAccessKey>alice@OZS3\.TEST<\/awsAccessKey><awsSecret>[0-9a-f]{64}<\/awsSecret><\/S3Secret>$/,
    );
    expect(header(first, 'content-type')).toBe('application/xml');
    expect(header(first, 'www-authenticate')).toMatch(/^Negotiate [A-Za-z0-9+/]+=*$/);
    expect(header(first, 'set-cookie')).toMatch(
      /^hadoop\.auth="u=alice&p=alice@OZS3\.TEST&t=kerberos&e=\d+&s=[^"]+"; HttpOnly$/,
    );

    const second = await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret`);
    expect(second.status).toBe(400);
    expect(second.statusLines.at(-1)).toBe('HTTP/1.1 400 S3_SECRET_ALREADY_EXISTS');
    expect(header(second, 'content-type')).toBe('text/html;charset=iso-8859-1');
    expect(second.body).toContain('<title>Error 400 S3_SECRET_ALREADY_EXISTS</title>');
    expect(Object.keys(await gateway.secrets())).toContain('alice@OZS3.TEST');
    // curl 7.88 with `-u :` sends its token on the first request: one HTTP exchange per call.
    const recorded = (await gateway.requests()).slice(0, 2);
    expect(recorded.map((r) => [r.status, r.reason, r.authVia])).toEqual([
      [200, 'OK', 'negotiate'],
      [400, 'S3_SECRET_ALREADY_EXISTS', 'negotiate'],
    ]);
  });

  it('revokes with 200 and an empty body, then answers 404 S3_SECRET_NOT_FOUND', async () => {
    const revoked = await negotiate(aliceCcache, 'DELETE', `${gateway.url}/secret`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toBe('');
    const again = await negotiate(aliceCcache, 'DELETE', `${gateway.url}/secret`);
    expect(again.statusLines.at(-1)).toBe('HTTP/1.1 404 S3_SECRET_NOT_FOUND');
  });

  it('forbids a non-admin the /{username} form and lets an admin use it', async () => {
    const denied = await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret/bob`);
    expect(denied.statusLines.at(-1)).toBe('HTTP/1.1 403 Forbidden');
    const granted = await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/bob`);
    expect(granted.status).toBe(200);
    expect(granted.body).toContain('<awsAccessKey>bob</awsAccessKey>');
    const encoded = await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/testuser%2Fscm%40OZS3.TEST`);
    expect(encoded.body).toContain('<awsAccessKey>testuser/scm@OZS3.TEST</awsAccessKey>');
  });

  it('ignores ?username= like Ozone: DELETE /secret?username=bob revokes the caller’s own', async () => {
    expect((await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret`)).status).toBe(200);
    const res = await negotiate(aliceCcache, 'DELETE', `${gateway.url}/secret?username=bob`);
    expect(res.status).toBe(200);
    const secrets = await gateway.secrets();
    expect(secrets).toHaveProperty('bob');
    expect(secrets).not.toHaveProperty(['alice@OZS3.TEST']);
    const recorded = (await gateway.requests()).filter((r) => r.query === 'username=bob');
    expect(recorded.at(-1)).toMatchObject({
      method: 'DELETE',
      path: '/secret',
      principal: 'alice@OZS3.TEST',
      user: 'alice@OZS3.TEST',
      status: 200,
      authVia: 'negotiate',
    });
    expect(recorded.at(-1)?.headers['authorization']).toMatch(/^Negotiate <redacted len=\d+>$/);
  });

  it('challenges with 401 WWW-Authenticate: Negotiate when there is no ticket', async () => {
    const noTicket = await negotiate(emptyCcache, 'PUT', `${gateway.url}/secret`);
    expect(noTicket.status).toBe(401);
    expect(header(noTicket, 'www-authenticate')).toBe('Negotiate');
    const plain = await curl(emptyCcache, ['-X', 'PUT', `${gateway.url}/secret`]);
    expect(plain.statusLines).toEqual(['HTTP/1.1 401 Authentication required']);
    expect(header(plain, 'set-cookie')).toBe('hadoop.auth=; HttpOnly');
    expect(plain.body).toContain('<h2>HTTP ERROR 401 Authentication required</h2>');
  });

  it('answers 400 "S3 Secret endpoint is disabled." when disabled', async () => {
    await gateway.setOptions({ disabled: true });
    try {
      const res = await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret`);
      expect(res.statusLines.at(-1)).toBe('HTTP/1.1 400 Bad Request');
      expect(res.body).toBe('S3 Secret endpoint is disabled.');
      expect(header(res, 'www-authenticate')).toBeUndefined();
      // Ozone adds the auth filter only when the endpoint is enabled: no ticket, no challenge.
      const anonymous = await curl(emptyCcache, ['-X', 'PUT', `${gateway.url}/secret`]);
      expect(anonymous.statusLines).toEqual(['HTTP/1.1 400 Bad Request']);
      expect(anonymous.body).toBe('S3 Secret endpoint is disabled.');
    } finally {
      await gateway.setOptions({ disabled: false });
    }
  });

  it('rejects a replayed SPNEGO token with a Hadoop-style 403', async () => {
    const token = await spnegoToken(aliceCcache);
    const send = () =>
      fetch(`${gateway.url}/secret`, { method: 'DELETE', headers: { Authorization: `Negotiate ${token}` } });
    const first = await send();
    expect([200, 404]).toContain(first.status);
    expect(first.headers.get('www-authenticate')).toMatch(/^Negotiate \S+$/);
    const replay = await send();
    expect(replay.status).toBe(403);
    const last = (await gateway.requests()).at(-1);
    expect(last?.reason).toMatch(/^GSSException: .*Request is a replay/);
  });

  it('accepts its own hadoop.auth cookie without a token and rejects a tampered one', async () => {
    const res = await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret/x`);
    const cookie = header(res, 'set-cookie')!.split(';')[0]!;
    const viaCookie = await fetch(`${gateway.url}/secret`, { method: 'DELETE', headers: { Cookie: cookie } });
    expect([200, 404]).toContain(viaCookie.status);
    expect((await gateway.requests()).at(-1)).toMatchObject({ authVia: 'cookie', principal: 'alice@OZS3.TEST' });
    const tampered = await fetch(`${gateway.url}/secret`, {
      method: 'DELETE',
      headers: { Cookie: cookie.replace('u=alice', 'u=admin') },
    });
    expect(tampered.status).toBe(401);
    expect(tampered.statusText).toMatch(/SignerException: Invalid signature/);
  });

  it('routes like Jetty/Jersey: other paths 404, other methods 405', async () => {
    const other = await curl(emptyCcache, [`${gateway.url}/secrets`]);
    expect(other.status).toBe(404);
    const get = await negotiate(aliceCcache, 'GET', `${gateway.url}/secret`);
    expect(get.status).toBe(405);
    expect(header(get, 'allow')).toBe('DELETE,OPTIONS,PUT');
    const deep = await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/a/b`);
    expect(deep.status).toBe(404);
  });

  it('accepts with a host-based acceptor name, and fails Hadoop-style with one it has no key for', async () => {
    await gateway.setOptions({ acceptor: 'HTTP@localhost' });
    try {
      expect((await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/acceptor1`)).status).toBe(200);
      await gateway.setOptions({ acceptor: 'HTTP@elsewhere' });
      const res = await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/acceptor2`);
      expect(res.status).toBe(403);
      expect(res.reason).toMatch(/^GSSException: /);
    } finally {
      await gateway.setOptions({ acceptor: '' });
    }
  });

  it('serves preset secrets with awkward characters, XML-escaped', async () => {
    const awkward = 'q"uo\'te $HOME `id` back\\slash\nnew&line <tag>';
    await gateway.setOptions({ presetSecrets: { weird: awkward } });
    const res = await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/weird`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('<awsSecret>q"uo\'te $HOME `id` back\\slash\nnew&amp;line &lt;tag&gt;</awsSecret>');
    expect((await gateway.secrets())['weird']).toBe(awkward);
  });

  it('models Ozone variants: admin-only, 405 user form, codes in the body', async () => {
    await gateway.setOptions({ adminOnly: true });
    expect((await negotiate(aliceCcache, 'PUT', `${gateway.url}/secret`)).status).toBe(403);
    await gateway.setOptions({ adminOnly: false, userForm405: true });
    expect((await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/carol`)).status).toBe(405);
    await gateway.setOptions({ userForm405: false, errorCodeIn: 'body' });
    const res = await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/bob`);
    expect(res.statusLines.at(-1)).toBe('HTTP/1.1 400 Bad Request');
    expect(res.body).toBe('S3_SECRET_ALREADY_EXISTS');
    await gateway.setOptions({ errorCodeIn: 'reason' });
  });

  it('answers quickly per request', async () => {
    await gateway.reset();
    const t0 = performance.now();
    const n = 10;
    for (let i = 0; i < n; i++) await negotiate(adminCcache, 'PUT', `${gateway.url}/secret/u${i}`);
    const perCurl = (performance.now() - t0) / n;
    const served = (await gateway.requests()).filter((r) => r.status === 200);
    const avgServer = served.reduce((a, r) => a + r.durationMs, 0) / served.length;
    console.info(
      `per curl --negotiate call: ${perCurl.toFixed(1)} ms; server time per authenticated request: ${avgServer.toFixed(2)} ms`,
    );
    expect(served).toHaveLength(n);
    expect(perCurl).toBeLessThan(1_000);
  });
});

describe('failure modes and cleanup', () => {
  it('answers 403 with GSSException text for a ticket to a principal not in the keytab, and leaves no orphans', async () => {
    let kdcPid: number;
    let gatewayPid: number;
    let dir: string;
    {
      await using other = await startRealm({ name: 'OTHER.TEST' });
      await other.addPrincipal('carol', { password: 'carol-pw' });
      // The KDC knows HTTP/localhost, so curl gets a ticket; the gateway's keytab lacks its key.
      await other.addPrincipal('HTTP/localhost', { randkey: true });
      const cc = await other.kinit('carol', { password: 'carol-pw' });
      await using gw = await startGateway(other, { servicePrincipals: ['HTTP/elsewhere'] });
      kdcPid = other.kdcPid;
      gatewayPid = gw.pid;
      dir = other.dir;
      const res = await new Promise<string>((resolve) => {
        execFile(
          'curl',
          ['-s', '-i', '--negotiate', '-u', ':', '-X', 'PUT', `${gw.url}/secret`],
          { env: withEnv(other, { KRB5CCNAME: cc }) },
          (_e, stdout) => resolve(stdout),
        );
      });
      expect(res).toMatch(/^HTTP\/1\.1 403 GSSException: /m);
      const reason = (await gw.requests()).at(-1)?.reason;
      console.info(`403 reason for a key missing from the keytab: ${reason}`);
      expect(alive(kdcPid)).toBe(true);
      expect(alive(gatewayPid)).toBe(true);
    }
    expect(alive(kdcPid)).toBe(false);
    expect(alive(gatewayPid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it('runs standalone with options from argv and prints "listening <port>"', async () => {
    const keytab = gateway.keytab;
    const child = spawn(process.execPath, [GATEWAY_SERVER_PATH, JSON.stringify({ admins: ['admin'] })], {
      env: withEnv(realm, { KRB5_KTNAME: `FILE:${keytab}` }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (d: string) => {
          const m = /listening (\d+)/.exec(d);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`exited ${String(code)}`)));
      });
      const res = await negotiate(adminCcache, 'PUT', `http://localhost:${port}/secret/standalone`);
      expect(res.body).toContain('<awsAccessKey>standalone</awsAccessKey>');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    expect(alive(child.pid!)).toBe(false);
  });
});
