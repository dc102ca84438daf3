//! The stats service's dashboard port (`--http-listen`), over real
//! HTTP/1.1 as a browser speaks it: the page and its files, grpc-web calls
//! answering what gRPC answers, WatchSummary streaming over grpc-web, and
//! CORS for pages served elsewhere. The page itself, in a real browser, is
//! tested by `crates/zgc/tests/dashboard.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost::Message;
use zgc_proto::registry::v1::CreateCompanyRequest;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, Summary, WatchSummaryRequest, scope};
use zgc_tests::{Registry, Stats, company, request_id};

type Response = hyper::Response<hyper::body::Incoming>;

/// Sends `request` over a new HTTP/1.1 connection to `addr`.
async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Response {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

async fn body(response: Response) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(header::HOST, "zgc")
        .body(Full::default())
        .unwrap()
}

/// A grpc-web call of `method` with `message`, as Connect-ES's grpc-web
/// transport sends it.
fn grpc_web(method: &str, message: &impl Message, origin: Option<&str>) -> Request<Full<Bytes>> {
    let encoded = message.encode_to_vec();
    let mut framed = BytesMut::new();
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&encoded);
    let mut request = Request::post(format!("/zgc.stats.v1.StatsService/{method}"))
        .header(header::HOST, "zgc")
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("x-user-agent", "zgc-tests");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request.body(Full::new(framed.freeze())).unwrap()
}

/// A grpc-web response body: its messages, and its trailers as text.
#[derive(Debug, Default)]
struct Frames {
    messages: Vec<Bytes>,
    trailers: Option<String>,
}

impl Frames {
    /// Takes every whole frame at the start of `buf`.
    fn take(&mut self, buf: &mut BytesMut) {
        while buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() < 5 + len {
                return;
            }
            let flag = buf[0];
            buf.advance(5);
            let payload = buf.split_to(len).freeze();
            if flag & 0x80 != 0 {
                self.trailers = Some(String::from_utf8(payload.to_vec()).unwrap());
            } else {
                self.messages.push(payload);
            }
        }
    }

    fn of(body: &[u8]) -> Self {
        let mut frames = Self::default();
        let mut buf = BytesMut::from(body);
        frames.take(&mut buf);
        assert!(buf.is_empty(), "a partial frame: {buf:?}");
        frames
    }

    fn status(&self) -> &str {
        let trailers = self
            .trailers
            .as_deref()
            .unwrap_or_else(|| panic!("no trailers: {self:?}"));
        trailers
            .lines()
            .find_map(|l| l.strip_prefix("grpc-status:"))
            .expect("grpc-status")
            .trim()
    }
}

fn everything() -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::All(true)),
        include_affiliates: false,
    })
}

async fn services(tweak: impl FnOnce(&mut zgc_stats::Config)) -> (Registry, Stats, SocketAddr) {
    let registry = Registry::start().await;
    let stats = Stats::start_with_dashboard(&registry.endpoint(), tweak).await;
    stats.wait_serving().await;
    let dashboard = stats.dashboard_addr.expect("a dashboard");
    (registry, stats, dashboard)
}

