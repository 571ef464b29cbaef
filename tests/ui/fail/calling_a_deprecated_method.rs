//! A method the trait marks `#[deprecated]` is deprecated on the generated client too, so
//! callers are warned (here: denied); serving it is not a use.

#![deny(deprecated)]

#[rpcnet::service]
pub trait Inference {
    /// Generates text.
    #[deprecated(note = "use generate_v2")]
    async fn generate(&self, prompt: String) -> String;

    /// Generates text, better.
    async fn generate_v2(&self, prompt: String) -> String;
}

async fn caller(client: InferenceClient) {
    let _ = client.generate_v2("fine".into()).await;
    let _ = client.generate("warned".into()).await;
}

fn main() {
    let _ = caller;
}
