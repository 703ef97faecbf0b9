//! Caller-supplied lists (paths, context items, issues, images): the most items one call may send, checked on the
//! deserialised input (schemas only advise), and de-duplication in linear time.

use std::collections::HashSet;
use std::hash::Hash;

/// Most paths in one `files`, `relevant_files` or `files_checked` list.
pub const MAX_PATHS: usize = 1_000;

/// Most entries in one `relevant_context` or `issues_found` list.
pub const MAX_ITEMS: usize = 1_000;

/// `field`'s length against `max`, as an error naming both.
pub fn check_len(field: &str, len: usize, max: usize) -> Result<(), String> {
    if len > max {
        return Err(format!(
            "`{field}` holds {len} entries; at most {max} are accepted in one call"
        ));
    }
    Ok(())
}

/// The distinct items, first occurrence first; linear in the number of items.
pub fn unique<'a, T: Hash + Eq + Clone + 'a>(items: impl IntoIterator<Item = &'a T>) -> Vec<T> {
    let mut seen: HashSet<&T> = HashSet::new();
    items.into_iter().filter(|i| seen.insert(*i)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keeps_first_occurrences_of_a_hundred_thousand_paths() {
        // 100k paths, each repeated once, interleaved: a quadratic scan would take minutes, this is linear.
        let paths: Vec<String> = (0..100_000).map(|i| format!("/src/f{}.rs", i / 2)).collect();
        let out = unique(&paths);
        assert_eq!(out.len(), 50_000);
        assert_eq!(out[0], "/src/f0.rs");
        assert_eq!(out[49_999], "/src/f49999.rs");
        assert_eq!(unique(&out), out, "already distinct: unchanged");
    }

    #[test]
    fn check_len_names_the_field_and_the_limit() {
        assert!(check_len("files", 1_000, MAX_PATHS).is_ok());
        let err = check_len("files", 1_001, MAX_PATHS).unwrap_err();
        assert_eq!(err, "`files` holds 1001 entries; at most 1000 are accepted in one call");
    }
}
