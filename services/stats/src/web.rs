//! The dashboard on `--http-listen`: the page and its script (built from
//! `web/` by `npm run build` and embedded in the binary, so serving it
//! needs no Node and loads nothing from elsewhere), and the stats service
//! over grpc-web for it (`tonic-web`), with CORS for pages served from
//! other origins.
//!
//! It has its own port rather than sharing the gRPC one: a browser speaks
//! HTTP/1.1 to a plain `http://` server (there is no h2c in browsers), so
//! grpc-web arrives as HTTP/1.1, while the gRPC port speaks HTTP/2 only,
//! behind its HTTP/2 flood guards, and is declared to a service mesh as
//! gRPC. Apart, each port is declared with its own protocol
//! (`appProtocol: grpc` and `http`) and exposed, or not, on its own.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The page. It loads `app.css` and `app.js`, and nothing else.
const INDEX: &str = include_str!("../web/index.html");
/// The bundle: the page's code and the generated client (`web/dist`).
const SCRIPT: &[u8] = include_bytes!("../web/dist/app.js");
/// The page's style (`web/dist`, from `web/src/app.css`).
const STYLE: &[u8] = include_bytes!("../web/dist/app.css");

/// What the page may load: only what this server serves, and calls to any
/// server (the page reads another one with `?api=`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self' http: https:; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The origins whose pages may call the service over grpc-web.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`): the figures are public and a call carries no
    /// credentials, so a page elsewhere learns nothing a direct gRPC
    /// client could not.
    Any,
    /// These origins only.
    List(Vec<HeaderValue>),
}

/// Parses `--http-allowed-origins`: `*`, or origins such as
/// `https://parks.example.org` (scheme, host and optional port; no path).
pub fn origins(list: &[String]) -> Result<Origins, String> {
    let list: Vec<&str> = list
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err("name at least one origin, or `*` for any".into());
    }
    if list.contains(&"*") {
        if list.len() > 1 {
            return Err("`*` allows every origin: give it alone".into());
        }
        return Ok(Origins::Any);
    }
    list.into_iter()
        .map(|origin| {
            let uri: http::Uri = origin
                .parse()
                .map_err(|e| format!("{origin:?} is not an origin: {e}"))?;
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            let bare =
                uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !origin.ends_with('/');
            if !scheme_ok || uri.host().is_none() || !bare {
                return Err(format!(
                    "{origin:?} is not an origin: write scheme://host[:port], \
                     such as https://parks.example.org"
                ));
            }
            HeaderValue::from_str(origin).map_err(|e| format!("{origin:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Origins::List)
}

/// The CORS rules for grpc-web calls from `origins`: the headers a
/// grpc-web client sends, and the ones it must read from the answer.
fn cors(origins: &Origins) -> CorsLayer {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            HeaderName::from_static(zgc_proto::wire::REVISION_HEADER),
        ])
        .max_age(Duration::from_secs(24 * 3600))
}

fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small, and replaced by a new binary: always revalidated.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
}

/// The dashboard's routes: the page at `/`, its files, and `grpc` (the
/// stats service, wrapped for grpc-web) under its service path.
pub fn router<S>(grpc: S, origins: &Origins) -> Router
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let page = || async { asset("text/html; charset=utf-8", INDEX.as_bytes()) };
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route_service(
            &format!(
                "/{}/{{*method}}",
                zgc_proto::stats::v1::stats_service_server::SERVICE_NAME
            ),
            grpc,
        )
        .layer(cors(origins))
}

/// Serves `router` on `listener` until `stop`, then lets open calls end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: tokio_util::sync::CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "dashboard listening");
    }
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the dashboard endpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn origins_are_any_or_a_list_of_bare_origins() {
        assert_eq!(origins(&list(&["*"])), Ok(Origins::Any));
        assert_eq!(
            origins(&list(&[
                "https://parks.example.org",
                " http://127.0.0.1:8080 "
            ])),
            Ok(Origins::List(vec![
                HeaderValue::from_static("https://parks.example.org"),
                HeaderValue::from_static("http://127.0.0.1:8080"),
            ]))
        );
        for bad in [
            &[][..],
            &[""],
            &["*", "https://a.example"],
            &["parks.example.org"],
            &["ftp://parks.example.org"],
            &["https://parks.example.org/"],
            &["https://parks.example.org/dashboard"],
            &["https://"],
        ] {
            assert!(origins(&list(bad)).is_err(), "{bad:?}");
        }
    }

    /// The page loads only what this server serves.
    #[test]
    fn the_page_loads_its_own_files_only() {
        let sources: Vec<&str> = INDEX
            .split(['"', '\''])
            .filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.starts_with("http"))
            .collect();
        assert_eq!(sources, ["app.css", "app.js"], "{INDEX}");
        assert!(!SCRIPT.is_empty() && !STYLE.is_empty());
    }
}
