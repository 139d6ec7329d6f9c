/**
 * The S3Secret XML body, parsed strictly and boundedly: no DTD, no entities beyond XML's five
 * predefined ones and numeric references, a size cap, and no control characters in the result
 * (so every output format, `eval` included, stays safe).
 */
import { ResponseError } from '../errors.js';

export interface S3Secret {
  awsAccessKey: string;
  awsSecret: string;
}

export const MAX_BODY_BYTES = 64 * 1024;

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeText(raw: string, field: string): string {
  if (raw.includes('<')) throw malformed(`<${field}> holds markup`);
  return raw.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]*);|&/g, (whole, ref: string | undefined) => {
    if (ref === undefined) throw malformed(`a bare '&' in <${field}>`);
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      if (!(code > 0 && code <= 0x10ffff) || (code >= 0xd800 && code <= 0xdfff)) throw malformed(`a bad character reference ${whole} in <${field}>`);
      return String.fromCodePoint(code);
    }
    const value = PREDEFINED[ref];
    if (value === undefined) throw malformed(`an undeclared entity &${ref}; in <${field}>`);
    return value;
  });
}

function malformed(what: string): ResponseError {
  return new ResponseError('MALFORMED_RESPONSE', `the server's S3Secret response is malformed: ${what}`);
}

function field(xml: string, name: string): string {
  const re = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}\\s*>`, 'g');
  const matches = [...xml.matchAll(re)];
  if (matches.length === 0) {
    if (new RegExp(`<${name}\\s*/>`).test(xml)) return '';
    throw malformed(`no <${name}> element`);
  }
  if (matches.length > 1) throw malformed(`more than one <${name}> element`);
  return decodeText(matches[0]![1]!, name);
}

export function looksLikeHtml(body: string): boolean {
  return /^\s*(<!doctype\s+html|<html[\s>])/i.test(body) || /<(head|body|title)[\s>]/i.test(body.slice(0, 2048));
}

export function parseSecretXml(body: string): S3Secret {
  if (body.trim() === '') throw malformed('the body is empty');
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) {
    if (looksLikeHtml(body)) throw htmlPage();
    throw malformed('it declares a DTD, which ozs3 never processes');
  }
  if (looksLikeHtml(body)) throw htmlPage();
  const root = /<S3Secret(?:\s[^>]*)?>([\s\S]*)<\/S3Secret\s*>/.exec(body);
  if (!root) throw malformed(body.includes('<S3Secret') ? 'the <S3Secret> element is not closed (truncated?)' : 'no <S3Secret> element');
  const inner = root[1]!;
  const secret = { awsAccessKey: field(inner, 'awsAccessKey'), awsSecret: field(inner, 'awsSecret') };
  for (const [name, value] of Object.entries(secret)) {
    if (value === '') throw malformed(`<${name}> is empty`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) throw malformed(`<${name}> holds control characters`);
  }
  return secret;
}

function htmlPage(): ResponseError {
  return new ResponseError('HTML_RESPONSE', 'the endpoint answered with an HTML page, not the S3Secret XML (a login page, proxy or wrong URL?)', {
    hint: 'check --endpoint: it must be the S3 Gateway secret endpoint, e.g. https://s3g.example.com:19879',
  });
}
