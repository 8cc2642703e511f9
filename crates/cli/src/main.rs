//! `berth`: a docker-compatible command line for the Docker Engine API.

mod client;
mod commands;
mod format;
mod stream;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::{Cli, StatusError};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => return commands::report_clap_error(e, &argv),
    };
    // One thread: a CLI waits on a few sockets; no worker threads to start or hand off to.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match rt.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            if let Some(st) = err.downcast_ref::<StatusError>() {
                if let Some(msg) = &st.message {
                    eprintln!("{msg}");
                }
                st.code
            } else if let Some(api) = client::api_error(&err) {
                eprintln!("{api}");
                1
            } else {
                eprintln!("{}", commands::error_text(&err));
                1
            }
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Exit at once: a thread blocked reading stdin must not hold the process.
    std::process::exit(code);
}
