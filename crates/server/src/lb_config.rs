//! `till lb-config nginx|haproxy|apache --upstream HOST:PORT…`: a complete, ready-to-run
//! load-balancer configuration for several `till serve` instances.
//!
//! Every generated config does the same things, in each balancer's own terms:
//! - spreads requests over the instances and takes a failed one out for a few seconds;
//! - retries a request on another instance only when that is safe: always when the connection
//!   could not be made, and after an error/timeout/502/503 only for idempotent methods (never
//!   POST or PATCH, so an order is never placed twice by the balancer);
//! - keeps connections to the instances alive and upgrades `/api/v1/ws` to a WebSocket;
//! - forwards `X-Forwarded-For` (appended), `X-Forwarded-Proto` and `X-Request-Id` (kept, or made);
//! - refuses bodies over `MAX_BODY_BYTES` and slows down password guessing on `/auth/login`.
//!
//! The repository's `nginx/nginx.conf` (used by docker-compose.yml) is this module's output; a
//! unit test keeps the two equal, so change the generator and regenerate the file, never the file.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Balancer {
    Nginx,
    Haproxy,
    Apache,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LbArgs {
    /// Which load balancer to write a configuration for.
    #[arg(value_enum)]
    pub balancer: Balancer,
    /// The `till serve` instances, as HOST:PORT (several after one flag, or the flag repeated).
    #[arg(long, required = true, num_args = 1.., value_parser = Upstream::parse)]
    pub upstream: Vec<Upstream>,
    /// Where the balancer listens: PORT or ADDRESS:PORT.
    #[arg(long, default_value = "80", value_parser = Listen::parse)]
    pub listen: Listen,
    /// Serve the static UI from this directory at the balancer (nginx, apache); without it the
    /// instances serve it (STATIC_DIR).
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    /// Serve product images (`/media/`) from this directory at the balancer (nginx): the volume
    /// the instances write as MEDIA_DIR, seen read-only. Without it the instances serve them.
    #[arg(long)]
    pub media_dir: Option<PathBuf>,
    /// DNS server that upstream host names are re-resolved with every few seconds, so instances
    /// added or removed (`docker compose up --scale web=N`) are followed; 127.0.0.11 under Docker.
    /// nginx needs 1.27.3 or later (or NGINX Plus) for this.
    #[arg(long)]
    pub resolver: Option<IpAddr>,
    /// Put the pid file, logs and temporary files under this directory (to run the balancer
    /// unprivileged or beside another one). Without it: the balancer's defaults, logs to stdout/stderr.
    #[arg(long)]
    pub runtime_dir: Option<PathBuf>,
    /// Terminate TLS with this certificate chain (PEM; nginx only, with --tls-key): HTTPS with
    /// HTTP/2 and HSTS on --tls-listen, and --listen redirects plain HTTP there.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where HTTPS is served when TLS is on: PORT or ADDRESS:PORT.
    #[arg(long, default_value = "443", value_parser = Listen::parse)]
    pub tls_listen: Listen,
    /// Largest accepted request body in bytes; keep it equal to Till's MAX_BODY_BYTES.
    #[arg(long, default_value_t = 1_048_576)]
    pub max_body_bytes: u64,
    /// Largest image upload (`POST /api/v1/products/{id}/images`); keep it equal to Till's
    /// MAX_IMAGE_BYTES (nginx).
    #[arg(long, default_value_t = 10_485_760)]
    pub max_image_bytes: u64,
    /// Largest CSV import (`POST /api/v1/products/import`); keep it equal to Till's
    /// MAX_IMPORT_BYTES (nginx).
    #[arg(long, default_value_t = 67_108_864)]
    pub max_import_bytes: u64,
    /// Login attempts per minute per client IP let through by the balancer (nginx, haproxy): a
    /// flood guard only. It counts every attempt, so it stays above Till's own limits, which
    /// count failed attempts only (RATE_LIMIT_LOGIN_PER_MIN per email, RATE_LIMIT_LOGIN_IP_PER_MIN
    /// per IP) and so let a shop's tills behind one address all sign in at opening time.
    #[arg(long, default_value_t = 120)]
    pub login_per_min: u32,
    /// Write the configuration to FILE instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// One application instance, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
}

