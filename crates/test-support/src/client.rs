//! Typed HTTP clients: a [`Client`] carries who is calling (nobody, a bearer token, or a cookie
//! session with its CSRF token), a [`Req`] is one request being built (await it to send), and a
//! [`Resp`] is the answer with its body already read, checked with `expect_status`/`expect_error`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// The password of every user the helpers create.
pub const USER_PASSWORD: &str = "password-123";

/// What a successful login hands back.
#[derive(Clone, Debug)]
pub struct Login {
    pub token: String,
    pub csrf: String,
    pub cookie: String,
    pub user: Value,
}

impl Login {
    pub fn id(&self) -> &str {
        self.user["id"].as_str().unwrap()
    }
}

/// How a [`Client`] authenticates.
#[derive(Clone, Debug)]
enum Auth {
    None,
    Bearer(String),
    /// The session cookie, with the CSRF header when `Some`.
    Cookie(String, Option<String>),
}

/// A caller of one instance.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: Auth,
    /// The login behind this client (`None` for anonymous or hand-made clients).
    pub login: Option<Login>,
}

impl Client {
    fn new(app: &TestApp, auth: Auth, login: Option<Login>) -> Client {
        Client {
            base: app.url.clone(),
            http: app.http.clone(),
            auth,
            login,
        }
    }

    /// A client that signs requests with `login`'s bearer token.
    pub fn from_login(app: &TestApp, login: Login) -> Client {
        Client::new(app, Auth::Bearer(login.token.clone()), Some(login))
    }

    /// The same caller, talking to another instance.
    pub fn on(&self, app: &TestApp) -> Client {
        Client {
            base: app.url.clone(),
            http: app.http.clone(),
            ..self.clone()
        }
    }

    /// The same caller with an arbitrary bearer token (forged, expired, …).
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            auth: Auth::Bearer(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same login through its session cookie, sending the CSRF token on every request.
    pub fn cookie_session(&self) -> Client {
        let l = self.login();
        Client {
            auth: Auth::Cookie(l.cookie.clone(), Some(l.csrf.clone())),
            ..self.clone()
        }
    }

    /// The same login through its session cookie, without the CSRF header.
    pub fn cookie_only(&self) -> Client {
        Client {
            auth: Auth::Cookie(self.login().cookie.clone(), None),
            ..self.clone()
        }
    }

    fn login(&self) -> &Login {
        self.login.as_ref().expect("client has no login")
    }

    pub fn token(&self) -> &str {
        &self.login().token
    }

    pub fn csrf(&self) -> &str {
        &self.login().csrf
    }

    /// The signed-in user as the login answer showed it.
    pub fn user(&self) -> &Value {
        &self.login().user
    }

    /// The signed-in user's id.
    pub fn id(&self) -> &str {
        self.login().id()
    }

    pub fn email(&self) -> &str {
        self.user()["email"].as_str().unwrap()
    }

    /// The customer record of a customer login.
    pub fn customer_id(&self) -> &str {
        self.user()["customer_id"]
            .as_str()
            .expect("a customer login")
    }

    pub fn request(&self, method: Method, path: &str) -> Req {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        let rb = match &self.auth {
            Auth::None => rb,
            Auth::Bearer(t) => rb.bearer_auth(t),
            Auth::Cookie(c, csrf) => {
                let rb = rb.header("cookie", format!("till_session={c}"));
                match csrf {
                    Some(t) => rb.header("x-csrf-token", t),
                    None => rb,
                }
            }
        };
        Req(rb)
    }

    pub fn get(&self, path: &str) -> Req {
        self.request(Method::GET, path)
    }

    pub fn delete(&self, path: &str) -> Req {
        self.request(Method::DELETE, path)
    }

    pub fn post(&self, path: &str, body: impl Serialize) -> Req {
        self.request(Method::POST, path).json(body)
    }

    pub fn patch(&self, path: &str, body: impl Serialize) -> Req {
        self.request(Method::PATCH, path).json(body)
    }

    pub fn put(&self, path: &str, body: impl Serialize) -> Req {
        self.request(Method::PUT, path).json(body)
    }

    /// POST with a fresh Idempotency-Key.
    pub fn post_idem(&self, path: &str, body: impl Serialize) -> Req {
        self.post(path, body).idem(&new_key())
    }

    /// `POST /auth/logout`.
    pub async fn logout(&self) -> Resp {
        self.request(Method::POST, "/api/v1/auth/logout").await
    }

    /// `GET /auth/me`.
    pub async fn me(&self) -> Resp {
        self.get("/api/v1/auth/me").await
    }
}

/// A fresh Idempotency-Key.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One request being built; `.await` sends it.
pub struct Req(pub RequestBuilder);

impl Req {
    pub fn json(self, body: impl Serialize) -> Req {
        Req(self.0.json(&body))
    }

    pub fn header(self, name: &str, value: impl AsRef<str>) -> Req {
        Req(self.0.header(name, value.as_ref()))
    }

    pub fn idem(self, key: &str) -> Req {
        self.header("Idempotency-Key", key)
    }

    /// `If-Match: "<version>"`.
    pub fn if_match(self, version: i64) -> Req {
        self.header("if-match", format!("\"{version}\""))
    }

    /// A raw body (sent without a JSON content type unless one is set).
    pub fn body(self, text: &str) -> Req {
        Req(self.0.body(text.to_owned()))
    }

    /// A raw binary body with its content type.
    pub fn bytes(self, content_type: &str, bytes: Vec<u8>) -> Req {
        Req(self.0.header("content-type", content_type).body(bytes))
    }

