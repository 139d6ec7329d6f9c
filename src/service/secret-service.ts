/**
 * The seam between commands and transports. A command talks to a SecretService chosen by the
 * connection plan: the S3 Gateway's REST endpoint (SPNEGO) or the OzoneManager's Hadoop RPC
 * (SASL/GSSAPI). Every method acts for one user (undefined: the caller's own access id) and throws
 * an Ozs3Error (src/errors.ts) whose exit code follows docs/cli.md.
 */
import type { S3Secret } from '../rest/secret-xml.js';

export type { S3Secret };

export type Transport = 'rest' | 'om';

export interface SecretService {
  readonly transport: Transport;
  /** Creates and returns the secret; SecretExistsError (6) when one exists (Ozone shows it once). */
  getSecret(user: string | undefined): Promise<S3Secret>;
  /** SecretNotFoundError (5) when there is none. */
  revokeSecret(user: string | undefined): Promise<void>;
  /** Replaces an existing secret (OM only; REST has no such request). */
  setSecret(user: string | undefined, secret: string): Promise<S3Secret>;
  /** The caller's principal once the transport has authenticated the server (mutual auth / SASL). */
  readonly authenticatedPrincipal: string | undefined;
  close(): Promise<void>;
}
