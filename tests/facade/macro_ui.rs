//! Compile-time behaviour of `#[rpcnet::service]`: every misuse is a compile error pointing
//! at the offending tokens with a hint (the accepted forms are compiled with the suite, in
//! `accepted_forms`). Each file under `tests/ui/fail` makes one mistake, except `several_mistakes.rs`, which shows that all
//! mistakes in a trait are reported in one compile; the expected compiler output is in the
//! `.stderr` file next to each. A mistake the type checker finds rather than the macro
//! (`message_not_serializable.rs`) reports each bound the message type fails.

#[test]
fn misuse_is_a_compile_error_with_a_hint() {
    trybuild::TestCases::new().compile_fail("tests/ui/fail/*.rs");
}