    /// A `multipart/form-data` body with one file part named `field`.
    pub fn file_part(self, field: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Req {
        let boundary = format!("till-{}", uuid::Uuid::new_v4().simple());
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.bytes(&format!("multipart/form-data; boundary={boundary}"), body)
    }

    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> Req {
        Req(self.0.query(query))
    }

    pub async fn send(self) -> Resp {
        let resp = self.0.send().await.expect("request sent");
        Resp::read(resp).await
    }
}

impl IntoFuture for Req {
    type Output = Resp;
    type IntoFuture = Pin<Box<dyn Future<Output = Resp> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// An answer, body read: JSON when it parses, else the text as a JSON string.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// Asserts the status (the body is in the message) and hands the answer on.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Resp {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }

    /// Asserts this is `first`'s stored answer replayed for a retry with the same
    /// Idempotency-Key: the same status, body and `ETag`, marked `Idempotent-Replayed: true`
    /// (and `first` itself was not a replay).
    #[track_caller]
    pub fn expect_replay_of(self, first: &Resp) -> Resp {
        assert_eq!(self.status, first.status, "body: {}", self.body);
        assert_eq!(self.header("idempotent-replayed"), "true");
        assert!(
            !first.has_header("idempotent-replayed"),
            "the first answer was itself a replay"
        );
        assert_eq!(self.body, first.body);
        assert_eq!(self.headers.get("etag"), first.headers.get("etag"));
        self
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect_json(self, status: u16) -> Value {
        self.expect_status(status).body
    }

    /// Asserts an error envelope with `code` (and a request id), and returns the body.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        let v = self.expect_status(status).body;
        assert_eq!(v["error"]["code"], code, "body: {v}");
        assert!(
            v["error"]["request_id"].is_string(),
            "request_id missing: {v}"
        );
        v
    }

    /// Asserts a 422 `validation_failed` that names each of `fields`; returns the body.
    #[track_caller]
    pub fn expect_invalid(self, fields: &[&str]) -> Value {
        let v = self.expect_error(422, "validation_failed");
        for f in fields {
            let named = &v["error"]["details"]["fields"][f];
            assert!(named.is_array(), "{f} not reported: {v}");
        }
        v
    }

    pub fn json(&self) -> &Value {
        &self.body
    }

    /// The error code of an error envelope.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// The fields a `validation_failed` answer names.
    pub fn error_fields(&self) -> &Value {
        &self.body["error"]["details"]["fields"]
    }

    /// A header's value; panics when it is missing.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    /// Every value of a header (e.g. each `set-cookie`).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

impl TestApp {
    /// A caller without credentials.
    pub fn anon(&self) -> Client {
        Client::new(self, Auth::None, None)
    }

    /// Signs in and returns a bearer client.
    pub async fn sign_in(&self, email: &str, password: &str) -> Client {
        Client::from_login(self, self.login(email, password).await)
    }

    pub async fn as_admin(&self) -> Client {
        Client::from_login(self, self.admin().await)
    }

    /// A new user with `role`, created through the admin API and signed in.
    pub async fn as_role(&self, role: &str) -> Client {
        Client::from_login(self, self.user(role).await)
    }

    pub async fn as_manager(&self) -> Client {
        self.as_role("manager").await
    }

    pub async fn as_cashier(&self) -> Client {
        self.as_role("cashier").await
    }

    pub async fn as_staff(&self) -> Client {
        self.as_role("staff").await
    }

    pub async fn as_customer(&self) -> Client {
        self.as_role("customer").await
    }

    /// A customer who signed up through `POST /auth/register`, signed in.
    pub async fn register_customer(&self, email: &str) -> Client {
        self.anon()
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": USER_PASSWORD, "name": "C"}),
            )
            .await
            .expect_status(201);
        self.sign_in(email, USER_PASSWORD).await
    }

    // ---- The raw helpers (`Option<&str>` token, unread `reqwest::Response`) ----

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.req(Method::GET, path);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut r = self.req(Method::POST, path).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut r = self.req(Method::PATCH, path).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Login {
        let resp = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "login {email}");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("till_session="))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        Login {
            token: body["access_token"].as_str().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
            cookie,
            user: body["user"].clone(),
        }
    }

    pub async fn admin(&self) -> Login {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` through the admin API and signs them in.
    pub async fn user(&self, role: &str) -> Login {
        let admin = self.admin().await;
        let email = format!("{role}-{}@test.local", uuid::Uuid::new_v4().simple());
        let resp = self
            .post(
                "/api/v1/users",
                Some(&admin.token),
                json!({"email": email, "password": USER_PASSWORD, "name": format!("Test {role}"), "role": role}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "create {role}");
        self.login(&email, USER_PASSWORD).await
    }
}

/// `POST /auth/logout` with a bearer token.
pub async fn logout(app: &TestApp, token: &str) -> reqwest::Response {
    app.req(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Reads a JSON body and the status together.
pub async fn body(resp: reqwest::Response) -> (StatusCode, Value) {
    let r = Resp::read(resp).await;
    (r.status, r.body)
}

/// Asserts an error envelope with `code`, and returns the body.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    Resp::read(resp).await.expect_error(status, code)
}

/// Sends each request in turn and asserts its error answer (status and code); returns the bodies.
/// A table of refusals reads as one row per case.
pub async fn expect_errors<'a>(cases: impl IntoIterator<Item = (Req, u16, &'a str)>) -> Vec<Value> {
    let mut bodies = Vec::new();
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let r = req.send().await;
        assert_eq!(
            (r.status(), r.error_code()),
            (status, Some(code)),
            "case {i}: {}",
            r.body
        );
        bodies.push(r.expect_error(status, code));
    }
    bodies
}