impl Upstream {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s)
            .ok_or_else(|| format!("{s:?} is not HOST:PORT (e.g. 127.0.0.1:8081 or web:8080)"))?;
        let host = host.ok_or_else(|| format!("{s:?} has no host"))?;
        Ok(Upstream { host, port })
    }

    fn is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where the balancer listens: a port on every address, or one address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub host: Option<String>,
    pub port: u16,
}

impl Listen {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s).ok_or_else(|| {
            format!("{s:?} is not PORT or ADDRESS:PORT (e.g. 80 or 127.0.0.1:18080)")
        })?;
        Ok(Listen { host, port })
    }

    /// `80`, `127.0.0.1:8080` or `[::1]:8080`.
    fn addr(&self) -> String {
        match &self.host {
            None => self.port.to_string(),
            Some(h) => Upstream {
                host: h.clone(),
                port: self.port,
            }
            .to_string(),
        }
    }
}

/// `PORT`, `HOST:PORT` or `[V6]:PORT` → (host, port). The host, when given, must look like a DNS
/// name or an IP address: it is written into configuration files unquoted.
fn split_host_port(s: &str) -> Option<(Option<String>, u16)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        (Some(h.to_owned()), p)
    } else if let Some((h, p)) = s.rsplit_once(':') {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
        (Some(h.to_owned()), p)
    } else {
        (None, s)
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    Some((host, port))
}

/// Runs the subcommand: prints (or writes) the configuration.
pub fn run(args: &LbArgs) -> anyhow::Result<()> {
    if args.tls_cert.is_some() && args.balancer != Balancer::Nginx {
        anyhow::bail!("--tls-cert/--tls-key are supported for nginx only");
    }
    let text = render(args)?;
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The templates, embedded: `templates/lb/`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "nginx.conf.j2",
        include_str!("../templates/lb/nginx.conf.j2"),
    ),
    (
        "haproxy.cfg.j2",
        include_str!("../templates/lb/haproxy.cfg.j2"),
    ),
    (
        "apache.conf.j2",
        include_str!("../templates/lb/apache.conf.j2"),
    ),
];

/// Everything a template may use, computed and validated here; the templates only lay it out.
#[derive(Debug, Serialize)]
struct Context {
    /// The `till lb-config …` command that regenerates the file.
    command_line: String,
    listen: ListenContext,
    upstreams: Vec<UpstreamContext>,
    /// The DNS server, `[v6]` bracketed.
    resolver: Option<String>,
    /// Quoted for a config file when needed.
    static_dir: Option<String>,
    /// Quoted, with a trailing `/` (nginx's `alias`).
    media_dir: Option<String>,
    /// In nginx's size syntax.
    max_image_nginx: String,
    max_import_nginx: String,
    /// As given; the `file` filter joins a name to it and quotes the result.
    runtime_dir: Option<String>,
    max_body_bytes: u64,
    /// `max_body_bytes` in nginx's size syntax.
    max_body_nginx: String,
    /// At least 1.
    login_per_min: u32,
    /// nginx's burst: a third of the per-minute rate, at least 1.
    login_burst: u32,
    internal_nets: &'static [&'static str],
    /// The policies Till sends (see till-http's security headers), for files the balancer
    /// serves itself: the UI's pages and scripts, and product images.
    csp: &'static str,
    data_csp: &'static str,
    /// nginx's named locations for the answers it makes itself.
    own_errors: Vec<OwnError>,
    /// HAProxy's 429 body, escaped for a double-quoted `lf-string` (request id from the header).
    haproxy_rate_limited_body: String,
    /// TLS termination (nginx), when a certificate and key are given.
    tls: Option<TlsContext>,
    /// The Strict-Transport-Security value (the same as Till's).
    hsts: &'static str,
}

