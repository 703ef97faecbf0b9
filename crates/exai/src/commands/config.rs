//! `exai config check`: the effective configuration with each value's source, secrets masked, then
//! every problem found. Exit 0 when valid, 2 when not.

use std::process::ExitCode;

use exai_core::config::{Config, Inspection};

pub fn check(inspection: Inspection) -> ExitCode {
    println!("{}", Config::describe(&inspection.settings).join("\n"));
    match inspection.config {
        Ok(config) => {
            for c in &config.custom_providers {
                let key = match (&c.api_key_env, &c.api_key) {
                    (None, _) => "no key".to_owned(),
                    (Some(var), Some(_)) => format!("key from {var} (set)"),
                    (Some(var), None) => format!("key from {var} (NOT SET)"),
                };
                println!(
                    "providers.custom.{:<15} {} · models {} · {key}",
                    c.name,
                    c.base_url,
                    c.models.join(", ")
                );
            }
            let files = &config.files;
            let roots: Vec<String> = files.allowed_roots.iter().map(|r| r.display().to_string()).collect();
            match roots.is_empty() {
                true => println!("file access: no allowed roots; {}", files.roots_origin),
                false => println!("file access: {} (from {})", roots.join(", "), files.roots_origin),
            }
            println!("\nconfiguration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("\n{e}");
            ExitCode::from(2)
        }
    }
}
