//! `exai tools`: the enabled tools with their schemas, or with `--tokens` an estimate of what their
//! definitions cost a client's context on every turn (about 4 characters of JSON per token).

use exai_core::config::Config;
use exai_core::tools::Registry;
use exai_server::catalog;

/// Rough tokens for a JSON text: tokenizers average about 4 characters per token on JSON.
fn estimate_tokens(json: &str) -> usize {
    json.len().div_ceil(4)
}

pub fn run(config: &Config, tokens: bool, json: bool) -> anyhow::Result<()> {
    let defs = catalog::definitions(&Registry::select(&config.tools, false));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "tools": defs }))?
        );
        return Ok(());
    }
    let mut total = 0;
    for def in &defs {
        let text = serde_json::to_string(def)?;
        if tokens {
            let n = estimate_tokens(&text);
            total += n;
            println!("{:<14} ~{n:>5} tokens", def.name);
        } else {
            println!(
                "{}  ({})\n  {}",
                def.name,
                def.title.as_deref().unwrap_or(""),
                def.description.as_deref().unwrap_or("")
            );
            println!("  input:  {}", serde_json::to_string(&def.input_schema)?);
            if let Some(out) = &def.output_schema {
                println!("  output: {}", serde_json::to_string(out)?);
            }
        }
    }
    if tokens {
        println!(
            "{:<14} ~{total:>5} tokens for {} tools (profile {:?})",
            "total",
            defs.len(),
            config.tools.profile
        );
    }
    Ok(())
}
