//! Creating customers at the till (cashier+). The phone, normalised to E.164, is required and
//! unique; the email is optional.

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::customers::{self, CustomerRow};
use till_db::DbError;
use till_domain::{Email, FieldErrors, Phone};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::App;

/// A customer as asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// 1 to 200 characters.
    #[schema(value_type = String, required = true)]
    pub name: Option<String>,
    /// Normalised to E.164 (see the API reference).
    #[schema(value_type = String, required = true)]
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Why a customer could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error("invalid customer: {0}")]
    Validation(FieldErrors),
    /// Another customer already has this phone number.
    #[error("a customer with this phone number already exists")]
    PhoneTaken,
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Creates a customer (audited as `customer.create` by `actor`).
pub async fn create(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    input: &CustomerInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&CustomerRow) -> Answer,
) -> Result<Answer, CustomerError> {
    let mut errs = FieldErrors::default();
    let name = input.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 200 {
        errs.add("name", "must be 1 to 200 characters");
    }
    let phone = match input.phone.as_deref() {
        None => {
            errs.add("phone", "is required");
            None
        }
        Some(p) => errs.check(
            "phone",
            Phone::parse(p, &app.config.shop.default_calling_code),
        ),
    };
    let email = match input
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => None,
        Some(e) => errs.check("email", Email::parse(e)),
    };
    let Some(phone) = phone.filter(|_| errs.is_empty()) else {
        return Err(CustomerError::Validation(errs));
    };
    let mut run = match idempotency::begin::<CustomerError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let customer = customers::insert(
        tx,
        name,
        Some(phone.as_str()),
        email.as_ref().map(Email::as_str),
    )
    .await
    .map_err(|e| match e {
        DbError::Unique(_) => CustomerError::PhoneTaken,
        e => e.into(),
    })?;
    audit::record(
        tx,
        actor,
        "customer.create",
        "customer",
        customer.id,
        json!({ "name": customer.name, "phone": customer.phone }),
    )
    .await?;
    let answer = run.finish::<CustomerError>(render(&customer)).await?;
    Ok(answer)
}
