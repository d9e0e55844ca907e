//! The little HTTP the metrics endpoint speaks: one request per
//! connection, parsed by `httparse`, and a complete answer with
//! `Connection: close`.

/// The path scrapers ask for.
pub const METRICS_PATH: &str = "/metrics";

/// The OpenMetrics text format, for scrapers that ask for it (Prometheus
/// does).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The classic Prometheus text format, for everyone else (curl, older
/// scrapers).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Headers a request may carry; more is not a scraper.
const MAX_HEADERS: usize = 32;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: in OpenMetrics if its `Accept` names it, otherwise
    /// in the Prometheus text format.
    Metrics { openmetrics: bool },
    /// A path other than `/metrics`.
    NotFound,
    /// `/metrics` with a method other than `GET` or `HEAD`.
    MethodNotAllowed,
    /// Not an HTTP/1 request.
    BadRequest,
}

/// A request read so far: whole, or still missing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The head is complete: what it asks for, and whether the answer is
    /// the head alone (`HEAD`).
    Complete { route: Route, head_only: bool },
    /// More bytes are needed.
    Partial,
}

/// Parses the bytes of a request's head received so far.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Complete {
            route: Route::BadRequest,
            head_only: false,
        },
        Ok(httparse::Status::Complete(_)) => {
            let method = request.method.unwrap_or_default();
            let head_only = method == "HEAD";
            // A query string does not change what is served.
            let path = request
                .path
                .unwrap_or_default()
                .split('?')
                .next()
                .unwrap_or_default();
            let route = if path != METRICS_PATH {
                Route::NotFound
            } else if method != "GET" && !head_only {
                Route::MethodNotAllowed
            } else {
                let openmetrics = request.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
                });
                Route::Metrics { openmetrics }
            };
            Parsed::Complete { route, head_only }
        }
    }
}

/// A whole response: status line, headers, and `body` unless `head_only`.
pub fn response(status: &str, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(request: &str) -> Parsed {
        parse(request.as_bytes())
    }

    #[test]
    fn get_metrics_is_served_in_the_format_asked_for() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n"),
            Parsed::Complete {
                route: Route::Metrics { openmetrics: true },
                head_only: false
            }
        );
        assert_eq!(
            route("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Parsed::Complete {
                route: Route::Metrics { openmetrics: false },
                head_only: false
            }
        );
        assert_eq!(
            route("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Parsed::Complete {
                route: Route::Metrics { openmetrics: false },
                head_only: true
            }
        );
    }

    #[test]
    fn everything_else_is_refused_and_a_partial_head_waits() {
        let complete = |route| Parsed::Complete {
            route,
            head_only: false,
        };
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n"), complete(Route::NotFound));
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n"),
            complete(Route::MethodNotAllowed)
        );
        assert_eq!(
            route("\x16\x03\x01\x02\x00\r\n\r\n"),
            complete(Route::BadRequest)
        );
        assert_eq!(route("GET /metrics HTTP/1.1\r\nHost"), Parsed::Partial);
    }

    #[test]
    fn a_response_says_its_length_and_closes() {
        let r = String::from_utf8(response("200 OK", PROMETHEUS_TEXT, b"a 1\n", false)).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\na 1\n"
        );
        let head = response("200 OK", PROMETHEUS_TEXT, b"a 1\n", true);
        assert!(head.ends_with(b"Content-Length: 4\r\nConnection: close\r\n\r\n"));
    }
}
