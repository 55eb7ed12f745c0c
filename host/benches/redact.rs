//! `cargo bench -p triage --bench redact`: redacting a ~50 MB config dump, what `--record`
//! does to every answer before it goes into a bundle.
//!
//! The dump is the real Istio 1.6 productpage sidecar dump (fixtures/real) repeated until
//! it reaches ~50 MB (redaction reads text, so the copies need not form one JSON document):
//!
//! - `clean`: as it is (nothing to redact: the cost every recording pays);
//! - `with-secrets`: each copy followed by a metadata-server token answer, an
//!   `Authorization: Bearer` line with a JWT and an env-style `DB_PASSWORD=…`, so about
//!   300 values are replaced.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use std::time::Duration;
use triage::redact::{Redactor, Tally};

const SOURCE: &str =
    "../fixtures/real/envoy-config-dump/istio-1.6-bookinfo-productpage-sidecar.config_dump.json";
const TARGET_BYTES: usize = 50_000_000;

const SECRETS: &str = concat!(
    "\n{\"access_token\":\"ya29.c.b0AXv0zTNl1vR2Qk9mHbE6ZexampleExampleExample\",\"expires_in\":3599,\"token_type\":\"Bearer\"}\n",
    "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJl\n",
    "DB_PASSWORD=correct-horse-battery-staple\n",
);

fn dump(with_secrets: bool) -> Vec<u8> {
    let one = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(SOURCE)).unwrap();
    let mut out = Vec::with_capacity(TARGET_BYTES + one.len());
    while out.len() < TARGET_BYTES {
        out.extend_from_slice(&one);
        if with_secrets {
            out.extend_from_slice(SECRETS.as_bytes());
        }
    }
    out
}

fn redact(c: &mut Criterion) {
    let redactor = Redactor::builtin();
    let mut group = c.benchmark_group("redact_50mb");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, with_secrets) in [("clean", false), ("with-secrets", true)] {
        let text = dump(with_secrets);
        let mut tally = Tally::default();
        let out = redactor.bytes(&text, &mut tally);
        let replaced: usize = tally.entries().iter().map(|e| e.count).sum();
        eprintln!(
            "{name}: {} bytes in, {} out, {replaced} values replaced",
            text.len(),
            out.len()
        );
        assert_eq!(replaced == 0, !with_secrets, "{tally:?}");
        group.bench_function(name, |b| {
            b.iter(|| redactor.bytes(&text, &mut Tally::default()).len())
        });
    }
    group.finish();
}

criterion_group!(benches, redact);
criterion_main!(benches);
