//! The `axum` feature: [`RequestOrigin`], an extractor that captures where a web request was
//! sent (scheme, host and port, path prefix), so a job it enqueues can build absolute links
//! later ([`JobContext::origin_url`](crate::JobContext::origin_url)).
//!
//! What is trusted:
//! - By default only what the connection itself says: the `Host` header (or, on HTTP/2, the
//!   request's authority), the scheme of the request URI when it has one (HTTP/2), else `http`
//!   (or `https` with [`OriginConfig::https`]), and the path at which the handler's router is
//!   nested (axum's [`OriginalUri`] against the path the handler sees).
//! - With [`OriginConfig::trust_forwarded`], also the proxy headers `Forwarded` (RFC 7239:
//!   `proto`, `host`), else `X-Forwarded-Proto` and `X-Forwarded-Host`, and
//!   `X-Forwarded-Prefix`; of each, the last value (the one the proxy nearest to the
//!   application added). A client can send these headers itself: trust them only when every
//!   request reaches the application through your proxy and the proxy sets them.
//!
//! Either way the values are checked: a scheme other than `http`/`https`, a host that is not a
//! host name or address with an optional port, or a prefix with characters a path cannot hold
//! is refused with `400 Bad Request`. Serving several sites, or taking requests straight from
//! clients, check the host against the ones you serve before building links with it.

use crate::context::ORIGIN_HEADER;
use crate::job::Job;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt;

/// Which request headers [`RequestOrigin`] trusts; put it in the request's extensions, e.g.
/// with `router.layer(axum::Extension(OriginConfig::default().trust_forwarded()))`. Without
/// one, the default applies: forwarded headers ignored, scheme `http` unless the request URI
/// names one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginConfig {
    forwarded: bool,
    https: bool,
}

impl OriginConfig {
    /// Also trusts `Forwarded`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
    /// `X-Forwarded-Prefix`: only behind a proxy that sets them and through which every
    /// request comes.
    pub fn trust_forwarded(mut self) -> OriginConfig {
        self.forwarded = true;
        self
    }

    /// Takes `https` as the scheme when nothing trusted names one (a server that terminates
    /// TLS itself).
    pub fn https(mut self) -> OriginConfig {
        self.https = true;
        self
    }
}

/// The origin of a web request: scheme, host (with its port, if any) and path prefix, as
/// `https://example.com:8443/app`. Extract it in an axum handler and put it on a job with
/// [`Job::origin`]; the handler of the job then builds links with
/// [`JobContext::origin_url`](crate::JobContext::origin_url). See the module doc for which
/// request headers are trusted.
///
/// ```
/// use streamworker::{Client, Job, RequestOrigin};
///
/// async fn signup(origin: RequestOrigin, client: Client) -> Result<(), streamworker::Error> {
///     client.enqueue(Job::new("push", "welcome", &42)?.origin(&origin)).await?;
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    scheme: String,
    host: String,
    prefix: String,
}

impl RequestOrigin {
    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, lowercased, with its port when the request named one (`example.com:8443`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path prefix (`/app`), or empty.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `job` with its `origin` header set to this origin.
    pub fn apply(&self, job: Job) -> Job {
        job.header(ORIGIN_HEADER, self.to_string())
    }

    /// The origin of a request with these parts, as the extractor takes it.
    fn from_parts(parts: &Parts, config: OriginConfig) -> Result<RequestOrigin, OriginRejection> {
        let headers = &parts.headers;
        let forwarded = if config.forwarded {
            last_forwarded(headers)
        } else {
            Forwarded::default()
        };
        let proto = forwarded.proto.or_else(|| {
            config
                .forwarded
                .then(|| last(headers, "x-forwarded-proto"))?
        });
        let scheme = match proto {
            Some(p) => p,
            None => match parts.uri.scheme_str() {
                Some(s) => s.to_string(),
                None if config.https => "https".into(),
                None => "http".into(),
            },
        }
        .to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(OriginRejection(format!(
                "the request's scheme {scheme:?} is not http or https"
            )));
        }
        let host = forwarded
            .host
            .or_else(|| {
                config
                    .forwarded
                    .then(|| last(headers, "x-forwarded-host"))?
            })
            .or_else(|| text(headers, header::HOST.as_str()).map(str::to_string))
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))
            .ok_or_else(|| OriginRejection("the request names no host (Host header)".into()))?
            .to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(OriginRejection(format!(
                "the request's host {host:?} is not a host name or address with an optional port"
            )));
        }
        let mut prefix = String::new();
        if config.forwarded
            && let Some(p) = last(headers, "x-forwarded-prefix")
        {
            if !p.starts_with('/') || !valid_path(&p) {
                return Err(OriginRejection(format!(
                    "X-Forwarded-Prefix {p:?} is not a path starting with '/'"
                )));
            }
            prefix.push_str(p.trim_end_matches('/'));
        }
        prefix.push_str(nest_prefix(parts));
        Ok(RequestOrigin {
            scheme,
            host,
            prefix,
        })
    }
}

impl fmt::Display for RequestOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.host, self.prefix)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = OriginRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let config = parts
            .extensions
            .get::<OriginConfig>()
            .copied()
            .unwrap_or_default();
        RequestOrigin::from_parts(parts, config)
    }
}

impl Job {
    /// Sets the job's `origin` header to `origin` (the `axum` feature): the handler builds
    /// links with [`JobContext::origin_url`](crate::JobContext::origin_url).
    pub fn origin(self, origin: &RequestOrigin) -> Job {
        origin.apply(self)
    }
}

