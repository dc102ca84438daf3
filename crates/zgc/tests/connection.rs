//! The CLI against secured servers: bearer tokens for writes, TLS and
//! mutual TLS on both services (the stats service following the registry
//! over mutual TLS too), and one trace across the CLI and the registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use zgc_tests::otlp::Otlp;
use zgc_tests::pki::Pki;
use zgc_tests::{Registry, Stats};

/// Runs `zgc` with `args` and `env`; returns (exit code, stdout, stderr).
async fn zgc(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("zgc").unwrap();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PARK: &str = r#"{"displayName":"Secured Park","kind":"PARK_KIND_SCIENCE_PARK","location":{"province":"Hebei","city":"Baoding"}}"#;

#[tokio::test]
async fn writes_need_a_listed_token_and_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# writers\nold-token\nnew-token\n").unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "guess\n").unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, "new-token\n").unwrap();
    let tokens_path = tokens.clone();
    let registry = Registry::start_with(move |c| c.auth_token_file = Some(tokens_path)).await;
    let endpoint = registry.endpoint();
    let create = |file: Option<&std::path::Path>| {
        let mut args = vec![
            "--registry".to_string(),
            endpoint.clone(),
            "parks".into(),
            "create".into(),
            "--id".into(),
            "secured".into(),
            "--json".into(),
            PARK.into(),
        ];
        if let Some(f) = file {
            args.extend(["--token-file".into(), f.display().to_string()]);
        }
        args
    };

    let args = create(None);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = zgc(&args, &[]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");

    let args = create(Some(&wrong));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = zgc(&args, &[]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("PERMISSION_DENIED"), "{stderr}");
    assert!(!stderr.contains("guess"), "a token was printed: {stderr}");

    let args = create(Some(&good));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = zgc(&args, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("parks/secured"), "{stdout}");

    // Reads need nothing.
    let (code, stdout, stderr) = zgc(&["--registry", &endpoint, "parks", "list"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Secured Park"), "{stdout}");
}

/// A registry serving TLS with `pki`'s server certificate and requiring
/// client certificates from its CA.
async fn mutual_tls_registry(pki: &Pki) -> Registry {
    let (cert, key, ca) = (
        pki.server_cert.clone(),
        pki.server_key.clone(),
        pki.ca.clone(),
    );
    Registry::start_with(move |c| {
        c.server.tls_cert = Some(cert);
        c.server.tls_key = Some(key);
        c.server.tls_client_ca = Some(ca);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_on_both_services() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let registry = mutual_tls_registry(&pki).await;
    let registry_url = format!("https://localhost:{}", registry.addr.port());
    // The stats service follows over mutual TLS and serves TLS itself.
    let (cert, key, ca) = (
        pki.server_cert.clone(),
        pki.server_key.clone(),
        pki.ca.clone(),
    );
    let (client_cert, client_key) = (pki.client_cert.clone(), pki.client_key.clone());
    let stats = Stats::start_with(&registry_url, move |c| {
        c.registry_tls_ca = Some(ca.clone());
        c.registry_tls_cert = Some(client_cert);
        c.registry_tls_key = Some(client_key);
        c.server.tls_cert = Some(cert);
        c.server.tls_key = Some(key);
    })
    .await;
    let stats_url = format!("https://localhost:{}", stats.addr.port());
    let ca = pki.ca.display().to_string();
    let client_cert = pki.client_cert.display().to_string();
    let client_key = pki.client_key.display().to_string();
    let trusted = [
        "--registry",
        &registry_url,
        "--stats",
        &stats_url,
        "--tls-ca",
        &ca,
        "--tls-cert",
        &client_cert,
        "--tls-key",
        &client_key,
    ];

    let mut args = trusted.to_vec();
    args.extend([
        "companies",
        "create",
        "--id",
        "over-tls",
        "--json",
        r#"{"displayName":"Over TLS","location":{"province":"Hebei","city":"Baoding"}}"#,
    ]);
    let (code, _, stderr) = zgc(&args, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    // The stats service saw it over its mutual-TLS stream.
    let mut args = trusted.to_vec();
    args.extend([
        "--output",
        "json",
        "stats",
        "summary",
        "--all",
        "--min-revision",
        "1",
    ]);
    let (code, stdout, stderr) = zgc(&args, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"companyCount\": \"1\""), "{stdout}");
}

/// Every way a connection can be refused is named, not "transport
/// error": the CLI walks the error's causes (and, for TLS, makes a second
/// handshake only to see how it fails), and exits 3 (unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let registry = mutual_tls_registry(&pki).await;
    let url = format!("https://localhost:{}", registry.addr.port());
    let ca = pki.ca.display().to_string();
    let client_cert = pki.client_cert.display().to_string();
    let client_key = pki.client_key.display().to_string();
    let stranger_cert = pki.stranger_cert.display().to_string();
    let stranger_key = pki.stranger_key.display().to_string();
    let (v1_cert, v1_key) = pki.v1_client(dir.path());
    let (v1_cert, v1_key) = (v1_cert.display().to_string(), v1_key.display().to_string());
    let plaintext = format!("http://127.0.0.1:{}", registry.addr.port());
    let nowhere = {
        // A port nothing listens on: bound, then released.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--registry", &url, "--tls-ca", &ca],
            "the server asks for a client certificate",
        ),
        (
            vec![
                "--registry",
                &url,
                "--tls-ca",
                &ca,
                "--tls-cert",
                &stranger_cert,
                "--tls-key",
                &stranger_key,
            ],
            "the server refused this client's certificate (unknown_ca): it is not signed by a CA the server trusts",
        ),
        (
            vec![
                "--registry",
                &url,
                "--tls-ca",
                &ca,
                "--tls-cert",
                &v1_cert,
                "--tls-key",
                &v1_key,
            ],
            "is not an X.509 v3 certificate",
        ),
        (
            vec![
                "--registry",
                &url,
                "--tls-cert",
                &client_cert,
                "--tls-key",
                &client_key,
            ],
            "the server's certificate is not trusted",
        ),
        (
            vec!["--registry", &plaintext],
            "the server speaks TLS at this address (use an https:// address",
        ),
        (vec!["--registry", &nowhere], "connection refused"),
    ];
    for (mut args, cause) in cases {
        args.extend(["parks", "list"]);
        let (code, _, stderr) = zgc(&args, &[]).await;
        assert!(
            stderr.contains(cause),
            "{args:?}: want {cause:?} in {stderr}"
        );
        assert!(
            !stderr.contains("transport error\n") || stderr.contains("cause:"),
            "{stderr}"
        );
        let expected = if cause.contains("X.509 v3") { 2 } else { 3 };
        assert_eq!(code, expected, "{args:?}: {stderr}");
    }

    // With the right certificate, the same call goes through.
    let (code, _, stderr) = zgc(
        &[
            "--registry",
            &url,
            "--tls-ca",
            &ca,
            "--tls-cert",
            &client_cert,
            "--tls-key",
            &client_key,
            "parks",
            "list",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_one_trace_from_the_cli_through_the_registry() {
    let mut otlp = Otlp::start().await;
    // This process's servers export to the same collector as the CLI.
    let _guard = zgc_server::telemetry::init_service_exporting_to(
        zgc_server::telemetry::LogFormat::Text,
        "warn",
        "zgc-registry",
        &otlp.endpoint,
    );
    let registry = Registry::start().await;
    let (code, _, stderr) = zgc(
        &["--registry", &registry.endpoint(), "parks", "list"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let root = otlp.span(|s| s.service == "zgc" && s.name == "zgc").await;
    assert!(root.parent.is_empty(), "{root:?}");
    let call = otlp
        .span(|s| s.service == "zgc-registry" && s.name == "rpc" && s.trace_id == root.trace_id)
        .await;
    assert!(!call.parent.is_empty(), "{call:?}");
}
