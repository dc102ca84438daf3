//! B3 trace propagation (Zipkin's format), which Envoy's Zipkin tracer and
//! older meshes use: the single `b3` header and the `x-b3-*` set, read on
//! incoming calls and written on outgoing ones, beside W3C trace context.
//!
//! Written here because the OpenTelemetry crate that carried it
//! (`opentelemetry-zipkin`) is deprecated. Spec:
//! <https://github.com/openzipkin/b3-propagation>.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";
static FIELDS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    [B3, TRACE_ID, SPAN_ID, SAMPLED, FLAGS]
        .iter()
        .map(|f| f.to_string())
        .collect()
});

/// The B3 propagator: single and multi-header.
#[derive(Debug, Default, Clone, Copy)]
pub struct B3Propagator;

/// A trace ID of 16 or 32 lowercase hex digits (64-bit IDs are widened).
fn trace_id(hex: &str) -> Option<TraceId> {
    let valid = matches!(hex.len(), 16 | 32)
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return None;
    }
    let id = TraceId::from_hex(hex).ok()?;
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(hex: &str) -> Option<SpanId> {
    let valid = hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return None;
    }
    let id = SpanId::from_hex(hex).ok()?;
    (id != SpanId::INVALID).then_some(id)
}

/// `1` or `d` (debug) sample, `0` does not; anything else: no decision.
fn sampled(flag: &str) -> Option<bool> {
    match flag {
        "1" | "d" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn context(trace: TraceId, span: SpanId, sample: Option<bool>) -> SpanContext {
    let flags = if sample == Some(true) {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(trace, span, flags, true, TraceState::default())
}

/// `{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`.
fn single(value: &str) -> Option<SpanContext> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    if !(2..=4).contains(&parts.len()) {
        return None;
    }
    let sample = match parts.get(2) {
        Some(flag) => Some(sampled(flag)?),
        None => None,
    };
    if let Some(parent) = parts.get(3) {
        span_id(parent)?;
    }
    Some(context(trace_id(parts[0])?, span_id(parts[1])?, sample))
}

fn multi(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = trace_id(extractor.get(TRACE_ID)?.trim())?;
    let span = span_id(extractor.get(SPAN_ID)?.trim())?;
    let debug = extractor.get(FLAGS).map(str::trim) == Some("1");
    let sample = if debug {
        Some(true)
    } else {
        extractor.get(SAMPLED).and_then(|s| sampled(s.trim()))
    };
    Some(context(trace, span, sample))
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let flag = if sc.is_sampled() { "1" } else { "0" };
        injector.set(B3, format!("{}-{}-{flag}", sc.trace_id(), sc.span_id()));
        injector.set(TRACE_ID, sc.trace_id().to_string());
        injector.set(SPAN_ID, sc.span_id().to_string());
        injector.set(SAMPLED, flag.to_string());
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = match extractor.get(B3) {
            Some(value) => single(value),
            None => multi(extractor),
        };
        match found {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn extract(headers: &[(&str, &str)]) -> Option<SpanContext> {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cx = B3Propagator.extract(&map);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    const T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const S: &str = "e457b5a2e4d86bd1";

    #[test]
    fn reads_single_and_multi_headers() {
        let sc = extract(&[("b3", &format!("{T}-{S}-1-05e3ac9a4f6e3b90"))]).unwrap();
        assert_eq!(sc.trace_id().to_string(), T);
        assert_eq!(sc.span_id().to_string(), S);
        assert!(sc.is_sampled() && sc.is_remote());

        let sc = extract(&[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "0"),
        ])
        .unwrap();
        assert_eq!(sc.trace_id().to_string(), T);
        assert!(!sc.is_sampled());
        let sc = extract(&[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")]).unwrap();
        assert!(sc.is_sampled());

        // 64-bit trace IDs are widened.
        let sc = extract(&[("b3", &format!("64fe8b2a57d3eff7-{S}"))]).unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "0",
            "1",
            "",
            T,
            &format!("{T}-{S}-x"),
            &format!("{T}-short"),
            &format!("{}-{S}", T.to_uppercase()),
            &format!("{}-{S}", "0".repeat(32)),
            &format!("{T}-{S}-1-bad-extra"),
        ] {
            assert!(extract(&[("b3", bad)]).is_none(), "{bad}");
        }
        assert!(extract(&[("x-b3-traceid", T)]).is_none());
    }

    #[test]
    fn writes_both_forms_and_reads_them_back() {
        let sc = context(
            TraceId::from_hex(T).unwrap(),
            SpanId::from_hex(S).unwrap(),
            Some(true),
        );
        let cx = Context::new().with_remote_span_context(sc);
        let mut map: HashMap<String, String> = HashMap::new();
        B3Propagator.inject_context(&cx, &mut map);
        assert_eq!(map["b3"], format!("{T}-{S}-1"));
        assert_eq!(map["x-b3-traceid"], T);
        assert_eq!(map["x-b3-sampled"], "1");
        let back = B3Propagator.extract(&map);
        assert_eq!(back.span().span_context().trace_id().to_string(), T);
    }
}
