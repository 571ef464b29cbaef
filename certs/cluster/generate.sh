#!/usr/bin/env bash
# Regenerates the development cluster CA and the certificates signed by it, for mutual TLS
# in tests and examples only: never use them in production (the CA's key is in the
# repository).
#
#   cluster_ca.pem / cluster_ca_key.pem   the cluster's certificate authority
#   node_cert.pem / node_key.pem          a node (localhost, 127.0.0.1, ::1), signed by it;
#                                         good for serving and for presenting as a client
#   rogue_ca.pem                          another authority, which no node trusts
#   rogue_node_cert.pem / rogue_node_key.pem   a node certificate signed by the rogue CA
#   nodes/<id>_cert.pem / nodes/<id>_key.pem   a cluster node named <id> (a, b, c, mallory):
#                                         as node_cert.pem, plus the subject alternative
#                                         name URI:rpcnet://node/<id> that binds the
#                                         certificate to that cluster node id
#
# Valid for 100 years so that the bundled files do not silently expire.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ca() { # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1_key.pem" -out "$1.pem" -days 36500 -sha256 -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
}

node() { # ca-name cert key subject [extra subjectAltName entries]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$3" -out "$work/node.csr" -subj "$4"
  cat > "$work/ext.cnf" <<EXT
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1${5:+,$5}
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
EXT
  openssl x509 -req -in "$work/node.csr" -CA "$1.pem" -CAkey "$1_key.pem" \
    -CAcreateserial -CAserial "$work/serial" -out "$2" -days 36500 -sha256 \
    -extfile "$work/ext.cnf"
}

ca cluster_ca "/CN=rpcnet development cluster CA/O=rpcnet development"
node cluster_ca node_cert.pem node_key.pem "/CN=localhost/O=rpcnet development cluster"
mkdir -p nodes
for id in a b c mallory; do
  node cluster_ca "nodes/${id}_cert.pem" "nodes/${id}_key.pem" \
    "/CN=${id}/O=rpcnet development cluster" "URI:rpcnet://node/${id}"
done
ca rogue_ca "/CN=rogue CA/O=not the cluster"
node rogue_ca rogue_node_cert.pem rogue_node_key.pem "/CN=localhost/O=not the cluster"
rm -f rogue_ca_key.pem