#[derive(Debug, Serialize)]
struct TlsContext {
    /// `443`, `127.0.0.1:8443`.
    listen: String,
    /// Quoted for a config file when needed.
    cert: String,
    key: String,
    /// `` (port 443) or `:8443`, after the host in the redirect to HTTPS.
    redirect_port: String,
}

#[derive(Debug, Serialize)]
struct ListenContext {
    /// `80`, `127.0.0.1:8080` or `[::1]:8080`.
    addr: String,
    host: Option<String>,
    port: u16,
}

#[derive(Debug, Serialize)]
struct UpstreamContext {
    /// `host:port`, `[v6]:port`.
    addr: String,
    /// Re-resolved through the resolver (a name, when a resolver is given).
    resolve: bool,
}

/// An answer in Till's error shape that the balancer makes itself.
#[derive(Debug, Serialize)]
struct OwnError {
    name: &'static str,
    status: u16,
    retry_after: Option<u32>,
    /// The JSON body, with nginx's `$till_request_id` as the request id.
    body: String,
}

impl Context {
    fn new(a: &LbArgs) -> Self {
        let own_error = |name, status, code, message, retry_after| OwnError {
            name,
            status,
            retry_after,
            body: error_json(code, message, "$till_request_id"),
        };
        Context {
            command_line: command_line(a),
            listen: ListenContext {
                addr: a.listen.addr(),
                host: a.listen.host.clone(),
                port: a.listen.port,
            },
            upstreams: a
                .upstream
                .iter()
                .map(|u| UpstreamContext {
                    addr: u.to_string(),
                    resolve: a.resolver.is_some() && !u.is_ip(),
                })
                .collect(),
            resolver: a.resolver.map(|r| match r {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            }),
            static_dir: a.static_dir.as_deref().map(quoted_path),
            media_dir: a.media_dir.as_deref().map(|d| quoted_path(&d.join(""))),
            max_image_nginx: nginx_size(a.max_image_bytes),
            max_import_nginx: nginx_size(a.max_import_bytes),
            runtime_dir: a.runtime_dir.as_ref().map(|d| d.display().to_string()),
            max_body_bytes: a.max_body_bytes,
            max_body_nginx: nginx_size(a.max_body_bytes),
            login_per_min: a.login_per_min.max(1),
            login_burst: (a.login_per_min / 3).max(1),
            internal_nets: INTERNAL_NETS,
            csp: till_http::layers::DOCUMENT_CSP,
            data_csp: till_http::layers::DATA_CSP,
            own_errors: vec![
                own_error(
                    "till_unavailable",
                    503,
                    "service_unavailable",
                    "No application instance is available right now; try again shortly.",
                    Some(5),
                ),
                own_error(
                    "till_rate_limited",
                    429,
                    "rate_limited",
                    "Too many requests; try again later.",
                    Some(60),
                ),
                own_error(
                    "till_too_large",
                    413,
                    "payload_too_large",
                    "The request body is too large.",
                    None,
                ),
            ],
            haproxy_rate_limited_body: error_json(
                "rate_limited",
                "Too many requests; try again later.",
                "%[req.hdr(x-request-id),json(utf8s)]",
            )
            .replace('"', "\\\""),
            tls: match (&a.tls_cert, &a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsContext {
                    listen: a.tls_listen.addr(),
                    cert: quoted_path(cert),
                    key: quoted_path(key),
                    redirect_port: match a.tls_listen.port {
                        443 => String::new(),
                        p => format!(":{p}"),
                    },
                }),
                _ => None,
            },
            hsts: HSTS,
        }
    }
}

