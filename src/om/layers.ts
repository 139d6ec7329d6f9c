/**
 * The RFC 4752 (SASL GSSAPI) security-layer negotiation, built here because the `kerberos` addon
 * always answers "no security layer". After the GSS context is up the server sends a wrapped
 * 4-byte offer (bitmask of layers, 3-byte max buffer); the client unwraps it and answers with a
 * wrapped 4-byte choice (one layer, its own max buffer), without an authorization id, as the JDK's
 * GssKrb5Client does for Hadoop. Both messages are wrapped without confidentiality (RFC 4752 §3.1).
 */
import { AuthError } from '../errors.js';

/** hadoop.rpc.protection's names for the three layers. */
export type Protection = 'authentication' | 'integrity' | 'privacy';

export const LAYER_NONE = 1;
export const LAYER_INTEGRITY = 2;
export const LAYER_PRIVACY = 4;

const LAYER_OF: Record<Protection, number> = {
  authentication: LAYER_NONE,
  integrity: LAYER_INTEGRITY,
  privacy: LAYER_PRIVACY,
};

/** Strongest first: the order the client prefers when it may choose. */
const PREFERENCE: Protection[] = ['privacy', 'integrity', 'authentication'];

/** What ozs3 can receive in one wrapped token; the JDK client announces the same 64 KiB. */
export const CLIENT_MAX_BUFFER = 65536;

export interface LayerOffer {
  /** The layers the server allows, strongest first. */
  offered: Protection[];
  /** The largest wrapped token the server accepts (bytes). */
  maxBuffer: number;
}

/** `hadoop.rpc.protection` as written (comma list, any case); undefined or empty: any. */
export function parseProtection(value: string | readonly Protection[] | undefined): Protection[] | undefined {
  if (value === undefined) return undefined;
  const names = typeof value === 'string' ? value.split(',') : [...value];
  const result: Protection[] = [];
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (name !== 'authentication' && name !== 'integrity' && name !== 'privacy') {
      throw new AuthError('OM_PROTECTION_INVALID', `invalid hadoop.rpc.protection '${raw.trim()}'`, {
        hint: 'use authentication, integrity or privacy (or a comma-separated list of them)',
      });
    }
    if (!result.includes(name)) result.push(name);
  }
  return result.length > 0 ? result : undefined;
}

export function parseLayerOffer(bytes: Uint8Array): LayerOffer {
  if (bytes.length !== 4) {
    throw new AuthError(
      'OM_SASL_LAYER_OFFER',
      `the OM's SASL security-layer offer has ${bytes.length} bytes instead of 4`,
    );
  }
  const mask = bytes[0]!;
  const offered = PREFERENCE.filter((p) => (mask & LAYER_OF[p]) !== 0);
  if (offered.length === 0) {
    throw new AuthError(
      'OM_SASL_LAYER_OFFER',
      `the OM's SASL security-layer offer names no layer (bitmask 0x${mask.toString(16)})`,
    );
  }
  return { offered, maxBuffer: (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]! };
}

/** The strongest layer both the server offers and `allowed` permits (undefined: any). */
export function chooseLayer(offer: LayerOffer, allowed: readonly Protection[] | undefined): Protection {
  const choice = offer.offered.find((p) => allowed === undefined || allowed.includes(p));
  if (choice === undefined) {
    throw new AuthError(
      'OM_PROTECTION_MISMATCH',
      `the OM requires ${offer.offered.join(' or ')} but hadoop.rpc.protection here allows only ${allowed!.join(', ')}`,
      { hint: "set hadoop.rpc.protection to the OM's value (or leave it unset to accept what the OM requires)" },
    );
  }
  if (choice !== 'authentication' && offer.maxBuffer < 64) {
    throw new AuthError(
      'OM_SASL_LAYER_OFFER',
      `the OM offers ${choice} with a maximum message size of ${offer.maxBuffer} bytes`,
    );
  }
  return choice;
}

/** The client's 4-byte answer: the chosen layer and the largest token it accepts. */
export function layerChoice(choice: Protection, maxBuffer = CLIENT_MAX_BUFFER): Buffer {
  const bytes = Buffer.alloc(4);
  bytes[0] = LAYER_OF[choice];
  bytes.writeUIntBE(Math.min(maxBuffer, 0xffffff), 1, 3);
  return bytes;
}

export function wraps(protection: Protection): boolean {
  return protection !== 'authentication';
}
