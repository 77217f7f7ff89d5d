//! Parser choice, measured: our strict span-keeping parser (`manifest::Document`) against
//! jsonc-parser's CST in strict mode, on the real-shaped samples. Prints, per sample, the
//! time to parse and to parse + add the 1.0.0 -> 1.2.0 members + write out, and whether the
//! two outputs are byte-identical. Run: `cargo bench --bench parse`.

use std::time::{Duration, Instant};

use artifact_migrate::manifest::{Document, Edit, Json};
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use jsonc_parser::ParseOptions;

const SAMPLES: [(&str, &str); 3] = [
    (
        "v1.0.0 one-line",
        include_str!("../fixtures/samples/v1.0.0-manifest.json"),
    ),
    (
        "v1.1.0 indent 2, sorted",
        include_str!("../fixtures/samples/v1.1.0-manifest.json"),
    ),
    (
        "v1.2.0 indent 2, sorted",
        include_str!("../fixtures/samples/v1.2.0-manifest.json"),
    ),
];

fn strict() -> ParseOptions {
    ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

fn ours(text: &str) -> Vec<u8> {
    let mut doc = Document::parse(text.as_bytes()).expect("sample parses");
    for (k, v) in members() {
        if doc.value().get(k).is_none() {
            doc.apply(&Edit::Add {
                pointer: format!("/{k}"),
                value: v,
            })
            .expect("edit applies");
        }
    }
    doc.into_bytes()
}

fn members() -> Vec<(&'static str, Json)> {
    vec![
        ("input_snapshots", Json::Object(vec![])),
        ("inputs_hash", Json::Null),
        (
            "chain_metadata",
            Json::object(vec![
                ("is_chainable_stage".into(), Json::Bool(false)),
                ("prior_stages".into(), Json::Array(vec![])),
            ]),
        ),
    ]
}

fn theirs(text: &str) -> Vec<u8> {
    let root = CstRootNode::parse(text, &strict()).expect("sample parses");
    let obj = root.object_value_or_set();
    for (k, v) in members() {
        if obj.get(k).is_none() {
            obj.append(k, to_cst(&v));
        }
    }
    root.to_string().into_bytes()
}

fn to_cst(v: &Json) -> CstInputValue {
    match v {
        Json::Null => CstInputValue::Null,
        Json::Bool(b) => CstInputValue::Bool(*b),
        Json::Number(n) => CstInputValue::Number(n.clone()),
        Json::String(s) => CstInputValue::String(s.clone()),
        Json::Array(a) => CstInputValue::Array(a.iter().map(to_cst).collect()),
        Json::Object(o) => {
            CstInputValue::Object(o.iter().map(|(k, v)| (k.clone(), to_cst(v))).collect())
        }
    }
}

fn time(iters: u32, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn main() {
    let iters = 2000;
    println!(
        "{:<26} {:>14} {:>14} {:>16} {:>16}  same output",
        "sample", "ours parse", "cst parse", "ours edit+write", "cst edit+write"
    );
    for (name, text) in SAMPLES {
        let p_ours = time(iters, || {
            std::hint::black_box(Document::parse(text.as_bytes()).map(|d| d.value()).ok());
        });
        let p_cst = time(iters, || {
            std::hint::black_box(CstRootNode::parse(text, &strict()).ok());
        });
        let e_ours = time(iters, || {
            std::hint::black_box(ours(text));
        });
        let e_cst = time(iters, || {
            std::hint::black_box(theirs(text));
        });
        let same = ours(text) == theirs(text);
        println!(
            "{name:<26} {:>12.1}µs {:>12.1}µs {:>14.1}µs {:>14.1}µs  {same}",
            us(p_ours),
            us(p_cst),
            us(e_ours),
            us(e_cst)
        );
        if !same {
            println!(
                "  ours:   {}",
                String::from_utf8_lossy(&ours(text))
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .chars()
                    .take(160)
                    .collect::<String>()
            );
            println!(
                "  theirs: {}",
                String::from_utf8_lossy(&theirs(text))
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .chars()
                    .take(160)
                    .collect::<String>()
            );
        }
    }
    // Strictness: what each accepts that strict JSON does not.
    for bad in [
        "{\"a\": 1,}",
        "{\"a\": 1, \"a\": 2}",
        "{/*c*/\"a\": 1}",
        "{\"a\": NaN}",
    ] {
        let o = Document::parse(bad.as_bytes()).is_ok();
        let t = CstRootNode::parse(bad, &strict()).is_ok();
        println!("accepts {bad:<22} ours: {o:<5} cst (strict options): {t}");
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
