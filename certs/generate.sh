#!/usr/bin/env bash
# Regenerates the development certificate and key for localhost / 127.0.0.1.
# They are for tests and examples only: never use them in production.
# Valid for 100 years so that the bundled pair does not silently expire; the test
# `bundled_certificate_is_valid` fails with a clear message well before it does.
set -euo pipefail
cd "$(dirname "$0")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout test_key.pem -out test_cert.pem -days 36500 -sha256 \
  -subj "/CN=localhost/O=rpcnet development" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth,clientAuth"
