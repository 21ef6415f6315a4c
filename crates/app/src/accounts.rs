//! Accounts: staff created by an admin, customers registering themselves, and the first admin
//! (from the environment, or the `create-admin` command).

use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::users::{self, UserRow};
use till_db::{customers, DbError, PgConnection};
use till_domain::{Email, FieldErrors, Password, Phone, Role};

use crate::password::{self, HashError};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::App;

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid account: {0}")]
    Validation(FieldErrors),
    /// A unique value (`field`) already belongs to another account.
    #[error("{message}")]
    AlreadyExists {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a new account is made of.
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    pub role: Role,
}

/// Checks email, password and name, adding what is wrong to `errs`; returns the parsed email
/// and trimmed name.
pub fn check_account(
    email: &str,
    password: &str,
    name: &str,
    errs: &mut FieldErrors,
) -> Option<(Email, String)> {
    let email = Email::parse(email)
        .map_err(|e| errs.add("email", e.to_string()))
        .ok();
    if let Err(e) = Password::check(password) {
        errs.add("password", e.to_string());
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errs.add("name", "must be 1 to 200 characters");
    }
    email.map(|e| (e, name.to_owned()))
}

fn checked(a: &NewAccount<'_>) -> Result<(Email, String), AccountError> {
    let mut errs = FieldErrors::default();
    match check_account(a.email, a.password, a.name, &mut errs) {
        Some(ok) if errs.is_empty() => Ok(ok),
        _ => Err(AccountError::Validation(errs)),
    }
}

/// An admin creates an account of any role (audited as `user.create` by `actor`).
pub async fn create_user(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    account: NewAccount<'_>,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&UserRow) -> Answer,
) -> Result<Answer, AccountError> {
    let (email, name) = checked(&account)?;
    let hash = password::hash(account.password.to_owned()).await?;
    let mut run = match idempotency::begin::<AccountError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let user = insert_account(tx, &email, &hash, &name, account.role).await?;
    audit::record(
        tx,
        actor,
        "user.create",
        "user",
        user.id,
        json!({"email": user.email, "role": user.role}),
    )
    .await?;
    let answer = run.finish::<AccountError>(render(&user)).await?;
    Ok(answer)
}

/// What a shopper registers with.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
}

/// A shopper registers a customer login. A shopper who has bought at the till before is
/// recognised by phone and gets their history, but only when that customer record carries the
/// same email: a phone number alone proves nothing (anyone can type a neighbour's), so a record
/// with another (or no) email, or one that already has a login, is refused rather than shared.
/// The unique index on `users.customer_id` settles two concurrent registrations for one record.
///
/// With `key`, a retried registration gets its first answer back rather than "email taken".
/// Registrations are anonymous, so their keys share one scope ([`Uuid::nil`]): a key replays
/// only for the very same body, which already holds the password.
pub async fn register_customer(
    app: &App,
    reg: Registration<'_>,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&UserRow) -> Answer,
) -> Result<Answer, AccountError> {
    let Registration {
        email,
        password,
        name,
        phone,
    } = reg;
    let mut errs = FieldErrors::default();
    let checked = check_account(email, password, name, &mut errs);
    let phone = match phone.map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Phone::parse(p, &app.config.shop.default_calling_code)
            .map_err(|e| errs.add("phone", e.to_string()))
            .ok(),
    };
    let Some((email, name)) = checked.filter(|_| errs.is_empty()) else {
        return Err(AccountError::Validation(errs));
    };
    // A retry of a registration that went through: its answer, before "email taken".
    if let Some(k) = key {
        let scope = idempotency::scope(Uuid::nil());
        if let Some(stored) = till_db::idempotency::lookup(&app.db.write, &scope, &k.key).await? {
            return Ok(idempotency::answer_stored(stored, k)?);
        }
    }
    // Refuse a taken email before hashing: Argon2 is the expensive part of a registration, and
    // the unique constraint below still settles a race.
    if users::email_taken(&app.db.write, email.as_str()).await? {
        return Err(EMAIL_TAKEN);
    }
    let hash = password::hash(password.to_owned()).await?;
    let mut run = match idempotency::begin::<AccountError>(app, Uuid::nil(), key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let existing = match &phone {
        Some(p) => customers::find_by_phone(tx, p.as_str()).await?,
        None => None,
    };
    let customer = match existing {
        Some(c) => {
            let same_email = c
                .email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.as_str()));
            if !same_email || users::customer_is_linked(tx, c.id).await? {
                return Err(PHONE_TAKEN);
            }
            c
        }
        None => {
            customers::insert(
                tx,
                &name,
                phone.as_ref().map(|p| p.as_str()),
                Some(email.as_str()),
            )
            .await?
        }
    };
    let user = users::insert(
        tx,
        users::NewUser {
            email: email.as_str(),
            password_hash: &hash,
            name: &name,
            phone: phone.as_ref().map(|p| p.as_str()),
            role: Role::Customer.as_str(),
            customer_id: Some(customer.id),
        },
    )
    .await?;
    let answer = run.finish::<AccountError>(render(&user)).await?;
    Ok(answer)
}

const EMAIL_TAKEN: AccountError = AccountError::AlreadyExists {
    field: "email",
    message: "An account with this email already exists.",
};

const PHONE_TAKEN: AccountError = AccountError::AlreadyExists {
    field: "phone",
    message: "An account with this phone number already exists.",
};

/// Inserts a user of `role`; a customer login gets its customer record in the same transaction.
async fn insert_account(
    tx: &mut PgConnection,
    email: &Email,
    hash: &str,
    name: &str,
    role: Role,
) -> Result<UserRow, DbError> {
    let customer_id = if role == Role::Customer {
        Some(
            customers::insert(tx, name, None, Some(email.as_str()))
                .await?
                .id,
        )
    } else {
        None
    };
    users::insert(
        tx,
        users::NewUser {
            email: email.as_str(),
            password_hash: hash,
            name,
            phone: None,
            role: role.as_str(),
            customer_id,
        },
    )
    .await
}

/// Creates the first admin from `ADMIN_EMAIL`/`ADMIN_PASSWORD` when no admin exists yet.
/// Returns whether one was created.
pub async fn bootstrap_admin(app: &App) -> Result<bool, AccountError> {
    use secrecy::ExposeSecret;
    let auth = &app.config.auth;
    let (Some(email), Some(pass)) = (&auth.admin_email, &auth.admin_password) else {
        return Ok(false);
    };
    create_admin(app, email, pass.expose_secret(), false).await
}

/// Creates an admin account (the `create-admin` subcommand and the bootstrap). Unless `always`,
/// does nothing when an admin already exists.
pub async fn create_admin(
    app: &App,
    email: &str,
    pass: &str,
    always: bool,
) -> Result<bool, AccountError> {
    if !always && users::any_admin(&app.db.write).await? {
        return Ok(false);
    }
    create_account(
        app,
        NewAccount {
            email,
            password: pass,
            name: "Administrator",
            role: Role::Admin,
        },
    )
    .await
}

/// Creates an account unless the email is taken (then nothing changes); returns whether it did.
pub async fn create_account(app: &App, account: NewAccount<'_>) -> Result<bool, AccountError> {
    let (email, name) = checked(&account)?;
    if users::find_by_email(&app.db.write, email.as_str())
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let hash = password::hash(account.password.to_owned()).await?;
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    match insert_account(&mut tx, &email, &hash, &name, account.role).await {
        Ok(_) => {
            tx.commit().await.map_err(DbError::from)?;
            Ok(true)
        }
        // Another instance created the same account at the same moment.
        Err(DbError::Unique(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
