//! Compiles `afterglow/v1/*.proto` with protox, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["afterglow/v1/ingest.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let file_descriptors = protox::compile(protos, ["."])?;
    tonic_prost_build::configure().compile_fds(file_descriptors)?;
    Ok(())
}
