/**
 * GSSAPI (MIT libgssapi_krb5) through koffi, for the initiator side of SASL GSSAPI (RFC 4752):
 * import the OM's name, build the security context on koffi's worker threads (it talks to the
 * KDC), then wrap and unwrap on the main thread (pure CPU, so frames stay in write order).
 *
 * Loaded only on the OM path, on first use: koffi and the library cost 10–20 ms. MIT reads
 * KRB5CCNAME / KRB5_CLIENT_KTNAME / KRB5_CONFIG when it first needs them, so the caller sets the
 * environment (keytab login, see auth/kerberos-env.ts) before the first context. The `kerberos`
 * addon cannot be used here: it always negotiates "no security layer" (docs/om-rpc.md).
 */
import type { KoffiFunc, TypeObject } from 'koffi';
import { mapGssError } from '../auth/causes.js';
import { AuthError, ResponseError } from '../errors.js';

type KoffiModule = typeof import('koffi');
type DirectionMarker = ReturnType<KoffiModule['out']>;

/** How the service name is imported: a full Kerberos principal, or GSS host-based `service@host`. */
export type ServiceNameType = 'principal' | 'host-based';

export interface InitiateOptions {
  /** `om/host@REALM` (principal) or `om@host` (host-based). */
  target: string;
  targetType: ServiceNameType;
  /** `--principal`: the initiator credential to use; default: the cache's (or keytab's) default. */
  initiator?: string | undefined;
  /** For error wording only: the keytab the caller logged in from. */
  keytab?: string | undefined;
}

export interface Unwrapped {
  data: Buffer;
  /** Whether the token was encrypted (confidentiality), not only integrity-protected. */
  confidential: boolean;
}

/** One initiator security context. Not safe for concurrent use: await each step. */
export interface GssContext {
  readonly established: boolean;
  /** The flags the context grants (GSS_C_*_FLAG), once established. */
  readonly grantedFlags: number;
  /** Feeds the acceptor's token (none for the first call); returns the next token to send, if any. */
  step(input: Uint8Array | undefined): Promise<Buffer | undefined>;
  wrap(data: Uint8Array, confidential: boolean): Buffer;
  unwrap(token: Uint8Array): Unwrapped;
  /** The largest input whose wrapped token fits in `maxOutput` bytes. */
  wrapSizeLimit(confidential: boolean, maxOutput: number): number;
  /** The authenticated initiator, e.g. `alice@EXAMPLE.COM` (established contexts only). */
  initiatorName(): string;
  dispose(): void;
}

export interface Gss {
  initiate(opts: InitiateOptions): Promise<GssContext>;
}

export const GSS_C_MUTUAL_FLAG = 2;
export const GSS_C_REPLAY_FLAG = 4;
export const GSS_C_SEQUENCE_FLAG = 8;
export const GSS_C_CONF_FLAG = 16;
export const GSS_C_INTEG_FLAG = 32;

const GSS_S_COMPLETE = 0;
const GSS_S_CONTINUE_NEEDED = 1;
/** Routine error: no credentials were supplied, or they are unavailable. */
const GSS_S_NO_CRED = 7 << 16;
/** Supplementary bits of gss_unwrap: duplicate, old, unsequenced or gap token. */
const GSS_S_OUT_OF_ORDER = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
const GSS_C_GSS_CODE = 1;
const GSS_C_MECH_CODE = 2;
const GSS_C_INITIATE = 1;
const GSS_C_QOP_DEFAULT = 0;

// OIDs in DER content form (RFC 2743, RFC 1964).
const OID_KRB5_MECH = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
const OID_NT_HOSTBASED_SERVICE = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
const OID_KRB5_NT_PRINCIPAL_NAME = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];

