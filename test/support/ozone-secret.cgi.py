#!/usr/bin/python3
"""
The Ozone S3 Gateway secret endpoint (docs/endpoint.md) as a CGI program behind Apache httpd
+ mod_auth_gssapi, which does the SPNEGO acceptance and hands us the caller as REMOTE_USER (the
full principal, e.g. alice@OZS3.TEST, with GssapiLocalName Off). Python 3 standard library only.

  PUT    /secret           own secret     200 + JAXB XML  | 400 S3_SECRET_ALREADY_EXISTS
  PUT    /secret/{user}    S3 admin only  200 + JAXB XML  | 400 S3_SECRET_ALREADY_EXISTS | 403
  DELETE /secret           own secret     200, empty      | 404 S3_SECRET_NOT_FOUND
  DELETE /secret/{user}    S3 admin only  200, empty      | 404 S3_SECRET_NOT_FOUND | 403

Query strings are ignored, as Ozone does (so `DELETE /secret?username=bob` revokes the caller's own).
Configuration comes from SetEnv in httpd.conf:
  OZS3_STORE   JSON file {user: secret}; a sibling `<store>.lock` serialises requests (fcntl)
  OZS3_ADMINS  comma-separated S3 admins (full principals or short names; '*' = everyone)
  OZS3_LOG     optional: one JSON line per handled request is appended here
"""
import fcntl
import json
import os
import secrets
import sys
import time
from urllib.parse import unquote
from xml.sax.saxutils import escape

SCRIPT_PREFIX = '/secret'


def respond(status, body=b'', content_type=None):
    out = sys.stdout.buffer
    head = 'Status: %s\r\n' % status
    if content_type:
        head += 'Content-Type: %s\r\n' % content_type
    head += 'Content-Length: %d\r\n' % len(body)
    head += 'Cache-Control: no-store\r\n\r\n'
    out.write(head.encode('ascii'))
    out.write(body)
    out.flush()


def short_name(principal):
    """alice@OZS3.TEST -> alice; testuser/scm@EXAMPLE.COM -> testuser (Hadoop's auth_to_local default rule)."""
    return principal.split('@', 1)[0].split('/', 1)[0]


def is_admin(caller, admins):
    for admin in admins:
        if admin == '*' or admin == caller or admin == short_name(caller):
            return True
    return False


def target_from_uri(request_uri):
    """
    The user in the path: None for /secret, the percent-decoded single segment for /secret/{user};
    raises LookupError for anything else. Read from the raw REQUEST_URI (not PATH_INFO, which httpd
    has already decoded) so that an encoded '/' in a principal stays one segment.
    """
    path = request_uri.split('?', 1)[0].split('#', 1)[0]
    if not path.startswith(SCRIPT_PREFIX):
        raise LookupError(path)
    rest = path[len(SCRIPT_PREFIX):]
    if rest in ('', '/'):
        return None
    if not rest.startswith('/') or '/' in rest[1:].rstrip('/'):
        raise LookupError(path)
    user = unquote(rest[1:].rstrip('/'), encoding='utf-8', errors='strict')
    if user == '':
        return None
    return user


def secret_xml(access_key, secret):
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<S3Secret><awsAccessKey>%s</awsAccessKey><awsSecret>%s</awsSecret></S3Secret>'
        % (escape(access_key), escape(secret))
    ).encode('utf-8')


class Store:
    """The secret store: a JSON file, read-modify-written under an exclusive fcntl lock."""

    def __init__(self, path):
        self.path = path
        self.lock_path = path + '.lock'
        self.lock_fd = None

    def __enter__(self):
        self.lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(self.lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)
        os.close(self.lock_fd)

    def load(self):
        try:
            with open(self.path, 'r', encoding='utf-8') as f:
                text = f.read()
        except FileNotFoundError:
            return {}
        return json.loads(text) if text.strip() else {}

    def save(self, data):
        tmp = '%s.%d.tmp' % (self.path, os.getpid())
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def log(entry):
    path = os.environ.get('OZS3_LOG')
    if not path:
        return
    entry['time'] = time.time()
    line = (json.dumps(entry, sort_keys=True) + '\n').encode('utf-8')
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def handle():
    method = os.environ.get('REQUEST_METHOD', '')
    caller = os.environ.get('REMOTE_USER', '')
    uri = os.environ.get('REQUEST_URI', '')
    admins = [a.strip() for a in os.environ.get('OZS3_ADMINS', '').split(',') if a.strip()]
    store_path = os.environ['OZS3_STORE']
    entry = {'method': method, 'uri': uri, 'caller': caller}

    def done(status, body=b'', content_type=None, **extra):
        entry.update(extra)
        entry['status'] = status
        log(entry)
        respond(status, body, content_type)

    if caller == '':
        # httpd's Require valid-user should make this impossible; fail closed.
        return done('401 Unauthorized')
    try:
        target = target_from_uri(uri)
    except (LookupError, UnicodeDecodeError):
        return done('404 Not Found')
    if method not in ('PUT', 'DELETE'):
        return done('405 Method Not Allowed')
    if target is not None and not is_admin(caller, admins):
        # S3SecretAdminFilter: the /{username} forms are for ozone.s3.administrators only.
        return done('403 Forbidden', user=target)
    user = caller if target is None else target
    entry['user'] = user

    with Store(store_path) as store:
        data = store.load()
        if method == 'PUT':
            if user in data:
                return done('400 S3_SECRET_ALREADY_EXISTS')
            secret = secrets.token_hex(32)
            data[user] = secret
            store.save(data)
            return done('200 OK', secret_xml(user, secret), 'application/xml')
        if user not in data:
            return done('404 S3_SECRET_NOT_FOUND')
        del data[user]
        store.save(data)
        return done('200 OK')


if __name__ == '__main__':
    try:
        handle()
    except Exception as error:  # noqa: BLE001 - a CGI must always answer
        sys.stderr.write('ozone-secret.cgi: %r\n' % (error,))
        respond('500 Internal Server Error')
