//! `wadash doctor [--json]`: runs the deployment checks (`crate::doctor`) and prints one line
//! per check, or a JSON document for monitoring; the exit status is 1 when any check fails.

use std::process::ExitCode;

use crate::config::Settings;

pub(super) async fn run(json: bool, settings: Settings) -> ExitCode {
    let report = crate::doctor::run(&settings).await;
    if json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
