//! `exai config check`: the effective configuration with each value's source, secrets masked, then
//! every problem found. Exit 0 when valid, 2 when not.

use std::process::ExitCode;

use exai_core::config::{Config, Inspection};

pub fn check(inspection: Inspection) -> ExitCode {
    println!("{}", Config::describe(&inspection.settings).join("\n"));
    match inspection.config {
        Ok(_) => {
            println!("\nconfiguration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("\n{e}");
            ExitCode::from(2)
        }
    }
}
