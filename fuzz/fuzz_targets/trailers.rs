//! The commit-message trailer reader (`git::message::trailers`): never panics on any message,
//! and reads back exactly the trailers a batch message was rendered with, whatever the
//! user-controlled parts (the `-m` subject, the changes migrations describe) contain.
#![no_main]

use artifact_migrate::git::message::{keys, trailers, BatchMessage, StepGroup};
use artifact_migrate::schema::Version;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

fn version(u: &mut Unstructured) -> arbitrary::Result<Version> {
    Ok(Version::new(
        u64::from(u.int_in_range(0..=12u8)?),
        u64::from(u.int_in_range(0..=12u8)?),
        u64::from(u.int_in_range(0..=12u8)?),
    ))
}

fn message(u: &mut Unstructured) -> arbitrary::Result<BatchMessage> {
    let mut groups = Vec::new();
    for _ in 0..u.int_in_range(1..=3u8)? {
        let (from, to) = (version(u)?, version(u)?);
        let count = usize::from(u.int_in_range(1..=500u16)?);
        let mut changes = Vec::new();
        for _ in 0..u.int_in_range(0..=4u8)? {
            let text = String::arbitrary(u)?;
            changes.push((text, usize::from(u.int_in_range(1..=500u16)?).min(count)));
        }
        groups.push(StepGroup {
            from,
            to,
            steps: vec![format!("{from}->{to}")],
            count,
            changes,
        });
    }
    Ok(BatchMessage {
        target: version(u)?,
        groups,
        already_current: usize::from(u16::arbitrary(u)?),
        failed: usize::from(u8::arbitrary(u)?),
        applied_at: "2026-11-24T19:00:00Z".to_string(),
        tool: "artifact-migrate 0.1.0".to_string(),
        registry: bool::arbitrary(u)?.then(|| {
            format!(
                "sha256:{:064x}",
                u128::from(u.arbitrary::<u64>().unwrap_or(0))
            )
        }),
        subject: Option::<String>::arbitrary(u)?,
    })
}

fuzz_target!(|data: &[u8]| {
    // Any message at all: no panic.
    let _ = trailers(&String::from_utf8_lossy(data));
    let mut u = Unstructured::new(data);
    let Ok(m) = message(&mut u) else { return };
    let text = m.render();
    let mut want = vec![
        (keys::TARGET.to_string(), m.target.to_string()),
        (keys::MANIFESTS.to_string(), m.migrated().to_string()),
    ];
    for g in &m.groups {
        want.push((
            keys::STEP.to_string(),
            format!("{}->{} {}", g.from, g.to, g.count),
        ));
    }
    if let Some(r) = &m.registry {
        want.push((keys::REGISTRY.to_string(), r.clone()));
    }
    want.push((keys::APPLIED_AT.to_string(), m.applied_at.clone()));
    want.push((keys::TOOL.to_string(), m.tool.clone()));
    assert_eq!(trailers(&text), want, "trailers of:\n{text}");
});
