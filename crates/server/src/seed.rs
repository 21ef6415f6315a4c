//! `till seed --demo`: a believable shop. Idempotent: running it again changes nothing.

use till_http::AppState;

/// Demo staff accounts, one per role. Passwords are printed so a newcomer can sign in.
pub const DEMO_STAFF: &[(&str, &str, &str, &str)] = &[
    (
        "manager@till.local",
        "Morgan Manager",
        "manager",
        "manager-pass-1",
    ),
    (
        "cashier@till.local",
        "Casey Cashier",
        "cashier",
        "cashier-pass-1",
    ),
    ("staff@till.local", "Sam Staff", "staff", "staff-pass-1"),
    (
        "customer@till.local",
        "Chris Customer",
        "customer",
        "customer-pass-1",
    ),
];

pub async fn demo(state: &AppState) -> anyhow::Result<()> {
    let created = till_http::routes::users::bootstrap_admin(state).await?;
    if created {
        println!("admin created from ADMIN_EMAIL");
    }
    for (email, name, role, password) in DEMO_STAFF {
        let made =
            till_http::routes::users::create_account(state, email, password, name, role.parse()?)
                .await?;
        println!(
            "{} {role:<8} {email} / {password}",
            if made { "created " } else { "exists  " }
        );
    }
    Ok(())
}
