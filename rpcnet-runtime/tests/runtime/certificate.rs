//! The bundled development certificate: every loopback test and example depends on it, so
//! its expiry must fail loudly here rather than as handshake errors everywhere else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn bundled_certificate_is_valid_for_localhost_for_years_to_come() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem");
    let pem = std::fs::read(path).expect("certs/test_cert.pem is bundled");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let cert = pem.parse_x509().expect("X.509 certificate");
    let not_after = cert.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let year = Duration::from_secs(365 * 24 * 3600).as_secs() as i64;
    assert!(
        not_after > now + year,
        "certs/test_cert.pem expires at unix time {not_after} (less than a year from now): \
         run certs/generate.sh to make a new development certificate"
    );
    let names = cert
        .subject_alternative_name()
        .expect("valid extension")
        .expect("has subjectAltName")
        .value
        .general_names
        .iter()
        .map(|name| format!("{name}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(names.contains("localhost"), "SANs: {names}");
    assert!(
        names.contains("7f:00:00:01"),
        "127.0.0.1 missing from SANs: {names}"
    );
}
