//! The filter parser and evaluator against a straightforward reference:
//! random expressions are printed, parsed back to the same tree, and
//! evaluated on random records exactly as a direct evaluation says.

use std::collections::BTreeMap;

use proptest::prelude::*;
use zgc_query::filter::{CmpOp, Expr, FieldRef, HasArg, Literal};
use zgc_query::{FieldType, Filter, Record, Schema, Value};

const SCHEMA: Schema = Schema {
    resource: "thing",
    filter_fields: &[
        ("name", FieldType::String),
        ("size", FieldType::Int),
        ("ok", FieldType::Bool),
        ("tags", FieldType::StringList),
        ("labels", FieldType::StringMap),
    ],
    order_fields: &[],
};

#[derive(Debug, Clone)]
struct Thing {
    name: String,
    size: i64,
    ok: bool,
    tags: Vec<String>,
    labels: BTreeMap<String, String>,
}

impl Record for Thing {
    fn value(&self, field: &str, key: Option<&str>) -> Option<Value<'_>> {
        Some(match (field, key) {
            ("name", None) => Value::Str(&self.name),
            ("size", None) => Value::Int(self.size),
            ("ok", None) => Value::Bool(self.ok),
            ("tags", None) => Value::List(&self.tags),
            ("labels", None) => Value::MapKeys(self.labels.keys().map(String::as_str).collect()),
            ("labels", Some(k)) => Value::MapEntry(self.labels.get(k).map(String::as_str)),
            _ => return None,
        })
    }
}

/// The reference: the meaning of each construct, written out directly.
fn reference(e: &Expr, t: &Thing) -> bool {
    let cmp = |op: CmpOp, o: std::cmp::Ordering| match op {
        CmpOp::Eq => o.is_eq(),
        CmpOp::Ne => o.is_ne(),
        CmpOp::Lt => o.is_lt(),
        CmpOp::Le => o.is_le(),
        CmpOp::Gt => o.is_gt(),
        CmpOp::Ge => o.is_ge(),
    };
    match e {
        Expr::And(v) => v.iter().all(|x| reference(x, t)),
        Expr::Or(v) => v.iter().any(|x| reference(x, t)),
        Expr::Not(x) => !reference(x, t),
        Expr::Compare { field, op, value } => match (field.path.as_str(), &field.key, value) {
            ("name", None, Literal::Str(s)) => cmp(*op, t.name.as_str().cmp(s)),
            ("size", None, Literal::Int(i)) => cmp(*op, t.size.cmp(i)),
            ("ok", None, Literal::Bool(b)) => cmp(*op, t.ok.cmp(b)),
            ("labels", Some(k), Literal::Str(s)) => {
                t.labels.get(k).is_some_and(|v| cmp(*op, v.as_str().cmp(s)))
            }
            other => panic!("generator made an impossible comparison {other:?}"),
        },
        Expr::Has { field, arg } => match (field.path.as_str(), &field.key, arg) {
            ("tags", None, HasArg::Any) => !t.tags.is_empty(),
            ("tags", None, HasArg::Value(v)) => t.tags.contains(v),
            ("labels", None, HasArg::Any) => !t.labels.is_empty(),
            ("labels", None, HasArg::Value(v)) => t.labels.contains_key(v),
            ("labels", Some(k), HasArg::Any) => t.labels.contains_key(k),
            ("labels", Some(k), HasArg::Value(v)) => t.labels.get(k) == Some(v),
            other => panic!("generator made an impossible has {other:?}"),
        },
    }
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        "[a-c\"\\\\ \n]{0,3}"
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ]
}

fn field(path: &str, key: Option<String>) -> FieldRef {
    FieldRef {
        path: path.into(),
        key,
    }
}

fn has(path: &'static str, key: Option<String>, v: Option<String>) -> Expr {
    Expr::Has {
        field: field(path, key),
        arg: v.map_or(HasArg::Any, HasArg::Value),
    }
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (op(), word()).prop_map(|(op, s)| Expr::Compare {
            field: field("name", None),
            op,
            value: Literal::Str(s)
        }),
        (op(), -3i64..3).prop_map(|(op, i)| Expr::Compare {
            field: field("size", None),
            op,
            value: Literal::Int(i)
        }),
        (prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)], any::<bool>()).prop_map(|(op, b)| {
            Expr::Compare {
                field: field("ok", None),
                op,
                value: Literal::Bool(b),
            }
        }),
        (op(), "[ab]", word()).prop_map(|(op, k, s)| Expr::Compare {
            field: field("labels", Some(k)),
            op,
            value: Literal::Str(s)
        }),
        prop::option::of(word()).prop_map(|v| has("tags", None, v)),
        (prop::option::of("[ab]"), prop::option::of(word())).prop_map(|(k, v)| has("labels", k, v)),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn thing() -> impl Strategy<Value = Thing> {
    (
        word(),
        -3i64..3,
        any::<bool>(),
        prop::collection::vec(word(), 0..3),
        prop::collection::btree_map("[ab]", word(), 0..2),
    )
        .prop_map(|(name, size, ok, tags, labels)| Thing {
            name,
            size,
            ok,
            tags,
            labels,
        })
}

/// The canonical (fully parenthesised) text of an expression.
fn canonical(e: &Expr) -> String {
    Filter::from_expr(Some(e.clone())).to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_filters_parse_back_and_evaluate_like_the_reference(
        e in expr(),
        things in prop::collection::vec(thing(), 1..8),
    ) {
        let text = canonical(&e);
        let parsed = Filter::parse(&text, &SCHEMA)
            .map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(parsed.to_string(), text.clone());
        for t in &things {
            prop_assert_eq!(parsed.matches(t), reference(&e, t), "{} on {:?}", text, t);
        }
    }

    /// Arbitrary input never panics: it parses, or the error names a
    /// position inside (or just past) the text.
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
        if let Err(e) = Filter::parse(&s, &SCHEMA) {
            prop_assert!(e.position >= 1 && e.position <= s.chars().count() + 1);
        }
    }

    #[test]
    fn token_soup_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("("), Just(")"), Just("AND"), Just("OR"), Just("NOT"), Just("name"), Just("size"),
        Just("tags"), Just("labels.a"), Just("="), Just("<="), Just(":"), Just("*"), Just("\"x\""),
        Just("3"), Just("true"),
    ], 0..20)) {
        let s = parts.join(" ");
        if let Err(e) = Filter::parse(&s, &SCHEMA) {
            prop_assert!(e.position >= 1 && e.position <= s.chars().count() + 1);
        }
    }
}