/// The template environment: configuration files, so no HTML escaping; an unknown variable is
/// an error rather than an empty string; block tags on their own line leave no blank line.
fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    // `{{ runtime_dir | file("nginx.pid") }}`: a file in that directory, quoted when needed.
    env.add_filter("file", |dir: String, name: String| {
        quoted_path(&std::path::Path::new(&dir).join(name))
    });
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// The configuration for `args`.
pub fn render(args: &LbArgs) -> Result<String, minijinja::Error> {
    let template = match args.balancer {
        Balancer::Nginx => "nginx.conf.j2",
        Balancer::Haproxy => "haproxy.cfg.j2",
        Balancer::Apache => "apache.conf.j2",
    };
    environment()?
        .get_template(template)?
        .render(Context::new(args))
}

/// The flags that reproduce `args`, for the "generated by" line.
fn command_line(args: &LbArgs) -> String {
    let mut c = String::from("till lb-config ");
    c.push_str(match args.balancer {
        Balancer::Nginx => "nginx",
        Balancer::Haproxy => "haproxy",
        Balancer::Apache => "apache",
    });
    c.push_str(" --upstream");
    for u in &args.upstream {
        let _ = write!(c, " {u}");
    }
    if args.listen
        != (Listen {
            host: None,
            port: 80,
        })
    {
        let _ = write!(c, " --listen {}", args.listen.addr());
    }
    if let Some(d) = &args.static_dir {
        let _ = write!(c, " --static-dir {}", d.display());
    }
    if let Some(d) = &args.media_dir {
        let _ = write!(c, " --media-dir {}", d.display());
    }
    if let Some(r) = &args.resolver {
        let _ = write!(c, " --resolver {r}");
    }
    if let Some(d) = &args.runtime_dir {
        let _ = write!(c, " --runtime-dir {}", d.display());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let _ = write!(
            c,
            " --tls-cert {} --tls-key {}",
            cert.display(),
            key.display()
        );
        if args.tls_listen.addr() != "443" {
            let _ = write!(c, " --tls-listen {}", args.tls_listen.addr());
        }
    }
    if args.max_body_bytes != 1_048_576 {
        let _ = write!(c, " --max-body-bytes {}", args.max_body_bytes);
    }
    if args.max_image_bytes != 10_485_760 {
        let _ = write!(c, " --max-image-bytes {}", args.max_image_bytes);
    }
    if args.max_import_bytes != 67_108_864 {
        let _ = write!(c, " --max-import-bytes {}", args.max_import_bytes);
    }
    if args.login_per_min != 120 {
        let _ = write!(c, " --login-per-min {}", args.login_per_min);
    }
    c
}