/** Where MIT's GSSAPI library lives (Linux first; other systems have other ABIs, not supported yet). */
const LIBRARY_NAMES = ['libgssapi_krb5.so.2', 'libgssapi_krb5.so'];
/** koffi's default 128 KiB stack is too small for MIT's KDC exchange on a worker thread. */
const ASYNC_STACK_BYTES = 1024 * 1024;

interface BufferDesc {
  length: number | bigint;
  value: bigint | null;
}

type Ptr = bigint | null;
type Cell<T> = [T];

// The C prototypes, typed for the call sites (koffi's own types are `any`).
interface Fns {
  gss_import_name: KoffiFunc<
    (minor: Cell<number>, name: BufferDesc | { length: number; value: Buffer }, type: Ptr, out: Cell<Ptr>) => number
  >;
  gss_acquire_cred: KoffiFunc<
    (
      minor: Cell<number>,
      name: Ptr,
      time: number,
      mechs: Ptr,
      usage: number,
      out: Cell<Ptr>,
      actual: null,
      rec: null,
    ) => number
  >;
  gss_init_sec_context: KoffiFunc<
    (
      minor: Cell<number>,
      cred: Ptr,
      ctx: Cell<Ptr>,
      target: Ptr,
      mech: Ptr,
      flags: number,
      time: number,
      bindings: null,
      input: { length: number; value: Buffer } | null,
      actualMech: null,
      output: BufferDesc,
      retFlags: Cell<number>,
      timeRec: null,
    ) => number
  >;
  gss_wrap: KoffiFunc<
    (
      minor: Cell<number>,
      ctx: Ptr,
      conf: number,
      qop: number,
      input: { length: number; value: Buffer },
      confState: Cell<number>,
      output: BufferDesc,
    ) => number
  >;
  gss_unwrap: KoffiFunc<
    (
      minor: Cell<number>,
      ctx: Ptr,
      input: { length: number; value: Buffer },
      output: BufferDesc,
      confState: Cell<number>,
      qop: Cell<number>,
    ) => number
  >;
  gss_wrap_size_limit: KoffiFunc<
    (minor: Cell<number>, ctx: Ptr, conf: number, qop: number, maxOut: number, maxIn: Cell<number>) => number
  >;
  gss_inquire_context: KoffiFunc<
    (
      minor: Cell<number>,
      ctx: Ptr,
      src: Cell<Ptr>,
      targ: null,
      life: null,
      mech: null,
      flags: null,
      local: null,
      open: null,
    ) => number
  >;
  gss_display_name: KoffiFunc<(minor: Cell<number>, name: Ptr, out: BufferDesc, type: null) => number>;
  gss_display_status: KoffiFunc<
    (minor: Cell<number>, status: number, type: number, mech: Ptr, msgCtx: Cell<number>, out: BufferDesc) => number
  >;
  gss_release_buffer: KoffiFunc<(minor: Cell<number>, buffer: BufferDesc) => number>;
  gss_release_name: KoffiFunc<(minor: Cell<number>, name: Cell<Ptr>) => number>;
  gss_release_cred: KoffiFunc<(minor: Cell<number>, cred: Cell<Ptr>) => number>;
  gss_delete_sec_context: KoffiFunc<(minor: Cell<number>, ctx: Cell<Ptr>, out: null) => number>;
}

interface Library {
  koffi: KoffiModule;
  fns: Fns;
  krb5Mech: bigint;
  ntHostBased: bigint;
  ntPrincipal: bigint;
}

let loading: Promise<Gss> | undefined;

/** The GSSAPI library, loaded once per process on first call. */
export function loadGss(): Promise<Gss> {
  loading ??= (async () => createGss(await loadLibrary()))();
  return loading;
}

