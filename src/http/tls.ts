/** The endpoint's TLS trust, built from the plan the same way for the commands and `doctor`. */
import { readFile } from 'node:fs/promises';
import { LocalFileError } from '../errors.js';
import type { TlsPlan } from '../plan/plan.js';

export interface TlsOptions {
  ca?: string[];
  rejectUnauthorized?: boolean;
}

/** The --cacert file: readable, and holding at least one PEM certificate (else TLS would fail later, obscurely). */
async function readCaFile(path: string, shown: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new LocalFileError('CACERT_UNREADABLE', `cannot read --cacert file ${shown} (${code})`, { cause: error });
  }
  const { X509Certificate } = await import('node:crypto');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const parses = (block: string) => {
    try {
      return Boolean(new X509Certificate(block));
    } catch {
      return false;
    }
  };
  if (!blocks.some(parses)) {
    throw new LocalFileError('CACERT_INVALID', `the --cacert file ${shown} holds no PEM certificate`, {
      hint: 'give the CA certificate as PEM (-----BEGIN CERTIFICATE-----); from DER: openssl x509 -inform der -in ca.der -out ca.pem',
    });
  }
  return pem;
}

/** NODE_EXTRA_CA_CERTS as Node itself treats it: used when readable; Node has already warned when not. */
async function readExtraCaCerts(path: string | undefined): Promise<string[]> {
  if (!path) return [];
  try {
    return [await readFile(path, 'utf8')];
  } catch {
    return [];
  }
}

/**
 * `--cacert` adds to the system roots and NODE_EXTRA_CA_CERTS (setting `ca` would otherwise replace
 * both); `--insecure` stops verification. A bad --cacert is exit 9.
 */
export async function resolveTlsOptions(tls: TlsPlan): Promise<TlsOptions> {
  const options: TlsOptions = {};
  if (tls.cacert !== undefined) {
    const { rootCertificates } = await import('node:tls');
    const cacert = await readCaFile(tls.cacert.value, tls.cacert.value);
    options.ca = [...rootCertificates, ...(await readExtraCaCerts(tls.extraCaCerts)), cacert];
  }
  if (tls.insecure) options.rejectUnauthorized = false;
  return options;
}
