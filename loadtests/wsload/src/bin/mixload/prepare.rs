//! `mixload prepare`: the accounts a run signs in with, made once per database. An admin creates
//! cashiers (they take the orders and payments), staff (the board screens) and customers (the
//! order-status pages) through `POST /users`, and each one signs in. The tokens go to a JSON file
//! that every later run reads, so no run spends its time hashing passwords (Argon2id, on purpose
//! slow) and every run uses the same accounts.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::fail;

#[derive(Serialize, Deserialize, Clone)]
pub struct Account {
    pub email: String,
    pub token: String,
    /// Customers only: their customer record, which an order names to reach their page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
pub struct Accounts {
    pub cashiers: Vec<Account>,
    pub staff: Vec<Account>,
    pub customers: Vec<Account>,
}

pub struct PrepareArgs {
    pub url: String,
    pub admin_email: String,
    pub admin_password: String,
    pub cashiers: usize,
    pub staff: usize,
    pub customers: usize,
    pub out: String,
}

pub async fn login(http: &reqwest::Client, url: &str, email: &str, password: &str) -> String {
    let resp = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("login {email}: {e}")));
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match body.get("access_token").and_then(|t| t.as_str()) {
        Some(t) if status.is_success() => t.to_owned(),
        _ => fail(&format!("login {email}: {status} {body}")),
    }
}

pub async fn run(a: PrepareArgs) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")));
    let admin = Arc::new(login(&http, &a.url, &a.admin_email, &a.admin_password).await);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    // Two at a time: creating and signing in both hash a password, and this machine has few
    // cores (more in flight only queue behind each other).
    let gate = Arc::new(Semaphore::new(2));
    let mut tasks = Vec::new();
    let plan = [
        ("cashier", a.cashiers),
        ("staff", a.staff),
        ("customer", a.customers),
    ];
    for (role, n) in plan {
        for i in 0..n {
            let (http, url, admin, gate) =
                (http.clone(), a.url.clone(), admin.clone(), gate.clone());
            let role = role.to_owned();
            let email = format!("mix-{run}-{role}-{i}@example.com");
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let password = "mixload-password-1";
                let resp = http
                    .post(format!("{url}/api/v1/users"))
                    .bearer_auth(admin.as_str())
                    .json(&json!({"email": email, "password": password,
                                  "name": format!("Load {role} {i}"), "role": role}))
                    .send()
                    .await
                    .unwrap_or_else(|e| fail(&format!("create {email}: {e}")));
                let status = resp.status();
                let user: Value = resp.json().await.unwrap_or(Value::Null);
                if status != 201 {
                    fail(&format!("create {email}: {status} {user}"));
                }
                let customer_id = user["customer_id"].as_str().map(str::to_owned);
                let token = login(&http, &url, &email, password).await;
                (
                    role,
                    Account {
                        email,
                        token,
                        customer_id,
                    },
                )
            }));
        }
    }
    let mut out = Accounts::default();
    for t in tasks {
        let (role, acc) = t.await.unwrap_or_else(|e| fail(&format!("task: {e}")));
        match role.as_str() {
            "cashier" => out.cashiers.push(acc),
            "staff" => out.staff.push(acc),
            _ => out.customers.push(acc),
        }
    }
    let text = serde_json::to_string_pretty(&out).expect("accounts serialise");
    std::fs::write(&a.out, text).unwrap_or_else(|e| fail(&format!("write {}: {e}", a.out)));
    eprintln!(
        "mixload: {} cashiers, {} staff, {} customers signed in; tokens in {}",
        out.cashiers.len(),
        out.staff.len(),
        out.customers.len(),
        a.out
    );
}
