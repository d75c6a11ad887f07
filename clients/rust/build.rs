//! Generates the command-api and query-api clients with progenitor from the OpenAPI 3.0 documents
//! that `clients/run-all` writes (OPENAPI30_DIR, by default ../generated/openapi-3.0). The code
//! lands in OUT_DIR as command_api.rs and query_api.rs.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=OPENAPI30_DIR");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let spec_dir = std::env::var_os("OPENAPI30_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../generated/openapi-3.0"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));

    for (document, module) in [
        ("command-api.json", "command_api.rs"),
        ("query-api.json", "query_api.rs"),
    ] {
        let path = spec_dir.join(document);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; run clients/run-all (or openapi_downconvert.py) first",
                path.display()
            )
        });
        let spec = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{} is not an OpenAPI 3.0 document progenitor reads: {e}",
                path.display()
            )
        });
        let mut settings = progenitor::GenerationSettings::default();
        settings.with_interface(progenitor::InterfaceStyle::Builder);
        let tokens = progenitor::Generator::new(&settings)
            .generate_tokens(&spec)
            .unwrap_or_else(|e| {
                panic!(
                    "progenitor cannot generate a client from {}: {e}",
                    path.display()
                )
            });
        let file = syn::parse2(tokens).expect("progenitor emits valid Rust");
        std::fs::write(out_dir.join(module), prettyplease::unparse(&file))
            .unwrap_or_else(|e| panic!("cannot write {module} to OUT_DIR: {e}"));
    }
}
