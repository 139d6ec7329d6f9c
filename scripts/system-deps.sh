#!/usr/bin/env bash
# Installs the Debian packages ozs3's build, demo and tests need. Run as root (or with sudo).
#   libkrb5-dev            headers for the native `kerberos` addon (built from source by npm ci)
#   krb5-kdc krb5-admin-server krb5-user   a throwaway MIT KDC for the demo and tests, kinit/klist
#   apache2 libapache2-mod-auth-gssapi     an independent SPNEGO acceptor for interop tests
#   awscli python3-boto3   the real AWS readers for interop tests
#   curl                   `curl --negotiate`, the reference client
#   zsh, time, openssl     completion tests; GNU time for peak RSS; a private CA for the TLS tests
#   openjdk-17-jdk-headless protobuf-compiler libprotobuf-java libjetty9-java libfaketime
#                          the independent OzoneManager RPC test server (JDK SASL/GSSAPI, protobuf-java),
#                          a JDK-GSS gateway on Jetty 9.4 (what Ozone runs), a gateway clock set ahead
#   samba samba-ad-dc samba-ad-provision ldb-tools
#                          a real Active Directory KDC for the AD tests (provisioned in a temp dir)
set -euo pipefail
packages=(libkrb5-dev krb5-kdc krb5-admin-server krb5-user curl awscli python3-boto3 apache2 libapache2-mod-auth-gssapi python3 zsh time openssl
  openjdk-17-jdk-headless protobuf-compiler libprotobuf-java libjetty9-java libfaketime
  samba samba-ad-dc samba-ad-provision ldb-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these as system services on install; the tests run their own, in temp dirs.
for service in apache2 krb5-kdc krb5-admin-server samba-ad-dc smbd nmbd winbind; do
  $SUDO service "$service" stop >/dev/null 2>&1 || true
done
echo "system packages: installed ${missing[*]}"
