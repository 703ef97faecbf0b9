//! The resilience layer's hot paths: acquiring and releasing an uncontended permit (`Limiter::acquire`, with its
//! metrics) against a bare tokio semaphore, and a circuit-breaker check and success against a bare mutex.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use exai_core::resilience::breaker::{BreakerConfig, Breakers};
use exai_core::resilience::budget::Budget;
use exai_core::resilience::limits::{Limiter, QueuePolicy};
use tokio::sync::Semaphore;

fn permits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let queue = QueuePolicy {
        max_waiters: 16,
        max_wait: Duration::from_secs(1),
    };
    let limiter = Limiter::new("global", 64, queue);
    let budget = Budget::new(Duration::from_secs(3600));
    let sem = Arc::new(Semaphore::new(64));
    let mut group = c.benchmark_group("permit");
    group.bench_function("limiter_acquire_release", |b| {
        b.iter(|| rt.block_on(async { drop(black_box(limiter.acquire(&budget).await.unwrap())) }))
    });
    group.bench_function("semaphore_acquire_release", |b| {
        b.iter(|| rt.block_on(async { drop(black_box(sem.clone().acquire_owned().await.unwrap())) }))
    });
    assert_eq!(limiter.in_use(), 0);
    group.finish();
}

fn breakers(c: &mut Criterion) {
    let breakers = Breakers::new(BreakerConfig {
        failures: 5,
        window: Duration::from_secs(60),
        cooldown: Duration::from_secs(30),
        half_open_probes: 1,
        close_after: 2,
    });
    let plain = Mutex::new(0u64);
    // The runtime is only there because breakers read tokio's clock.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let mut group = c.benchmark_group("breaker");
    group.bench_function("get_admit_success", |b| {
        b.iter(|| {
            let breaker = breakers.get(black_box("glm"), black_box("glm-4.6"));
            breaker.admit().unwrap();
            breaker.on_success();
        })
    });
    group.bench_function("mutex_lock", |b| b.iter(|| *plain.lock().unwrap() += 1));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = permits, breakers
}
criterion_main!(benches);