async function loadLibrary(): Promise<Library> {
  let koffi: KoffiModule;
  try {
    const m = (await import('koffi')) as KoffiModule & { default?: KoffiModule };
    koffi = m.default ?? m;
  } catch (error) {
    throw new AuthError('GSSAPI_UNAVAILABLE', 'cannot load koffi, which ozs3 uses to call GSSAPI', {
      hint: 'reinstall ozs3 with its optional dependencies (koffi needs its platform package, e.g. @koromix/koffi-linux-x64)',
      cause: error,
    });
  }
  // Before the first library load, while no async pool exists yet.
  koffi.config({ ...koffi.config(), async_stack_size: ASYNC_STACK_BYTES });
  let lib: ReturnType<KoffiModule['load']> | undefined;
  let lastError: unknown;
  for (const name of LIBRARY_NAMES) {
    try {
      lib = koffi.load(name);
      break;
    } catch (error) {
      lastError = error;
    }
  }
  if (!lib) {
    throw new AuthError('GSSAPI_UNAVAILABLE', `cannot load the MIT Kerberos GSSAPI library (${LIBRARY_NAMES[0]})`, {
      hint: 'install it: apt-get install libgssapi-krb5-2 (Debian/Ubuntu) or dnf install krb5-libs (RHEL/Fedora)',
      cause: lastError,
    });
  }
  const bufferDesc = koffi.struct('ozs3_gss_buffer_desc', { length: 'size_t', value: 'void *' });
  const oidDesc = koffi.struct('ozs3_gss_OID_desc', { length: 'uint32_t', elements: 'void *' });
  const inBuf = koffi.pointer(bufferDesc);
  const outBuf: DirectionMarker = koffi.out(koffi.pointer(bufferDesc));
  const outU32 = koffi.out(koffi.pointer('uint32_t'));
  const outInt = koffi.out(koffi.pointer('int'));
  const outPtr = koffi.out(koffi.pointer('void *'));
  const inoutPtr = koffi.inout(koffi.pointer('void *'));
  const inoutU32 = koffi.inout(koffi.pointer('uint32_t'));
  const u32 = 'uint32_t';
  const ptr = 'void *';
  const fn = <T extends (...args: never[]) => unknown>(name: string, args: (string | TypeObject | DirectionMarker)[]) =>
    lib.func(name, u32, args) as unknown as KoffiFunc<T>;
  const fns: Fns = {
    gss_import_name: fn('gss_import_name', [outU32, inBuf, ptr, outPtr]),
    gss_acquire_cred: fn('gss_acquire_cred', [outU32, ptr, u32, ptr, 'int', outPtr, ptr, ptr]),
    gss_init_sec_context: fn('gss_init_sec_context', [
      outU32,
      ptr,
      inoutPtr,
      ptr,
      ptr,
      u32,
      u32,
      ptr,
      inBuf,
      ptr,
      outBuf,
      outU32,
      ptr,
    ]),
    gss_wrap: fn('gss_wrap', [outU32, ptr, 'int', u32, inBuf, outInt, outBuf]),
    gss_unwrap: fn('gss_unwrap', [outU32, ptr, inBuf, outBuf, outInt, outU32]),
    gss_wrap_size_limit: fn('gss_wrap_size_limit', [outU32, ptr, 'int', u32, u32, outU32]),
    gss_inquire_context: fn('gss_inquire_context', [outU32, ptr, outPtr, ptr, ptr, ptr, ptr, ptr, ptr]),
    gss_display_name: fn('gss_display_name', [outU32, ptr, outBuf, ptr]),
    gss_display_status: fn('gss_display_status', [outU32, u32, 'int', ptr, inoutU32, outBuf]),
    gss_release_buffer: fn('gss_release_buffer', [outU32, inBuf]),
    gss_release_name: fn('gss_release_name', [outU32, inoutPtr]),
    gss_release_cred: fn('gss_release_cred', [outU32, inoutPtr]),
    gss_delete_sec_context: fn('gss_delete_sec_context', [outU32, inoutPtr, ptr]),
  };
  // OIDs in memory that never moves or goes away: async calls read them from worker threads.
  const oid = (bytes: number[]): bigint => {
    const elements = koffi.alloc('uint8_t', bytes.length) as bigint;
    koffi.encode(elements, koffi.array('uint8_t', bytes.length), bytes);
    const desc = koffi.alloc(oidDesc, 1) as bigint;
    koffi.encode(desc, oidDesc, { length: bytes.length, elements });
    return desc;
  };
  return {
    koffi,
    fns,
    krb5Mech: oid(OID_KRB5_MECH),
    ntHostBased: oid(OID_NT_HOSTBASED_SERVICE),
    ntPrincipal: oid(OID_KRB5_NT_PRINCIPAL_NAME),
  };
}

