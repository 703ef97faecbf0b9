//! Fallback chains from config (`EXAI_FALLBACK_CHAINS`, e.g. `kimi-k2-0905-preview>kimi-k2-turbo-preview>glm-4.6`):
//! which models to try, in order, when the one asked for fails after its retries or its circuit is open.

use std::collections::HashMap;

/// Model -> the models to try after it, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FallbackChains(HashMap<String, Vec<String>>);

impl FallbackChains {
    /// Parses `a>b>c;d>e`: a chain per `;`, models in order separated by `>`. Every model in a chain falls back
    /// to the ones after it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chains = HashMap::new();
        for chain in text.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            let models: Vec<String> = chain.split('>').map(|m| m.trim().to_owned()).collect();
            if models.len() < 2 || models.iter().any(String::is_empty) {
                return Err(format!(
                    "`{chain}` is not a chain: write models in order separated by `>`"
                ));
            }
            for (i, m) in models.iter().enumerate() {
                if chains.insert(m.clone(), models[i + 1..].to_vec()).is_some() {
                    return Err(format!("`{m}` appears in more than one chain"));
                }
            }
        }
        Ok(Self(chains))
    }

    /// The models to try after `model`, in order (none when it has no chain).
    pub fn after(&self, model: &str) -> &[String] {
        self.0.get(model).map_or(&[], Vec::as_slice)
    }

    pub fn models(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chains_and_refuses_malformed_ones() {
        let c = FallbackChains::parse("kimi-k2-0905-preview > kimi-k2-turbo-preview > glm-4.6; glm-4.5>glm-4.5-air")
            .unwrap();
        assert_eq!(c.after("kimi-k2-0905-preview"), ["kimi-k2-turbo-preview", "glm-4.6"]);
        assert_eq!(c.after("kimi-k2-turbo-preview"), ["glm-4.6"]);
        assert!(c.after("glm-4.6").is_empty());
        assert!(FallbackChains::parse("").unwrap().after("x").is_empty());
        assert!(FallbackChains::parse("a").unwrap_err().contains("not a chain"));
        assert!(
            FallbackChains::parse("a>b;b>c")
                .unwrap_err()
                .contains("more than one chain")
        );
    }
}
