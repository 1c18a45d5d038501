//! The `streamworker` binary: a thin shell around [`streamworker::cli::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    streamworker::cli::run(|worker| worker).await
}