function isError(major: number): boolean {
  return (major & 0xffff0000) !== 0;
}

/** Copies a library-owned buffer into JS memory and releases it. */
function takeBuffer(lib: Library, desc: BufferDesc): Buffer {
  const length = Number(desc.length);
  if (desc.value === null || desc.value === 0n || length === 0) return Buffer.alloc(0);
  const copy = Buffer.from(new Uint8Array(lib.koffi.view(desc.value, length)));
  lib.fns.gss_release_buffer([0], desc);
  return copy;
}

function inputBuffer(data: Uint8Array): { length: number; value: Buffer } {
  // A zero-length buffer still needs a valid pointer for some library versions.
  const value = data.length === 0 ? Buffer.alloc(1) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { length: data.length, value };
}

/** gss_display_status for one code space, all its messages joined. */
function statusText(lib: Library, code: number, type: number): string {
  const parts: string[] = [];
  const messageContext: Cell<number> = [0];
  for (let i = 0; i < 8; i++) {
    const out: BufferDesc = { length: 0, value: null };
    const major = lib.fns.gss_display_status(
      [0],
      code,
      type,
      type === GSS_C_MECH_CODE ? lib.krb5Mech : null,
      messageContext,
      out,
    );
    if (isError(major)) break;
    const text = takeBuffer(lib, out).toString('utf8').trim();
    if (text) parts.push(text);
    if (messageContext[0] === 0) break;
  }
  return parts.join('; ');
}

/**
 * The failure in the form mapGssError reads ("… Minor code may provide more information: <minor>"),
 * with the library's own texts for both codes.
 */
function gssFailure(lib: Library, operation: string, major: number, minor: number): Error {
  const majorText = statusText(lib, major, GSS_C_GSS_CODE) || `major status 0x${major.toString(16)}`;
  const minorText = minor !== 0 ? statusText(lib, minor, GSS_C_MECH_CODE) : '';
  if ((major & 0xff0000) === GSS_S_NO_CRED && minorText) {
    // MIT's minor text for a missing ticket is only "Matching credential not found": keep the major.
    return new Error(`${majorText}: ${minorText}`);
  }
  // MIT's text for GSS_S_FAILURE already ends in "Minor code may provide more information".
  const lead = /Minor code may provide more information$/.test(majorText)
    ? majorText
    : `${majorText}.  Minor code may provide more information`;
  return new Error(`${operation}: ${minorText ? `${lead}: ${minorText}` : majorText}`);
}

/** What the KDC or the library said, as an AuthError naming the OM principal and the fix. */
function initiateError(error: Error, opts: InitiateOptions): AuthError {
  const service = opts.targetType === 'host-based' ? opts.target : opts.target.replace('/', '@');
  const mapped = mapGssError(error, { service, keytab: opts.keytab, principal: opts.initiator });
  if (mapped.code === 'KRB_UNKNOWN_SERVER') {
    const principal = opts.targetType === 'host-based' ? opts.target.replace('@', '/') : opts.target;
    return new AuthError(
      'KRB_UNKNOWN_SERVER',
      `the KDC does not know the OM principal ${principal} (${error.message.replace(/^.*information: /s, '')})`,
      {
        hint: 'name the OM by the host in its principal (ozone.om.address), or set ozone.om.kerberos.principal (om/_HOST@REALM)',
        cause: error,
      },
    );
  }
  return mapped;
}