async fn create_company(registry: &Registry, name: &str) -> u64 {
    let response = registry
        .client()
        .await
        .create_company(CreateCompanyRequest {
            company: Some(company(name, "Hebei", "Baoding")),
            company_id: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap();
    response.into_inner().revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_their_types_and_nothing_else() {
    let (_registry, _stats, dashboard) = services(|_| {}).await;
    for (path, content_type, contains) in [
        ("/", "text/html", "<title>zgc dashboard</title>"),
        (
            "/app.js",
            "text/javascript",
            "Relocation flows, origin to destination",
        ),
        ("/app.css", "text/css", "#figures"),
    ] {
        let response = send(dashboard, get(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}: {headers:?}"
        );
        // The page may load nothing from elsewhere.
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let text = body(response).await;
        assert!(
            String::from_utf8_lossy(&text).contains(contains),
            "{path} lacks {contains}"
        );
    }
    assert_eq!(
        send(dashboard, get("/elsewhere")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_web_call_answers_what_the_grpc_port_answers() {
    let (registry, stats, dashboard) = services(|_| {}).await;
    let revision = create_company(&registry, "Grpc Web Co").await;
    let request = GetSummaryRequest {
        scope: everything(),
        min_revision: revision,
    };
    let over_grpc = stats
        .client()
        .await
        .get_summary(request.clone())
        .await
        .unwrap()
        .into_inner();

    let response = send(dashboard, grpc_web("GetSummary", &request, None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web"),
        "{:?}",
        response.headers()
    );
    assert!(
        response
            .headers()
            .contains_key(zgc_proto::wire::REVISION_HEADER)
    );
    let headers = response.headers().clone();
    let frames = Frames::of(&body(response).await);
    assert_eq!(frames.status(), "0", "{frames:?} {headers:?}");
    assert_eq!(frames.messages.len(), 1);
    let over_web = Summary::decode(frames.messages[0].clone()).unwrap();
    assert_eq!(over_web, over_grpc);
    assert_eq!(over_web.company_count, 1);

    // A bad request is refused as on the gRPC port: a trailers-only
    // answer, its status in the headers as grpc-web has it.
    let bad = GetSummaryRequest::default();
    let response = send(dashboard, grpc_web("GetSummary", &bad, None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "3", "{response:?}");
    assert!(body(response).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_summary_streams_over_grpc_web_as_writes_land() {
    let (registry, _stats, dashboard) = services(|_| {}).await;
    let first = create_company(&registry, "Before The Watch").await;
    let request = WatchSummaryRequest {
        scope: everything(),
        min_interval: Some(prost_types::Duration {
            seconds: 0,
            nanos: 100_000_000,
        }),
        min_revision: first,
    };
    let response = send(dashboard, grpc_web("WatchSummary", &request, None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    let mut frames = Frames::default();
    let mut next_summary = async || loop {
        if let Some(message) = (!frames.messages.is_empty()).then(|| frames.messages.remove(0)) {
            return Summary::decode(message).unwrap();
        }
        assert!(frames.trailers.is_none(), "the stream ended: {frames:?}");
        let frame = body.frame().await.expect("more of the stream").unwrap();
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            frames.take(&mut buf);
        }
    };
    let summary = next_summary().await;
    assert!(summary.as_of_revision >= first);
    assert_eq!(summary.company_count, 1);

    let second = create_company(&registry, "During The Watch").await;
    let mut summary = next_summary().await;
    while summary.as_of_revision < second {
        summary = next_summary().await;
    }
    assert_eq!(summary.company_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_the_configured_origins_call_and_no_other() {
    let allowed = "https://parks.example.org";
    let (_registry, _stats, dashboard) = services(|c| {
        c.http_allowed_origins = vec![allowed.into(), "http://127.0.0.1:9".into()];
    })
    .await;
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/zgc.stats.v1.StatsService/GetSummary")
            .header(header::HOST, "zgc")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-grpc-web,x-user-agent",
            )
            .body(Full::default())
            .unwrap()
    };
    let response = send(dashboard, preflight(allowed)).await;
    assert!(response.status().is_success(), "{response:?}");
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], allowed);
    let allow_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allow_headers.contains("x-grpc-web"), "{allow_headers}");

    let response = send(dashboard, preflight("https://elsewhere.example")).await;
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "{response:?}"
    );

    // The call itself lets the page read the gRPC status.
    let request = GetSummaryRequest {
        scope: everything(),
        min_revision: 0,
    };
    let response = send(dashboard, grpc_web("GetSummary", &request, Some(allowed))).await;
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], allowed);
    let exposed = headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("grpc-status"), "{exposed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_origins_that_is_not_one_stops_the_service_from_starting() {
    let mut config = zgc_stats::Config::for_registry("http://127.0.0.1:1");
    config.http_allowed_origins = vec!["parks.example.org".into()];
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = zgc_stats::serve_with(
        config,
        zgc_stats::Listeners {
            grpc,
            metrics: None,
            http: Some(http),
        },
        futures::stream::pending(),
    )
    .await;
    let error = result.expect_err("a bad origin must stop it").to_string();
    assert!(
        error.contains("--http-allowed-origins") && error.contains("parks.example.org"),
        "{error}"
    );
}
