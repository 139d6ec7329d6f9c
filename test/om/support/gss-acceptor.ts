/**
 * The acceptor side of GSSAPI through koffi, for tests only: a fake OM that really verifies the
 * client's Kerberos tokens with a keytab (KRB5_KTNAME, read by MIT at first use), and wraps and
 * unwraps as the JDK's SASL server would. Its bindings are written separately from src/om/gssapi.ts
 * on purpose, so a mistake there is not mirrored here.
 */
import koffi from 'koffi';

type Ptr = bigint | null;
interface Buf {
  length: number | bigint;
  value: Ptr;
}
type Fn = (...args: unknown[]) => number;
type TypeSpec = Parameters<typeof koffi.out>[0];

export interface AcceptorContext {
  /** Feeds a client token; returns the token to send back (possibly empty) and whether it is done. */
  accept(token: Uint8Array): { output: Buffer; complete: boolean };
  wrap(data: Uint8Array, confidential: boolean): Buffer;
  unwrap(token: Uint8Array): { data: Buffer; confidential: boolean };
  /** The authenticated client, e.g. alice@REALM. */
  peer(): string;
  dispose(): void;
}

let lib: Record<string, Fn> | undefined;

function load(): Record<string, Fn> {
  if (lib) return lib;
  const so = koffi.load('libgssapi_krb5.so.2');
  const buf = koffi.struct('test_gss_buffer', { length: 'size_t', value: 'void *' });
  const bufIn = koffi.pointer(buf);
  const bufOut = koffi.out(koffi.pointer(buf));
  const u32Out = koffi.out(koffi.pointer('uint32_t'));
  const intOut = koffi.out(koffi.pointer('int'));
  const ptrOut = koffi.out(koffi.pointer('void *'));
  const ptrInOut = koffi.inout(koffi.pointer('void *'));
  const f = (name: string, args: TypeSpec[]) => so.func(name, 'uint32_t', args) as unknown as Fn;
  lib = {
    acquire: f('gss_acquire_cred', [u32Out, 'void *', 'uint32_t', 'void *', 'int', ptrOut, 'void *', 'void *']),
    accept: f('gss_accept_sec_context', [
      u32Out,
      ptrInOut,
      'void *',
      bufIn,
      'void *',
      ptrOut,
      'void *',
      bufOut,
      u32Out,
      'void *',
      'void *',
    ]),
    wrap: f('gss_wrap', [u32Out, 'void *', 'int', 'uint32_t', bufIn, intOut, bufOut]),
    unwrap: f('gss_unwrap', [u32Out, 'void *', bufIn, bufOut, intOut, u32Out]),
    displayName: f('gss_display_name', [u32Out, 'void *', bufOut, 'void *']),
    releaseBuffer: f('gss_release_buffer', [u32Out, bufIn]),
    releaseName: f('gss_release_name', [u32Out, ptrInOut]),
    deleteContext: f('gss_delete_sec_context', [u32Out, ptrInOut, 'void *']),
    releaseCred: f('gss_release_cred', [u32Out, ptrInOut]),
  };
  return lib;
}

function take(l: Record<string, Fn>, b: Buf): Buffer {
  const n = Number(b.length);
  if (!b.value || n === 0) return Buffer.alloc(0);
  const copy = Buffer.from(new Uint8Array(koffi.view(b.value, n)));
  l.releaseBuffer!([0], b);
  return copy;
}

function input(data: Uint8Array): { length: number; value: Buffer } {
  return { length: data.length, value: data.length === 0 ? Buffer.alloc(1) : Buffer.from(data) };
}

/** A new acceptor context using the default keytab (KRB5_KTNAME). */
export function createAcceptor(): AcceptorContext {
  const l = load();
  const minor: [number] = [0];
  const credOut: [Ptr] = [null];
  let major = l.acquire!(minor, null, 0, null, 2 /* GSS_C_ACCEPT */, credOut, null, null);
  if (major >>> 16) throw new Error(`test acceptor: gss_acquire_cred failed 0x${major.toString(16)}/${minor[0]}`);
  const cred = credOut[0];
  let ctx: Ptr = null;
  let src: Ptr = null;
  return {
    accept(token) {
      const ctxCell: [Ptr] = [ctx];
      const srcCell: [Ptr] = [null];
      const out: Buf = { length: 0, value: null };
      major = l.accept!(minor, ctxCell, cred, input(token), null, srcCell, null, out, [0], null, null);
      ctx = ctxCell[0];
      if (srcCell[0]) src = srcCell[0];
      const output = take(l, out);
      if (major >>> 16)
        throw new Error(`test acceptor: gss_accept_sec_context failed 0x${major.toString(16)}/${minor[0]}`);
      return { output, complete: major === 0 };
    },
    wrap(data, confidential) {
      const out: Buf = { length: 0, value: null };
      major = l.wrap!(minor, ctx, confidential ? 1 : 0, 0, input(data), [0], out);
      if (major >>> 16) throw new Error('test acceptor: gss_wrap failed');
      return take(l, out);
    },
    unwrap(token) {
      const out: Buf = { length: 0, value: null };
      const conf: [number] = [0];
      major = l.unwrap!(minor, ctx, input(token), out, conf, [0]);
      if (major >>> 16) throw new Error(`test acceptor: gss_unwrap failed 0x${major.toString(16)}/${minor[0]}`);
      if (major & 0x1e) throw new Error(`test acceptor: token out of sequence 0x${major.toString(16)}`);
      return { data: take(l, out), confidential: conf[0] !== 0 };
    },
    peer() {
      const out: Buf = { length: 0, value: null };
      major = l.displayName!(minor, src, out, null);
      if (major >>> 16) throw new Error('test acceptor: gss_display_name failed');
      return take(l, out).toString('utf8');
    },
    dispose() {
      if (ctx) l.deleteContext!([0], [ctx], null);
      if (src) l.releaseName!([0], [src]);
      if (cred) l.releaseCred!([0], [cred]);
      ctx = src = null;
    },
  };
}