function callAsync<A extends unknown[]>(
  f: { async: (...args: [...A, (err: unknown, res: number) => void]) => void },
  ...args: A
): Promise<number> {
  return new Promise((resolve, reject) => {
    f.async(...args, (err: unknown, res: number) =>
      err ? reject(err instanceof Error ? err : new Error(JSON.stringify(err))) : resolve(res),
    );
  });
}

function createGss(lib: Library): Gss {
  const { fns } = lib;

  function importName(name: string, type: bigint): bigint {
    const minor: Cell<number> = [0];
    const out: Cell<Ptr> = [null];
    const major = fns.gss_import_name(minor, inputBuffer(Buffer.from(name, 'utf8')), type, out);
    if (isError(major) || out[0] === null) throw gssFailure(lib, `gss_import_name(${name})`, major, minor[0]);
    return out[0];
  }

  function releaseName(name: Ptr): void {
    if (name !== null) fns.gss_release_name([0], [name]);
  }

  return {
    async initiate(opts) {
      let target: Ptr = null;
      let cred: Ptr = null;
      try {
        target = importName(opts.target, opts.targetType === 'principal' ? lib.ntPrincipal : lib.ntHostBased);
        if (opts.initiator) {
          const name = importName(opts.initiator, lib.ntPrincipal);
          try {
            const minor: Cell<number> = [0];
            const out: Cell<Ptr> = [null];
            const major = await callAsync(fns.gss_acquire_cred, minor, name, 0, null, GSS_C_INITIATE, out, null, null);
            if (isError(major) || out[0] === null) {
              throw gssFailure(lib, `gss_acquire_cred(${opts.initiator})`, major, minor[0]);
            }
            cred = out[0];
          } finally {
            releaseName(name);
          }
        }
      } catch (error) {
        releaseName(target);
        if (error instanceof AuthError) throw error;
        throw initiateError(error as Error, opts);
      }
      return createContext(lib, opts, target, cred);
    },
  };
}

