//! HS256 access tokens. Only HS256 is accepted: `alg: none` and every other algorithm fail
//! validation before the signature is even considered.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The handle of the session this token belongs to (a hash of the cookie's session id, never
    /// the id itself, so a token cannot be replayed as a cookie); revoking the session revokes
    /// the token.
    pub sh: String,
}

pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl JwtKeys {
    /// Fails only for an empty secret (configuration never gives one: an empty `JWT_SECRET`
    /// counts as unset).
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        Ok(JwtKeys {
            enc: EncodingKey::from_secret(secret)?,
            dec: DecodingKey::from_secret(secret)?,
            validation,
            ttl,
        })
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        role: &str,
        session_handle: &str,
    ) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role: role.to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            jti: Uuid::now_v7().to_string(),
            sh: session_handle.to_owned(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.enc)?;
        Ok((token, claims))
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        decode::<Claims>(token, &self.dec, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    #[test]
    fn round_trip_and_rejections() {
        let keys =
            JwtKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60)).unwrap();
        let (tok, claims) = keys.issue(Uuid::now_v7(), "cashier", "sid1").unwrap();
        assert_eq!(keys.verify(&tok).unwrap().jti, claims.jti);

        let other =
            JwtKeys::new(b"another-secret-another-secret-xx", Duration::from_secs(60)).unwrap();
        assert!(other.verify(&tok).is_none(), "wrong signature must fail");

        let parts: Vec<&str> = tok.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys
            .verify(&format!("{none_header}.{}.", parts[1]))
            .is_none());
        let hs512 = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        assert!(keys
            .verify(&format!("{hs512}.{}.{}", parts[1], parts[2]))
            .is_none());
    }
}
