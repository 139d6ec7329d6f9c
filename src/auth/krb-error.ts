/**
 * A KRB-ERROR (RFC 4120 §5.9.1) found in a server's Negotiate token: MIT's acceptor (Apache's
 * mod_auth_gssapi, the kerberos package's server side) sends one in the 401's WWW-Authenticate
 * when it cannot accept the client's token — clock skew, a key version it lacks, a principal it
 * does not hold. Only the fields a cause needs are read, with a small bounded DER reader.
 */

export interface KrbError {
  code: number;
  /** RFC 4120's name for the code, e.g. KRB_AP_ERR_SKEW. */
  name: string;
  /** The server's time when it failed (for clock skew), if present. */
  serverTime?: Date | undefined;
  /** e-text, if the server sent one. */
  text?: string | undefined;
}

const NAMES: Record<number, string> = {
  6: 'KDC_ERR_C_PRINCIPAL_UNKNOWN',
  7: 'KDC_ERR_S_PRINCIPAL_UNKNOWN',
  14: 'KDC_ERR_ETYPE_NOSUPP',
  31: 'KRB_AP_ERR_BAD_INTEGRITY',
  32: 'KRB_AP_ERR_TKT_EXPIRED',
  33: 'KRB_AP_ERR_TKT_NYV',
  34: 'KRB_AP_ERR_REPEAT',
  35: 'KRB_AP_ERR_NOT_US',
  36: 'KRB_AP_ERR_BADMATCH',
  37: 'KRB_AP_ERR_SKEW',
  38: 'KRB_AP_ERR_BADADDR',
  39: 'KRB_AP_ERR_BADVERSION',
  40: 'KRB_AP_ERR_MSG_TYPE',
  41: 'KRB_AP_ERR_MODIFIED',
  42: 'KRB_AP_ERR_BADORDER',
  44: 'KRB_AP_ERR_BADKEYVER',
  45: 'KRB_AP_ERR_NOKEY',
  60: 'KRB_ERR_GENERIC',
};

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** One DER element at `at`, or undefined when the bytes do not hold one (bounded by `limit`). */
function readTlv(bytes: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = bytes[at]!;
  let length = bytes[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || start + count > limit) return undefined;
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | bytes[start + i]!;
    start += count;
  }
  const end = start + length;
  return end <= limit ? { tag, start, end } : undefined;
}

function children(bytes: Uint8Array, tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = tlv.start; at < tlv.end;) {
    const child = readTlv(bytes, at, tlv.end);
    if (!child) break;
    out.push(child);
    at = child.end;
  }
  return out;
}

function integer(bytes: Uint8Array, tlv: Tlv | undefined): number | undefined {
  if (!tlv || tlv.tag !== 0x02 || tlv.end - tlv.start > 4) return undefined;
  let n = bytes[tlv.start]! & 0x80 ? -1 : 0;
  for (let i = tlv.start; i < tlv.end; i++) n = (n << 8) | bytes[i]!;
  return n;
}

function text(bytes: Uint8Array, tlv: Tlv | undefined): string | undefined {
  return tlv ? Buffer.from(bytes.subarray(tlv.start, tlv.end)).toString('utf8') : undefined;
}

/** The explicit [n] field's inner element. */
function field(bytes: Uint8Array, fields: Tlv[], n: number): Tlv | undefined {
  const tagged = fields.find((f) => f.tag === (0xa0 | n));
  return tagged ? readTlv(bytes, tagged.start, tagged.end) : undefined;
}

/** The KRB-ERROR inside a Negotiate token (raw, or wrapped in SPNEGO / a GSS krb5 token), if any. */
export function findKrbError(token: Uint8Array): KrbError | undefined {
  // [APPLICATION 30] SEQUENCE: scan for its tag rather than unwrap each envelope kind.
  for (let at = 0; at < token.length; at++) {
    if (token[at] !== 0x7e) continue;
    const app = readTlv(token, at, token.length);
    const seq = app && readTlv(token, app.start, app.end);
    if (!seq || seq.tag !== 0x30) continue;
    const fields = children(token, seq);
    const pvno = integer(token, field(token, fields, 0));
    const msgType = integer(token, field(token, fields, 1));
    const code = integer(token, field(token, fields, 6));
    if (pvno !== 5 || msgType !== 30 || code === undefined) continue;
    const stime = text(token, field(token, fields, 4));
    const parsed = stime && /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(stime);
    return {
      code,
      name: NAMES[code] ?? `error ${code}`,
      serverTime: parsed
        ? new Date(Date.UTC(+parsed[1]!, +parsed[2]! - 1, +parsed[3]!, +parsed[4]!, +parsed[5]!, +parsed[6]!))
        : undefined,
      text: text(token, field(token, fields, 11)),
    };
  }
  return undefined;
}

/** The KRB-ERROR in a `WWW-Authenticate: Negotiate <token>` header, if the server sent one. */
export function krbErrorFromChallenge(token: string | undefined): KrbError | undefined {
  if (!token) return undefined;
  const bytes = Buffer.from(token, 'base64');
  return bytes.length > 0 && bytes.length < 64 * 1024 ? findKrbError(bytes) : undefined;
}
