//! Compile-time behaviour of `#[rpcnet::service]`: every accepted form compiles, and every
//! misuse is a compile error pointing at the offending tokens with a hint (one diagnostic
//! per file under `tests/ui/fail`, expectations in the `.stderr` files next to them).

#[test]
fn accepted_service_forms_compile() {
    trybuild::TestCases::new().pass("tests/ui/pass/*.rs");
}

#[test]
fn misuse_is_a_compile_error_with_a_hint() {
    trybuild::TestCases::new().compile_fail("tests/ui/fail/*.rs");
}
