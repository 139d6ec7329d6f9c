/**
 * Private-CA TLS with the built CLI: --cacert and NODE_EXTRA_CA_CERTS make it work; without them,
 * or with a bad certificate, it fails with exit 7 naming the cause and the fix, and the untrusted
 * server never receives a request (so never a Negotiate token).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, type Realm } from '../support/realm.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';
import {
  GOOD_OUTPUT,
  checkCleanFailure,
  prepareClientRealm,
  startHostileServer,
  type HostileServer,
} from '../support/hostile-server.js';
import { createTestPki, type ServerCert, type TestPki } from '../support/tls.js';

let realm: Realm;
let env: Record<string, string>;
let pki: TestPki;

beforeAll(async () => {
  assertBuilt();
  [realm, pki] = await Promise.all([startRealm(), createTestPki()]);
  env = await prepareClientRealm(realm);
});

afterAll(async () => {
  await realm?.stop();
  pki?.close();
});

async function over(
  cert: ServerCert,
  args: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<{ r: CliResult; server: HostileServer }> {
  const server = await startHostileServer(undefined, { tls: cert });
  try {
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, ...args], {
      env: { ...env, ...extraEnv },
    });
    return { r, server };
  } finally {
    await server.close();
  }
}

describe('a private CA', () => {
  it('works with --cacert', async () => {
    const { r, server } = await over(pki.certs.localhost, ['--cacert', pki.caFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
    // The scripted server makes no mutual-authentication token; that flag's warning is the only line.
    expect(r.stderr).toBe(
      'ozs3: warning: --no-mutual-auth: answers without a mutual-authentication token are accepted\n',
    );
    expect(server.requests[0]?.headers.authorization).toMatch(/^Negotiate /);
  });

  it('works with NODE_EXTRA_CA_CERTS', async () => {
    const { r } = await over(pki.certs.localhost, [], { NODE_EXTRA_CA_CERTS: pki.caFile });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
  });

  it('honours NODE_EXTRA_CA_CERTS alongside a --cacert for another CA', async () => {
    const { r } = await over(pki.certs.localhost, ['--cacert', pki.otherCaFile], { NODE_EXTRA_CA_CERTS: pki.caFile });
    expect(r.code, r.stderr).toBe(0);
  });

  it('works with --cacert naming a relative path', async () => {
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--cacert', 'ca.pem'], {
      env,
      cwd: pki.dir,
    });
    expect(r.code, r.stderr).toBe(0);
  });

  it('fails without them: exit 7 naming the unknown CA and --cacert, and sends nothing', async () => {
    const { r, server } = await over(pki.certs.localhost);
    const message = checkCleanFailure(r, 7);
    expect(message).toMatch(/unknown CA/);
    expect(r.stderr).toMatch(/^hint: .*--cacert/m);
    expect(server.requests).toEqual([]);
  });

  it('fails when the server sends its CA along but it is not trusted', async () => {
    const { r, server } = await over(pki.certs.localhostWithChain);
    expect(checkCleanFailure(r, 7)).toMatch(/untrusted self-signed CA/);
    expect(r.stderr).toMatch(/^hint: .*--cacert/m);
    expect(server.requests).toEqual([]);
  });

  it('fails when --cacert names another CA', async () => {
    const { r } = await over(pki.certs.localhost, ['--cacert', pki.otherCaFile]);
    expect(checkCleanFailure(r, 7)).toMatch(/unknown CA/);
  });
});

describe('bad server certificates', () => {
  it('self-signed: exit 7 saying so, with the --cacert fix', async () => {
    const { r, server } = await over(pki.certs.selfSigned);
    expect(checkCleanFailure(r, 7)).toMatch(/self-signed/);
    expect(r.stderr).toMatch(/^hint: .*--cacert/m);
    expect(server.requests).toEqual([]);
  });

  it('self-signed but given as --cacert: works', async () => {
    const { r } = await over(pki.certs.selfSigned, ['--cacert', pki.certs.selfSigned.certFile]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('expired: exit 7 naming the expiry, even with the CA trusted', async () => {
    const { r, server } = await over(pki.certs.expired, ['--cacert', pki.caFile]);
    expect(checkCleanFailure(r, 7)).toMatch(/certificate has expired/);
    expect(server.requests).toEqual([]);
  });

  it('wrong host: exit 7 naming the mismatch and the names the certificate is for', async () => {
    const { r, server } = await over(pki.certs.wrongHost, ['--cacert', pki.caFile]);
    expect(checkCleanFailure(r, 7)).toMatch(/does not match the endpoint's host name.*DNS:wrong\.example/);
    expect(server.requests).toEqual([]);
  });

  it('is never retried', async () => {
    const { server } = await over(pki.certs.selfSigned);
    expect(server.connections).toBe(1);
  });
});

describe('--insecure', () => {
  it('connects to a self-signed server, with a warning on stderr', async () => {
    const { r } = await over(pki.certs.selfSigned, ['--insecure']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
    expect(r.stderr).toMatch(/^ozs3: warning: --insecure/m);
  });

  it('still fails on a plain-HTTP port, and says to try http://', async () => {
    await using plain = await startHostileServer();
    const r = await runCli(
      ['getsecret', '--endpoint', `https://localhost:${plain.port}`, '--insecure', '--retries', '0', '--timeout', '5'],
      { env },
    );
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/TLS to localhost:\d+ failed/);
    expect(r.stderr).toMatch(/hint: .*http:\/\//);
  });
});

describe('--cacert problems are local-file errors (exit 9), found before anything is sent', () => {
  it('a missing file', async () => {
    const { r, server } = await over(pki.certs.localhost, ['--cacert', join(pki.dir, 'nope.pem')]);
    expect(checkCleanFailure(r, 9)).toMatch(/cannot read --cacert file .*nope\.pem \(ENOENT\)/);
    expect(server.connections).toBe(0);
  });

  it('a file that holds no PEM certificate', async () => {
    const file = join(pki.dir, 'not-a-cert.pem');
    writeFileSync(file, 'hello\n');
    const { r, server } = await over(pki.certs.localhost, ['--cacert', file]);
    expect(checkCleanFailure(r, 9)).toMatch(/no PEM certificate/);
    expect(r.stderr).toMatch(/^hint: /m);
    expect(server.connections).toBe(0);
  });

  it('a private key given by mistake', async () => {
    const file = join(pki.dir, 'key-instead.pem');
    writeFileSync(file, pki.certs.localhost.key);
    const { r } = await over(pki.certs.localhost, ['--cacert', file]);
    expect(checkCleanFailure(r, 9)).toMatch(/no PEM certificate/);
  });
});
