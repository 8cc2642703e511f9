//! `berth rename`.
use anyhow::Result;
use clap::Args;

use super::Failures;
use crate::client::Client;

#[derive(Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

pub async fn rename(client: Client, a: RenameArgs) -> Result<i32> {
    let mut failures = Failures::default();
    if let Err(e) = client
        .post(
            &format!("/containers/{}/rename", a.container),
            &[("name", a.new_name.clone())],
        )
        .await
    {
        failures.push(&e);
    }
    failures.finish()
}
