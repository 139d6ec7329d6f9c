/**
 * Runs OmTestClient.java (JDK SASL/GSSAPI, Hadoop IPC v9) against the OM test server, to self-test
 * the server without ozs3's own client. One JVM per run; it prints one JSON object.
 */
import { execFile } from 'node:child_process';
import { buildOmJava } from '../support/om-server.js';
import { withEnv, type Realm } from '../support/realm.js';

export interface OmClientCall {
  op: 'get' | 'revoke' | 'set' | 'serviceList';
  accessId?: string;
  secret?: string;
  createIfNotExist?: boolean;
  traceID?: string;
  /** Default: consecutive from firstCallId. */
  callId?: number;
  retryCount?: number;
  omClientId?: string;
  methodName?: string;
  declaringClassProtocolName?: string;
  clientProtocolVersion?: number;
}

export interface OmClientScript {
  host?: string;
  port: number;
  /** FILE:… or a path; the client's Kerberos identity. */
  ccache?: string;
  /** Client SASL QOP list, default 'auth-conf,auth-int,auth'. */
  qop?: string;
  header?: { magic?: string; version?: number; serviceClass?: number; auth?: number };
  authMethod?: 'KERBEROS' | 'TOKEN';
  /**
   * Raw GSS-API instead of the JDK SASL client: RFC 4752 by hand, answering the server's layer offer
   * with `layer` (1 none, 2 integrity, 4 privacy) whatever was offered, optionally with an authzid;
   * `conf` forces confidentiality on or off in later wrap tokens (default: on for layer 4).
   */
  gss?: { layer: 1 | 2 | 4; conf?: boolean; authzid?: string };
  /** protocol: null leaves it out; effectiveUser: null leaves user info out (default: the client principal). */
  context?: { protocol?: string | null; effectiveUser?: string | null };
  skipContext?: boolean;
  /** Hex, 16 bytes; default random. */
  clientId?: string;
  firstCallId?: number;
  calls?: OmClientCall[];
  /** Send every call, then read every answer. */
  pipeline?: boolean;
  /** With a security layer: 'per-frame' (default), 'coalesce' (all frames in one token), 'split' (each frame over two tokens). */
  tokenMode?: 'per-frame' | 'coalesce' | 'split';
  /** Send calls unwrapped even though a layer was negotiated. */
  plaintextAfterLayer?: boolean;
  /** Send a WRAP token of random bytes after the handshake. */
  garbageWrap?: boolean;
  ping?: boolean;
  readUntilClose?: boolean;
  readTimeoutMs?: number;
}

export interface OmClientResponse {
  callId: number;
  status: 'SUCCESS' | 'ERROR' | 'FATAL';
  serverIpcVersionNum: number | null;
  clientId: string | null;
  retryCount: number | null;
  exceptionClassName?: string;
  errorMsg?: string;
  errorDetail?: string;
  om?: {
    cmdType: string;
    status: string;
    success: boolean | null;
    message: string | null;
    traceID: string | null;
    leaderOMNodeId: string | null;
    kerberosID?: string;
    awsSecret?: string;
    accessId?: string;
    secretKey?: string;
  };
}

export interface OmClientResult {
  clientPrincipal: string | null;
  clientId: string;
  auths?: Array<{
    method: string;
    mechanism: string;
    protocol: string | null;
    serverId: string | null;
    challenge: string | null;
  }>;
  saslStates: string[];
  qop?: string;
  wrapped?: boolean;
  /** Raw GSS mode: the server's layer bitmask. */
  offeredLayers?: number;
  responses: OmClientResponse[];
  fatal?: OmClientResponse;
  error?: string;
  stack?: string;
  closed?: boolean;
  rawText?: string;
  rawHex?: string;
  wrapTokensIn?: number;
  ms: number;
}

export async function runOmTestClient(realm: Realm, script: OmClientScript): Promise<OmClientResult> {
  const build = await buildOmJava();
  const args = [
    ...build.jvmArgs([`-Djava.security.krb5.conf=${realm.env['KRB5_CONFIG']}`]),
    'ozs3.omtest.OmTestClient',
  ];
  const started = performance.now();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      build.java,
      args,
      {
        env: withEnv(realm, { OZS3_OM_CLIENT: JSON.stringify({ host: '127.0.0.1', ...script }) }),
        timeout: 60_000,
        maxBuffer: 8 * 1024 * 1024,
      },
      (error, out, err) => (error ? reject(new Error(`OmTestClient failed: ${error.message}\n${err}`)) : resolve(out)),
    );
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  return { ...(JSON.parse(line) as Omit<OmClientResult, 'ms'>), ms: performance.now() - started };
}