function createContext(lib: Library, opts: InitiateOptions, target: bigint, cred: Ptr): GssContext {
  const { fns } = lib;
  let handle: Ptr = null;
  let established = false;
  let grantedFlags = 0;
  let disposed = false;
  const requested = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG;

  const live = (what: string): bigint => {
    if (disposed || handle === null) {
      throw new ResponseError('GSS_NO_CONTEXT', `internal: ${what} without an established Kerberos context`);
    }
    return handle;
  };

  return {
    get established() {
      return established;
    },
    get grantedFlags() {
      return grantedFlags;
    },
    async step(input) {
      if (established)
        throw new AuthError('GSS_ALREADY_ESTABLISHED', 'the OM sent a Kerberos token after the context was complete');
      const minor: Cell<number> = [0];
      const ctx: Cell<Ptr> = [handle];
      const output: BufferDesc = { length: 0, value: null };
      const flags: Cell<number> = [0];
      const inBuf = input === undefined ? null : inputBuffer(input);
      let major: number;
      try {
        major = await callAsync(
          fns.gss_init_sec_context,
          minor,
          cred,
          ctx,
          target,
          lib.krb5Mech,
          requested,
          0,
          null,
          inBuf,
          null,
          output,
          flags,
          null,
        );
      } catch (error) {
        throw new AuthError('GSSAPI_CALL_FAILED', 'the GSSAPI call could not run', { cause: error });
      }
      handle = ctx[0];
      const token = takeBuffer(lib, output);
      if (isError(major)) throw initiateError(gssFailure(lib, 'gss_init_sec_context', major, minor[0]), opts);
      if (major === GSS_S_COMPLETE) {
        established = true;
        grantedFlags = flags[0];
      } else if ((major & GSS_S_CONTINUE_NEEDED) === 0) {
        throw new AuthError('GSS_UNEXPECTED_STATUS', `gss_init_sec_context returned status 0x${major.toString(16)}`);
      }
      return token.length > 0 ? token : undefined;
    },
    wrap(data, confidential) {
      const ctx = live('wrap');
      const minor: Cell<number> = [0];
      const output: BufferDesc = { length: 0, value: null };
      const confState: Cell<number> = [0];
      const major = fns.gss_wrap(
        minor,
        ctx,
        confidential ? 1 : 0,
        GSS_C_QOP_DEFAULT,
        inputBuffer(data),
        confState,
        output,
      );
      const token = takeBuffer(lib, output);
      if (isError(major)) {
        throw new AuthError(
          'GSS_WRAP_FAILED',
          `Kerberos could not protect a message for the OM (${gssFailure(lib, 'gss_wrap', major, minor[0]).message})`,
        );
      }
      if (confidential && confState[0] === 0) {
        throw new AuthError(
          'GSS_NO_CONFIDENTIALITY',
          'Kerberos did not encrypt a message that must be encrypted (privacy)',
        );
      }
      return token;
    },
    unwrap(token) {
      const ctx = live('unwrap');
      const minor: Cell<number> = [0];
      const output: BufferDesc = { length: 0, value: null };
      const confState: Cell<number> = [0];
      const major = fns.gss_unwrap(minor, ctx, inputBuffer(token), output, confState, [0]);
      const data = takeBuffer(lib, output);
      if (isError(major)) {
        throw new ResponseError(
          'GSS_UNWRAP_FAILED',
          `a message from the OM failed its Kerberos integrity check (${gssFailure(lib, 'gss_unwrap', major, minor[0]).message})`,
          {
            hint: 'something between ozs3 and the OM altered the connection, or the OM is not who it claims to be',
          },
        );
      }
      if ((major & GSS_S_OUT_OF_ORDER) !== 0) {
        throw new ResponseError(
          'GSS_TOKEN_OUT_OF_ORDER',
          'a message from the OM was replayed or out of order (Kerberos sequence check)',
        );
      }
      return { data, confidential: confState[0] !== 0 };
    },
    wrapSizeLimit(confidential, maxOutput) {
      const ctx = live('wrap_size_limit');
      const minor: Cell<number> = [0];
      const maxIn: Cell<number> = [0];
      const major = fns.gss_wrap_size_limit(minor, ctx, confidential ? 1 : 0, GSS_C_QOP_DEFAULT, maxOutput, maxIn);
      if (isError(major))
        throw new AuthError(
          'GSS_WRAP_FAILED',
          `gss_wrap_size_limit failed (${gssFailure(lib, 'gss_wrap_size_limit', major, minor[0]).message})`,
        );
      return maxIn[0];
    },
    initiatorName() {
      const ctx = live('inquire_context');
      const minor: Cell<number> = [0];
      const src: Cell<Ptr> = [null];
      let major = fns.gss_inquire_context(minor, ctx, src, null, null, null, null, null, null);
      if (isError(major) || src[0] === null) {
        throw new AuthError(
          'GSS_INQUIRE_FAILED',
          `cannot read the Kerberos context (${gssFailure(lib, 'gss_inquire_context', major, minor[0]).message})`,
        );
      }
      try {
        const out: BufferDesc = { length: 0, value: null };
        major = fns.gss_display_name(minor, src[0], out, null);
        const text = takeBuffer(lib, out).toString('utf8');
        if (isError(major))
          throw new AuthError(
            'GSS_INQUIRE_FAILED',
            `cannot name the Kerberos client (${gssFailure(lib, 'gss_display_name', major, minor[0]).message})`,
          );
        return text;
      } finally {
        fns.gss_release_name([0], src);
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      if (handle !== null) fns.gss_delete_sec_context([0], [handle], null);
      handle = null;
      fns.gss_release_name([0], [target]);
      if (cred !== null) fns.gss_release_cred([0], [cred]);
    },
  };
}