/// A path for a config file: bare when it is plainly safe, else double-quoted.
fn quoted_path(p: &std::path::Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+@%,".contains(&b))
    {
        s
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// nginx size syntax: `1m`, `512k` or plain bytes.
fn nginx_size(bytes: u64) -> String {
    // Whole mebibytes / kibibytes: the low 20 / 10 bits are zero.
    if bytes > 0 && bytes.trailing_zeros() >= 20 {
        format!("{}m", bytes >> 20)
    } else if bytes > 0 && bytes.trailing_zeros() >= 10 {
        format!("{}k", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

/// The JSON error body of Till's contract, for answers the balancer makes itself.
fn error_json(code: &str, message: &str, request_id: &str) -> String {
    format!(
        r#"{{"error":{{"code":"{code}","message":"{message}","details":{{}},"request_id":"{request_id}"}}}}"#
    )
}

const INTERNAL_NETS: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1",
];

/// Till's own Strict-Transport-Security (sent when COOKIE_SECURE is on): two years would pin
/// HTTPS longer than a certificate mistake should; one year is what preload lists accept.
const HSTS: &str = "max-age=31536000; includeSubDomains";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The command line used to regenerate `nginx/nginx.conf`.
    const COMPOSE_NGINX_ARGS: &[&str] = &[
        "nginx",
        "--upstream",
        "web:8080",
        "--resolver",
        "127.0.0.11",
        "--static-dir",
        "/srv/till/web",
        "--media-dir",
        "/srv/till/media",
        "--tls-cert",
        "/etc/nginx/tls/cert.pem",
        "--tls-key",
        "/etc/nginx/tls/key.pem",
    ];

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: LbArgs,
    }

    fn args(argv: &[&str]) -> LbArgs {
        let mut full = vec!["lb-config"];
        full.extend_from_slice(argv);
        T::try_parse_from(full).unwrap().args
    }

    fn render_ok(a: &LbArgs) -> String {
        render(a).unwrap()
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    fn balanced(text: &str) {
        let stripped: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            count(&stripped, "{"),
            count(&stripped, "}"),
            "unbalanced braces:\n{text}"
        );
    }

    #[test]
    fn upstreams_parse() {
        assert_eq!(
            Upstream::parse("127.0.0.1:8081").unwrap(),
            Upstream {
                host: "127.0.0.1".into(),
                port: 8081
            }
        );
        assert_eq!(Upstream::parse("web:8080").unwrap().to_string(), "web:8080");
        assert_eq!(
            Upstream::parse("[::1]:9000").unwrap().to_string(),
            "[::1]:9000"
        );
        for bad in [
            "web",
            "web:0",
            "web:70000",
            ":80",
            "a b:80",
            "web;x:80",
            "[zz]:1",
            "80",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(Listen::parse("80").unwrap().addr(), "80");
        assert_eq!(
            Listen::parse("127.0.0.1:18080").unwrap().addr(),
            "127.0.0.1:18080"
        );
        assert!(Listen::parse("0").is_err());
    }

    #[test]
    fn nginx_has_every_server_and_safe_retries() {
        let a = args(&[
            "nginx",
            "--upstream",
            "127.0.0.1:18081",
            "127.0.0.1:18082",
            "--upstream",
            "127.0.0.1:18083",
            "--listen",
            "127.0.0.1:18080",
        ]);
        let c = render(&a).unwrap();
        balanced(&c);
        for port in 18081..=18083 {
            assert!(
                c.contains(&format!(
                    "server 127.0.0.1:{port} max_fails=2 fail_timeout=3s;"
                )),
                "{c}"
            );
        }
        assert!(c.contains("listen 127.0.0.1:18080 default_server;"));
        assert!(c.contains("proxy_next_upstream error timeout http_502 http_503;"));
        assert!(!c
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("non_idempotent")));
        assert!(c.contains("keepalive 64;"));
        assert!(c.contains("proxy_set_header Connection \"\";"));
        assert!(c.contains("map $http_upgrade $connection_upgrade"));
        assert!(c.contains("proxy_set_header Connection $connection_upgrade;"));
        assert!(c.contains("client_max_body_size 1m;"));
        // Uploads and imports pass with their own, larger limits.
        assert!(c.contains(
            "location ~ ^/api/v1/products/[^/]+/images$ {\n            client_max_body_size 10m;"
        ));
        assert!(c.contains(
            "location = /api/v1/products/import {\n            client_max_body_size 64m;"
        ));
        assert!(c.contains("limit_req zone=till_login burst=40 nodelay;"));
        assert!(c.contains("rate=120r/m;"));
        assert!(c.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
        assert!(c.contains("proxy_set_header X-Request-Id $till_request_id;"));
        assert!(c.contains("gzip on;"));
        // No resolver: nothing that needs nginx 1.27.3.
        assert!(!c.contains("resolve"));
        // Without a static dir everything goes to Till; logs go to the standard streams.
        assert!(!c.contains("root "));
        assert!(c.contains("access_log /dev/stdout till;"));
        // Every proxied location carries the full header set (no silent loss of inheritance).
        assert_eq!(
            count(&c, "proxy_pass http://till;"),
            count(&c, "proxy_set_header X-Request-Id")
        );
        assert_eq!(count(&c, "proxy_pass http://till;"), 8);
        // Without --media-dir, images are Till's to serve.
        assert!(!c.contains("location /media/"));
    }

    #[test]
    fn nginx_resolver_static_and_runtime_dir() {
        let a = args(&[
            "nginx",
            "--upstream",
            "web:8080",
            "10.0.0.5:8080",
            "--resolver",
            "127.0.0.11",
            "--static-dir",
            "/srv/till/web",
            "--runtime-dir",
            "/tmp/run dir",
            "--max-body-bytes",
            "2048",
            "--login-per-min",
            "6",
        ]);
        let c = render(&a).unwrap();
        balanced(&c);
        assert!(c.contains("resolver 127.0.0.11 valid=5s ipv6=off;"));
        assert!(c.contains("server web:8080 max_fails=2 fail_timeout=3s resolve;"));
        assert!(c.contains("server 10.0.0.5:8080 max_fails=2 fail_timeout=3s;"));
        assert!(c.contains("        root /srv/till/web;"));
        assert!(c.contains("try_files /index.html @till;"));
        assert!(c.contains("try_files $uri $uri/ @till;"));
        assert!(c.contains("pid \"/tmp/run dir/nginx.pid\";"));
        assert!(c.contains("client_body_temp_path \"/tmp/run dir/client_body_temp\";"));
        assert!(c.contains("client_max_body_size 2k;"));
        assert!(c.contains("limit_req zone=till_login burst=2 nodelay;"));
        assert!(c.contains("--login-per-min 6"));
    }

    /// Files nginx serves itself carry the policies Till sends for the same files: the pages'
    /// policy for the UI (pages and scripts, which a worker runs under), the data policy for
    /// product images.
    #[test]
    fn nginx_served_files_carry_tills_policies() {
        let c = render(&args(COMPOSE_NGINX_ARGS)).unwrap();
        // The UI's locations follow its root (the plain-HTTP server before it only redirects).
        let ui = c.find("root /srv/till/web;").expect("the static root");
        let block = |start: &str| {
            let from = ui + c[ui..].find(start).unwrap_or_else(|| panic!("no {start}"));
            let len = c[from..].find("\n        }").unwrap();
            c[from..from + len].to_owned()
        };
        let page = format!(
            "add_header Content-Security-Policy \"{}\" always;",
            till_http::layers::DOCUMENT_CSP
        );
        let data = format!(
            "add_header Content-Security-Policy \"{}\" always;",
            till_http::layers::DATA_CSP
        );
        for ui in ["location = / {", "location / {"] {
            assert!(block(ui).contains(&page), "{ui}");
        }
        let media = block("location /media/ {");
        assert!(media.contains(&data), "{media}");
        assert!(media.contains("add_header X-Frame-Options DENY always;"));
        assert!(media.contains("add_header Referrer-Policy no-referrer always;"));
    }

    /// `nginx/nginx.conf` is generated; if this fails, regenerate it with
    /// `cargo run -q --bin till -- lb-config nginx --upstream web:8080 --resolver 127.0.0.11 --static-dir /srv/till/web --media-dir /srv/till/media --tls-cert /etc/nginx/tls/cert.pem --tls-key /etc/nginx/tls/key.pem -o nginx/nginx.conf`.
    #[test]
    fn repository_nginx_conf_is_the_generated_one() {
        let committed = include_str!("../../../nginx/nginx.conf");
        let a = args(COMPOSE_NGINX_ARGS);
        assert!(
            committed == render(&a).unwrap(),
            "nginx/nginx.conf differs from `till lb-config {}`; regenerate it (see this test's doc)",
            COMPOSE_NGINX_ARGS.join(" ")
        );
    }

    #[test]
    fn nginx_tls_serves_https_and_redirects_http() {
        let a = args(&[
            "nginx",
            "--upstream",
            "127.0.0.1:18081",
            "--listen",
            "127.0.0.1:18080",
            "--tls-cert",
            "/tls/cert.pem",
            "--tls-key",
            "/tls/my key.pem",
            "--tls-listen",
            "127.0.0.1:18443",
            "--static-dir",
            "/srv/web",
        ]);
        let c = render_ok(&a);
        balanced(&c);
        assert!(c.contains("listen 127.0.0.1:18443 ssl default_server;"));
        assert!(c.contains("http2 on;"));
        assert!(c.contains("ssl_certificate /tls/cert.pem;"));
        assert!(c.contains("ssl_certificate_key \"/tls/my key.pem\";"));
        assert!(c.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(!c.contains("TLSv1.1") && !c.contains("CBC") && !c.contains("RSA-AES128-SHA:"));
        // Plain HTTP: health probes, and a redirect to the HTTPS port for the rest.
        assert!(c.contains("listen 127.0.0.1:18080 default_server;"));
        assert!(c.contains("return 301 https://$host:18443$request_uri;"));
        assert!(c.contains("location = /health/readiness {"));
        // HSTS on every answer nginx makes: the server, and each location with its own headers
        // (they do not inherit the server's); Till's copy is hidden.
        let hsts =
            "add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;";
        assert_eq!(count(&c, hsts), 1 + 2 + 3, "{c}");
        assert_eq!(
            count(&c, "add_header Content-Security-Policy") + count(&c, "location @till_"),
            2 + 3
        );
        assert!(c.contains("proxy_hide_header Strict-Transport-Security;"));
        // On 443 the redirect carries no port; the command line round-trips.
        let std = render_ok(&args(&[
            "nginx",
            "--upstream",
            "web:8080",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]));
        assert!(std.contains("return 301 https://$host$request_uri;"));
        assert!(
            std.contains("listen 443 ssl default_server;")
                && std.contains("listen 80 default_server;")
        );
        let line = command_line(&a);
        assert!(line.contains(
            "--tls-cert /tls/cert.pem --tls-key /tls/my key.pem --tls-listen 127.0.0.1:18443"
        ));
        // Without TLS nothing of it appears.
        let plain = render_ok(&args(&["nginx", "--upstream", "web:8080"]));
        assert!(
            !plain.contains("ssl") && !plain.contains("Strict-Transport") && !plain.contains("301")
        );
    }

    #[test]
    fn tls_flags_come_in_pairs_and_only_for_nginx() {
        let mut full = vec![
            "lb-config",
            "nginx",
            "--upstream",
            "a:1",
            "--tls-cert",
            "c.pem",
        ];
        assert!(T::try_parse_from(&full).is_err());
        full.extend(["--tls-key", "k.pem"]);
        assert!(T::try_parse_from(&full).is_ok());
        let h = args(&[
            "haproxy",
            "--upstream",
            "a:1",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ]);
        assert!(run(&h).unwrap_err().to_string().contains("nginx only"));
    }

    #[test]
    fn haproxy_checks_readiness_and_retries_idempotent_only() {
        let a = args(&[
            "haproxy",
            "--upstream",
            "127.0.0.1:18081",
            "127.0.0.1:18082",
            "--listen",
            "127.0.0.1:18090",
        ]);
        let c = render(&a).unwrap();
        assert!(c.contains("bind 127.0.0.1:18090"));
        assert!(c.contains("server web1 127.0.0.1:18081"));
        assert!(c.contains("server web2 127.0.0.1:18082"));
        assert!(c.contains("option httpchk GET /health/readiness"));
        assert!(c.contains("http-request disable-l7-retry if !till_idempotent"));
        assert!(c.contains("option forwardfor"));
        assert!(c.contains("timeout tunnel 1h"));
        assert!(c.contains("gt 1048576"));
        assert!(!c.contains("resolvers"));
        let dns = render_ok(&args(&[
            "haproxy",
            "--upstream",
            "web:8080",
            "--resolver",
            "127.0.0.11",
        ]));
        assert!(dns.contains("bind :80"));
        assert!(dns.contains("nameserver dns1 127.0.0.11:53"));
        assert!(dns.contains("server-template web1_ 1-20 web:8080 resolvers till_dns"));
    }

    #[test]
    fn apache_balances_http_and_websocket() {
        let a = args(&[
            "apache",
            "--upstream",
            "127.0.0.1:18081",
            "127.0.0.1:18082",
            "--listen",
            "18095",
        ]);
        let c = render(&a).unwrap();
        assert!(c.contains("Listen 18095"));
        assert!(c.contains("<VirtualHost *:18095>"));
        assert!(c.contains("BalancerMember \"http://127.0.0.1:18081\""));
        assert!(c.contains("BalancerMember \"ws://127.0.0.1:18082\""));
        assert!(c.contains("ProxyPass \"/api/v1/ws\" \"balancer://till-ws/api/v1/ws\""));
        assert!(c.contains("LimitRequestBody 1048576"));
        assert_eq!(count(&c, "<Proxy "), count(&c, "</Proxy>"));
        assert_eq!(count(&c, "<VirtualHost "), count(&c, "</VirtualHost>"));
        let at80 = render_ok(&args(&["apache", "--upstream", "web:8080"]));
        assert!(!at80.contains("\nListen "));
        assert!(at80.contains("ProxyPass \"/\" \"balancer://till/\""));
    }

    /// Every `$variable` the text uses.
    fn nginx_vars(text: &str) -> Vec<String> {
        text.split('$')
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn access_logs_never_carry_the_query_string() {
        // The WebSocket's ?access_token= must not reach any log: nginx's log format names no
        // variable that holds the query (the request line, the raw URI, the arguments).
        let nginx = render_ok(&args(COMPOSE_NGINX_ARGS));
        let start = nginx.find("log_format till").unwrap();
        let format = &nginx[start..start + nginx[start..].find("';").unwrap()];
        let vars = nginx_vars(format);
        assert!(vars.iter().any(|v| v == "uri"), "{format}");
        for v in &vars {
            assert!(
                !matches!(
                    v.as_str(),
                    "request" | "request_uri" | "args" | "query_string" | "is_args"
                ) && !v.starts_with("arg_"),
                "log_format uses ${v}"
            );
        }
        assert_eq!(count(&nginx, "access_log "), 1);
        assert!(nginx.contains("access_log /dev/stdout till;"));

        // HAProxy: its own format, with the path (%HP) instead of the request line (%r, %HU).
        let haproxy = render_ok(&args(&["haproxy", "--upstream", "web:8080"]));
        let line = haproxy
            .lines()
            .find(|l| l.trim_start().starts_with("log-format"))
            .unwrap();
        assert!(line.contains("%HP"));
        let fields: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '"')
            .collect();
        for bad in ["%r", "%{+Q}r", "%HU", "%HQ"] {
            assert!(!fields.contains(&bad), "{line}");
        }

        // Apache: every CustomLog of the site uses the format without %r and %q.
        for argv in [
            &["apache", "--upstream", "web:8080"][..],
            &[
                "apache",
                "--upstream",
                "web:8080",
                "--runtime-dir",
                "/tmp/till-lb",
            ][..],
        ] {
            let apache = render_ok(&args(argv));
            let format = apache
                .lines()
                .find(|l| l.trim_start().starts_with("LogFormat"))
                .unwrap();
            assert!(format.contains("%U") && !format.contains("%r") && !format.contains("%q"));
            let logs: Vec<&str> = apache
                .lines()
                .filter(|l| l.trim_start().starts_with("CustomLog"))
                .collect();
            assert_eq!(logs.len(), 1, "{logs:?}");
            assert!(logs[0].trim_end().ends_with("till_noquery"), "{logs:?}");
        }
    }

    #[test]
    fn command_line_round_trips() {
        let a = args(&[
            "haproxy",
            "--upstream",
            "a:1",
            "b:2",
            "--listen",
            "127.0.0.1:9",
        ]);
        let line = command_line(&a);
        assert_eq!(
            line,
            "till lb-config haproxy --upstream a:1 b:2 --listen 127.0.0.1:9"
        );
        let argv: Vec<&str> = line.split(' ').skip(2).collect();
        assert_eq!(render(&args(&argv)).unwrap(), render(&a).unwrap());
    }
}
