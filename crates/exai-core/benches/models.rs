//! Model registry lookup (`ModelRegistry::resolve`, built-in models) by canonical name and by alias, against
//! a `HashMap<String, Model>` lookup of the same names.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use exai_core::models::{Model, ModelRegistry};

fn models(c: &mut Criterion) {
    let registry = ModelRegistry::builtin();
    let map: HashMap<String, Model> = registry
        .iter()
        .flat_map(|m| m.aliases.iter().chain([&m.name]).map(move |k| (k.clone(), m.clone())))
        .collect();
    // A name late in the list and an alias, as callers write them.
    let mut group = c.benchmark_group("models");
    for (what, name) in [("name", "moonshot-v1-32k"), ("alias", "kimi-thinking")] {
        assert_eq!(registry.resolve(name).unwrap().name, map[name].name);
        group.bench_function(format!("{what}/resolve"), |b| {
            b.iter(|| registry.resolve(black_box(name)))
        });
        group.bench_function(format!("{what}/hashmap"), |b| b.iter(|| map.get(black_box(name))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = models
}
criterion_main!(benches);