/// Why a request's origin was refused: answered as `400 Bad Request` with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRejection(String);

impl fmt::Display for OriginRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OriginRejection {}

impl IntoResponse for OriginRejection {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

/// `proto` and `host` of a `Forwarded` header's last element.
#[derive(Debug, Default)]
struct Forwarded {
    proto: Option<String>,
    host: Option<String>,
}

/// The last element of the last `Forwarded` header: the one the nearest proxy added.
fn last_forwarded(headers: &HeaderMap) -> Forwarded {
    let mut out = Forwarded::default();
    let Some(element) = headers
        .get_all(header::FORWARDED)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
    else {
        return out;
    };
    for pair in element.split(';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "proto" => out.proto = Some(value),
            "host" => out.host = Some(value),
            _ => {}
        }
    }
    out
}

/// The last comma-separated value of the last header `name`.
fn last(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    (!last.is_empty()).then(|| last.to_string())
}

/// Header `name` as text.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// The path at which the handler's router is nested: the original path without the path the
/// handler sees.
fn nest_prefix(parts: &Parts) -> &str {
    let Some(OriginalUri(original)) = parts.extensions.get::<OriginalUri>() else {
        return "";
    };
    let (full, seen) = (original.path(), parts.uri.path());
    let prefix = if seen == "/" {
        full
    } else {
        full.strip_suffix(seen).unwrap_or("")
    };
    prefix.trim_end_matches('/')
}

/// A host name, IPv4 address or bracketed IPv6 address, with an optional port.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port))
            if !name.ends_with(':') && (!name.contains(':') || name.ends_with(']')) =>
        {
            (name, Some(port))
        }
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    host.len() <= 255 && port_ok && name_ok
}

/// Whether `path` holds only characters a URL path may hold (percent-escapes included).
fn valid_path(path: &str) -> bool {
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/%!$&'()*+,;=:@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, Uri};

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn origin(p: &Parts, config: OriginConfig) -> String {
        RequestOrigin::from_parts(p, config).unwrap().to_string()
    }

    const PROXIED: [(&str, &str); 4] = [
        ("host", "10.0.0.5:3000"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example, shop.example"),
        ("x-forwarded-prefix", "/store/"),
    ];

    #[test]
    fn by_default_only_the_host_header_counts() {
        let p = parts("/signup", &PROXIED);
        assert_eq!(origin(&p, OriginConfig::default()), "http://10.0.0.5:3000");
        assert_eq!(
            origin(&p, OriginConfig::default().https()),
            "https://10.0.0.5:3000"
        );
        // HTTP/2 requests carry scheme and authority in the URI.
        let p = parts("https://Site.Example/x", &[]);
        assert_eq!(origin(&p, OriginConfig::default()), "https://site.example");
    }

    #[test]
    fn trusted_proxy_headers_count_last_value_first() {
        let trusted = OriginConfig::default().trust_forwarded();
        let p = parts("/signup", &PROXIED);
        assert_eq!(origin(&p, trusted), "https://shop.example/store");
        let p = parts(
            "/signup",
            &[
                ("host", "internal"),
                (
                    "forwarded",
                    "proto=http;host=forged.example, proto=https;host=\"shop.example:8443\"",
                ),
                ("x-forwarded-host", "ignored.example"),
            ],
        );
        assert_eq!(origin(&p, trusted), "https://shop.example:8443");
    }

    #[test]
    fn the_nest_prefix_is_part_of_the_origin() {
        let mut p = parts("/signup", &[("host", "a.example")]);
        p.extensions
            .insert(OriginalUri(Uri::from_static("/app/api/signup?x=1")));
        assert_eq!(
            origin(&p, OriginConfig::default()),
            "http://a.example/app/api"
        );
        let mut p = parts("/", &[("host", "a.example")]);
        p.extensions.insert(OriginalUri(Uri::from_static("/app/")));
        assert_eq!(origin(&p, OriginConfig::default()), "http://a.example/app");
    }

    #[test]
    fn values_that_would_break_a_link_are_refused() {
        let trusted = OriginConfig::default().trust_forwarded();
        for (headers, config) in [
            (vec![("host", "a.example/evil")], OriginConfig::default()),
            (vec![("host", "a b")], OriginConfig::default()),
            (vec![("host", "a.example:80x")], OriginConfig::default()),
            (vec![], OriginConfig::default()),
            (
                vec![("host", "a"), ("x-forwarded-proto", "javascript")],
                trusted,
            ),
            (
                vec![("host", "a"), ("x-forwarded-prefix", "no-slash")],
                trusted,
            ),
            (
                vec![("host", "a"), ("x-forwarded-prefix", "/a\"b")],
                trusted,
            ),
        ] {
            let p = parts("/", &headers);
            assert!(
                RequestOrigin::from_parts(&p, config).is_err(),
                "{headers:?} was accepted"
            );
        }
        for host in ["a.example", "127.0.0.1:8080", "[::1]:3000", "[2001:db8::1]"] {
            assert!(valid_host(host), "{host}");
        }
    }

    #[test]
    fn a_job_carries_the_origin_as_its_origin_header() {
        let p = parts("/", &[("host", "a.example")]);
        let o = RequestOrigin::from_parts(&p, OriginConfig::default()).unwrap();
        let job = Job::from_json("g", "t", "{}").unwrap().origin(&o);
        assert_eq!(job.header_value(ORIGIN_HEADER), Some("http://a.example"));
        assert_eq!(
            (o.scheme(), o.host(), o.prefix()),
            ("http", "a.example", "")
        );
    }
}
