import { describe, expect, it } from 'vitest';
import {
  FrameReader,
  MAX_FRAME_BYTES,
  connectionHeader,
  decodeVarint,
  encodeFrame,
  encodeVarint,
  splitDelimited,
} from '../../src/om/frames.js';
import { ResponseError } from '../../src/errors.js';

describe('varints', () => {
  it.each([
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, '8001'],
    [300, 'ac02'],
    [16384, '808001'],
    [0xffffffff, 'ffffffff0f'],
  ])('encodes %i as %s and decodes it back', (value, hex) => {
    expect(encodeVarint(value).toString('hex')).toBe(hex);
    expect(decodeVarint(Buffer.from(hex, 'hex'), 0)).toEqual({ value, next: hex.length / 2 });
  });

  it('reports a varint cut short as incomplete, and one longer than 5 bytes as malformed', () => {
    expect(decodeVarint(Buffer.from('8080', 'hex'), 0)).toBeUndefined();
    expect(() => decodeVarint(Buffer.from('ffffffffff01', 'hex'), 0)).toThrow(ResponseError);
  });

  it('refuses values a varint32 cannot hold', () => {
    expect(() => encodeVarint(-1)).toThrow(RangeError);
    expect(() => encodeVarint(2 ** 32)).toThrow(RangeError);
  });
});

describe('frames', () => {
  it('writes the 7-byte connection header: hrpc, version 9, service class 0, SASL (-33)', () => {
    expect(connectionHeader().toString('hex')).toBe('68727063' + '09' + '00' + 'df');
  });

  it('frames delimited messages behind a 4-byte big-endian length, and splits them back', () => {
    const frame = encodeFrame([Buffer.from('abc'), Buffer.alloc(200, 7), Buffer.alloc(0)]);
    expect(frame.readUInt32BE(0)).toBe(1 + 3 + 2 + 200 + 1);
    const parts = splitDelimited(frame.subarray(4), 3);
    expect(parts.map((p) => p.length)).toEqual([3, 200, 0]);
    expect(Buffer.from(parts[0]!).toString()).toBe('abc');
  });

  it('refuses a frame with bytes after its last message, or a message running past its end', () => {
    expect(() => splitDelimited(Buffer.from('0161ff', 'hex'), 1)).toThrow(/left over/);
    expect(() => splitDelimited(Buffer.from('0561', 'hex'), 1)).toThrow(/past the end/);
  });

  it('reassembles frames split across reads and yields several from one read', () => {
    const reader = new FrameReader('the OM at x:1');
    const a = encodeFrame([Buffer.from('first')]);
    const b = encodeFrame([Buffer.from('second')]);
    const all = Buffer.concat([a, b]);
    expect(reader.push(all.subarray(0, 3))).toEqual([]);
    expect(reader.push(all.subarray(3, a.length + 2)).map((f) => f.toString('latin1'))).toEqual(['\x05first']);
    expect(reader.push(all.subarray(a.length + 2)).map((f) => f.toString('latin1'))).toEqual(['\x06second']);
    expect(reader.pending).toBe(0);
  });

  it('names a peer that answers like an HTTP server as not Hadoop RPC, with its first line', () => {
    const reader = new FrameReader('the OM at web:80');
    const error = catchError(() =>
      reader.push(Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html>')),
    );
    expect(error).toBeInstanceOf(ResponseError);
    expect(error.code).toBe('NOT_HADOOP_RPC');
    expect(error.exitCode).toBe(8);
    expect(error.message).toBe("the OM at web:80 is not a Hadoop RPC server: it answered 'HTTP/1.1 400 Bad Request'");
    expect(error.hint).toMatch(/9862/);
  });

  it('rejects frame lengths of zero, negative or over 128 MiB, as Hadoop does', () => {
    for (const length of [0, -5, MAX_FRAME_BYTES + 1]) {
      const reader = new FrameReader('p');
      reader.push(encodeFrame([Buffer.from('ok')]));
      const head = Buffer.alloc(4);
      head.writeInt32BE(length);
      expect(() => reader.push(head)).toThrow(/invalid length/);
    }
    const reader = new FrameReader('p');
    const head = Buffer.alloc(4);
    head.writeInt32BE(MAX_FRAME_BYTES);
    expect(reader.push(head)).toEqual([]);
  });

  it('recognises the pre-v9 "-1" answer as a version mismatch', () => {
    const error = catchError(() => new FrameReader('p').push(Buffer.from('ffffffff00000001', 'hex')));
    expect(error.code).toBe('RPC_VERSION_MISMATCH');
  });
});

function catchError(f: () => unknown): ResponseError {
  try {
    f();
  } catch (error) {
    return error as ResponseError;
  }
  throw new Error('expected a throw');
}
