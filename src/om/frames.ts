/**
 * Hadoop IPC v9 framing (hadoop-common ipc/Client.java, RpcConstants.java): the 7-byte connection
 * header, then frames of a 4-byte big-endian length followed by varint-length-delimited protobuf
 * messages. Reads are bounded like Hadoop's client (`ipc.maximum.response.length`, 128 MiB).
 */
import { ResponseError, sanitizeText } from '../errors.js';

/** `ipc.maximum.response.length`'s default: a longer frame is not an RPC answer. */
export const MAX_FRAME_BYTES = 128 * 1024 * 1024;

export const IPC_VERSION = 9;
/** AuthProtocol.SASL's call id, also the auth-protocol byte of the connection header. */
export const SASL_CALL_ID = -33;
export const CONNECTION_CONTEXT_CALL_ID = -3;
export const PING_CALL_ID = -4;
export const INVALID_RETRY_COUNT = -1;

/** `hrpc`, version 9, service class 0, auth protocol SASL (-33 as a byte). */
export function connectionHeader(): Buffer {
  return Buffer.from([0x68, 0x72, 0x70, 0x63, IPC_VERSION, 0, SASL_CALL_ID & 0xff]);
}

export function encodeVarint(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`varint out of range: ${value}`);
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A varint at `offset`: its value and the offset after it; undefined when the bytes end first. */
export function decodeVarint(bytes: Uint8Array, offset: number): { value: number; next: number } | undefined {
  let value = 0;
  let factor = 1;
  for (let i = offset; i < bytes.length && i < offset + 5; i++) {
    const byte = bytes[i]!;
    value += (byte & 0x7f) * factor;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
    factor *= 128;
  }
  if (bytes.length - offset >= 5) throw malformedFrame('a length prefix longer than 5 bytes');
  return undefined;
}

/** One frame: the length, then each message with its varint length (`writeDelimitedTo`). */
export function encodeFrame(messages: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (const message of messages) {
    const prefix = encodeVarint(message.length);
    parts.push(prefix, Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    size += prefix.length + message.length;
  }
  const length = Buffer.alloc(4);
  length.writeUInt32BE(size);
  return Buffer.concat([length, ...parts], 4 + size);
}

/** The delimited messages of one frame's payload; a frame must end exactly after its last one. */
export function splitDelimited(payload: Uint8Array, count: number): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i < count && offset < payload.length; i++) {
    const prefix = decodeVarint(payload, offset);
    if (!prefix || prefix.next + prefix.value > payload.length)
      throw malformedFrame('a message runs past the end of its frame');
    messages.push(payload.subarray(prefix.next, prefix.next + prefix.value));
    offset = prefix.next + prefix.value;
  }
  if (offset !== payload.length) throw malformedFrame('bytes left over after the last message of a frame');
  return messages;
}

export function malformedFrame(what: string): ResponseError {
  return new ResponseError('MALFORMED_RPC', `malformed Hadoop RPC answer from the OM: ${what}`);
}

/** What a peer that is not Hadoop RPC sent instead of a frame, in one printable line. */
function describeForeign(bytes: Buffer): string {
  const text = bytes.subarray(0, 200).toString('latin1');
  const line = sanitizeText(text.split(/\r?\n/)[0] ?? '', 80);
  return /^[\x20-\x7e]{4}/.test(text) && line ? `'${line}'` : `bytes ${bytes.subarray(0, 8).toString('hex')}`;
}

/**
 * Accumulates socket data and yields whole frame payloads. The first 4 bytes of something that is
 * not Hadoop RPC (an HTTP server's `HTTP/1.1 …`, TLS alert) read as a length of ≤ 0 or over
 * 128 MiB: that is reported as NOT_HADOOP_RPC at once, without waiting for the rest.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private first = true;

  constructor(private readonly peer: string) {}

  /** Adds data; returns every frame now complete (payload only, without the length). */
  push(data: Buffer): Buffer[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const length = head.readInt32BE(0);
      if (length <= 0 || length > MAX_FRAME_BYTES) throw this.badLength(length);
      if (this.buffered < 4 + length) break;
      const whole = this.take(4 + length);
      frames.push(whole.subarray(4));
      this.first = false;
    }
    return frames;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  private badLength(length: number): ResponseError {
    const sample = this.peek(Math.min(this.buffered, 200));
    if (this.first && length === -1) {
      // A pre-v9 server answers a version it does not speak with -1 and a Writable error.
      return new ResponseError('RPC_VERSION_MISMATCH', `${this.peer} speaks an older Hadoop RPC than version 9`, {
        hint: 'is this an Ozone Manager? Ozone uses Hadoop RPC version 9',
      });
    }
    if (this.first) {
      return new ResponseError(
        'NOT_HADOOP_RPC',
        `${this.peer} is not a Hadoop RPC server: it answered ${describeForeign(sample)}`,
        {
          hint: 'check the OM address and port (ozone.om.address, default port 9862); the S3 Gateway or a web port is not the OM',
        },
      );
    }
    return new ResponseError(
      'RPC_FRAME_LENGTH',
      `${this.peer} sent a Hadoop RPC frame of invalid length ${length} (limit ${MAX_FRAME_BYTES} bytes)`,
    );
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return out;
  }
}
