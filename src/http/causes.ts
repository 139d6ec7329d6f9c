/**
 * Network causes, worded once: what a failed HTTP exchange (refused, DNS, TLS, proxy, reset,
 * timeout, not HTTP at all) means and what to do about it. The REST transport and `ozs3 doctor`
 * both use these.
 */
import { NetworkError, Ozs3Error, ResponseError, sanitizeText } from '../errors.js';

const TLS_CODES: Record<string, [string, string]> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: ['the server certificate is self-signed', 'trust it with --cacert FILE (PEM)'],
  SELF_SIGNED_CERT_IN_CHAIN: [
    'the server certificate chains to an untrusted self-signed CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: [
    'the server certificate was issued by an unknown CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: [
    'the server certificate was issued by an unknown CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  UNABLE_TO_GET_ISSUER_CERT: [
    'the server certificate was issued by an unknown CA',
    'trust the CA with --cacert FILE or NODE_EXTRA_CA_CERTS',
  ],
  CERT_HAS_EXPIRED: [
    'the server certificate has expired',
    "the gateway needs a renewed certificate (or this machine's clock is wrong)",
  ],
  CERT_NOT_YET_VALID: ['the server certificate is not valid yet', 'check the clock here and on the gateway'],
  ERR_TLS_CERT_ALTNAME_INVALID: [
    "the server certificate does not match the endpoint's host name",
    'use the host name the certificate was issued for',
  ],
};

/** What a Hadoop IPC server (the OzoneManager's RPC port) answers to HTTP: GET gets a 404 text, others an RPC error. */
export const HADOOP_IPC = /HTTP request to a Hadoop IPC port|org\.apache\.hadoop\.ipc|Server IPC version/;

/** --endpoint names a Hadoop RPC port: most likely the OzoneManager's, which --om speaks. */
export function hadoopRpcPort(endpoint: URL, cause?: unknown): ResponseError {
  return new ResponseError(
    'HADOOP_RPC_PORT',
    `${endpoint.host} is a Hadoop RPC port, not the S3 Gateway's secret endpoint (it answered as Hadoop IPC does)`,
    {
      hint: `if it is the OzoneManager, use --om ${endpoint.host} instead of --endpoint; the gateway's secret endpoint is on 19878/19879 (Ozone 2.x) or 9878/9879 (1.4)`,
      cause,
    },
  );
}

export const PROXY_HINT = 'check HTTPS_PROXY / HTTP_PROXY, or exempt the gateway with NO_PROXY';

export function mapNetworkError(error: unknown, endpoint: URL, timedOut: boolean, timeoutMs: number): Ozs3Error {
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.cause?.code ?? err?.code ?? '';
  const where = endpoint.host;
  if (timedOut || /TIMEOUT/.test(code) || (error as Error)?.name === 'TimeoutError') {
    return new NetworkError('TIMEOUT', `no complete answer from ${where} within ${timeoutMs / 1000} s`, {
      hint: 'raise --timeout, or check the network path to the gateway',
      cause: error,
    });
  }
  const tls = TLS_CODES[code];
  if (tls) {
    // Node's host-name check names what the certificate is for: say it, the fix is to use one of those.
    const names = (error as { cert?: { subjectaltname?: string } })?.cert?.subjectaltname;
    const detail = code === 'ERR_TLS_CERT_ALTNAME_INVALID' && names ? `; it is for ${sanitizeText(names)}` : '';
    return new NetworkError(`TLS_${code}`, `TLS to ${where} failed: ${tls[0]} (${code}${detail})`, {
      hint: tls[1],
      cause: error,
    });
  }
  if (code === 'ECONNREFUSED') {
    // Through HTTP(S)_PROXY the refused connection is the proxy's: name it, not the endpoint.
    const refused = (err.cause ?? err) as { address?: string; port?: number };
    const endpointPort = Number(endpoint.port || (endpoint.protocol === 'https:' ? 443 : 80));
    if (refused.port !== undefined && refused.port !== endpointPort) {
      return new NetworkError(
        'ECONNREFUSED',
        `connection to the proxy ${refused.address ?? ''}:${refused.port} refused`,
        { hint: PROXY_HINT, cause: error },
      );
    }
    return new NetworkError('ECONNREFUSED', `connection to ${where} refused`, {
      hint: 'is the S3 Gateway running, and is this its secret endpoint port?',
      cause: error,
    });
  }
  // undici's ProxyAgent: a CONNECT answered with another status than 200, or a 407 when forwarding.
  const proxyStatus = /^Proxy (?:response \((\d{3})\)|Authentication Required \((407)\))/.exec(err?.message ?? '');
  if (proxyStatus) {
    const status = proxyStatus[1] ?? proxyStatus[2];
    return new NetworkError('PROXY', `the proxy did not connect ozs3 to ${where} (proxy status ${status})`, {
      hint:
        status === '407'
          ? 'the proxy wants credentials: put them in the proxy URL, http://user:password@proxy:port'
          : PROXY_HINT,
      cause: error,
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new NetworkError('DNS', `cannot resolve host ${endpoint.hostname} (${code})`, {
      hint: 'check the host name in --endpoint and DNS',
      cause: error,
    });
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') {
    const how = /closed/i.test(err?.message ?? '') ? 'closed' : 'reset';
    return new NetworkError('ECONNRESET', `the connection to ${where} was ${how} before the answer was complete`, {
      cause: error,
    });
  }
  // Hadoop's IPC server answers a request that is not Hadoop RPC with a framed RPC error naming itself.
  const unparsed = (error as { data?: unknown })?.data;
  if ((error as Error)?.name === 'HTTPParserError' && typeof unparsed === 'string' && HADOOP_IPC.test(unparsed)) {
    return hadoopRpcPort(endpoint, error);
  }
  // undici's llhttp errors carry no code, only their name, and llhttp's reason in parentheses.
  if ((error as Error)?.name === 'HTTPParserError' || code === 'UND_ERR_HEADERS_OVERFLOW' || /^HPE_/.test(code)) {
    const why = code || /\(([^()]+)\)$/.exec(err?.message ?? '')?.[1] || 'unparseable';
    return new ResponseError('MALFORMED_HTTP', `the answer from ${where} is not valid HTTP (${sanitizeText(why)})`, {
      hint:
        endpoint.protocol === 'http:'
          ? 'if the gateway serves https on this port, use https:// in --endpoint'
          : undefined,
      cause: error,
    });
  }
  if (/^(ERR_TLS|ERR_SSL|EPROTO)/.test(code) || /SSL|TLS/i.test(err?.cause?.message ?? err?.message ?? '')) {
    return new NetworkError('TLS_ERROR', `TLS to ${where} failed (${code || sanitizeText(err?.message ?? '')})`, {
      hint:
        endpoint.protocol === 'https:'
          ? 'is the endpoint really https? try http:// if the gateway serves plain HTTP'
          : undefined,
      cause: error,
    });
  }
  return new NetworkError(
    code || 'NETWORK',
    `request to ${where} failed: ${sanitizeText(err?.cause?.message ?? err?.message ?? String(error))}`,
    {
      cause: error,
    },
  );
}
