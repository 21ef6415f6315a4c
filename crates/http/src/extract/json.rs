//! A JSON body extractor: 415 when not `application/json`, 400 when not JSON at all, 413 when over
//! the body limit, and 422 `validation_failed` naming the field when the JSON has the wrong shape
//! (a float where cents are expected, a missing field, an unknown enum value).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use till_domain::{limits, FieldErrors};

use crate::error::ApiError;

pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ApiError::bad_request("The request body could not be read.")
            }
        })?;
        parse(&bytes).map(Json)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // A control character can only arrive escaped (raw ones are not JSON), so a body without a
    // backslash needs no second look: the common case costs one byte scan.
    if bytes.contains(&b'\\') {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            let mut fields = FieldErrors::default();
            control_chars(&value, &mut String::new(), None, &mut fields);
            if !fields.is_empty() {
                return Err(ApiError::validation(fields));
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let mut fields = FieldErrors::default();
                let field = if path == "." { "body".to_owned() } else { path };
                fields.add(field, clean_message(&inner.to_string()));
                ApiError::validation(fields)
            }
            _ => ApiError::bad_request("The body is not valid JSON."),
        }
    })
}

/// Records every string (and object key) under `path` holding a C0 control character; `\n`
/// and `\t` pass in the multi-line fields (`limits::MULTILINE_FIELDS`). Paths are spelled the
/// way the type errors spell them (`lines[0].note`).
fn control_chars(v: &Value, path: &mut String, key: Option<&str>, out: &mut FieldErrors) {
    let name = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match v {
        Value::String(s) => {
            let multiline = key.is_some_and(limits::is_multiline);
            if let Err(e) = limits::check_text(s, multiline) {
                out.add(name(path), e.message());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                control_chars(item, path, key, out);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                if limits::check_text(k, false).is_err() {
                    out.add(
                        name(path),
                        "must not contain control characters in its keys",
                    );
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                control_chars(item, path, Some(k), out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// serde's messages end with " at line 1 column 17"; that position means nothing to a cashier.
fn clean_message(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_name_their_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Any(serde_json::Value);
        let e = parse::<Any>(
            br#"{"name": "a\u0000b", "note": "two\nlines", "lines": [{"note": "x\u001b"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields = &e.details.unwrap()["fields"];
        assert!(fields["name"].is_array());
        assert!(
            fields.get("note").is_none(),
            "a line break is fine in a note"
        );
        assert!(fields["lines[0].note"].is_array());
        let e = parse::<Any>(br#"{"name": "two\nlines"}"#).unwrap_err();
        assert!(e.details.unwrap()["fields"]["name"].is_array());
        assert!(parse::<Any>(br#"{"note": "tab\there"}"#).is_ok());
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        amount_cents: i64,
    }

    #[test]
    fn float_money_is_a_field_error_and_garbage_is_bad_request() {
        let e = parse::<Body>(br#"{"amount_cents": 1.5}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.details.unwrap()["fields"]["amount_cents"].is_array());
        let e = parse::<Body>(b"{nope").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            parse::<Body>(br#"{"amount_cents": 15, "x": "a\"b\\c"}"#)
                .unwrap()
                .amount_cents,
            15
        );
    }
}
