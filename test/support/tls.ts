/**
 * A throwaway private PKI made with the openssl CLI at run time (nothing committed): a CA, and
 * server certificates that are good for localhost, expired, for the wrong host, or self-signed.
 *
 *   await using pki = await createTestPki();
 *   startHostileServer(handler, { tls: pki.certs.localhost });
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ServerCert {
  /** PEM private key. */
  key: string;
  /** PEM certificate chain as the server sends it. */
  cert: string;
  /** Path of the leaf certificate alone. */
  certFile: string;
}

export interface TestPki extends AsyncDisposable {
  readonly dir: string;
  /** Path of the CA certificate (PEM): what --cacert / NODE_EXTRA_CA_CERTS get. */
  readonly caFile: string;
  readonly certs: {
    /** Signed by the CA for DNS:localhost and IP:127.0.0.1, leaf only. */
    localhost: ServerCert;
    /** The same, sending the CA along (leaf + CA). */
    localhostWithChain: ServerCert;
    /** Signed by the CA for localhost, valid in 2020 only. */
    expired: ServerCert;
    /** Signed by the CA for wrong.example only. */
    wrongHost: ServerCert;
    /** Self-signed, for localhost. */
    selfSigned: ServerCert;
  };
  /** A second, unrelated CA (for "trusts some CA, just not this one"). */
  readonly otherCaFile: string;
  close(): void;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 20_000 }, (error, _stdout, stderr) => {
      if (!error) resolve();
      else if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error('openssl not found: install it (apt-get install openssl); the TLS tests need it'));
      else reject(new Error(`openssl ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
    });
  });
}

// EC keys: a fraction of the time RSA generation takes.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

const LEAF_EXTENSIONS = (san: string) =>
  `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`;

/** `openssl ca` config: the only openssl 3.0 way to set explicit validity dates (for the expired cert). */
const CA_CONFIG = `[ca]
default_ca = test_ca
[test_ca]
dir = .
database = ./index.txt
new_certs_dir = ./issued
serial = ./serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
`;

export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'ozs3-pki-'));
  try {
    await mkdir(join(dir, 'issued'));
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG);

    const makeCa = (name: string, cn: string) =>
      openssl(
        [
          'req',
          '-x509',
          ...NEW_KEY,
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.pem`,
          '-days',
          '2',
          '-subj',
          `/CN=${cn}`,
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        dir,
      );
    await makeCa('ca', 'ozs3 test CA');
    await makeCa('other-ca', 'some other CA');

    const issue = async (name: string, san: string, dates?: { start: string; end: string }): Promise<void> => {
      writeFileSync(join(dir, `${name}.ext`), LEAF_EXTENSIONS(san));
      await openssl(
        ['req', '-new', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
        dir,
      );
      if (dates) {
        await openssl(
          [
            'ca',
            '-batch',
            '-notext',
            '-config',
            'ca.cnf',
            '-cert',
            'ca.pem',
            '-keyfile',
            'ca.key',
            '-in',
            `${name}.csr`,
            '-out',
            `${name}.pem`,
            '-extfile',
            `${name}.ext`,
            '-startdate',
            dates.start,
            '-enddate',
            dates.end,
          ],
          dir,
        );
      } else {
        await openssl(
          [
            'x509',
            '-req',
            '-in',
            `${name}.csr`,
            '-CA',
            'ca.pem',
            '-CAkey',
            'ca.key',
            '-CAserial',
            'x509.srl',
            '-CAcreateserial',
            '-days',
            '2',
            '-sha256',
            '-extfile',
            `${name}.ext`,
            '-out',
            `${name}.pem`,
          ],
          dir,
        );
      }
    };
    await issue('localhost', 'DNS:localhost,IP:127.0.0.1');
    await issue('expired', 'DNS:localhost,IP:127.0.0.1', { start: '20200101000000Z', end: '20200102000000Z' });
    await issue('wrong-host', 'DNS:wrong.example');
    await openssl(
      [
        'req',
        '-x509',
        ...NEW_KEY,
        '-keyout',
        'self-signed.key',
        '-out',
        'self-signed.pem',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-addext',
        'basicConstraints=critical,CA:FALSE',
      ],
      dir,
    );

    const read = (file: string) => readFileSync(join(dir, file), 'utf8');
    const cert = (name: string, chain = false): ServerCert => ({
      key: read(`${name}.key`),
      cert: chain ? read(`${name}.pem`) + read('ca.pem') : read(`${name}.pem`),
      certFile: join(dir, `${name}.pem`),
    });
    const pki: TestPki = {
      dir,
      caFile: join(dir, 'ca.pem'),
      otherCaFile: join(dir, 'other-ca.pem'),
      certs: {
        localhost: cert('localhost'),
        localhostWithChain: cert('localhost', true),
        expired: cert('expired'),
        wrongHost: cert('wrong-host'),
        selfSigned: cert('self-signed'),
      },
      close() {
        rmSync(dir, { recursive: true, force: true });
      },
      async [Symbol.asyncDispose]() {
        pki.close();
      },
    };
    return pki;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
