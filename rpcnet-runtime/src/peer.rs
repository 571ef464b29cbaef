//! What a server's peer proved in its handshake: with mutual TLS, the certificate it
//! presented (verified against the configured certificate authority before the connection
//! was accepted).

use std::sync::Arc;

use s2n_quic::provider::event::{events, ConnectionInfo, ConnectionMeta, Subscriber};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The certificate a client presented with mutual TLS, already verified by the handshake
/// against the server's certificate authority.
///
/// Only the leaf certificate's subject alternative names are read from it; what they mean
/// (which peer may do what) is for the layer above to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    der: Vec<u8>,
    uris: Vec<String>,
    dns_names: Vec<String>,
}

impl PeerCertificate {
    /// Reads the names of a DER certificate; `None` if it does not parse.
    pub(crate) fn from_der(der: Vec<u8>) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(&der).ok()?;
        let mut uris = Vec::new();
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                    _ => {}
                }
            }
        }
        Some(PeerCertificate {
            der,
            uris,
            dns_names,
        })
    }

    /// The certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The `URI` subject alternative names of the certificate, as written in it.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The `DNS` subject alternative names of the certificate, as written in it.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }
}

/// What one connection's peer proved: its leaf certificate, once the handshake has
/// verified it (mutual TLS only).
#[derive(Debug, Default)]
pub(crate) struct PeerProof {
    pub(crate) certificate: Option<Arc<PeerCertificate>>,
}

/// The server endpoint's event subscriber: keeps each connection's verified client
/// certificate in the connection's event context, where the server reads it on accept.
#[derive(Debug, Default)]
pub(crate) struct PeerCertificates;

impl Subscriber for PeerCertificates {
    type ConnectionContext = PeerProof;

    fn create_connection_context(
        &mut self,
        _meta: &ConnectionMeta,
        _info: &ConnectionInfo<'_>,
    ) -> Self::ConnectionContext {
        PeerProof::default()
    }

    fn on_tls_exporter_ready(
        &mut self,
        context: &mut Self::ConnectionContext,
        _meta: &events::ConnectionMeta,
        event: &events::TlsExporterReady<'_>,
    ) {
        // The handshake verified the chain before this event; without mutual TLS the
        // client sent none and the chain is empty or unavailable.
        if let Ok(chain) = event.session.peer_cert_chain_der() {
            if let Some(leaf) = chain.into_iter().next() {
                context.certificate = PeerCertificate::from_der(leaf).map(Arc::new);
            }
        }
    }
}

/// The verified client certificate of an accepted connection, if it presented one.
pub(crate) fn peer_certificate(connection: &s2n_quic::Connection) -> Option<Arc<PeerCertificate>> {
    connection
        .query_event_context(|proof: &PeerProof| proof.certificate.clone())
        .ok()
        .flatten()
}
