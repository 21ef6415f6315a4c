//! User roles and the rank checks that the permission table of docs/api.md (Authentication and
//! roles) is built from.
//!
//! `admin > manager > cashier` is a ladder; `staff` (fulfilment) sits beside it and `customer`
//! outside it. The helpers name the questions handlers actually ask, so a handler says
//! `role.is_manager_or_above()` instead of listing variants and forgetting one.

use serde::{Deserialize, Serialize};

/// Who a user is, as stored on the user row and carried in the JWT `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users, jobs and `/health/detailed`.
    Admin,
    /// Catalog, stock, refunds, large discounts, reports.
    Manager,
    /// Rings up `pos` orders and takes payments.
    Cashier,
    /// Runs the order board: reads and moves orders, no money.
    Staff,
    /// Shops online; sees only their own orders and customer record.
    Customer,
}

string_enum!(Role {
    Admin => "admin",
    Manager => "manager",
    Cashier => "cashier",
    Staff => "staff",
    Customer => "customer",
});

impl Role {
    /// Admin or manager: catalog writes, inventory, refunds, discounts over 20 %, reports.
    pub fn is_manager_or_above(self) -> bool {
        matches!(self, Role::Admin | Role::Manager)
    }

    /// Admin, manager or cashier: `pos` orders, payments, customer creation, discounts.
    pub fn is_cashier_or_above(self) -> bool {
        matches!(self, Role::Admin | Role::Manager | Role::Cashier)
    }

    /// Anyone who works for the shop (not a customer): sees every order and the board.
    pub fn is_staff_side(self) -> bool {
        !matches!(self, Role::Customer)
    }

    /// Only admin: users, jobs, detailed health.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_as_str_agree() {
        for &role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(role.to_string(), role.as_str());
        }
        assert!("Admin".parse::<Role>().is_err());
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "must be one of: admin, manager, cashier, staff, customer"
        );
    }

    #[test]
    fn ranks() {
        use Role::*;
        let managers: Vec<Role> = Role::ALL
            .iter()
            .copied()
            .filter(|r| r.is_manager_or_above())
            .collect();
        assert_eq!(managers, [Admin, Manager]);
        let cashiers: Vec<Role> = Role::ALL
            .iter()
            .copied()
            .filter(|r| r.is_cashier_or_above())
            .collect();
        assert_eq!(cashiers, [Admin, Manager, Cashier]);
        let staff: Vec<Role> = Role::ALL
            .iter()
            .copied()
            .filter(|r| r.is_staff_side())
            .collect();
        assert_eq!(staff, [Admin, Manager, Cashier, Staff]);
        assert!(Admin.is_admin() && !Manager.is_admin());
    }
}
